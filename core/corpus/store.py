"""A corpus run on disk: one folder, a JSON manifest and Parquet chunks, read back through DuckDB.

Layout::

    RUN/manifest.json                 what made the run, its options, counts, timings, status
    RUN/chunks/00000/texts.parquet    one row per text          (see core.corpus.tables)
    RUN/chunks/00000/layers.parquet   one row per text x layer
    RUN/chunks/00000/heads.parquet    one row per text x layer x head
    RUN/chunks/00000/instances.parquet  each head's strongest (text, query, key) in the chunk

A chunk is written into ``RUN/.partial/`` and renamed into ``chunks/`` when all four files are
complete, and the manifest is replaced atomically after it, so a killed run leaves only whole
chunks: resuming skips them and redoes the rest (and any chunk whose files are damaged).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

try:  # POSIX; elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None
import pyarrow.parquet as pq

from core.corpus.tables import TABLES, label_field
from core.policy.errors import InputError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "READABLE_VERSIONS",
    "CorpusRun",
    "RunWriter",
    "list_runs",
    "open_run",
    "run_busy",
]

FORMAT = "attnscope-corpus"
# 2: the heads table has a duplicate_token column (the duplicate-token detector score). Runs of
# format 1 still open for reading (their heads table lacks that column); only a run of this
# format can be resumed, since its chunks must all have one schema.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
CHUNKS = "chunks"
PARTIAL = ".partial"
LOCK = ".lock"


def _read_manifest(folder: Path, *, resume: bool = False) -> dict[str, Any]:
    """The manifest of ``folder``, checked to be a corpus run of a store format this version
    reads (:data:`READABLE_VERSIONS`), or, to ``resume`` it, of :data:`FORMAT_VERSION` itself."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError("error.corpus_not_a_run", path=str(folder)) from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError("error.corpus_not_a_run", path=str(folder))
    found = manifest.get("format_version")
    if found not in READABLE_VERSIONS:
        raise InputError(
            "error.corpus_version",
            path=str(folder),
            found=found,
            expected=", ".join(map(str, READABLE_VERSIONS)),
        )
    if resume and found != FORMAT_VERSION:
        raise InputError(
            "error.corpus_resume_version", path=str(folder), found=found, expected=FORMAT_VERSION
        )
    return manifest


def _write_json(path: Path, value: Mapping[str, Any]) -> None:
    """Write ``value`` to ``path`` atomically (a reader sees the old file or the new one)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(partial, path)


def _lock(folder: Path) -> IO:
    """An exclusive lock on ``folder``'s run (``.lock``, held while the file stays open), or
    :class:`InputError` when another writer, in this process or another, holds it."""
    handle = (folder / LOCK).open("a")
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            handle.close()
            raise InputError("error.corpus_busy", path=str(folder)) from error
    return handle


def run_busy(folder: str | Path) -> bool:
    """Whether a writer holds the run in ``folder`` right now (a run still stopping, say)."""
    path = Path(folder).expanduser()
    if fcntl is None or not (path / LOCK).is_file():
        return False
    try:
        _lock(path).close()
    except InputError:
        return True
    return False


def _chunk_dir(folder: Path, index: int) -> Path:
    return folder / CHUNKS / f"{index:05d}"


def _damaged(chunk: Path) -> str | None:
    """The first of ``chunk``'s files that is missing or not readable Parquet, with why."""
    for name in TABLES:
        file = chunk / f"{name}.parquet"
        try:
            pq.read_metadata(file)
        except (OSError, pa.ArrowException) as error:
            return f"{file.relative_to(chunk.parent.parent)}: {str(error).splitlines()[0][:200]}"
    return None


class RunWriter:
    """Writes one run folder: creates it (or takes up the run it holds), writes chunks whole and
    keeps the manifest up to date."""

    def __init__(self, folder: Path, manifest: dict[str, Any], lock: IO | None = None):
        self.folder = folder
        self.manifest = manifest
        self._lock = lock

    @classmethod
    def prepare(cls, folder: str | Path, manifest: dict[str, Any]) -> RunWriter:
        """A writer for ``folder``: a new run with ``manifest``, or the run already there when
        its ``identity`` (corpus, model, options) is the same, with its complete chunks kept and
        damaged ones dropped. Another run's folder, any other non-empty folder, and a run that
        another writer holds (:func:`run_busy`) are refused. Call :meth:`close` when done."""
        folder = Path(folder).expanduser()
        if not (folder / MANIFEST).is_file():
            if folder.exists() and (
                not folder.is_dir() or any(p.name != LOCK for p in folder.iterdir())
            ):
                raise InputError("error.corpus_folder_taken", path=str(folder))
            folder.mkdir(parents=True, exist_ok=True)
        lock = _lock(folder)
        try:
            if (folder / MANIFEST).is_file():
                found = _read_manifest(folder, resume=True)  # every chunk: one schema
                if found.get("identity") != manifest["identity"]:
                    mine, theirs = manifest["identity"], found.get("identity", {})
                    differs = sorted(
                        k for k in set(theirs) | set(mine) if theirs.get(k) != mine.get(k)
                    )
                    raise InputError(
                        "error.corpus_other_run", path=str(folder), detail=", ".join(differs)
                    )
                writer = cls(folder, found, lock)
                writer._check_chunks()
                return writer
            writer = cls(folder, {**manifest, "chunks": {}, "status": "running"}, lock)
            _write_json(folder / MANIFEST, writer.manifest)
            return writer
        except BaseException:
            lock.close()
            raise

    def close(self) -> None:
        """Let another writer take the run up."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _check_chunks(self) -> None:
        """Keep the chunks whose four files are readable (also one renamed in just before a kill,
        before the manifest listed it); forget the others so they are redone."""
        shutil.rmtree(self.folder / PARTIAL, ignore_errors=True)
        listed: dict[str, Any] = self.manifest.setdefault("chunks", {})
        on_disk = {p.name for p in (self.folder / CHUNKS).glob("[0-9]*") if p.is_dir()}
        for name in sorted(on_disk | set(listed)):
            chunk = self.folder / CHUNKS / name
            if name not in on_disk or _damaged(chunk) is not None:
                listed.pop(name, None)
                shutil.rmtree(chunk, ignore_errors=True)
            elif name not in listed:
                listed[name] = {"n_texts": pq.read_metadata(chunk / "texts.parquet").num_rows}

    def completed(self) -> set[int]:
        """The indices of the chunks already written."""
        return {int(name) for name in self.manifest.get("chunks", {})}

    def write_chunk(self, index: int, tables: Mapping[str, pa.Table], info: Mapping) -> None:
        """Write chunk ``index`` (its four tables) whole, then list it in the manifest."""
        partial = self.folder / PARTIAL / f"{index:05d}-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for name in TABLES:
            pq.write_table(tables[name], partial / f"{name}.parquet", compression="zstd")
        target = _chunk_dir(self.folder, index)
        target.parent.mkdir(exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        os.rename(partial, target)  # atomic: the chunk appears with all four files
        self.manifest["chunks"][f"{index:05d}"] = dict(info)
        _write_json(self.folder / MANIFEST, self.manifest)

    def update(self, **fields: Any) -> None:
        """Set top-level manifest ``fields`` (status, timings, ...) and save."""
        self.manifest.update(fields)
        _write_json(self.folder / MANIFEST, self.manifest)


@dataclass(frozen=True)
class CorpusRun:
    """A run folder opened for reading: its manifest and SQL over its rows (DuckDB views
    ``texts``, ``layers``, ``heads``, ``instances_all`` and ``instances``, the latter each
    head's ``top_n`` strongest instances over the whole run). No model is needed."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def status(self) -> str:
        """``complete``, ``running`` (or killed), ``stopped`` or ``failed``."""
        return str(self.manifest.get("status"))

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def n_texts(self) -> int:
        """Texts in the corpus."""
        return int(self.manifest["corpus"]["n_texts"])

    @property
    def n_done(self) -> int:
        """Texts whose rows are written."""
        return sum(int(c["n_texts"]) for c in self.manifest.get("chunks", {}).values())

    def detector_scores(self) -> dict[str, Any] | None:
        """The model's head detector scores on repeated random tokens, measured when the run
        started (``induction``, ``previous_token``, ``duplicate_token``: ``n_layers`` lists of
        ``n_heads`` numbers; ``seed``, ``n_tokens``, ``n_sequences``), or None for a run made
        before they were recorded. Per-text scores are the heads table's columns."""
        return self.manifest.get("detectors")

    def connect(self):
        """A DuckDB connection (in memory) with the run's views."""
        import duckdb

        if not self.manifest.get("chunks"):
            raise InputError("error.corpus_no_rows", path=str(self.folder))
        connection = duckdb.connect(":memory:")
        for name in TABLES:
            pattern = str(self.folder / CHUNKS / "*" / f"{name}.parquet").replace("'", "''")
            table = "instances_all" if name == "instances" else name
            connection.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{pattern}')")
        top_n = int(self.manifest["options"]["top_n"])
        connection.execute(
            "CREATE VIEW instances AS SELECT * FROM instances_all QUALIFY row_number() OVER "
            f"(PARTITION BY layer, head ORDER BY weight DESC, text_id, query, key) <= {top_n}"
        )
        return connection

    def query(self, sql: str, params: list | None = None):
        """The result of ``sql`` over the run's views, as a pandas DataFrame."""
        connection = self.connect()
        try:
            return connection.execute(sql, params or []).df()
        finally:
            connection.close()

    def head_summary(self):
        """One row per head: texts, the mean of the main statistics over them, and the most
        frequent pattern label with its share of texts."""
        return self.query(
            """
            SELECT layer, head, count(*) AS texts,
                   avg(entropy) AS entropy, avg(normalized_entropy) AS normalized_entropy,
                   avg(confidence) AS confidence, avg(mean_distance) AS mean_distance,
                   avg(first_token) AS first_token, avg(previous_token) AS previous_token,
                   mode(pattern) AS pattern,
                   avg(CASE WHEN pattern = mode_pattern THEN 1 ELSE 0 END) AS pattern_share
            FROM (SELECT *, mode(pattern) OVER (PARTITION BY layer, head) AS mode_pattern
                  FROM heads)
            GROUP BY layer, head ORDER BY layer, head
            """
        )

    def label_summary(self, column: str):
        """One row per value of the label ``column``: texts, and the mean entropy, confidence,
        first-token and previous-token share over every head of those texts."""
        if column not in (self.manifest["corpus"].get("label_columns") or []):
            raise InputError("error.corpus_no_label", column=column)
        field = label_field(column).replace('"', '""')
        return self.query(
            f"""
            SELECT t."{field}" AS label, count(DISTINCT h.text_id) AS texts,
                   avg(h.entropy) AS entropy, avg(h.normalized_entropy) AS normalized_entropy,
                   avg(h.confidence) AS confidence, avg(h.first_token) AS first_token,
                   avg(h.previous_token) AS previous_token
            FROM heads h JOIN texts t USING (text_id) GROUP BY 1 ORDER BY 1
            """
        )


def open_run(folder: str | Path, *, verify: bool = True) -> CorpusRun:
    """Open a run folder (complete or not) for reading; refuses a folder that is not a run, a
    run of another store format and, with ``verify``, a damaged Parquet file."""
    path = Path(folder).expanduser()
    manifest = _read_manifest(path)
    if verify:
        for name in sorted(manifest.get("chunks", {})):
            problem = _damaged(path / CHUNKS / name)
            if problem is not None:
                raise InputError("error.corpus_damaged", path=str(path), detail=problem)
    return CorpusRun(path, manifest)


def list_runs(root: str | Path) -> list[dict[str, Any]]:
    """The runs in the folders under ``root`` (newest first): folder, status, corpus, model,
    texts done and in all. Folders that are not runs are left out."""
    rows = []
    base = Path(root).expanduser()
    for manifest in base.glob(f"*/{MANIFEST}") if base.is_dir() else ():
        try:
            run = open_run(manifest.parent, verify=False)
        except InputError:
            continue
        rows.append(
            {
                "folder": str(run.folder),
                "status": run.status,
                "corpus": run.manifest["corpus"]["source"],
                "model": run.manifest["model"]["name"],
                "done": run.n_done,
                "texts": run.n_texts,
                "started": run.manifest.get("timings", {}).get("started", ""),
                "_mtime": manifest.stat().st_mtime,
            }
        )
    rows.sort(key=lambda row: row.pop("_mtime"), reverse=True)
    return rows


def now() -> str:
    """The time, for the manifest: ISO 8601, UTC, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
