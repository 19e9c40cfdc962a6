"""Where a corpus comes from: a CSV, JSONL or plain-text file (a path or uploaded bytes), a
Hugging Face dataset, or the bundled sample; every bad input refused with a message in both
languages before any work starts, and what was skipped reported.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.corpus.formats import Format, csv_records, decode, format_of, jsonl_records
from core.engine.tokenize import check_text
from core.policy.errors import InputError
from core.policy.i18n import Lang, t

__all__ = [
    "DEFAULT_MAX_TEXT_CHARS",
    "SAMPLE_PATH",
    "Corpus",
    "corpus_columns",
    "hf_corpus",
    "load_source",
    "read_corpus",
    "read_corpus_bytes",
    "sample_corpus",
]

SAMPLE_PATH = Path(__file__).resolve().parents[2] / "assets" / "corpus" / "sample.jsonl"
SAMPLE_SOURCE = "sample"
DEFAULT_MAX_TEXT_CHARS = 200_000  # as core.policy.settings.LOCAL.max_text_chars
_TEXT_COLUMNS = ("text", "sentence", "content")  # chosen without asking, in this order


@dataclass(frozen=True)
class Corpus:
    """Texts to run, with optional labels kept beside each one (``labels[column][i]`` for text
    ``i``), and what reading them skipped: broken lines (``skipped``: line or row numbers),
    blank texts and duplicates (dropped, the first of each kept)."""

    texts: tuple[str, ...]
    source: str  # a path, "sample" or "hf:NAME"
    format: Format
    text_column: str | None = None
    labels: dict[str, tuple[str | None, ...]] = field(default_factory=dict)
    skipped: tuple[int, ...] = ()
    blank: int = 0
    duplicates: int = 0

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def name(self) -> str:
        """A short name for folders and titles: the file's stem, ``sample`` or the dataset."""
        if self.format in ("sample", "hf"):
            return self.source.removeprefix("hf:").replace("/", "-") or "corpus"
        return Path(self.source).stem or "corpus"

    @property
    def digest(self) -> str:
        """SHA-256 of the texts and labels: what a resumed run must match."""
        payload = json.dumps([self.texts, sorted(self.labels.items())], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def head(self, count: int) -> Corpus:
        """The first ``count`` texts (and their labels)."""
        labels = {k: v[:count] for k, v in self.labels.items()}
        return replace(self, texts=self.texts[:count], labels=labels)

    def notices(self, lang: Lang = "en") -> list[str]:
        """What reading skipped, one sentence each, in ``lang``."""
        out = []
        if self.skipped:
            shown = ", ".join(str(n) for n in self.skipped[:10])
            more = "…" if len(self.skipped) > 10 else ""
            out.append(t("corpus.skipped_lines", lang, count=len(self.skipped), lines=shown + more))
        if self.duplicates:
            out.append(t("corpus.duplicates", lang, count=self.duplicates))
        if self.blank:
            out.append(t("corpus.blank", lang, count=self.blank))
        return out

    def describe(self) -> dict[str, Any]:
        """The manifest's ``corpus`` entry."""
        return {
            "source": self.source,
            "format": self.format,
            "text_column": self.text_column,
            "label_columns": list(self.labels),
            "n_texts": len(self.texts),
            "sha256": self.digest,
            "skipped_lines": list(self.skipped),
            "blank": self.blank,
            "duplicates": self.duplicates,
        }


def _choose_column(name: str, columns: Sequence[str], wanted: str | None) -> str:
    """The text column: ``wanted`` if given (else a message with the columns and the closest
    name), else ``text``/``sentence``/``content`` or the only column."""
    if wanted is not None:
        if wanted in columns:
            return wanted
        close = difflib.get_close_matches(wanted, columns, n=1)
        listed = ", ".join(columns) or "-"
        if close:
            raise InputError(
                "error.corpus_no_column_close",
                name=name,
                column=wanted,
                columns=listed,
                close=close[0],
            )
        raise InputError("error.corpus_no_column", name=name, column=wanted, columns=listed)
    for candidate in _TEXT_COLUMNS:
        if candidate in columns:
            return candidate
    if len(columns) == 1:
        return columns[0]
    raise InputError("error.corpus_choose_column", name=name, columns=", ".join(columns) or "-")


def _build(
    records: Iterable[tuple[int, Mapping[str, Any]]],
    columns: Sequence[str],
    *,
    name: str,
    source: str,
    fmt: Format,
    text_column: str | None,
    label_columns: Sequence[str],
    max_text_chars: int,
    skipped: Sequence[int] = (),
) -> Corpus:
    """A :class:`Corpus` from numbered records: blank texts and duplicates dropped and counted,
    a text over ``max_text_chars`` refused, no text at all refused."""
    column = _choose_column(name, columns, text_column)
    for label in label_columns:
        _choose_column(name, columns, label)  # a misspelled label column fails like a text one
    texts: list[str] = []
    labels: dict[str, list[str | None]] = {label: [] for label in label_columns}
    seen: set[str] = set()
    blank = duplicates = 0
    for number, record in records:
        value = record.get(column)
        text = "" if value is None else value if isinstance(value, str) else str(value)
        if len(text) > max_text_chars:
            raise InputError(
                "error.corpus_text_too_long",
                name=name,
                where=number,
                chars=len(text),
                limit=max_text_chars,
            )
        try:
            check_text(text)
        except InputError:
            blank += 1
            continue
        if text in seen:
            duplicates += 1
            continue
        seen.add(text)
        texts.append(text)
        for label in label_columns:
            found = record.get(label)
            labels[label].append(None if found is None else str(found))
    if not texts:
        raise InputError("error.corpus_empty", name=name)
    return Corpus(
        texts=tuple(texts),
        source=source,
        format=fmt,
        text_column=column if fmt not in ("text",) else None,
        labels={k: tuple(v) for k, v in labels.items()},
        skipped=tuple(skipped),
        blank=blank,
        duplicates=duplicates,
    )


def read_corpus_bytes(
    data: bytes,
    filename: str,
    *,
    text_column: str | None = None,
    label_columns: Sequence[str] = (),
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    source: str | None = None,
) -> Corpus:
    """A corpus from a file's bytes (an upload): CSV/TSV (a header row), JSONL (one object per
    line; broken lines skipped and reported) or plain text (one text per line), by the name's
    suffix."""
    name = Path(filename).name
    text = decode(data, name)
    fmt = format_of(filename)
    options = {
        "name": name,
        "source": source or filename,
        "fmt": fmt,
        "text_column": text_column,
        "label_columns": label_columns,
        "max_text_chars": max_text_chars,
    }
    if fmt == "csv":
        header, records = csv_records(text, filename)
        if not records:
            raise InputError("error.corpus_empty", name=name)
        return _build(records, header, **options)
    if fmt == "jsonl":
        columns, records, broken = jsonl_records(text)
        if not records:
            if broken:
                raise InputError("error.corpus_all_broken", name=name, lines=len(broken))
            raise InputError("error.corpus_empty", name=name)
        return _build(records, columns, skipped=broken, **options)
    lines = ((n, {"text": line}) for n, line in enumerate(text.splitlines(), start=1))
    return _build(lines, ["text"], **{**options, "text_column": None, "label_columns": ()})


def read_corpus(
    path: str | Path,
    *,
    text_column: str | None = None,
    label_columns: Sequence[str] = (),
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
) -> Corpus:
    """A corpus from a CSV, TSV, JSONL or plain-text file (see :func:`read_corpus_bytes`)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise InputError("error.corpus_not_found", path=str(path))
    return read_corpus_bytes(
        file.read_bytes(),
        file.name,
        text_column=text_column,
        label_columns=label_columns,
        max_text_chars=max_text_chars,
        source=str(file.resolve()),
    )


def corpus_columns(data: bytes, filename: str) -> list[str]:
    """The columns (CSV) or fields (JSONL) a file offers for the text and labels; ``[]`` for
    plain text. Raises like :func:`read_corpus_bytes` on a file that is not text."""
    text = decode(data, Path(filename).name)
    fmt = format_of(filename)
    if fmt == "csv":
        return csv_records(text, filename)[0]
    if fmt == "jsonl":
        return jsonl_records(text)[0]
    return []


def sample_corpus() -> Corpus:
    """The bundled sample: English and Japanese sentences written for AttnScope, labelled by
    ``lang`` (en/ja) and ``kind`` (question/statement)."""
    corpus = read_corpus(SAMPLE_PATH, text_column="text", label_columns=("lang", "kind"))
    return replace(corpus, source=SAMPLE_SOURCE, format="sample")


def hf_corpus(
    name: str,
    *,
    split: str = "train",
    text_column: str | None = None,
    label_columns: Sequence[str] = (),
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
) -> Corpus:
    """A Hugging Face dataset: a folder saved with ``save_to_disk``, a local dataset folder or
    data files, or (online only) a Hub id; ``split`` of it. Class labels keep their names."""
    try:
        import datasets
    except ImportError as error:
        raise InputError("error.corpus_datasets_missing") from error
    folder = Path(name).expanduser()
    try:
        saved = any((folder / f).is_file() for f in ("state.json", "dataset_dict.json"))
        loaded = datasets.load_from_disk(str(folder)) if saved else datasets.load_dataset(name)
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise KeyError(f"no split {split!r}; splits: {', '.join(loaded)}")
            loaded = loaded[split]
    except Exception as error:  # not found, offline, malformed: one message with the detail
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise InputError("error.corpus_dataset", name=name, detail=detail) from error
    names = {
        column: feature.names
        for column, feature in loaded.features.items()
        if isinstance(feature, datasets.ClassLabel)
    }

    def records() -> Iterable[tuple[int, dict]]:
        for number, row in enumerate(loaded, start=1):
            yield (
                number,
                {k: names[k][v] if k in names and v is not None else v for k, v in row.items()},
            )

    return _build(
        records(),
        list(loaded.column_names),
        name=name,
        source=f"hf:{name}",
        fmt="hf",
        text_column=text_column,
        label_columns=label_columns,
        max_text_chars=max_text_chars,
    )


def load_source(
    spec: str,
    *,
    text_column: str | None = None,
    label_columns: Sequence[str] = (),
    split: str = "train",
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
) -> Corpus:
    """The corpus a command line names: ``sample`` (bundled), ``hf:NAME`` (a dataset) or a
    file's path."""
    if spec == SAMPLE_SOURCE:
        return sample_corpus()
    if spec.startswith("hf:"):
        return hf_corpus(
            spec[3:],
            split=split,
            text_column=text_column,
            label_columns=label_columns,
            max_text_chars=max_text_chars,
        )
    return read_corpus(
        spec, text_column=text_column, label_columns=label_columns, max_text_chars=max_text_chars
    )
