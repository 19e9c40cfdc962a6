"""Next-token filtering on hand-built logits: temperature, top-k, top-p, greedy, seeded draws."""

from __future__ import annotations

import pytest
import torch

from core.methods.sampling import (
    GenerationConfig,
    apply_temperature,
    choose_token,
    next_token_distribution,
    top_k_filter,
    top_p_filter,
)
from core.policy.errors import InputError

NEG_INF = float("-inf")


def kept(logits: torch.Tensor) -> list[int]:
    return torch.nonzero(logits > NEG_INF).flatten().tolist()


def test_temperature_scales_logits():
    logits = torch.tensor([2.0, 1.0, 0.0])
    assert torch.allclose(apply_temperature(logits, 0.5), torch.tensor([4.0, 2.0, 0.0]))
    assert torch.equal(apply_temperature(logits, 1.0), logits)
    # Low temperature sharpens towards the argmax, high temperature flattens towards uniform.
    cold = apply_temperature(logits, 0.01).softmax(-1)
    hot = apply_temperature(logits, 100.0).softmax(-1)
    assert cold[0] > 0.999
    assert torch.allclose(hot, torch.full((3,), 1 / 3), atol=0.01)
    # softmax(z / T) by hand: T = 2 -> exp([1, 0.5, 0]) / sum.
    e = torch.tensor([1.0, 0.5, 0.0]).exp()
    assert torch.allclose(apply_temperature(logits, 2.0).softmax(-1), e / e.sum())
    with pytest.raises(ValueError):
        apply_temperature(logits, 0.0)


def test_top_k_keeps_exactly_the_k_largest():
    logits = torch.tensor([0.3, -1.0, 2.5, 0.9, 1.7, -0.2])
    for k, expected in [(1, [2]), (2, [2, 4]), (3, [2, 3, 4]), (6, [0, 1, 2, 3, 4, 5])]:
        filtered = top_k_filter(logits, k)
        assert kept(filtered) == expected
        assert torch.equal(filtered[filtered > NEG_INF], logits[expected])  # values untouched
    assert kept(top_k_filter(logits, 0)) == list(range(6))  # 0: off
    assert kept(top_k_filter(logits, 100)) == list(range(6))


def test_top_k_keeps_ties_with_the_kth_and_works_on_batches():
    assert kept(top_k_filter(torch.tensor([1.0, 2.0, 2.0, 0.0]), 2)) == [1, 2]
    assert kept(top_k_filter(torch.tensor([3.0, 2.0, 2.0, 0.0]), 2)) == [0, 1, 2]  # tie at k
    batch = torch.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]])
    mask = (top_k_filter(batch, 1) > NEG_INF).tolist()
    assert mask == [[False, False, True], [True, False, False]]


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([0.1, 0.4, 0.05, 0.3, 0.15])  # sorted: 0.4, 0.3, 0.15, 0.1, 0.05
    logits = probs.log()
    cases = [
        (0.3, [1]),  # 0.4 alone reaches 0.3
        (0.4, [1]),  # ... and 0.4 exactly
        (0.5, [1, 3]),  # 0.4 + 0.3 = 0.7
        (0.7, [1, 3]),
        (0.8, [1, 3, 4]),  # 0.85
        (0.9, [0, 1, 3, 4]),  # 0.95
        (0.99, [0, 1, 2, 3, 4]),
        (1.0, [0, 1, 2, 3, 4]),  # 1: off
    ]
    for p, expected in cases:
        filtered = top_p_filter(logits, p)
        assert kept(filtered) == expected, p
        renormalised = filtered.softmax(-1)[expected]
        assert torch.allclose(renormalised, probs[expected] / probs[expected].sum())
        # The smallest set: its probability reaches p, and without its least likely member not.
        mass = probs[expected].sum().item()
        assert mass >= p - 1e-6 and mass - probs[expected].min().item() < p


def test_top_p_always_keeps_the_most_likely_token():
    logits = torch.tensor([0.0, 5.0, 1.0])
    assert kept(top_p_filter(logits, 1e-6)) == [1]


def test_filters_never_modify_their_input():
    logits = torch.tensor([0.3, -1.0, 2.5, 0.9])
    before = logits.clone()
    top_k_filter(logits, 2)
    top_p_filter(logits, 0.5)
    apply_temperature(logits, 0.7)
    assert torch.equal(logits, before)


def test_order_is_temperature_then_top_k_then_top_p():
    logits = torch.tensor([2.0, 1.5, 1.0, 0.0])
    config = GenerationConfig(temperature=2.0, top_k=3, top_p=0.6)
    scaled = logits / 2.0  # [1, 0.75, 0.5, 0]
    top3 = scaled[:3].softmax(-1)  # ~[0.391, 0.305, 0.237] after renormalising over 3 tokens
    assert top3[0] < 0.6 <= top3[0] + top3[1]  # so top-p keeps two of them
    expected = torch.zeros(4)
    expected[:2] = top3[:2] / top3[:2].sum()
    assert torch.allclose(next_token_distribution(logits, config), expected)
    # Top-p at temperature 1 instead would keep one token only: the order matters.
    assert logits.softmax(-1)[0] < 0.6 and kept(top_p_filter(logits, 0.45)) == [0]


def test_same_as_transformers_logits_warpers():
    from transformers.generation.logits_process import (
        LogitsProcessorList,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 500, generator=gen) * 3
    for temperature, top_k, top_p in [(1.0, 0, 0.9), (0.7, 50, 1.0), (1.3, 20, 0.8), (0.5, 5, 0.5)]:
        config = GenerationConfig(temperature=temperature, top_k=top_k, top_p=top_p)
        warpers = LogitsProcessorList([TemperatureLogitsWarper(temperature)])
        if top_k:
            warpers.append(TopKLogitsWarper(top_k))
        if top_p < 1:
            warpers.append(TopPLogitsWarper(top_p))
        theirs = warpers(torch.zeros(4, 1, dtype=torch.long), logits.clone()).softmax(-1)
        ours = next_token_distribution(logits, config)
        assert torch.equal(ours > 0, theirs > 0)
        assert torch.allclose(ours, theirs, atol=1e-6)


def test_greedy_is_the_argmax_of_the_raw_logits():
    logits = torch.tensor([0.1, 2.0, 1.9, -3.0])
    config = GenerationConfig(greedy=True, temperature=5.0, top_k=1, top_p=0.1)  # all ignored
    probs = next_token_distribution(logits, config)
    assert torch.allclose(probs, logits.softmax(-1))
    assert choose_token(logits, probs, config, torch.Generator()) == 1


def test_seeded_draws_repeat_and_ignore_the_global_random_state():
    logits = torch.zeros(1000)  # uniform: a draw tells seeds apart
    config = GenerationConfig(seed=7)
    probs = next_token_distribution(logits, config)

    def draws(seed: int) -> list[int]:
        gen = torch.Generator().manual_seed(seed)
        return [choose_token(logits, probs, config, gen) for _ in range(5)]

    torch.manual_seed(123)
    first = draws(7)
    torch.manual_seed(456)
    assert draws(7) == first
    assert draws(8) != first


def test_a_draw_never_picks_a_filtered_token():
    logits = torch.tensor([3.0, 2.9, 0.0, -1.0, 2.8])
    config = GenerationConfig(top_k=2, temperature=3.0)
    probs = next_token_distribution(logits, config)
    gen = torch.Generator().manual_seed(0)
    assert {choose_token(logits, probs, config, gen) for _ in range(200)} == {0, 1}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_new_tokens": 0}, "Max new tokens"),
        ({"max_new_tokens": 100_000}, "Max new tokens"),
        ({"max_new_tokens": 2.5}, "Max new tokens"),
        ({"temperature": 0}, "greedy"),
        ({"temperature": -1.0}, "Temperature"),
        ({"temperature": float("nan")}, "Temperature"),
        ({"temperature": 1000.0}, "Temperature"),
        ({"top_p": 0.0}, "Top-p"),
        ({"top_p": 1.5}, "Top-p"),
        ({"top_k": -1}, "Top-k"),
        ({"top_k": True}, "Top-k"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**64}, "seed"),
        ({"top_k_shown": 0}, "candidates"),
        ({"greedy": "yes"}, "greedy"),
    ],
)
def test_config_rejects_values_out_of_range(kwargs, message):
    with pytest.raises(InputError, match=message):
        GenerationConfig(**kwargs)


def test_config_defaults_and_edges_are_valid():
    GenerationConfig()
    GenerationConfig(max_new_tokens=1, temperature=100.0, top_p=1.0, top_k=0, seed=2**63 - 1)
    GenerationConfig(temperature=1, top_p=1)  # whole numbers are fine for floats
