"""Head detector scores on hand-built attention: every score equals the arithmetic written out
beside it; and the random-sequence measurement on a tiny Llama and a tiny BERT."""

from __future__ import annotations

import math

import pytest
import torch

from core.methods.detector_scores import detector_scores, repeated_random_tokens
from core.methods.detectors import (
    custom_pattern,
    duplicate_pattern,
    induction_pattern,
    offset_pattern,
    pattern_score,
    sentence_start_pattern,
    token_pattern,
)
from core.methods.head_metrics import previous_share

# Tokens 5 6 7 | 5 6 7: n = 3, the second half is queries 3, 4, 5.
IDS = torch.tensor([5, 6, 7, 5, 6, 7])


def causal_rows(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows)


# One head: query 3 puts 0.5 on key 1 (induction: 3 - 3 + 1) and 0.5 on key 0 (duplicate);
# query 4 puts 0.8 on key 2 (induction) and 0.2 on key 3 (previous); query 5 puts all on key 5.
HEAD = causal_rows(
    [
        [1.0, 0, 0, 0, 0, 0],
        [0.5, 0.5, 0, 0, 0, 0],
        [0.0, 0.6, 0.4, 0, 0, 0],
        [0.5, 0.5, 0.0, 0.0, 0, 0],
        [0.0, 0.0, 0.8, 0.2, 0.0, 0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
    ]
)


def test_patterns_are_the_documented_positions():
    assert duplicate_pattern(IDS).nonzero().tolist() == [[3, 0], [4, 1], [5, 2]]  # i -> i - n
    assert induction_pattern(IDS).nonzero().tolist() == [[3, 1], [4, 2], [5, 3]]  # i -> i-n+1
    assert offset_pattern(6, 1).nonzero().tolist() == [[i, i - 1] for i in range(1, 6)]
    special = torch.tensor([True, False, False, False, False, True])
    assert duplicate_pattern(torch.tensor([1, 9, 9, 2, 9, 1]), special).nonzero().tolist() == [
        [2, 1],
        [4, 1],
        [4, 2],
    ]


def test_scores_equal_hand_arithmetic():
    induction = pattern_score(HEAD, induction_pattern(IDS))
    assert induction.item() == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    duplicate = pattern_score(HEAD, duplicate_pattern(IDS))
    assert duplicate.item() == pytest.approx((0.5 + 0.0 + 0.0) / 3)
    previous = pattern_score(HEAD, offset_pattern(6, 1))  # rows 1..5: a[i, i-1]
    assert previous.item() == pytest.approx((0.5 + 0.6 + 0.0 + 0.2 + 0.0) / 5)
    assert previous.item() == pytest.approx(previous_share(HEAD).item())
    # TransformerLens's "mul": sum(A * P) / sum(A), every row counted (6 rows of mass 1).
    tl = pattern_score(HEAD, induction_pattern(IDS), rows="all")
    assert tl.item() == pytest.approx((0.5 + 0.8) / 6)


def test_scores_are_vectorised_over_layers_heads_and_sequences():
    perfect = torch.zeros(6, 6)
    perfect[0, 0] = 1.0
    perfect[1, 0] = perfect[2, 1] = 1.0  # the first half looks back one
    perfect[3, 1] = perfect[4, 2] = perfect[5, 3] = 1.0  # the second half does induction
    attn = torch.stack([torch.stack([HEAD, perfect]), torch.stack([perfect, HEAD])])  # (2,2,6,6)
    scores = pattern_score(attn, induction_pattern(IDS))  # (2, 2)
    assert scores.shape == (2, 2)
    assert scores[0, 1].item() == pytest.approx(1.0) and scores[1, 0].item() == pytest.approx(1.0)
    assert scores[0, 0].item() == pytest.approx(1.3 / 3)
    batch = induction_pattern(torch.stack([IDS, torch.tensor([1, 2, 3, 4, 5, 6])]))  # (2, 6, 6)
    per_item = pattern_score(torch.stack([perfect, perfect])[:, None], batch[:, None])  # (2, 1)
    assert per_item[0, 0].item() == pytest.approx(1.0) and math.isnan(per_item[1, 0].item())


def test_custom_patterns_on_a_text():
    tokens = ["[CLS]", "Hi", ".", "Yes", "!", "no", "[SEP]"]
    special = [True, False, False, False, False, False, True]
    starts = sentence_start_pattern(tokens, special).argmax(dim=1).tolist()
    assert starts == [1, 1, 1, 3, 3, 5, 5]
    first = custom_pattern("first_token", tokens, special, causal=False)
    assert first[:, 1].tolist() == [1.0] * 7 and first.sum().item() == 7
    sep = token_pattern(tokens, "[SEP]")
    assert sep[:, 6].tolist() == [1.0] * 7 and sep.sum().item() == 7
    # A decoder cannot see later keys: [SEP] is only a target of itself.
    assert custom_pattern("token", tokens, special, causal=True).nonzero().tolist() == [[6, 6]]
    uniform = torch.full((7, 7), 1 / 7)
    score = pattern_score(uniform, custom_pattern("sentence_start", tokens, special, causal=False))
    assert score.item() == pytest.approx(1 / 7)


@pytest.mark.parametrize("config", ["llama", "bert"])
def test_random_repeated_sequences(config):
    from tests.unit.tiny_models import tiny_bert, tiny_llama

    loaded = tiny_llama() if config == "llama" else tiny_bert()
    tokens = repeated_random_tokens(loaded, n_tokens=4, n_sequences=3, seed=7)
    again = repeated_random_tokens(loaded, n_tokens=4, n_sequences=3, seed=7)
    assert torch.equal(tokens.input_ids, again.input_ids)  # seeded
    body = tokens.input_ids[:, tokens.start : tokens.start + 8]  # (3, 8)
    assert torch.equal(body[:, :4], body[:, 4:])  # repeated twice
    assert all(len(set(row[:4].tolist())) == 4 for row in body)  # distinct within a half
    specials = set(loaded.tokenizer.all_special_ids)
    assert not specials & set(body.flatten().tolist())  # no special token drawn
    found = detector_scores(loaded, n_tokens=4, n_sequences=3, seed=7)
    assert found.induction.shape == (loaded.n_layers, loaded.n_heads)
    assert found.seed == 7 and found.n_tokens == 4 and found.seq_len == tokens.input_ids.shape[1]
    for name in ("previous_token", "duplicate_token", "induction"):
        values = found.score(name)
        assert ((values >= 0) & (values <= 1 + 1e-6)).all()
