"""Next-token predictions and the logit lens on tiny decoders, against the model's own logits and
a hand-applied final norm and unembedding."""

from __future__ import annotations

import pytest
import torch

from core import InputError
from core.engine.hooks import HookSet
from core.engine.run import analyze
from core.engine.tokenize import token_labels, tokenize
from core.methods import predictions as pred
from core.methods.predictions import predict
from tests.unit.tiny_models import TINY_MODELS, tiny_bert

TEXT = "the cat sat on the mat , and it"


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def tiny(request):
    return TINY_MODELS[request.param]()


def logits_of(loaded, text=TEXT):
    ids = tokenize(loaded, text).input_ids
    with torch.inference_mode():
        return loaded.model(input_ids=ids, use_cache=False).logits[0]  # (T, vocab)


def test_top_k_at_every_position_equals_the_models_softmax(tiny):
    result = predict(tiny, analyze(tiny, TEXT), top_k=3).next_tokens
    probs = torch.softmax(logits_of(tiny), dim=-1)  # (T, vocab)
    top = probs.topk(3, dim=-1)
    assert torch.equal(result.top_ids, top.indices)
    assert torch.allclose(result.top_probs, top.values, atol=1e-6)
    ids = list(result.token_ids)
    expected_next = [probs[i, ids[i + 1]].item() for i in range(len(ids) - 1)]
    assert result.next_token_prob.tolist() == pytest.approx(expected_next, abs=1e-6)
    assert result.top_tokens[0] == tuple(tiny.tokenizer.decode([i]) for i in top.indices[0])
    assert result.tokens == tokenize(tiny, TEXT).tokens and result.k == 3
    first = result.at(0)
    assert [g.token_id for g in first] == top.indices[0].tolist()
    rows = result.rows()
    assert len(rows) == 3 * len(ids)
    assert rows[1] == {
        "position": 0,
        "token": "the",
        "rank": 2,
        "prediction": first[1].token,
        "prob": first[1].prob,
    }


def test_blocks_of_positions_give_the_same_answer(tiny, monkeypatch):
    whole = predict(tiny, analyze(tiny, TEXT)).next_tokens
    lens = predict(tiny, analyze(tiny, TEXT)).lens
    monkeypatch.setattr(pred, "_BLOCK", 2)  # 9 positions -> 5 blocks, the last one short
    blocked = predict(tiny, analyze(tiny, TEXT)).next_tokens
    assert torch.equal(blocked.top_ids, whole.top_ids)
    assert torch.allclose(blocked.next_token_prob, whole.next_token_prob)
    assert torch.equal(predict(tiny, analyze(tiny, TEXT)).lens.top_ids, lens.top_ids)


def test_logit_lens_last_row_is_the_models_prediction(tiny):
    lens = predict(tiny, analyze(tiny, TEXT)).lens
    probs = torch.softmax(logits_of(tiny), dim=-1)
    seq_len = probs.shape[0]
    assert lens.top_ids.shape == lens.top_probs.shape == (tiny.n_layers + 1, seq_len)
    assert lens.row_labels == ("embeddings", "layer 0", "layer 1")
    assert torch.equal(lens.top_ids[-1], probs.argmax(-1))
    assert torch.allclose(lens.top_probs[-1], probs.max(-1).values, atol=1e-6)
    assert lens.top_tokens[-1] == tuple(tiny.tokenizer.decode([i]) for i in probs.argmax(-1))


def test_logit_lens_rows_apply_the_final_norm_and_the_unembedding(tiny):
    """Row 0 = softmax(W_U norm_f(embeddings)); row 1 = softmax(W_U norm_f(output of layer 0)),
    with layer 0's output recorded by a hook and the norm and W_U applied by hand."""
    base = tiny.model.base_model
    tied = tiny.model.get_output_embeddings().weight  # (vocab, d), the embeddings when tied
    assert tied.data_ptr() == tiny.model.get_input_embeddings().weight.data_ptr()
    blocks = base.layers if tiny.model.config.model_type == "llama" else base.h
    norm = base.norm if tiny.model.config.model_type == "llama" else base.ln_f
    recorded = []
    ids = tokenize(tiny, TEXT).input_ids
    with HookSet() as hooks:
        hooks.forward(blocks[0], lambda module, args, out: recorded.append(args[0]))
        hooks.forward(blocks[1], lambda module, args, out: recorded.append(args[0]))
        logits_of(tiny)
    embeddings, after_layer_0 = recorded[0][0], recorded[1][0]  # inputs of layers 0 and 1
    lens = predict(tiny, analyze(tiny, TEXT)).lens
    for row, hidden in ((0, embeddings), (1, after_layer_0)):
        with torch.inference_mode():
            probs = torch.softmax(norm(hidden) @ tied.T, dim=-1)  # (T, vocab)
        assert torch.equal(lens.top_ids[row], probs.argmax(-1)), row
        assert torch.allclose(lens.top_probs[row], probs.max(-1).values, atol=1e-6), row
    if tiny.model.config.model_type == "llama":  # Llama's embeddings carry no positions
        with torch.inference_mode():
            direct = tiny.model.get_input_embeddings()(ids[0])
        assert torch.equal(embeddings, direct)
    rows = lens.rows()
    assert len(rows) == (tiny.n_layers + 1) * ids.shape[1]
    assert rows[0]["row"] == "embeddings" and rows[0]["token"] == "the"
    assert rows[-1]["prob"] == pytest.approx(lens.top_probs[-1, -1].item())


def test_encoders_are_refused_with_a_message():
    bert = tiny_bert()
    with pytest.raises(InputError, match="need a decoder"):
        predict(bert, analyze(bert, TEXT))


def test_predictions_and_the_lens_share_one_forward_pass(tiny):
    """The page used to run two identical passes; ``predict`` runs the base model once, on the
    analysis' own ids (no tokenizing: a tokenizer that raises is never called)."""
    result = analyze(tiny, TEXT)
    calls = []
    with HookSet() as hooks:
        hooks.forward(tiny.model.base_model, lambda module, args, out: calls.append(1))
        tokenizer, tiny_tokenizer = None, tiny.tokenizer
        object.__setattr__(tiny, "tokenizer", _Refusing(tiny_tokenizer))
        try:
            both = predict(tiny, result, top_k=2)
        finally:
            object.__setattr__(tiny, "tokenizer", tiny_tokenizer)
    assert len(calls) == 1 and tokenizer is None
    assert both.next_tokens.token_ids == result.token_ids
    assert both.lens.top_ids.shape == (tiny.n_layers + 1, result.seq_len)


class _Refusing:
    """A tokenizer that only decodes: tokenizing a text again would raise."""

    def __init__(self, inner):
        self._inner = inner

    def decode(self, *args, **kwargs):
        return self._inner.decode(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        raise AssertionError("the text was tokenized again")


def test_token_labels_are_visible_and_cached():
    calls = []

    class Decoder:
        def decode(self, ids):
            calls.append(ids)
            return {0: " hello", 1: " ", 2: "\n", 3: "\ufffd"}[ids[0]]

    assert token_labels(Decoder(), [0, 1, 2, 0, 3]) == ("hello", "␣", "↵", "hello", "\ufffd")
    assert len(calls) == 4  # id 0 decoded once


def test_top_k_probs_refuses_k_below_one():
    with pytest.raises(ValueError, match="k must be"):
        pred.top_k_probs(torch.zeros(3), 0)
