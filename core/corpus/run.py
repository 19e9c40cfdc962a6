"""``run_corpus``: a corpus and a model in, a run folder out (see :mod:`core.corpus.store`).

Checks everything that can be checked before any work (the corpus, the limits of demo mode, the
engine, the model), then sorts the texts by length, cuts them into chunks and hands the chunks
still missing to an engine; each finished chunk is written at once, so a run that stops for any
reason can be resumed by running it again into the same folder.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.corpus.batch import BatchOptions
from core.corpus.engines import ENGINES, ChunkWork, Engine, StopRun, local_chunks, ray_chunks
from core.corpus.sources import Corpus, load_source
from core.corpus.store import FORMAT, FORMAT_VERSION, CorpusRun, RunWriter, now, open_run
from core.engine.models import BUILTIN_MODELS, cache_root, load_model
from core.engine.tokenize import count_tokens
from core.methods.detector_scores import DETECTORS, detector_scores
from core.policy.errors import InputError
from core.policy.settings import LOCAL, Settings

if TYPE_CHECKING:
    from core.engine.models import LoadedModel

__all__ = [
    "CorpusProgress",
    "StopRun",
    "check_corpus",
    "default_out",
    "plan_chunks",
    "run_corpus",
    "runs_root",
]

RUNS_ENV = "ATTNSCOPE_RUNS_DIR"


@dataclass(frozen=True)
class CorpusProgress:
    """Where a run stands: texts done of the total (``resumed`` of them were already on disk),
    seconds so far in this call, and the estimated seconds left (by tokens, None at first)."""

    done: int
    total: int
    resumed: int
    elapsed: float
    eta: float | None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


def runs_root() -> Path:
    """Where runs go by default: ``$ATTNSCOPE_RUNS_DIR``, else ``runs/`` in AttnScope's cache."""
    import os

    configured = os.environ.get(RUNS_ENV)
    return Path(configured).expanduser() if configured else cache_root() / "runs"


def default_out(corpus: Corpus, model: str) -> Path:
    """``runs_root()/<corpus>-<model>-<first 8 hex of the corpus hash>``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in f"{corpus.name}-{model}")
    return runs_root() / f"{safe}-{corpus.digest[:8]}"


def check_corpus(corpus: Corpus, settings: Settings, engine: Engine) -> None:
    """Refuse what ``settings`` do not allow: too many texts (the bundled sample excepted), or
    Ray in demo mode."""
    if engine not in ENGINES:
        raise InputError("error.corpus_engine", engine=engine, engines=", ".join(ENGINES))
    if engine == "ray" and not settings.allow_ray:
        raise InputError("error.corpus_ray_demo")
    limit = settings.max_corpus_texts
    # The bundled sample is the server's own, of known size; the limit is for what people bring.
    if limit is not None and corpus.format != "sample" and len(corpus) > limit:
        raise InputError("error.corpus_too_many", count=len(corpus), limit=limit)


def plan_chunks(corpus: Corpus, lengths: Sequence[int], options: BatchOptions) -> list[ChunkWork]:
    """The chunks of a corpus: texts ordered by token count (ties by position, so the plan is
    the same every time), then cut into ``chunk_size`` pieces."""
    order = (
        np.argsort(np.asarray(lengths), kind="stable")
        if options.sort_by_length
        else np.arange(len(lengths))
    ).tolist()
    works = []
    for index, start in enumerate(range(0, len(order), options.chunk_size)):
        ids = order[start : start + options.chunk_size]
        works.append(
            ChunkWork(
                index=index,
                text_ids=tuple(ids),
                texts=tuple(corpus.texts[i] for i in ids),
                labels={
                    column: [values[i] for i in ids] for column, values in corpus.labels.items()
                },
            )
        )
    return works


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("torch", "transformers", "tokenizers", "pyarrow", "duckdb"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[package] = importlib.metadata.version(package)
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        found["attnscope"] = tomllib.loads(pyproject.read_text())["project"]["version"]
    return found


def _revision(loaded: LoadedModel) -> str | None:
    """The model's version: the bundled package's version, or the Hub commit it came from."""
    builtin = BUILTIN_MODELS.get(loaded.name)
    if builtin is not None:
        try:
            return f"{builtin.package}=={importlib.metadata.version(builtin.package)}"
        except importlib.metadata.PackageNotFoundError:
            pass
    return getattr(loaded.model.config, "_commit_hash", None)


def _manifest(
    corpus: Corpus, loaded: LoadedModel, options: BatchOptions, engine: Engine, n_chunks: int
) -> dict[str, Any]:
    model = {
        "name": loaded.name,
        "source": loaded.source,
        "revision": _revision(loaded),
        "kind": loaded.kind,
        "n_layers": loaded.n_layers,
        "n_heads": loaded.n_heads,
        "max_tokens": loaded.max_tokens,
    }
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        # What a resumed run must share with the run in the folder.
        "identity": {
            "corpus_sha256": corpus.digest,
            "model": loaded.name,
            "model_revision": model["revision"],
            "options": asdict(options),
        },
        "corpus": corpus.describe(),
        "model": model,
        "options": asdict(options),
        "engine": engine,
        "versions": _versions(),
        "n_chunks": n_chunks,
        "timings": {"started": now()},
    }


def _detectors(loaded: LoadedModel) -> dict[str, Any]:
    """The model's head detector scores on repeated random tokens (the induction measurement of
    :func:`core.methods.detector_scores.detector_scores`, seed 0, 4 sequences of 20 tokens), for
    the manifest: each score as ``n_layers`` lists of ``n_heads`` numbers."""
    found = detector_scores(loaded, n_tokens=20, n_sequences=4, seed=0)
    return {
        "seed": found.seed,
        "n_tokens": found.n_tokens,
        "n_sequences": found.n_sequences,
        **{name: found.score(name).tolist() for name in DETECTORS},
    }


def run_corpus(
    corpus: Corpus | str,
    model: str | LoadedModel,
    *,
    out: str | Path | None = None,
    options: BatchOptions | None = None,
    engine: Engine = "local",
    ray_address: str | None = None,
    ray_workers: int = 2,
    device: str | None = None,
    settings: Settings = LOCAL,
    progress: Callable[[CorpusProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> CorpusRun:
    """Run ``model`` over ``corpus`` (a :class:`Corpus`, or what :func:`load_source` reads:
    ``"sample"``, ``"hf:NAME"``, a file) and return the store (:class:`CorpusRun`).

    Runs into ``out`` (default :func:`default_out`); a folder that holds the same run (same
    corpus, model and options) is resumed from its last complete chunk. ``progress`` is called
    after each chunk; an exception it raises (or Ctrl-C) stops the run, keeping what was written;
    ``should_stop`` is asked before each batch and stops it the same way (:class:`StopRun`).
    Nothing is created on disk before the corpus, the limits and the model have been checked.
    """
    options = options or BatchOptions()
    if isinstance(corpus, str):
        corpus = load_source(corpus, max_text_chars=settings.max_text_chars)
    check_corpus(corpus, settings, engine)
    if engine == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise InputError("error.corpus_ray_missing")
    loaded = model if not isinstance(model, str) else load_model(model, device=device)
    limit = min(options.max_tokens or loaded.max_tokens, loaded.max_tokens, settings.max_tokens)
    options = BatchOptions(**{**asdict(options), "max_tokens": limit})
    lengths = [min(n, limit) for n in count_tokens(loaded, corpus.texts)]
    works = plan_chunks(corpus, lengths, options)
    folder = Path(out).expanduser() if out is not None else default_out(corpus, loaded.name)
    writer = RunWriter.prepare(folder, _manifest(corpus, loaded, options, engine, len(works)))
    done_chunks = writer.completed()
    todo = [work for work in works if work.index not in done_chunks]
    cost = {work.index: sum(lengths[i] for i in work.text_ids) for work in works}
    resumed = sum(len(work.text_ids) for work in works if work.index in done_chunks)
    remaining_cost = sum(cost[work.index] for work in todo)
    done, spent_cost, started = resumed, 0, time.perf_counter()
    status = "failed"
    writer.update(status="running", engine=engine)
    try:
        if "detectors" not in writer.manifest:  # text-independent: measured once per run
            writer.update(detectors=_detectors(loaded))
            started = time.perf_counter()
        if progress is not None:
            progress(CorpusProgress(done, len(corpus), resumed, 0.0, None))
        if engine == "ray":
            chunks = ray_chunks(
                loaded.name,
                todo,
                options,
                address=ray_address,
                workers=ray_workers,
                device=device,
                should_stop=should_stop,
            )
        else:
            chunks = local_chunks(loaded, todo, options, should_stop)
        for chunk in chunks:
            n_texts = chunk.tables["texts"].num_rows
            writer.write_chunk(
                chunk.index,
                chunk.tables,
                {
                    "n_texts": n_texts,
                    "rows": chunk.tables["heads"].num_rows,
                    "seconds": round(chunk.seconds, 3),
                },
            )
            done += n_texts
            spent_cost += cost[chunk.index]
            elapsed = time.perf_counter() - started
            eta = elapsed / spent_cost * (remaining_cost - spent_cost) if spent_cost else None
            if progress is not None:
                progress(CorpusProgress(done, len(corpus), resumed, elapsed, eta))
        status = "complete"
    except BaseException as error:
        # Ctrl-C, Stop in the app (a rerun) or StopRun from progress: stopped, resumable.
        stopped = isinstance(error, StopRun) or not isinstance(error, Exception)
        status = "stopped" if stopped else "failed"
        raise
    finally:
        timings = dict(writer.manifest.get("timings", {}))
        timings.update(last_seconds=round(time.perf_counter() - started, 3), finished=now())
        writer.update(status=status, timings=timings)
        writer.close()
    return open_run(folder)
