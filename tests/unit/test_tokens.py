"""Readable labels: markers gone, multi-byte characters whole, invisible characters visible."""

from __future__ import annotations

from core.tokens import labels_by_decoding, labels_from_offsets, make_visible


def test_make_visible_trims_and_shows_whitespace_and_invisibles():
    assert make_visible(" world") == "world"
    assert make_visible(" ") == "␣"
    assert make_visible("\n") == "↵"
    assert make_visible("\t") == "⇥"
    assert make_visible("a\u200bb") == "a<U+200B>b"  # zero-width space
    assert make_visible("x\x07") == "x<U+0007>"  # control character
    assert make_visible("\u202e") == "<U+202E>"  # right-to-left override cannot flip the UI


def test_offsets_give_the_original_characters_not_byte_pieces():
    text = "猫 cat"
    # Byte-level BPE splits 猫 (3 UTF-8 bytes) in two tokens that share its character span.
    labels = labels_from_offsets([text], [(0, 1), (0, 1), (1, 5)], [0, 0, 0], ["çĮ", "«", "Ġcat"])
    assert labels == ["猫(1/2)", "猫(2/2)", "cat"]


def test_offsets_keep_special_tokens_and_read_the_second_sentence():
    texts = ["Hi there", "Bye"]
    labels = labels_from_offsets(
        texts,
        [(0, 0), (0, 2), (3, 8), (0, 0), (0, 3), (0, 0)],
        [None, 0, 0, None, 1, None],
        ["[CLS]", "hi", "there", "[SEP]", "bye", "[SEP]"],
    )
    assert labels == ["[CLS]", "Hi", "there", "[SEP]", "Bye", "[SEP]"]


def test_three_piece_character_and_neighbours():
    text = "語の"
    labels = labels_from_offsets(
        [text], [(0, 1), (0, 1), (0, 1), (1, 2)], [0, 0, 0, 0], ["è", "ª", "ŀ", "ãģ®"]
    )
    assert labels == ["語(1/3)", "語(2/3)", "語(3/3)", "の"]


def test_decoding_fallback_joins_split_characters():
    pieces = {1: " \xe6\x97".encode("latin-1"), 2: b"\xa5", 3: "本".encode(), 4: b"##s"}

    def decode(ids):
        return b"".join(pieces[i] for i in ids).decode("utf-8", errors="replace")

    assert labels_by_decoding([1, 2, 3, 4], decode) == ["日(1/2)", "日(2/2)", "本", "s"]


def test_decoding_fallback_shows_a_lone_broken_byte_without_swallowing_neighbours():
    pieces = {1: b"\xff", 2: b"ok"}

    def decode(ids):
        return b"".join(pieces[i] for i in ids).decode("utf-8", errors="replace")

    assert labels_by_decoding([1, 2], decode) == ["\ufffd", "ok"]
