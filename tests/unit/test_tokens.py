"""Readable labels: markers gone, multi-byte characters whole, invisible characters visible."""

from __future__ import annotations

from core.engine.tokens import (
    bytes_label,
    labels_by_decoding,
    labels_from_offsets,
    make_visible,
    offsets_by_decoding,
)


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


def sentencepiece_decode(pieces):
    """A SentencePiece-like decode: ▁ reads as a space, and a leading space is dropped."""

    def decode(ids):
        return "".join(pieces[i] for i in ids).replace("▁", " ").removeprefix(" ")

    return decode


def test_offsets_by_decoding_keeps_sentencepiece_spaces_between_words():
    decode = sentencepiece_decode({0: "▁Hello", 1: "▁wor", 2: "ld", 3: "!"})
    text, offsets = offsets_by_decoding([0, 1, 2, 3], decode)
    assert text == "Hello world!"
    assert offsets == [(0, 5), (5, 9), (9, 11), (11, 12)]
    labels = labels_from_offsets([text], offsets, [0, 0, 0, 0], ["▁Hello", "▁wor", "ld", "!"])
    assert labels == ["Hello", "wor", "ld", "!"]


def test_offsets_by_decoding_gives_pieces_of_a_character_its_whole_span():
    pieces = {1: "猫".encode()[:1], 2: "猫".encode()[1:], 3: b" ok", 4: "語".encode()}

    def decode(ids):
        return b"".join(pieces[i] for i in ids).decode("utf-8", errors="replace")

    text, offsets = offsets_by_decoding([1, 2, 3, 4], decode)
    assert text == "猫 ok語"
    assert offsets == [(0, 1), (0, 1), (1, 4), (4, 5)]
    labels = labels_from_offsets([text], offsets, [0] * 4, ["ç", "Į«", "Ġok", "èªŀ"])
    assert labels == ["猫(1/2)", "猫(2/2)", "ok", "語"]


def test_offsets_by_decoding_of_a_sequence_cut_inside_a_character():
    pieces = {1: b"ok", 2: "猫".encode()[:2]}

    def decode(ids):
        return b"".join(pieces[i] for i in ids).decode("utf-8", errors="replace")

    text, offsets = offsets_by_decoding([1, 2], decode)
    assert text == "ok\ufffd" and offsets == [(0, 2), (2, 3)]
    assert offsets_by_decoding([], decode) == ("", [])


def test_bytes_label_shows_bytes_of_a_broken_character_only():
    assert bytes_label("æĹ") == "<E6 97>"  # two of the three bytes of 日
    assert bytes_label("Ġæ") == "<20 E6>"
    assert bytes_label("Ġcat") == "Ġcat"  # whole characters: not a fragment
    assert bytes_label("æĹ¥") == "æĹ¥"  # all three bytes of 日: not a fragment either
    assert bytes_label("<0xE6>") == "<0xE6>"  # SentencePiece byte fallback reads well already
    assert bytes_label("▁the") == "▁the"
