"""Both bundled models end to end: shapes, probabilities, masks, entropy bounds, labels."""

from __future__ import annotations

import math

import torch

from core import analyze

TEXT = "The quick brown fox jumps over the lazy dog because it was bored."
JAPANESE = "吾輩は猫である。名前はまだ無い。"


def test_shapes_match_the_config(any_model):
    result = analyze(any_model, TEXT)
    config = any_model.model.config
    assert result.attentions.shape == (
        config.num_hidden_layers,
        config.num_attention_heads,
        result.seq_len,
        result.seq_len,
    )
    assert result.attentions.dtype == torch.float32 and result.attentions.device.type == "cpu"
    assert result.head_entropy.shape == (config.num_hidden_layers, config.num_attention_heads)
    assert result.layer_entropy.shape == (config.num_hidden_layers,)
    assert len(result.tokens) == len(result.raw_tokens) == result.seq_len


def test_known_architecture_numbers():
    from core import BUILTIN_MODELS

    assert BUILTIN_MODELS["minilm"].kind == "encoder"
    assert BUILTIN_MODELS["smollm2"].kind == "decoder"


def test_minilm_and_smollm2_facts(minilm, smollm2):
    assert (minilm.n_layers, minilm.n_heads, minilm.kind) == (6, 12, "encoder")
    assert (smollm2.n_layers, smollm2.n_heads, smollm2.n_kv_heads) == (30, 9, 3)
    assert smollm2.kind == "decoder"
    for loaded in (minilm, smollm2):
        assert loaded.model.config._attn_implementation == "attnscope"
        assert not loaded.model.training


def test_every_row_sums_to_one(any_model):
    result = analyze(any_model, TEXT)
    sums = result.attentions.sum(dim=-1)  # (L, H, T)
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-4)


def test_decoder_upper_triangle_is_zero(smollm2):
    result = analyze(smollm2, TEXT)
    upper = torch.triu(torch.ones(result.seq_len, result.seq_len, dtype=torch.bool), diagonal=1)
    assert result.attentions[..., upper].abs().max().item() == 0.0
    assert result.causal


def test_encoder_attends_everywhere(minilm):
    result = analyze(minilm, TEXT)
    upper = torch.triu(torch.ones(result.seq_len, result.seq_len, dtype=torch.bool), diagonal=1)
    assert result.attentions[..., upper].sum().item() > 1.0


def test_entropies_lie_in_their_bounds(any_model):
    result = analyze(any_model, TEXT)
    ln_t = math.log(result.seq_len)
    assert result.head_entropy.min() >= 0 and result.head_entropy.max() <= ln_t + 1e-5
    assert result.layer_entropy.min() >= 0 and result.layer_entropy.max() <= ln_t + 1e-5
    normalized = result.normalized_head_entropy
    assert normalized.min() >= 0 and normalized.max() <= 1 + 1e-5
    assert (result.layer_entropy >= result.mean_head_entropy - 1e-5).all()
    assert torch.allclose(result.received_by_layer.sum(-1), torch.ones(result.n_layers), atol=1e-4)


def test_statistics_match_a_direct_recomputation(any_model):
    result = analyze(any_model, TEXT)
    a = result.attentions.double()
    direct = (-(a * torch.where(a > 0, a.log(), torch.zeros_like(a))).sum(-1)).mean(-1)
    assert torch.allclose(result.head_entropy.double(), direct, atol=1e-5)


def test_japanese_labels_are_characters_not_bytes(any_model):
    result = analyze(any_model, JAPANESE)
    text_chars = set(JAPANESE)
    for label, special in zip(result.tokens, result.special, strict=True):
        if special:
            continue
        core_label = label.split("(")[0].removesuffix(" [UNK]")  # MiniLM: 吾 is unknown
        assert core_label and set(core_label) <= text_chars, label
    assert "".join(dict.fromkeys(t.split("(")[0] for t in result.tokens if t[0] in text_chars))


def test_smollm2_splits_kanji_into_numbered_pieces(smollm2):
    result = analyze(smollm2, "日本語")
    assert result.raw_tokens[0] != "日"  # byte-level pieces underneath
    assert result.tokens[:2] == ("日(1/2)", "日(2/2)")
    assert "語(1/3)" in result.tokens


def test_minilm_drops_wordpiece_markers(minilm):
    result = analyze(minilm, "Tokenization unbelievably")
    assert any(raw.startswith("##") for raw in result.raw_tokens)
    assert not any(label.startswith("##") for label in result.tokens)
    assert result.tokens[0] == "[CLS]" and result.tokens[-1] == "[SEP]"


def test_sentence_pair_marks_the_second_sentence(minilm):
    result = analyze(minilm, "The cat sat.", "A dog slept.")
    assert result.sentence_b_start is not None
    assert result.tokens[result.sentence_b_start - 1] == "[SEP]"
    assert result.tokens[result.sentence_b_start] == "A"
    assert result.pair == "A dog slept."


def test_long_input_is_truncated_and_says_so(any_model):
    long_text = "word " * 600
    result = analyze(any_model, long_text, max_tokens=64)
    assert result.truncated
    assert result.seq_len == 64
    assert result.n_input_tokens > 600
    assert result.attentions.shape[-1] == 64


def test_minilm_truncates_at_its_own_limit(minilm):
    result = analyze(minilm, "word " * 700)
    assert result.truncated and result.seq_len == minilm.max_tokens == 512


def test_exports_and_tables_show_raw_tokens_as_characters(smollm2):
    from viz.tables import analysis_json, tokens_table

    result = analyze(smollm2, "日本語 text")
    raw_column = tokens_table(result)["raw token"].tolist()
    assert raw_column[:3] == ["<E6 97>", "<A5>", "本"]  # 日 cut in two, then a whole 本
    assert "␣text" in raw_column
    exported = analysis_json(result).decode("utf-8")
    assert "æĹ" not in exported and "本" in exported
