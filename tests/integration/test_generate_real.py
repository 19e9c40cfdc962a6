"""Generation with SmolLM2: reproducible, equal to model.generate, attention equal to the full
analysis, stoppable, and refused for encoders."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from core import InputError, analyze_ids
from core.engine import stats
from core.methods.generate import (
    Generation,
    GenerationConfig,
    generate,
    generate_steps,
)
from core.methods.words import merge_keys, truncate_groups, word_analysis

PROMPT = "Once upon a time, there was a"  # 8 tokens
SAMPLED = GenerationConfig(max_new_tokens=6, temperature=1.5, top_p=0.95, top_k=50, seed=1)


@pytest.fixture(scope="module")
def sampled(smollm2) -> Generation:
    return generate(smollm2, PROMPT, SAMPLED)


@pytest.fixture(scope="module")
def greedy(smollm2) -> Generation:
    config = GenerationConfig(max_new_tokens=8, greedy=True)
    return generate(smollm2, "The capital of France is", config)


def test_the_same_seed_gives_the_same_tokens_and_probabilities(smollm2, sampled):
    torch.manual_seed(999)  # the global random state plays no part
    again = generate(smollm2, PROMPT, SAMPLED)
    assert again.generated_ids == sampled.generated_ids
    assert [s.prob for s in again.steps] == [s.prob for s in sampled.steps]
    assert [s.raw_prob for s in again.steps] == [s.raw_prob for s in sampled.steps]
    assert [c.token_id for c in again.steps[2].candidates] == [
        c.token_id for c in sampled.steps[2].candidates
    ]
    assert again.generated_text == sampled.generated_text
    assert len(sampled.steps) == SAMPLED.max_new_tokens
    assert sampled.stop_reason == "max_new_tokens"


def test_other_seeds_give_other_tokens(smollm2, sampled):
    others = [generate(smollm2, PROMPT, dataclasses.replace(SAMPLED, seed=seed)) for seed in (0, 2)]
    assert len({sampled.generated_ids, *(g.generated_ids for g in others)}) == 3


def test_greedy_equals_model_generate(smollm2, greedy):
    input_ids = torch.tensor([greedy.prompt_ids])
    with torch.inference_mode():
        expected = smollm2.model.generate(input_ids, max_new_tokens=8, do_sample=False)
    assert list(greedy.generated_ids) == expected[0, input_ids.shape[1] :].tolist()
    assert greedy.generated_text.startswith(" Paris")
    for step in greedy.steps:
        assert step.rank == 1 and step.prob == step.raw_prob
        assert step.candidates[0].chosen and step.candidates[0].token_id == step.token_id


def test_step_attention_equals_the_full_analysis(smollm2, sampled):
    full = analyze_ids(smollm2, sampled.token_ids)
    assert full.token_ids == sampled.token_ids
    assert full.tokens == sampled.tokens
    for step in sampled.steps:
        assert step.attention.shape == (30, 9, step.position + 1)
        row = full.attentions[:, :, step.position, : step.position + 1]  # (L, H, ctx)
        assert torch.allclose(step.attention, row, atol=1e-4)
        assert torch.allclose(step.entropy, stats.row_entropy(row), atol=1e-3)
        assert torch.allclose(step.mean_attention, row.mean(1), atol=1e-4)
        assert torch.allclose(step.layer_entropy, stats.row_entropy(row.mean(1)), atol=1e-3)
        # Nothing after the token itself: its row in the full analysis is zero there.
        assert full.attentions[:, :, step.position, step.position + 1 :].abs().sum() == 0


def test_steps_record_the_distribution_they_were_drawn_from(sampled):
    for step in sampled.steps:
        chosen = [c for c in step.candidates if c.chosen]
        assert len(chosen) <= 1
        if chosen:
            assert chosen[0].prob == step.prob and chosen[0].raw_prob == step.raw_prob
            assert step.candidates.index(chosen[0]) + 1 == step.rank
        probs = [c.prob for c in step.candidates]
        raw = [c.raw_prob for c in step.candidates]
        assert raw == sorted(raw, reverse=True) and len(step.candidates) == 10
        assert probs == sorted(probs, reverse=True)
        # top-k 50 and top-p 0.95 only remove tokens, and temperature 1.5 flattens:
        assert step.prob > 0 and sum(probs) <= 1 + 1e-5


def test_stop_callback_ends_early(smollm2):
    made: list[int] = []
    config = GenerationConfig(max_new_tokens=8, greedy=True)
    result = generate(
        smollm2,
        PROMPT,
        config,
        should_stop=lambda: len(made) >= 3,
        on_step=lambda step: made.append(step.index),
    )
    assert made == [0, 1, 2] and len(result.steps) == 3
    assert result.stop_reason == "stopped"
    # Stopping by leaving the loop works the same way, and the steps so far make a result.
    steps = []
    for step in generate_steps(smollm2, PROMPT, config):
        steps.append(step)
        if len(steps) == 2:
            break
    partial = Generation.from_steps(smollm2, PROMPT, config, steps)
    assert partial.generated_ids == result.generated_ids[:2] and partial.stop_reason == "stopped"


def test_end_of_sequence_stops_with_the_chat_template(smollm2):
    config = GenerationConfig(max_new_tokens=16, greedy=True, use_chat_template=True)
    result = generate(smollm2, "What is 2+2? Answer with a number only.", config)
    assert result.prompt_text.startswith("<|im_start|>") and result.prompt_ids[0] == 1
    assert result.prompt_ids.count(1) == 3  # <|im_start|> of system, user, assistant: no extra
    assert result.stop_reason == "eos" and len(result.steps) < 16
    assert result.steps[-1].token_id == smollm2.tokenizer.eos_token_id
    assert result.steps[-1].finish_reason == "eos" and result.steps[-1].special
    assert not any(step.special for step in result.steps[:-1])
    assert "4" in result.generated_text and result.special[-1]


def test_encoders_and_bad_prompts_are_refused_before_the_first_step(minilm, smollm2):
    with pytest.raises(InputError, match="decoder"):
        generate_steps(minilm, "Hello", GenerationConfig())
    with pytest.raises(InputError, match="empty"):
        generate_steps(smollm2, "   ", GenerationConfig())
    with pytest.raises(InputError, match="limit"):
        generate_steps(smollm2, "word " * 8200, GenerationConfig(max_new_tokens=4))


def test_japanese_generation_exports_characters(smollm2):
    config = GenerationConfig(max_new_tokens=6, greedy=True)
    result = generate(smollm2, "日本の首都は", config)
    exported = result.to_json()
    assert "日本の首都は" in exported and "\\u" not in exported
    data = json.loads(exported)
    assert data["tokens"] == list(result.tokens) and data["generated_text"] == result.generated_text
    assert len(data["steps"]) == len(result.steps)
    first = data["steps"][0]
    assert len(first["entropy"]) == 30 and len(first["entropy"][0]) == 9
    assert len(first["mean_attention"][0]) == first["position"] + 1
    assert "attention" not in first and "attention" in result.steps[0].to_dict(per_head=True)
    for label in result.tokens:
        assert "\ufffd" not in label and "Ġ" not in label


def test_word_level_views_of_a_generation(smollm2, sampled):
    groups = sampled.word_groups()
    assert sum(len(g) for g in groups) == len(sampled.token_ids)
    step = sampled.steps[-1]
    labels, merged = sampled.step_words(step.index)
    assert merged.shape == (30, 9, len(labels))
    assert torch.allclose(merged.sum(-1), torch.ones(30, 9), atol=1e-4)
    assert torch.allclose(merged, merge_keys(step.attention, truncate_groups(groups, step.ctx_len)))
    full = analyze_ids(smollm2, sampled.token_ids)
    assert word_analysis(smollm2, full).tokens == labels
    assert torch.allclose(merge_keys(full.attentions[:, :, -1], groups), merged, atol=1e-4)
