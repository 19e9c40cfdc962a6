"""Words from hand-built pieces (WordPiece, SentencePiece, byte-level BPE); merged attention."""

from __future__ import annotations

import pytest
import torch

from core.engine.analysis import Analysis
from core.methods.words import (
    Words,
    character_words,
    groups_from_word_ids,
    merge_attention,
    merge_keys,
    merge_labels,
    truncate_groups,
    word_analysis,
    word_ids,
)


def words_of(text: str, cjk: str = "character") -> list[str]:
    """The character words of ``text`` as strings, for readable assertions."""
    ids = character_words(text, cjk=cjk)
    out: dict[int, str] = {}
    for ch, w in zip(text, ids, strict=True):
        if w >= 0:
            out[w] = out.get(w, "") + ch
    return list(out.values())


def labelled(text, offsets, sequence_ids, raw, special=None, cjk="character"):
    ids = word_ids([text], offsets, sequence_ids, special, cjk=cjk)
    groups = groups_from_word_ids(ids)
    return ids, merge_labels([text], offsets, sequence_ids, raw, groups, special)


# --- characters -> words ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The cat sat.", ["The", "cat", "sat", "."]),
        ("isn't it?!", ["isn't", "it", "?!"]),
        ("e.g. U.S.A. 3.14", ["e.g", ".", "U.S.A", ".", "3.14"]),
        ("state-of-the-art (yes)", ["state-of-the-art", "(", "yes", ")"]),
        ("C++ costs $5, 5%", ["C++", "costs", "$5", ",", "5", "%"]),
        ("naïve café", ["naïve", "café"]),
        ("cafe\u0301 ok", ["cafe\u0301", "ok"]),  # a combining accent stays on its letter
        ("한국어 문장", ["한국어", "문장"]),  # Korean is written with spaces
        ("tab\there\nnew", ["tab", "here", "new"]),
        ("", []),
    ],
)
def test_character_words_outside_cjk(text, expected):
    assert words_of(text) == expected


def test_whitespace_belongs_to_no_word():
    assert character_words("a b\u3000c") == [0, -1, 1, -1, 2]  # \u3000: the ideographic space


def test_cjk_one_word_per_character_by_default():
    assert words_of("吾輩は猫である。") == ["吾", "輩", "は", "猫", "で", "あ", "る", "。"]
    assert words_of("AIの技術、コンピューター") == [
        "AI", "の", "技", "術", "、", "コ", "ン", "ピ", "ュ", "ー", "タ", "ー",
    ]  # fmt: skip
    assert words_of("我爱北京") == ["我", "爱", "北", "京"]


def test_cjk_script_runs():
    assert words_of("吾輩は猫である。", "script") == ["吾輩", "は", "猫", "である", "。"]
    assert words_of("AIの技術、コンピューター", "script") == [
        "AI",
        "の",
        "技術",
        "、",
        "コンピューター",
    ]
    assert words_of("人々が3月に", "script") == [
        "人々",
        "が",
        "3",
        "月",
        "に",
    ]  # 々 counts as kanji
    assert words_of("すごーい", "script") == ["すごーい"]  # ー continues hiragana too


def test_decomposed_kana_keep_their_voicing_mark():
    # か + U+3099 (combining voiced mark) is が written in two code points: one character word.
    assert words_of("か\u3099く") == ["か\u3099", "く"]


# --- WordPiece (MiniLM-style: ## continues, offsets without spaces) ------------------------------


def test_wordpiece_pieces_join_and_markers_vanish():
    text = "Tokenization isn't hard."
    raw = ["[CLS]", "token", "##ization", "isn", "'", "t", "hard", ".", "[SEP]"]
    offsets = [(0, 0), (0, 5), (5, 12), (13, 16), (16, 17), (17, 18), (19, 23), (23, 24), (0, 0)]
    seqs = [None, 0, 0, 0, 0, 0, 0, 0, None]
    ids, labels = labelled(text, offsets, seqs, raw)
    assert ids == (0, 1, 1, 2, 2, 2, 3, 4, 5)
    assert labels == ("[CLS]", "Tokenization", "isn't", "hard", ".", "[SEP]")


def test_wordpiece_pair_never_merges_across_sentences():
    texts = ["a b", "b c"]
    raw = ["[CLS]", "a", "b", "[SEP]", "b", "c", "[SEP]"]
    offsets = [(0, 0), (0, 1), (2, 3), (0, 0), (0, 1), (2, 3), (0, 0)]
    seqs = [None, 0, 0, None, 1, 1, None]
    ids = word_ids(texts, offsets, seqs)
    assert ids == (0, 1, 2, 3, 4, 5, 6)
    groups = groups_from_word_ids(ids)
    labels = merge_labels(texts, offsets, seqs, raw, groups)
    assert labels == ("[CLS]", "a", "b", "[SEP]", "b", "c", "[SEP]")


# --- SentencePiece (▁ starts a word) -------------------------------------------------------------


@pytest.mark.parametrize("space_in_offsets", [True, False])
def test_sentencepiece_words_with_either_offset_convention(space_in_offsets):
    # "▁The ▁token ization ▁works ." -- some fast SentencePiece tokenizers count the space
    # that ▁ stands for in the offsets, others leave it out.
    text = "The tokenization works."
    raw = ["<s>", "▁The", "▁token", "ization", "▁works", "."]
    if space_in_offsets:
        offsets = [(0, 0), (0, 3), (3, 10), (10, 16), (16, 22), (22, 23)]
    else:
        offsets = [(0, 0), (0, 3), (4, 10), (10, 16), (17, 22), (22, 23)]
    ids, labels = labelled(text, offsets, [None, 0, 0, 0, 0, 0], raw)
    assert ids == (0, 1, 2, 2, 3, 4)
    assert labels == ("<s>", "The", "tokenization", "works", ".")


def test_sentencepiece_lone_marker_before_digits_is_the_numbers_leading_space():
    # Llama-style: "in 2024" -> "▁in", "▁", "2", "0", "2", "4"; the lone ▁ may have an empty span.
    text = "in 2024"
    raw = ["▁in", "▁", "2", "0", "2", "4"]
    for lone in [(2, 3), (3, 3)]:
        offsets = [(0, 2), lone, (3, 4), (4, 5), (5, 6), (6, 7)]
        ids, labels = labelled(text, offsets, [0] * 6, raw)
        assert ids == (0, 1, 1, 1, 1, 1)
        assert labels == ("in", "2024")


def test_sentencepiece_byte_fallback_pieces_stay_one_character():
    # A character missing from the vocabulary falls back to its UTF-8 bytes, <0xE7><0x8C><0xAB>
    # for 猫; each byte token's offsets cover the whole character.
    text = "a 猫"
    raw = ["▁a", "▁", "<0xE7>", "<0x8C>", "<0xAB>"]
    offsets = [(0, 1), (1, 2), (2, 3), (2, 3), (2, 3)]
    ids, labels = labelled(text, offsets, [0] * 5, raw)
    assert ids == (0, 1, 1, 1, 1)
    assert labels == ("a", "猫")


def test_sentencepiece_tokens_without_offsets_read_their_markers():
    # A slow tokenizer's pieces with empty spans: the label still has no ▁.
    raw = ["▁", "▁"]
    groups = groups_from_word_ids(word_ids(["  "], [(0, 0), (0, 0)], [0, 0]))
    assert merge_labels(["  "], [(0, 0), (0, 0)], [0, 0], raw, groups) == ("␣␣",)


# --- byte-level BPE (SmolLM2-style: Ġ starts a word, multi-byte characters in pieces) -----------


def test_byte_level_pieces_of_one_character_share_a_word():
    text = "吾輩は猫"
    # 吾 and 輩 are each cut in byte pieces; offsets of every piece cover the whole character.
    raw = ["åĲ", "¾", "è", "¼", "©", "ãģ", "¯", "çĮ«"]
    offsets = [(0, 1), (0, 1), (1, 2), (1, 2), (1, 2), (2, 3), (2, 3), (3, 4)]
    ids, labels = labelled(text, offsets, [0] * 8, raw)
    assert ids == (0, 0, 1, 1, 1, 2, 2, 3)
    assert labels == ("吾", "輩", "は", "猫")
    ids, labels = labelled(text, offsets, [0] * 8, raw, cjk="script")
    assert ids == (0, 0, 0, 0, 0, 1, 1, 2)
    assert labels == ("吾輩", "は", "猫")


def test_byte_level_a_piece_spanning_two_characters_joins_them():
    # A piece holding the end of 日 and the whole of 本 cannot be split, so 日本 is one word.
    text = "日本"
    ids, labels = labelled(text, [(0, 1), (0, 2)], [0, 0], ["æĹ", "¥æľ¬"])
    assert ids == (0, 0)
    assert labels == ("日本",)


def test_byte_level_whitespace_tokens():
    # "text  with\n\nend 3": a double space leaves a lone Ġ, newlines are tokens of their own,
    # and the Ġ in front of a digit is that number's leading space.
    text = "text  with\n\nend 3"
    raw = ["text", "Ġ", "Ġwith", "Ċ", "Ċ", "end", "Ġ", "3"]
    offsets = [(0, 4), (4, 5), (5, 10), (10, 11), (11, 12), (12, 15), (15, 16), (16, 17)]
    ids, labels = labelled(text, offsets, [0] * 8, raw)
    assert ids == (0, 1, 2, 3, 3, 4, 5, 5)
    assert labels == ("text", "␣", "with", "↵↵", "end", "3")


def test_special_tokens_in_the_text_are_words_of_their_own():
    text = "<|im_start|>user\nHi"
    raw = ["<|im_start|>", "user", "Ċ", "Hi"]
    offsets = [(0, 12), (12, 16), (16, 17), (17, 19)]
    special = [True, False, False, False]
    ids, labels = labelled(text, offsets, [0] * 4, raw, special=special)
    assert ids == (0, 1, 2, 3)
    assert labels == ("<|im_start|>", "user", "↵", "Hi")


def test_groups_from_word_ids_rejects_gaps_and_disorder():
    with pytest.raises(ValueError):
        groups_from_word_ids([0, 2])
    with pytest.raises(ValueError):
        groups_from_word_ids([0, 1, 0])


# --- merged attention ----------------------------------------------------------------------------


def causal_random(seq_len: int, *leading: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(*leading, seq_len, seq_len, generator=gen)
    mask = torch.triu(torch.ones(seq_len, seq_len, dtype=torch.bool), diagonal=1)
    return scores.masked_fill(mask, float("-inf")).softmax(-1)


def test_merge_attention_by_hand():
    a = torch.tensor(
        [
            [0.1, 0.2, 0.3, 0.4],
            [0.4, 0.3, 0.2, 0.1],
            [0.25, 0.25, 0.25, 0.25],
            [0.0, 0.0, 0.5, 0.5],
        ]
    )
    words = merge_attention(a, [(0, 1), (2, 3)])
    # Row "01": mean of rows 0 and 1 = [0.25, 0.25, 0.25, 0.25] -> [0.5, 0.5].
    # Row "23": mean of rows 2 and 3 = [0.125, 0.125, 0.375, 0.375] -> [0.25, 0.75].
    assert torch.allclose(words, torch.tensor([[0.5, 0.5], [0.25, 0.75]]))


def test_merged_rows_sum_to_one_and_causality_holds():
    a = causal_random(7, 2, 3)  # (L, H, T, T)
    groups = [(0,), (1, 2, 3), (4,), (5, 6)]
    before = a.clone()
    words = merge_attention(a, groups)  # (L, H, W, W)
    assert words.shape == (2, 3, 4, 4)
    assert torch.allclose(words.sum(-1), torch.ones(2, 3, 4), atol=1e-6)
    upper = torch.triu(torch.ones(4, 4, dtype=torch.bool), diagonal=1)
    assert words[..., upper].abs().max().item() == 0.0  # a word sees only words up to itself
    assert torch.equal(a, before)  # the input is not modified


def test_one_token_words_leave_attention_unchanged():
    a = causal_random(5, 4)
    assert torch.allclose(merge_attention(a, [(t,) for t in range(5)]), a)


def test_received_attention_is_kept_per_word():
    a = causal_random(6, 3)
    groups = [(0, 1), (2,), (3, 4, 5)]
    words = merge_attention(a, groups)
    # Summed over all queries (weighted by word size), a word receives what its pieces received.
    sizes = torch.tensor([2.0, 1.0, 3.0])
    received_words = (words * sizes[:, None]).sum(-2)  # (3, W)
    received_tokens = a.sum(-2)  # (3, T)
    expected = torch.stack([received_tokens[:, list(g)].sum(-1) for g in groups], -1)
    assert torch.allclose(received_words, expected, atol=1e-6)


@pytest.mark.parametrize(
    "groups",
    [[(0,), (2,), (1,)], [(0, 2), (1,)], [(0,), (1,)], [(0,), (), (1, 2)], [(0, 1, 2, 3)]],
)
def test_merge_attention_rejects_groups_that_are_not_contiguous_runs(groups):
    with pytest.raises(ValueError):
        merge_attention(causal_random(3), groups)


def test_merge_keys_and_truncated_groups_for_one_generation_step():
    row = causal_random(6)[-1]  # the last token's attention over all 6 tokens
    groups = [(0, 1), (2,), (3, 4, 5)]
    merged = merge_keys(row, groups)
    assert torch.allclose(merged, torch.stack([row[:2].sum(), row[2], row[3:].sum()]))
    assert torch.allclose(merged.sum(), torch.tensor(1.0))
    # A step whose context ends inside a word: the word is cut at the context's end.
    assert truncate_groups(groups, 4) == ((0, 1), (2,), (3,))
    context = causal_random(4)[-1]
    assert merge_keys(context, truncate_groups(groups, 4)).shape == (3,)


# --- word-level analysis -------------------------------------------------------------------------


def test_word_analysis_keeps_metadata_and_recomputes_statistics():
    tokens = ["吾(1/2)", "吾(2/2)", "は", "猫"]
    attn = causal_random(4, 2, 3)
    token_level = Analysis.from_attentions(
        attn,
        tokens,
        kind="decoder",
        model_name="hand",
        text="吾は猫",
        token_ids=[10, 11, 12, 13],
        raw_tokens=["åĲ", "¾", "ãģ¯", "çĮ«"],
        n_input_tokens=4,
        max_tokens=64,
    )
    words = Words(
        groups=((0, 1), (2,), (3,)),
        labels=("吾", "は", "猫"),
        special=(False, False, False),
        word_of_token=(0, 0, 1, 2),
    )
    result = word_analysis(None, token_level, words=words)  # type: ignore[arg-type]
    assert result.kind == "decoder" and result.model_name == "hand" and result.text == "吾は猫"
    assert result.tokens == ("吾", "は", "猫")
    assert result.raw_tokens == ("吾(1/2)|吾(2/2)", "は", "猫")
    assert result.token_ids == (10, 12, 13)
    assert result.n_input_tokens == 4 and result.max_tokens == 64
    assert result.attentions.shape == (2, 3, 3, 3)
    assert torch.allclose(result.attentions, merge_attention(attn, words.groups))
    # Normalised entropy is causal at word level: word 0 sees 1 word, word 1 two, word 2 three.
    rows = result.attentions
    entropy = torch.special.entr(rows).sum(-1)  # (L, H, W)
    ln2, ln3 = torch.log(torch.tensor(2.0)), torch.log(torch.tensor(3.0))
    normalized = (0 + entropy[..., 1] / ln2 + entropy[..., 2] / ln3) / 3
    assert torch.allclose(result.normalized_head_entropy, normalized, atol=1e-6)
    assert torch.allclose(result.received_by_layer.sum(-1), torch.ones(2), atol=1e-6)
