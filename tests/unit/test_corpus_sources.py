"""Corpus input: every bad file the issue lists gets its own message in English and Japanese,
and nothing is written for it; what reading skips (broken JSONL lines, duplicates) is reported."""

from __future__ import annotations

import json
import os

import pytest

from core.corpus import read_corpus, run_corpus, sample_corpus
from core.corpus.sources import corpus_columns, hf_corpus, read_corpus_bytes
from core.policy.errors import InputError
from core.policy.settings import DEMO


def refused(tmp_path, name: str, data: bytes, **options) -> InputError:
    """The error reading ``data`` as file ``name`` gives, checked in both languages, after
    checking that a run of it leaves no folder behind."""
    path = tmp_path / name
    path.write_bytes(data)
    out = tmp_path / "run"
    with pytest.raises(InputError) as caught:
        run_corpus(str(path), "minilm", out=out, **options)
    assert not out.exists(), "a refused corpus must leave nothing on disk"
    error = caught.value
    english, japanese = str(error), error.localized("ja")
    assert "⟦" not in english + japanese and english != japanese
    assert name in english and name in japanese
    return error


def test_empty_file_and_blank_lines(tmp_path):
    assert refused(tmp_path, "empty.txt", b"").key == "error.corpus_empty"
    blank = "\n  \n\t\n\u200b\n".encode()  # whitespace and a zero-width space only
    assert refused(tmp_path, "blank.txt", blank).key == "error.corpus_empty"
    assert refused(tmp_path, "header.csv", b"text,label\n").key == "error.corpus_empty"


def test_wrong_encodings_are_named(tmp_path):
    sjis = refused(tmp_path, "sjis.txt", "猫が好きです。\n犬も好きです。\n".encode("shift_jis"))
    assert sjis.key == "error.corpus_encoding" and sjis.params["encoding"] == "Shift_JIS"
    assert "Shift_JIS" in sjis.localized("ja") and "UTF-8" in sjis.localized("ja")
    for data in ("text\nhello\n".encode("utf-16"), "hello world\nmore text\n".encode("utf-16-le")):
        error = refused(tmp_path, "wide.csv", data)
        assert error.key == "error.corpus_encoding" and error.params["encoding"] == "UTF-16"


def test_a_10_mb_single_line(tmp_path):
    error = refused(tmp_path, "huge.txt", b"a" * 10_000_000)
    assert error.key == "error.corpus_text_too_long"
    assert error.params["chars"] == 10_000_000 and error.params["where"] == 1
    assert "10000000" in error.localized("ja")


def test_missing_and_misspelled_columns(tmp_path):
    data = b"sentence,kind\nHello there.,statement\nHow are you?,question\n"
    with pytest.raises(InputError) as caught:
        read_corpus_bytes(data, "c.csv", text_column="sentense")
    error = caught.value
    assert error.key == "error.corpus_no_column_close" and error.params["close"] == "sentence"
    assert "sentence" in error.localized("ja") and "sentense" in str(error)
    with pytest.raises(InputError) as caught:
        read_corpus_bytes(data, "c.csv", text_column="body")
    assert caught.value.key == "error.corpus_no_column"
    with pytest.raises(InputError) as caught:
        read_corpus_bytes(data, "c.csv", label_columns=["knd"])
    assert caught.value.params["close"] == "kind"
    two = b"a,b\nx,y\n"
    with pytest.raises(InputError) as caught:
        read_corpus_bytes(two, "two.csv")
    assert caught.value.key == "error.corpus_choose_column"
    corpus = read_corpus_bytes(data, "c.csv", label_columns=["kind"])  # "sentence" is a text name
    assert corpus.texts == ("Hello there.", "How are you?")
    assert corpus.labels == {"kind": ("statement", "question")}


def test_a_binary_file_renamed_csv(tmp_path):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 40
    assert refused(tmp_path, "image.csv", png).key == "error.corpus_binary"
    noise = bytes((i * 7919 + 13) % 256 for i in range(5000))
    assert refused(tmp_path, "noise.csv", noise).key == "error.corpus_binary"


def test_broken_jsonl_lines_are_skipped_and_reported(tmp_path):
    lines = [
        json.dumps({"text": "First text.", "group": "a"}),
        '{"text": "broken',
        json.dumps({"text": "Second text.", "group": "b"}),
        "[1, 2, 3]",
        json.dumps("A bare string is a text too."),
    ]
    path = tmp_path / "some.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    corpus = read_corpus(path, label_columns=["group"])
    assert corpus.texts == ("First text.", "Second text.", "A bare string is a text too.")
    assert corpus.skipped == (2, 4)
    assert corpus.labels["group"] == ("a", "b", None)
    english, japanese = corpus.notices("en"), corpus.notices("ja")
    assert english == ["Skipped 2 broken line(s) that are not JSON objects: line 2, 4."]
    assert "2, 4" in japanese[0] and "スキップ" in japanese[0]
    error = refused(tmp_path, "all_broken.jsonl", b"{oops\nnot json\n")
    assert error.key == "error.corpus_all_broken" and error.params["lines"] == 2


def test_duplicate_texts_are_dropped_and_reported():
    data = b"one\ntwo\none\nthree\ntwo\n"
    corpus = read_corpus_bytes(data, "dups.txt")
    assert corpus.texts == ("one", "two", "three") and corpus.duplicates == 2
    assert corpus.notices("en") == ["Dropped 2 duplicate text(s); the first of each is kept."]
    assert "2 件" in corpus.notices("ja")[0]


def test_a_corpus_over_the_demo_limit_and_ray_in_demo_mode(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("\n".join(f"Sentence number {i}." for i in range(201)), encoding="utf-8")
    out = tmp_path / "run"
    with pytest.raises(InputError) as caught:
        run_corpus(str(path), "minilm", out=out, settings=DEMO)
    assert caught.value.key == "error.corpus_too_many" and caught.value.params["limit"] == 200
    assert "200" in caught.value.localized("ja")
    with pytest.raises(InputError) as caught:
        run_corpus(sample_corpus().head(10), "minilm", out=out, settings=DEMO, engine="ray")
    assert caught.value.key == "error.corpus_ray_demo"
    assert "Ray" in caught.value.localized("ja")
    assert not out.exists()
    from core.corpus.run import check_corpus

    check_corpus(sample_corpus(), DEMO, "local")  # the bundled 240 sentences are allowed


def test_the_bundled_sample():
    corpus = sample_corpus()
    assert len(corpus) == 240 and corpus.duplicates == 0 and corpus.skipped == ()
    assert sorted(set(corpus.labels["lang"])) == ["en", "ja"]
    assert sorted(set(corpus.labels["kind"])) == ["question", "statement"]
    questions = [t for t, k in zip(corpus.texts, corpus.labels["kind"]) if k == "question"]
    assert all(t.endswith(("?", "？")) for t in questions) and len(questions) == 120


def test_columns_of_an_upload():
    assert corpus_columns(b"text;label\nhi;a\n", "x.csv") == ["text", "label"]
    assert corpus_columns(b'{"body": "x", "n": 1}\n', "x.jsonl") == ["body", "n"]
    assert corpus_columns(b"plain\n", "x.txt") == []


def test_a_hugging_face_dataset_saved_to_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    data = {"sentence": ["Good film.", "Bad film.", "Good film."], "label": [1, 0, 1]}
    datasets.Dataset.from_dict(data, features=features).save_to_disk(tmp_path / "ds")
    corpus = hf_corpus(str(tmp_path / "ds"), label_columns=["label"])
    assert corpus.texts == ("Good film.", "Bad film.") and corpus.duplicates == 1
    assert corpus.labels["label"] == ("pos", "neg") and corpus.source.startswith("hf:")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(InputError) as caught:
        hf_corpus(str(tmp_path / "nothing-here"))
    assert caught.value.key == "error.corpus_dataset"
