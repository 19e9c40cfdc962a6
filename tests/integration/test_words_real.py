"""Words with both real tokenizers (WordPiece, byte-level BPE), in English and Japanese."""

from __future__ import annotations

import json

import pytest
import torch

from core import analyze
from core.engine.run import analyze_ids
from core.methods.words import find_words, merge_attention, word_analysis

ENGLISH = "Tokenization isn't unbelievably hard, e.g. in 2024."
ENGLISH_WORDS = [
    "Tokenization",
    "isn't",
    "unbelievably",
    "hard",
    ",",
    "e.g",
    ".",
    "in",
    "2024",
    ".",
]
JAPANESE = "吾輩は猫である。名前はまだ無い。"
JAPANESE_CHARACTERS = list(JAPANESE)
JAPANESE_SCRIPT = ["吾輩", "は", "猫", "である", "。", "名前", "はまだ", "無", "い", "。"]


def plain(words) -> list[str]:
    """Word labels without special tokens, and without the mark of an unknown token (MiniLM
    reads 吾 as [UNK], shown "吾 [UNK]"): the words themselves are the same in both tokenizers."""
    labels = zip(words.labels, words.special, strict=True)
    return [label.removesuffix(" [UNK]") for label, s in labels if not s]


@pytest.mark.parametrize(
    ("text", "cjk", "expected"),
    [
        (ENGLISH, "character", ENGLISH_WORDS),
        (JAPANESE, "character", JAPANESE_CHARACTERS),
        (JAPANESE, "script", JAPANESE_SCRIPT),
    ],
)
def test_both_tokenizers_find_the_same_words(any_model, text, cjk, expected):
    analysis = analyze(any_model, text)
    words = find_words(any_model, analysis, cjk=cjk)
    assert plain(words) == expected
    assert sum(len(g) for g in words.groups) == analysis.seq_len
    if any_model.name == "smollm2" or text == ENGLISH or cjk == "script":
        assert words.n_words < analysis.seq_len  # pieces were merged


def test_minilm_special_tokens_stay_words_of_their_own(minilm):
    analysis = analyze(minilm, ENGLISH)
    words = find_words(minilm, analysis)
    assert words.labels[0] == "[CLS]" and words.labels[-1] == "[SEP]"
    assert words.special[0] and words.special[-1] and not any(words.special[1:-1])
    assert analysis.raw_tokens[words.groups[1][1]].startswith("##")  # Tokenization: 2 pieces


def test_minilm_sentence_pair(minilm):
    analysis = analyze(minilm, "The cat sat.", "A dog slept.")
    result = word_analysis(minilm, analysis)
    assert result.tokens == (
        *("[CLS]", "The", "cat", "sat", ".", "[SEP]"),
        *("A", "dog", "slept", ".", "[SEP]"),
    )
    assert result.sentence_b_start == 6 and result.pair == "A dog slept."
    assert result.special == tuple(label == "[SEP]" or label == "[CLS]" for label in result.tokens)


def test_smollm2_pieces_of_one_character_share_a_word(smollm2):
    analysis = analyze(smollm2, JAPANESE)
    words = find_words(smollm2, analysis)
    assert any(len(g) > 1 for g in words.groups)  # byte pieces were merged
    for group, label in zip(words.groups, words.labels, strict=True):
        pieces = {analysis.tokens[t].split("(")[0] for t in group}
        assert pieces == {label}  # 吾(1/2), 吾(2/2) -> 吾


@pytest.mark.parametrize("text", [ENGLISH, JAPANESE, "日本語の text  with\n\nnewlines"])
def test_word_labels_are_real_characters(any_model, text):
    analysis = analyze(any_model, text)
    for cjk in ("character", "script"):
        words = find_words(any_model, analysis, cjk=cjk)
        for label, special in zip(words.labels, words.special, strict=True):
            assert "\ufffd" not in label and not label.startswith(("##", "Ġ", "▁")), label
            if not special and label not in ("␣", "␣␣", "↵↵"):
                assert label.removesuffix(" [UNK]") in text, label


def test_word_analysis_rows_sum_to_one_and_stay_causal(any_model):
    analysis = analyze(any_model, JAPANESE + " " + ENGLISH)
    result = word_analysis(any_model, analysis)
    n_words = len(result.tokens)
    assert result.attentions.shape == (any_model.n_layers, any_model.n_heads, n_words, n_words)
    sums = result.attentions.sum(-1)
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-4)
    assert (result.kind, result.model_name, result.text) == (
        analysis.kind,
        analysis.model_name,
        analysis.text,
    )
    upper = torch.triu(torch.ones(n_words, n_words, dtype=torch.bool), diagonal=1)
    if result.causal:
        assert result.attentions[..., upper].abs().max().item() == 0.0
    else:
        assert result.attentions[..., upper].sum().item() > 1.0
    normalized = result.normalized_head_entropy
    assert normalized.min() >= 0 and normalized.max() <= 1 + 1e-5
    assert torch.allclose(result.received_by_layer.sum(-1), torch.ones(result.n_layers), atol=1e-4)


def test_word_attention_is_the_mean_row_of_summed_columns(smollm2):
    analysis = analyze(smollm2, ENGLISH)
    words = find_words(smollm2, analysis)
    u = next(w for w, g in enumerate(words.groups) if len(g) > 1)  # Tokenization
    v = 0
    rows = list(words.groups[u])
    cols = list(words.groups[v])
    expected = analysis.attentions[3, 2][rows][:, cols].sum(-1).mean()
    merged = merge_attention(analysis.attentions, words.groups)
    assert merged[3, 2, u, v].item() == pytest.approx(expected.item(), abs=1e-6)


def test_words_of_a_decoded_sequence_match_those_of_its_text(smollm2):
    analysis = analyze(smollm2, JAPANESE)
    from_ids = analyze_ids(smollm2, analysis.token_ids)
    assert from_ids.text == JAPANESE and from_ids.tokens == analysis.tokens
    assert torch.allclose(from_ids.attentions, analysis.attentions, atol=1e-6)
    assert find_words(smollm2, from_ids).labels == find_words(smollm2, analysis).labels


def test_word_export_keeps_japanese_as_characters(any_model):
    result = word_analysis(any_model, analyze(any_model, JAPANESE), cjk="script")
    exported = json.dumps(result.to_dict(top_k=3), ensure_ascii=False)
    assert "吾輩" in exported and "である" in exported
    assert "\\u" not in exported
