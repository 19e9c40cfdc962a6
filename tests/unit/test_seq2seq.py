"""Encoder-decoder attention on tiny random T5, BART, Marian and M2M100 (NLLB) models: three
kinds of attention with the right shapes and orientation, generation that keeps each step's
cross-attention, the alignment view's numbers, and the real loading path from a folder saved by
save_pretrained."""

from __future__ import annotations

import pytest
import torch

from core.engine.model_kinds import require_kind
from core.engine.models import load_model
from core.engine.seq2seq import analyze_pair, translate
from core.methods.alignment import alignment, merge_rectangular
from core.methods.sampling import GenerationConfig
from core.policy.errors import InputError
from tests.unit.tiny_models import tiny_bert
from tests.unit.tiny_seq2seq_vision import EOS, FORCED, SEQ2SEQ, save

SOURCE = "the cat sat on the mat"
TARGET = "a dog slept"


@pytest.fixture(scope="module", params=sorted(SEQ2SEQ))
def model(request):
    return SEQ2SEQ[request.param]()


def _hf_outputs(loaded, result):
    """Transformers' own attentions for the same inputs, read by name."""
    with torch.inference_mode():
        return loaded.model(
            input_ids=torch.tensor([result.encoder.token_ids]),
            decoder_input_ids=torch.tensor([result.decoder.token_ids]),
            output_attentions=True,
        )


def test_three_kinds_of_attention_have_their_shapes_and_orientation(model):
    result = analyze_pair(model, SOURCE, TARGET)
    config = model.model.config
    n_src = len(result.source_tokens)  # the words and the end token (BART: and <s>)
    n_tgt = len(result.target_tokens)
    assert n_src == 7 + (model.name == "tiny-bart") and n_tgt == 4 + (model.name == "tiny-bart")
    heads_enc = getattr(config, "encoder_attention_heads", None) or config.num_heads
    heads_dec = getattr(config, "decoder_attention_heads", None) or config.num_heads
    assert result.encoder.attentions.shape == (2, heads_enc, n_src, n_src)
    assert result.decoder.attentions.shape == (2, heads_dec, n_tgt, n_tgt)
    # cross-attention: queries are target tokens (rows), keys are source tokens (columns)
    assert result.cross.weights.shape == (2, heads_dec, n_tgt, n_src)
    assert result.cross.query_tokens == result.target_tokens
    assert result.cross.key_tokens == result.source_tokens == result.encoder.tokens
    assert result.target_tokens[-1] == "</s>" and "slept" in result.target_tokens
    # teacher forcing: the decoder reads [start] + target[:-1]
    start = config.decoder_start_token_id
    assert result.decoder.token_ids[0] == start
    assert list(result.decoder.token_ids[1:]) == result.target.input_ids[0].tolist()[:-1]
    for weights in (result.encoder.attentions, result.decoder.attentions, result.cross.weights):
        assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=1e-5)
    upper = torch.triu(torch.ones(n_tgt, n_tgt, dtype=torch.bool), diagonal=1)
    assert result.decoder.attentions[..., upper].abs().max() == 0  # causal
    hf = _hf_outputs(model, result)
    for ours, theirs in (
        (result.encoder.attentions, hf.encoder_attentions),
        (result.decoder.attentions, hf.decoder_attentions),
        (result.cross.weights, hf.cross_attentions),
    ):
        assert torch.allclose(ours, torch.stack([a[0] for a in theirs]), atol=1e-6)


def test_orientation_follows_the_lengths(model):
    """A longer source adds key columns only; a longer target adds query rows only."""
    base = analyze_pair(model, SOURCE, TARGET).cross.weights
    longer_source = analyze_pair(model, SOURCE + " and it was", TARGET).cross.weights
    longer_target = analyze_pair(model, SOURCE, TARGET + " and it was").cross.weights
    assert longer_source.shape[-2:] == (base.shape[-2], base.shape[-1] + 3)
    assert longer_target.shape[-2:] == (base.shape[-2] + 3, base.shape[-1])


def test_cross_statistics_are_over_the_source(model):
    cross = analyze_pair(model, SOURCE, TARGET).cross
    a = cross.weights
    entropy = -(a * a.log()).sum(-1).mean(-1)  # (L, H)
    assert torch.allclose(cross.head_entropy, entropy, atol=1e-5)
    assert torch.allclose(
        cross.normalized_head_entropy, entropy / torch.log(torch.tensor(a.shape[-1])), atol=1e-5
    )
    top = cross.most_attended(1)
    for row in top:
        received = a[row.layer].mean(0).mean(0)  # (T_src,)
        assert row.position == int(received.argmax())
        assert row.token == cross.key_tokens[row.position]


def test_generation_keeps_each_steps_cross_attention(model):
    config = GenerationConfig(max_new_tokens=6, greedy=True)
    result = translate(model, SOURCE, config)
    assert 1 <= len(result.steps) <= 6
    ids = result.target.input_ids[0].tolist()
    assert [s.token_id for s in result.steps] == ids
    rows = torch.stack([s.cross for s in result.steps], dim=2)  # (L, H, T_tgt, T_src)
    assert torch.allclose(rows, result.cross.weights, atol=1e-5)
    # the same tokens as transformers' own greedy search
    with torch.inference_mode():
        generated = model.model.generate(
            input_ids=torch.tensor([result.encoder.token_ids]),
            do_sample=False,
            max_new_tokens=6,
            min_new_tokens=0,
            num_beams=1,
        )
    theirs = generated[0, 1:].tolist()
    assert theirs[: len(ids)] == ids
    if model.name == "tiny-marian":
        assert 0 not in ids  # its padding is banned
    if model.name == "tiny-m2m100":
        assert ids[0] == FORCED  # the target language's token comes first


def test_sampled_generation_is_seeded(model):
    config = GenerationConfig(max_new_tokens=5, temperature=1.5, seed=7)
    first = translate(model, SOURCE, config).target.input_ids.tolist()
    again = translate(model, SOURCE, config).target.input_ids.tolist()
    assert first == again


def test_stop_keeps_what_is_done(model):
    calls = iter([False, False, True])
    result = translate(
        model, SOURCE, GenerationConfig(max_new_tokens=9), should_stop=lambda: next(calls)
    )
    assert len(result.steps) == 2


def test_an_empty_target_is_refused_in_both_languages(model):
    for target in ("", "   \n"):
        with pytest.raises(InputError) as caught:
            analyze_pair(model, SOURCE, target)
        assert caught.value.key == "error.empty_target"
        assert str(caught.value).startswith("The target is empty")
        assert caught.value.localized("ja").startswith("ターゲット（訳文）が空です")


def test_alignment_over_tokens_is_the_cross_attention():
    model = SEQ2SEQ["marian"]()
    result = analyze_pair(model, SOURCE, TARGET)
    tokens = alignment(model, result, layer=1, head=None, words=False)
    assert torch.allclose(tokens.weights, result.cross.weights[1].mean(0))
    one_head = alignment(model, result, layer=0, head=1, words=False)
    assert torch.equal(one_head.weights, result.cross.weights[0, 1])
    assert tokens.source == result.source_tokens and tokens.target == result.target_tokens


def test_alignment_merges_pieces_into_words():
    a = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], [0.25, 0.25, 0.25, 0.25]])
    merged = merge_rectangular(a, ((0, 1), (2,)), ((0,), (1, 2), (3,)))
    # row 0: mean of rows 0 and 1 -> [0.25, 0.25, 0.25, 0.25]: columns 0 | 1+2 | 3
    assert torch.allclose(merged, torch.tensor([[0.25, 0.5, 0.25], [0.25, 0.5, 0.25]]))
    model = SEQ2SEQ["t5"]()
    words = alignment(model, analyze_pair(model, SOURCE, TARGET), layer=0)
    # word-level tiny tokenizer: one word per token, the end token a word of its own
    assert words.source == ("the", "cat", "sat", "on", "the", "mat", "</s>")
    assert words.target == ("a", "dog", "slept", "</s>")
    assert torch.allclose(words.weights.sum(-1), torch.ones(4), atol=1e-5)


def test_kinds_refuse_the_wrong_input_in_both_languages():
    t5 = SEQ2SEQ["t5"]()
    with pytest.raises(InputError) as caught:
        require_kind(t5, "text")
    assert caught.value.key == "error.needs_text_model"
    assert "encoder-decoder" in str(caught.value)
    assert "エンコーダ・デコーダ" in caught.value.localized("ja")
    with pytest.raises(InputError) as caught:
        analyze_pair(tiny_bert(), SOURCE, TARGET)
    assert caught.value.key == "error.needs_seq2seq"
    assert "翻訳ページ" in caught.value.localized("ja")


@pytest.mark.parametrize("family", ["t5", "marian"])
def test_the_real_loading_path_from_a_saved_folder(tmp_path, family):
    tiny = SEQ2SEQ[family]()
    loaded = load_model(str(save(tiny, tmp_path / family)), device="cpu")
    assert loaded.kind == "seq2seq" and loaded.n_layers == 2
    assert loaded.n_heads == tiny.n_heads
    ours = analyze_pair(loaded, SOURCE, TARGET)
    theirs = analyze_pair(tiny, SOURCE, TARGET)
    assert torch.allclose(ours.cross.weights, theirs.cross.weights, atol=1e-6)
    assert ours.target.input_ids[0].tolist()[-1] == EOS
