"""Reading corpus files: bytes to UTF-8 text (or a message saying what the file really is),
and CSV/TSV and JSON Lines to numbered records. :mod:`core.corpus.sources` builds corpora from
them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Literal

from core.policy.errors import InputError

__all__ = ["Format", "csv_records", "decode", "format_of", "jsonl_records"]

Format = Literal["sample", "csv", "jsonl", "text", "hf"]
SNIFF_BYTES = 1 << 16


def decode(data: bytes, name: str) -> str:
    """``data`` as UTF-8 text (a BOM is dropped), or an :class:`InputError` that says what it is:
    UTF-16/32, Shift_JIS or another encoding, or not text at all."""
    head = data[:SNIFF_BYTES]
    utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
    # UTF-16 without a BOM: every other byte of ASCII text is NUL.
    if not utf16 and len(head) >= 8 and head[1::2].count(0) > 0.4 * len(head[1::2]):
        utf16 = head[0::2].count(0) < 0.1 * len(head[0::2])
    if utf16 or head.startswith((b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")):
        raise InputError("error.corpus_encoding", name=name, encoding="UTF-16")
    if b"\x00" in head:
        raise InputError("error.corpus_binary", name=name)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 13))
    if controls > 0.01 * max(1, len(head)):
        raise InputError("error.corpus_binary", name=name)
    for encoding in ("shift_jis", "cp932", "euc_jp"):
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            continue
        raise InputError("error.corpus_encoding", name=name, encoding="Shift_JIS")
    raise InputError("error.corpus_encoding_unknown", name=name)


def format_of(filename: str) -> Format:
    suffix = Path(filename).suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    return "text"


def csv_records(text: str, filename: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """The header and the numbered rows (row 2 is the first after the header) of a CSV/TSV."""
    csv.field_size_limit(1 << 30)  # long cells get our message (error.corpus_text_too_long)
    if filename.lower().endswith(".tsv"):
        delimiter = "\t"
    else:
        try:
            delimiter = csv.Sniffer().sniff(text[:SNIFF_BYTES], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = list(reader)
    header = [h.strip() for h in rows[0]] if rows else []
    records = [
        (number, dict(zip(header, row, strict=False)))
        for number, row in enumerate(rows[1:], start=2)
    ]
    return header, records


def jsonl_records(text: str) -> tuple[list[str], list[tuple[int, dict]], list[int]]:
    """The field names (in first-seen order), numbered records and the broken lines of a JSON
    Lines text. A line holding a JSON string is a record ``{"text": ...}``."""
    columns: dict[str, None] = {}
    records, broken = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            broken.append(number)
            continue
        if isinstance(value, str):
            value = {"text": value}
        if not isinstance(value, dict):
            broken.append(number)
            continue
        columns.update(dict.fromkeys(value))
        records.append((number, value))
    return list(columns), records, broken
