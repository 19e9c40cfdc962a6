"""AttnScope's own attention function against eager attention, for every model family of the unit
tests: the output, the weights (with padding, causal masks, a sliding window and GQA), and every
statistic gathered from blocks of queries, to 1e-5."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from torch.nn.functional import pad

from core.engine import stats
from core.engine.attention_fn import NAME, block_rows, blocks_to, use_attnscope, uses_attnscope
from core.engine.block_stats import entropy_from_logits
from core.engine.hooks import attention_modules, count_hooks
from core.engine.run import run_tokenized
from core.engine.streaming import stream_statistics
from core.engine.tokenize import tokenize
from core.methods.rollout import rollout
from tests.unit.tiny_models import TINY_MODELS, tiny_mistral

TEXT = "the cat sat on the mat , and the dog slept . " * 3


def ours(loaded):
    """A copy of ``loaded`` whose model runs through ``"attnscope"``."""
    model = copy.deepcopy(loaded.model)
    assert use_attnscope(model) and uses_attnscope(model)
    return dataclasses.replace(loaded, model=model)


@pytest.mark.parametrize("family", sorted(TINY_MODELS))
def test_output_and_weights_equal_eager_with_padding(family):
    eager = TINY_MODELS[family]()
    mine = ours(eager)
    torch.manual_seed(1)
    ids = torch.randint(4, 20, (2, 12))  # (B, T)
    mask = torch.ones_like(ids)
    mask[1, :5] = 0  # the second text is left-padded: 5 queries see no key at all
    with torch.no_grad():
        want = eager.model.base_model(input_ids=ids, attention_mask=mask, output_attentions=True)
        got = mine.model.base_model(input_ids=ids, attention_mask=mask, output_attentions=True)
    torch.testing.assert_close(got.last_hidden_state, want.last_hidden_state, atol=1e-5, rtol=0)
    for layer, (a, b) in enumerate(zip(got.attentions, want.attentions, strict=True)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0, msg=f"layer {layer}")
        torch.testing.assert_close(a.sum(-1), torch.ones(a.shape[:-1]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", sorted(TINY_MODELS))
def test_blocks_hold_eager_weights_and_output(family):
    eager = TINY_MODELS[family]()
    mine = ours(eager)
    ids = torch.randint(4, 20, (1, 30))  # (1, T)
    with torch.no_grad():
        want = eager.model.base_model(input_ids=ids, output_attentions=True)
    modules, _ = attention_modules(mine.model)
    blocks: dict[int, list[tuple[int, torch.Tensor, torch.Tensor]]] = {}

    def sink(layer, start, weights, logits):
        blocks.setdefault(layer, []).append((start, weights.clone(), logits.clone()))

    # 7 queries a block: 30 rows come as 7, 7, 7, 7, 2
    rows_bytes = mine.n_heads * 30 * 4 * 7
    assert block_rows(mine.n_heads, 30, rows_bytes) == 7
    with (
        torch.no_grad(),
        blocks_to(sink, {m: i for i, m in enumerate(modules)}, block_bytes=rows_bytes),
    ):
        got = mine.model.base_model(input_ids=ids)
    torch.testing.assert_close(got.last_hidden_state, want.last_hidden_state, atol=1e-5, rtol=0)
    assert sorted(blocks) == list(range(mine.n_layers))
    for layer, parts in blocks.items():
        assert [start for start, _, _ in parts] == [0, 7, 14, 21, 28]
        # a causal pass leaves out the keys past each block's last query (they weigh 0)
        widths = [w.shape[-1] for _, w, _ in parts]
        assert widths == ([7, 14, 21, 28, 30] if mine.causal else [30] * 5)
        for start, w, z in parts:
            torch.testing.assert_close(torch.softmax(z, -1), w, atol=1e-6, rtol=0)
        weights = torch.cat([pad(w, (0, 30 - w.shape[-1])) for _, w, _ in parts], dim=1)
        torch.testing.assert_close(weights, want.attentions[layer][0], atol=1e-5, rtol=0)


def test_sliding_window_and_gqa_equal_eager():
    eager = tiny_mistral()
    eager.model.config.sliding_window = 4  # each query sees its last 4 keys
    eager.model.set_attn_implementation("eager")
    mine = ours(eager)
    ids = torch.randint(4, 20, (1, 16))
    with torch.no_grad():
        want = eager.model.base_model(input_ids=ids, output_attentions=True)
        got = mine.model.base_model(input_ids=ids, output_attentions=True)
    weights = want.attentions[0][0]  # (H, T, T)
    assert weights[:, 10, :7].abs().max() == 0 and weights[:, 10, 7:11].sum(-1).allclose(
        torch.ones(mine.n_heads)
    )  # the window is really in force
    for a, b in zip(got.attentions, want.attentions, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.last_hidden_state, want.last_hidden_state, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", sorted(TINY_MODELS))
@pytest.mark.parametrize("keep", [(), (0, 1)])
def test_statistics_from_blocks_equal_eager(family, keep):
    eager = TINY_MODELS[family]()
    mine = ours(eager)
    tokenized = tokenize(eager, TEXT)
    want = stream_statistics(eager, tokenized.inputs, keep=keep, thumbnail_size=8)
    got = stream_statistics(mine, tokenized.inputs, keep=keep, thumbnail_size=8)
    assert set(got.statistics) == set(want.statistics)
    for key, value in want.statistics.items():
        if key == "long_range":  # sink / local / distance profile, from blocks and from layers
            for part in ("sink", "local", "mass", "mean"):
                torch.testing.assert_close(
                    getattr(got.statistics[key], part), getattr(value, part), atol=1e-5, rtol=0
                )
        elif value is None:
            assert got.statistics[key] is None, key
        else:
            torch.testing.assert_close(got.statistics[key], value, atol=1e-5, rtol=0, msg=key)
    assert sorted(got.kept) == sorted(keep)
    for layer in keep:
        torch.testing.assert_close(got.kept[layer], want.kept[layer], atol=1e-5, rtol=0)
    assert count_hooks(mine.model) == 0


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_analysis_and_rollout_equal_eager(family):
    eager = TINY_MODELS[family]()
    mine = ours(eager)
    tokenized = tokenize(eager, TEXT)
    want = run_tokenized(eager, tokenized)
    got = run_tokenized(mine, tokenized)
    for layer in range(eager.n_layers):
        torch.testing.assert_close(got.head(layer, 0), want.head(layer, 0), atol=1e-5, rtol=0)
    torch.testing.assert_close(rollout(got.attentions), rollout(want.attentions), atol=1e-5, rtol=0)


def test_entropy_from_logits_is_the_entropy():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 40) * 4  # (H, b, S)
    logits[:, 2, 20:] = torch.finfo(torch.float32).min  # a masked tail
    logits[1, 4, :] = torch.finfo(torch.float32).min  # a row with nothing to see: uniform
    weights = torch.softmax(logits, dim=-1)
    direct = stats.row_entropy(weights)
    torch.testing.assert_close(entropy_from_logits(weights, logits), direct, atol=1e-5, rtol=0)
    assert entropy_from_logits(weights, logits)[1, 4].item() == pytest.approx(
        torch.log(torch.tensor(40.0)).item(), abs=1e-5
    )


def test_other_families_keep_eager():
    from transformers import BertConfig, BertModel, ElectraConfig, ElectraModel

    electra = ElectraModel(
        ElectraConfig(
            vocab_size=30,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=16,
            embedding_size=16,
            attn_implementation="eager",
        )
    )
    assert not use_attnscope(electra)
    assert electra.config._attn_implementation == "eager"
    bert = BertModel(
        BertConfig(
            vocab_size=30,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=16,
            attn_implementation="eager",
        )
    )
    assert use_attnscope(bert) and bert.config._attn_implementation == NAME


@pytest.mark.parametrize("seq_len", [64, 70])  # 8 divides 64 (runs of keys), not 70 (adaptive)
def test_thumbnail_pooling_of_cut_blocks_equals_adaptive_max_pooling(seq_len):
    from core.engine.block_stats import BlockAccumulator

    torch.manual_seed(seq_len)
    attn = torch.softmax(torch.randn(3, seq_len, seq_len), dim=-1).tril()  # (H, T, T)
    gather = BlockAccumulator(1, 3, seq_len, causal=True, thumbnail=8)
    for start in range(0, seq_len, 9):  # causal blocks: keys up to the block's last query
        stop = min(seq_len, start + 9)
        rows = attn[:, start:stop, :stop]
        gather(0, start, rows, rows.clamp_min(1e-30).log())
    want = stats.pooled_attention(attn, 8)  # (H, 8, 8): adaptive_max_pool2d of the whole map
    torch.testing.assert_close(gather.statistics()["pooled_maps"][0], want, atol=0, rtol=0)
