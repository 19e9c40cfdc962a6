"""Value zeroing on a hand-built one-layer BERT against hand arithmetic; the agreement table on
hand-built attention and on a tiny decoder, checked against Spearman's ρ computed here."""

from __future__ import annotations

import math

import pytest
import torch

from core.engine.hooks import count_hooks
from core.engine.models import LoadedModel
from core.engine.run import analyze
from core.methods.agreement import agreement, agreement_table, spearman
from core.methods.attribution import attribute
from core.methods.attribution_target import resolve_target
from core.methods.value_zeroing import value_zeroing
from tests.unit.tiny_models import VOCAB_SIZE, tiny_llama, tiny_tokenizer

A = [1.0, -1.0, 1.0, -1.0]  # [CLS]: mean 0, variance 1, so every LayerNorm leaves it alone
B = [1.0, 1.0, -1.0, -1.0]  # "cat"
C = [1.0, -1.0, -1.0, 1.0]  # [SEP]


def hand_built_bert() -> LoadedModel:
    """One layer, one head, hidden 4: Q = K = 0 (uniform attention 1/3 over three tokens),
    V = O = I, no biases, a feed-forward block that adds 0, no position or segment embeddings."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=4,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=4,
        max_position_embeddings=8,
        attn_implementation="eager",
    )
    model = BertModel(config, add_pooling_layer=False).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "LayerNorm.weight" in name:
                parameter.fill_(1.0)
            else:
                parameter.zero_()
        words = model.embeddings.word_embeddings.weight
        words[2], words[5], words[3] = torch.tensor(A), torch.tensor(B), torch.tensor(C)
        attention = model.encoder.layer[0].attention
        attention.self.value.weight.copy_(torch.eye(4))
        attention.output.dense.weight.copy_(torch.eye(4))
    return LoadedModel(
        name="hand-bert",
        source="hand-bert",
        model=model,
        tokenizer=tiny_tokenizer(encoder=True),
        kind="encoder",
        n_layers=1,
        n_heads=1,
        n_kv_heads=1,
        max_tokens=8,
        device=torch.device("cpu"),
        load_seconds=0.0,
    )


def cosine(u, v):
    return sum(a * b for a, b in zip(u, v, strict=True)) / math.sqrt(
        sum(a * a for a in u) * sum(b * b for b in v)
    )


def test_value_zeroing_on_a_hand_built_layer_equals_hand_arithmetic():
    loaded = hand_built_bert()
    analysis = analyze(loaded, "cat")  # [CLS] cat [SEP]
    assert analysis.token_ids == (2, 5, 3)
    # Position i leaves the block as LN(x_i + (a + b + c) / 3) (the feed-forward adds 0 and the
    # second LayerNorm changes nothing); zeroing token j's value removes x_j / 3 from the sum.
    # Every vector has mean 0, so LayerNorm only rescales and the cosine is that of the sums.
    xs = [A, B, C]
    total = [sum(column) / 3 for column in zip(*xs, strict=True)]  # (1, -1/3, -1/3, -1/3)
    expected = []
    for x_i in xs:
        z = [x + s for x, s in zip(x_i, total, strict=True)]
        row = [1 - cosine([zz - x / 3 for zz, x in zip(z, x_j, strict=True)], z) for x_j in xs]
        expected.append([value / sum(row) for value in row])
    # Row 0 by hand: z_0 = (2, -4/3, 2/3, -4/3), |z_0|² = 8; z_0 - a/3 = (5/3, -1, 1/3, -1),
    # z_0 · (z_0 - a/3) = 56/9, |z_0 - a/3|² = 44/9: cos = (56/9) / sqrt(8 · 44/9) = 14/(3√22).
    assert 1 - cosine([5 / 3, -1, 1 / 3, -1], [2, -4 / 3, 2 / 3, -4 / 3]) == pytest.approx(
        1 - 14 / (3 * math.sqrt(22))
    )
    result = value_zeroing(loaded, analysis)
    assert result.completed and result.n_done == 1
    assert result.scores[0].tolist() == [pytest.approx(row, abs=1e-5) for row in expected]
    assert torch.equal(result.rollout, result.scores)  # one layer: nothing to multiply
    assert count_hooks(loaded.model) == 0


def test_value_zeroing_is_causal_in_a_decoder_and_stops_between_layers():
    loaded = tiny_llama()
    analysis = analyze(loaded, "the cat sat on the mat")
    done = value_zeroing(loaded, analysis)
    assert done.scores.shape == (2, 6, 6)
    assert torch.equal(done.scores.triu(1), torch.zeros(2, 6, 6))
    assert torch.allclose(done.scores.sum(-1), torch.ones(2, 6), atol=1e-5)
    calls = []
    stopped = value_zeroing(loaded, analysis, should_stop=lambda: len(calls) > 0 or calls.append(1))
    assert not stopped.completed and stopped.n_done == 1
    assert torch.equal(stopped.scores[0], done.scores[0])


def test_agreement_table_on_hand_built_attention():
    # Two layers x two heads over three keys, query 2 (a decoder's last position).
    attn = torch.zeros(2, 2, 3, 3)
    attn[0, 0, 2] = torch.tensor([0.1, 0.3, 0.6])  # the same order as the scores' magnitudes
    attn[0, 1, 2] = torch.tensor([0.6, 0.3, 0.1])  # the reverse
    attn[1, 0, 2] = torch.tensor([0.2, 0.7, 0.1])
    attn[1, 1, 2] = torch.tensor([1 / 3, 1 / 3, 1 / 3])  # constant: no ranking
    attn[:, :, 0, 0] = 1.0
    attn[:, :, 1, :2] = 0.5
    scores = {"ig": torch.tensor([0.5, -1.0, 2.0]), "occlusion": torch.tensor([1.0, 2.0, 3.0])}
    norms = attn.mean(1)  # (L, T, T)
    table = agreement_table(attn, norms, scores, (2,), (0, 1, 2))
    assert table.heads[0, 0].tolist() == [1.0, 1.0]
    assert table.heads[0, 1].tolist() == [-1.0, -1.0]
    # Ranks (2, 3, 1) against (1, 2, 3): centred (0, 1, -1) · (-1, 0, 1) = -1 over 2 · 2.
    assert table.heads[1, 0, 0].item() == pytest.approx(-0.5)
    assert math.isnan(table.heads[1, 1, 0].item())
    rows = table.rows(sort_by="ig")
    assert (rows[0]["source"], rows[0]["layer"], rows[0]["head"]) == ("head", 0, 0)
    ranked = [r["ig"] for r in rows if not math.isnan(r["ig"])]
    assert ranked == sorted(ranked, reverse=True) and len(rows) == 4 + 1 + 2
    # Layer 0's norm row (0.35, 0.3, 0.35) ranks (2.5, 1, 2.5): centred (0.5, -1, 0.5) · (-1, 0, 1).
    assert table.norms[0, 0].item() == 0.0
    assert math.isnan(rows[-1]["ig"]) and rows[-2]["ig"] == -1.0


def test_agreement_on_a_tiny_decoder_is_spearman_of_the_analysis_rows():
    loaded = tiny_llama()
    analysis = analyze(loaded, "the cat sat on the mat")
    target = resolve_target(loaded, analysis, position=3)
    result = attribute(loaded, analysis, target, methods=("saliency", "occlusion"))
    table = agreement(loaded, analysis, result)
    assert table.keys == (0, 1, 2, 3)
    weights = torch.stack(analysis.layer_weights)  # (L, H, T, T)
    for layer in range(2):
        for head in range(4):
            row = weights[layer, head, 3, :4]
            want = spearman(row, result.captum.occlusion[:4].abs())
            assert table.heads[layer, head, 1].item() == pytest.approx(want.item(), abs=1e-6)
