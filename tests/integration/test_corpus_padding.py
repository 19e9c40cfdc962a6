"""Padding is the trap: a batch of unequal lengths must give, text by text, exactly what a
one-at-a-time analysis gives, for an encoder and a decoder, padded right and left."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core import analyze
from core.corpus.batch import METRICS, PATTERNS, BatchOptions, batch_statistics, padded_inputs
from core.engine.tokenize import pad_token_id, tokenize, tokenize_many
from core.methods.head_metrics import KeyMasks, metric_values
from core.methods.head_stats import HeadStats

pytestmark = pytest.mark.integration

# Lengths from 3 to ~30 tokens in one batch: most texts are padded, some a lot.
TEXTS = [
    "Why?",
    "The quick brown fox jumps over the lazy dog, and then it runs away again.",
    "猫が好きです。",
    "A much longer sentence, with commas; semicolons: and a question at the end of it all?",
    "x",
    "東京は日本の首都です。大阪は二番目に大きい都市圏です。",
]
TOLERANCE = 1e-5


@pytest.fixture(scope="module", params=["minilm", "smollm2"])
def model(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def singles(model):
    """One-at-a-time analyses and head statistics over both query sets."""
    out = []
    for text in TEXTS:
        analysis = analyze(model, text)
        stats = {q: HeadStats.from_analysis(analysis, model, queries=q) for q in ("all", "choice")}
        out.append((analysis, stats))
    return out


@pytest.mark.parametrize("side", ["right", "left"])
def test_a_padded_batch_equals_one_text_at_a_time(model, singles, side):
    tokenized = tokenize_many(model, TEXTS)
    lengths = [t.input_ids.shape[-1] for t in tokenized]
    assert len(set(lengths)) == len(TEXTS) and max(lengths) > 5 * min(lengths)
    batch = batch_statistics(model, tokenized, BatchOptions(padding_side=side, top_k=3))
    for b, (analysis, stats) in enumerate(singles):
        for scope, suffix in (("all", ""), ("choice", "_choice")):
            for name in METRICS:
                expected = stats[scope].metric(name).numpy()
                np.testing.assert_allclose(
                    batch.metrics[name + suffix][b], expected, atol=TOLERANCE, err_msg=name
                )
        assert PATTERNS[batch.patterns[b]].tolist() == [list(r) for r in stats["all"].patterns]
        assert PATTERNS[batch.patterns_choice[b]].tolist() == [
            list(r) for r in stats["choice"].patterns
        ]
        np.testing.assert_allclose(
            batch.metrics["entropy"][b], analysis.head_entropy, atol=TOLERANCE
        )
        np.testing.assert_allclose(
            batch.layer["layer_entropy"][b], analysis.layer_entropy, atol=TOLERANCE
        )
        np.testing.assert_allclose(
            batch.layer["layer_entropy_choice"][b], analysis.layer_entropy_choice, atol=TOLERANCE
        )
        # Most-attended positions per head: the same shares (positions may swap only on ties).
        rows = analysis.most_attended(3, per_head=True)
        k = min(3, analysis.seq_len)
        shares = np.array([r.share for r in rows]).reshape(analysis.n_layers, analysis.n_heads, k)
        np.testing.assert_allclose(batch.top["shares"][b][..., :k], shares, atol=TOLERANCE)
        positions = np.array([r.position for r in rows]).reshape(shares.shape)
        agree = batch.top["positions"][b][..., :k] == positions
        assert agree.mean() > 0.99
        visible = [
            r for r in analysis.most_attended(3, per_head=True, ranking="visible") if not r.sink
        ]
        if visible:
            got = batch.top["visible_shares"][b]
            for r in visible:
                assert abs(got[r.layer, r.head, r.rank - 1] - r.share) < TOLERANCE


def test_the_trap_is_real(model):
    """Statistics over the padded block (padding not cut out) are far from the text's own:
    what the test above guards against."""
    tokenized = tokenize_many(model, TEXTS[:2])
    inputs = padded_inputs(tokenized, "right", pad_token_id(model))
    out = model.model.base_model(**inputs, output_attentions=True)
    padded = out.attentions[0][0:1].float()  # (1, H, T, T): "Why?" padded to the long text
    n = tokenized[0].input_ids.shape[-1]
    tokens = list(tokenized[0].tokens) + ["[PAD]"] * (padded.shape[-1] - n)
    masks = KeyMasks.of(tokens, list(tokenized[0].special) + [True] * (padded.shape[-1] - n))
    naive = metric_values(padded, masks, model.causal)["entropy"]
    own = metric_values(
        padded[..., :n, :n], KeyMasks.of(tokenized[0].tokens, tokenized[0].special), model.causal
    )["entropy"]
    assert torch.max(torch.abs(naive - own)) > 0.05


def test_tokenize_many_equals_tokenize_one_by_one(model):
    texts = [*TEXTS, "Emoji 😀 and ünïcödé", "吾輩は猫である。名前はまだ無い。", "long " * 600]
    many = tokenize_many(model, texts, max_tokens=64)
    assert many[-1].truncated and many[-1].n_input_tokens > 600
    for text, got in zip(texts, many, strict=True):
        one = tokenize(model, text, max_tokens=64)
        assert got.input_ids.tolist() == one.input_ids.tolist()
        assert {k: v.tolist() for k, v in got.extra_inputs.items()} == {
            k: v.tolist() for k, v in one.extra_inputs.items()
        }
        for field in ("raw_tokens", "tokens", "special", "sentence_b_start", "truncated"):
            assert getattr(got, field) == getattr(one, field), field
        assert (got.n_input_tokens, got.texts, got.offsets, got.sequence_ids) == (
            one.n_input_tokens,
            one.texts,
            one.offsets,
            one.sequence_ids,
        )
