"""Head detector scores on the bundled models. SmolLM2: the heads ranked top for induction on
repeated random tokens are the ones its in-context copying needs: zero-ablating the top 5 costs
far more log-probability on the repeated half than ablating 5 random heads (seeded) or the 5
lowest-scoring ones that are not previous-token heads, on fresh random sequences (another seed
than the detection). Among the 5 lowest-scoring heads is the top previous-token head, the other
half of the induction circuit, and it matters as much (measured and asserted below)."""

from __future__ import annotations

import random

import torch

from core import analyze
from core.engine.hooks import count_hooks
from core.methods.ablation_hooks import ablate_heads
from core.methods.detector_scores import (
    detector_scores,
    repeated_random_tokens,
    text_scores,
)
from core.methods.detectors import duplicate_pattern, offset_pattern, pattern_score

K = 5


def copying_log_prob(model, ids, start: int, n: int, heads=()) -> float:
    """Mean log-probability of the correct next token at every position of the repeated half
    whose next token is a copy (queries start + n .. start + 2n - 2)."""
    with torch.inference_mode(), ablate_heads(model, heads):
        logits = model.model(input_ids=ids, use_cache=False).logits.float()  # (S, T, V)
    log_probs = logits.log_softmax(-1)
    queries = torch.arange(start + n, start + 2 * n - 1)  # (n - 1,)
    targets = ids[:, queries + 1]  # (S, n - 1)
    return float(log_probs[:, queries].gather(-1, targets[..., None]).mean())


def test_smollm2_induction_heads_matter_for_copying(smollm2):
    found = detector_scores(smollm2, n_tokens=20, n_sequences=4, seed=0)
    assert found.induction.shape == (30, 9) and found.seq_len == 40 and found.tokens.start == 0
    top = found.top("induction", K)
    assert float(found.induction[top[-1]]) > 0.4  # a few heads copy strongly
    assert float(found.induction.median()) < 0.05  # most heads do not
    every = [(layer, head) for layer in range(30) for head in range(9)]
    # Heads that score lowest for induction but are not previous-token heads: the strongest
    # previous-token head is the induction circuit's first half (Olsson et al. 2022), and its
    # induction score is about 0, so "the 5 lowest" would include it (checked below).
    lowest = [h for h in found.top("induction", len(every))[::-1] if found.previous_token[h] < 0.3]
    lowest = lowest[:K]

    fresh = repeated_random_tokens(smollm2, n_tokens=20, n_sequences=3, seed=1)
    ids, n, start = fresh.input_ids, fresh.n_tokens, fresh.start
    clean = copying_log_prob(smollm2, ids, start, n)

    def drop(heads) -> float:
        return clean - copying_log_prob(smollm2, ids, start, n, heads)

    assert clean > -6.0  # the intact model copies (an unseen random token costs about 15 nats)
    top_drop = drop(top)
    controls = [drop(lowest)] + [
        drop(random.Random(seed).sample([h for h in every if h not in top], K)) for seed in range(3)
    ]
    assert top_drop > 3.0, top_drop
    assert top_drop > 3 * max(*controls, 0.1), (top_drop, controls)
    # Among the 5 lowest-scoring heads is the top previous-token head (induction about 0), whose
    # ablation alone breaks copying as badly as the top induction heads'.
    previous = found.top("previous_token", 1)[0]
    assert float(found.previous_token[previous]) > 0.8 and found.induction[previous] < 0.01
    assert drop([previous]) > 0.5 * top_drop
    assert count_hooks(smollm2.model) == 0


def test_text_scores_equal_hand_patterns(minilm):
    analysis = analyze(minilm, "the cat and the dog and the cat")
    found = text_scores(minilm, analysis)
    attn = analysis.attentions  # (L, H, T, T)
    ids = torch.tensor(analysis.token_ids)
    # "the" at 1, 4, 7; "and" at 3, 6; "cat" at 2, 8: rows 4, 6, 7, 8 have earlier copies
    rows = {4: [1], 6: [3], 7: [1, 4], 8: [2]}
    by_hand = sum(attn[..., i, js].sum(-1) for i, js in rows.items()) / 4  # (L, H)
    assert torch.allclose(found.duplicate_token, by_hand, atol=1e-6)
    assert torch.allclose(
        found.duplicate_token,
        pattern_score(attn, duplicate_pattern(ids, torch.tensor(analysis.special))),
        atol=1e-6,
    )
    prev = attn.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1)  # (L, H)
    assert torch.allclose(found.previous_token, prev, atol=1e-6)
    assert torch.allclose(found.previous_token, pattern_score(attn, offset_pattern(10, 1)))
