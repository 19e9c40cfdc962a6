"""What a decoder predicts: the top-k next tokens at every position, and the logit lens (every
layer's hidden state read through the final norm and the unembedding), both from one forward pass
of an analysis' own inputs (:func:`predict`).

Logits over the vocabulary are computed a block of positions at a time and reduced to the top
tokens at once, so a long text never holds a ``(seq_len, vocab)`` tensor per layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from core.engine.hooks import architecture_for
from core.engine.streaming import run_inputs
from core.engine.tokenize import token_labels
from core.policy.errors import InputError, UnsupportedModelError

if TYPE_CHECKING:
    from core.engine.analysis import Analysis
    from core.engine.models import LoadedModel

__all__ = [
    "LogitLens",
    "NextTokenPredictions",
    "Predictions",
    "TokenProb",
    "predict",
    "top_k_probs",
    "unembedding",
]

_BLOCK = 128  # positions per block of logits: 128 x 49152 floats = 25 MB for SmolLM2


@dataclass(frozen=True)
class TokenProb:
    """One predicted token: its id, a readable label and its probability."""

    token_id: int
    token: str
    prob: float


def top_k_probs(logits: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """``softmax`` over the last axis, then its ``k`` largest probabilities and their ids, largest
    first. Shapes: ``(..., vocab) -> (..., k), (..., k)``.

    >>> probs, ids = top_k_probs(torch.log(torch.tensor([0.1, 0.6, 0.3])), 2)
    >>> probs, ids
    (tensor([0.6000, 0.3000]), tensor([1, 2]))
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    probs = torch.softmax(logits.float(), dim=-1)
    top = probs.topk(min(k, probs.shape[-1]), dim=-1)
    return top.values, top.indices


def _blockwise(
    hidden: Tensor, head: Callable[[Tensor], Tensor], k: int, targets: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Top-k probabilities and ids of ``softmax(head(hidden))`` for ``hidden`` ``(T, d)``, a block
    of positions at a time; with ``targets`` ``(T,)`` also the probability of each target."""
    probs_out, ids_out, target_out = [], [], []
    for start in range(0, hidden.shape[0], _BLOCK):
        logits = head(hidden[start : start + _BLOCK]).float()  # (b, vocab)
        probs = torch.softmax(logits, dim=-1)  # (b, vocab)
        top = probs.topk(min(k, probs.shape[-1]), dim=-1)  # (b, k)
        probs_out.append(top.values.cpu())
        ids_out.append(top.indices.cpu())
        if targets is not None:
            chunk = targets[start : start + _BLOCK].to(probs.device)  # (b,)
            target_out.append(probs.gather(-1, chunk[:, None])[:, 0].cpu())
    target = torch.cat(target_out) if targets is not None else None
    return torch.cat(probs_out), torch.cat(ids_out), target


def _require_decoder(loaded: LoadedModel) -> None:
    if loaded.kind != "decoder":
        raise InputError("error.needs_decoder", model=loaded.title)


def _decoder_forward(loaded: LoadedModel, analysis: Analysis) -> Any:
    """The base model's forward pass of ``analysis``' own inputs, with every hidden state."""
    with torch.inference_mode():
        return loaded.model.base_model(
            **run_inputs(loaded, analysis.model_inputs()), output_hidden_states=True
        )


def unembedding(loaded: LoadedModel) -> torch.nn.Module:
    """The decoder's unembedding ``W_U`` (its LM head), applied to final-normed hidden states."""
    head = loaded.model.get_output_embeddings()
    if head is None:
        raise UnsupportedModelError("error.no_lm_head", model=loaded.title)
    return head


@dataclass(frozen=True, eq=False)
class NextTokenPredictions:
    """The top-k next tokens after every position; position i predicts token i + 1."""

    tokens: tuple[str, ...]  # the input's labels, (T,)
    token_ids: tuple[int, ...]  # (T,)
    top_ids: Tensor  # (T, k)
    top_probs: Tensor  # (T, k), largest first
    top_tokens: tuple[tuple[str, ...], ...]  # (T, k) labels of top_ids
    next_token_prob: Tensor  # (T - 1,): the probability given to the token that does follow

    @property
    def k(self) -> int:
        return self.top_ids.shape[1]

    def at(self, position: int) -> tuple[TokenProb, ...]:
        """The predictions after ``position``, most likely first."""
        return tuple(
            TokenProb(int(token_id), label, float(prob))
            for token_id, label, prob in zip(
                self.top_ids[position].tolist(),
                self.top_tokens[position],
                self.top_probs[position].tolist(),
                strict=True,
            )
        )

    def rows(self) -> list[dict[str, Any]]:
        """One row per (position, rank): ``position``, ``token``, ``rank``, ``prediction``,
        ``prob``."""
        return [
            {
                "position": position,
                "token": self.tokens[position],
                "rank": rank,
                "prediction": guess.token,
                "prob": guess.prob,
            }
            for position in range(len(self.tokens))
            for rank, guess in enumerate(self.at(position), start=1)
        ]


def _next_tokens(
    loaded: LoadedModel, analysis: Analysis, out: Any, top_k: int
) -> NextTokenPredictions:
    """The ``top_k`` most likely next tokens at every position, ``softmax(W_U norm_f(h_L))``,
    from the pass ``out``."""
    ids = torch.tensor(analysis.token_ids)  # (T,)
    hidden = out.last_hidden_state[0]  # (T, d), after the final norm
    head = unembedding(loaded)
    # Position i is scored on token i + 1; the last position has none (a stand-in, dropped).
    targets = torch.cat([ids[1:], ids[:1]])  # (T,)
    with torch.inference_mode():
        probs, top_ids, target = _blockwise(hidden, head, top_k, targets=targets)
    labels = token_labels(loaded.tokenizer, top_ids.flatten().tolist())
    k = top_ids.shape[1]
    return NextTokenPredictions(
        tokens=analysis.tokens,
        token_ids=tuple(ids.tolist()),
        top_ids=top_ids,
        top_probs=probs,
        top_tokens=tuple(labels[t * k : (t + 1) * k] for t in range(top_ids.shape[0])),
        next_token_prob=target[:-1] if target is not None else torch.empty(0),
    )


@dataclass(frozen=True, eq=False)
class LogitLens:
    """The logit lens (nostalgebraist 2020): every layer's residual stream read as a prediction.

    Row 0 is the embeddings, row ``l + 1`` the output of layer ``l``; each is passed through the
    model's final norm and the unembedding ``W_U`` (tied to the embeddings in SmolLM2), so the last
    row is exactly the model's own prediction. ``top_ids[r, i]`` is the most likely next token
    after position i at row r, with probability ``top_probs[r, i]``.
    """

    tokens: tuple[str, ...]  # (T,)
    row_labels: tuple[str, ...]  # ("embeddings", "layer 0", ..., "layer L-1")
    top_ids: Tensor  # (n_layers + 1, T)
    top_probs: Tensor  # (n_layers + 1, T)
    top_tokens: tuple[tuple[str, ...], ...]  # (n_layers + 1, T)

    def rows(self) -> list[dict[str, Any]]:
        """One row per (layer row, position): ``row``, ``position``, ``token``, ``prediction``,
        ``prob``."""
        return [
            {
                "row": label,
                "position": position,
                "token": self.tokens[position],
                "prediction": self.top_tokens[r][position],
                "prob": float(self.top_probs[r, position]),
            }
            for r, label in enumerate(self.row_labels)
            for position in range(len(self.tokens))
        ]


def _logit_lens(loaded: LoadedModel, analysis: Analysis, out: Any) -> LogitLens:
    """The logit lens from the pass ``out``: ``softmax(W_U norm_f(h_l))`` for the embeddings and
    every layer's output ``h_l``, reduced to the top-1 token and its probability.

    ``out.hidden_states[l]`` (``l < n_layers``) is the input of layer l, before the final norm;
    the last row uses ``out.last_hidden_state``, which the model has already normed.
    """
    norm = architecture_for(loaded.model).final_norm(loaded.model.base_model)
    head = unembedding(loaded)
    states = list(out.hidden_states)[:-1]  # n_layers x (1, T, d): embeddings, layers 0..L-2
    if len(states) != loaded.n_layers:
        raise UnsupportedModelError(
            "error.hidden_states", model=loaded.title, got=len(states) + 1, layers=loaded.n_layers
        )
    probs_rows, id_rows = [], []
    with torch.inference_mode():
        for state in states:
            probs, ids, _ = _blockwise(norm(state)[0], head, 1)
            probs_rows.append(probs[:, 0])
            id_rows.append(ids[:, 0])
        probs, ids, _ = _blockwise(out.last_hidden_state[0], head, 1)
        probs_rows.append(probs[:, 0])
        id_rows.append(ids[:, 0])
    top_ids = torch.stack(id_rows)  # (L + 1, T)
    seq_len = top_ids.shape[1]
    labels = token_labels(loaded.tokenizer, top_ids.flatten().tolist())
    return LogitLens(
        tokens=analysis.tokens,
        row_labels=("embeddings", *(f"layer {layer}" for layer in range(loaded.n_layers))),
        top_ids=top_ids,
        top_probs=torch.stack(probs_rows),
        top_tokens=tuple(labels[r * seq_len : (r + 1) * seq_len] for r in range(top_ids.shape[0])),
    )


@dataclass(frozen=True, eq=False)
class Predictions:
    """What a decoder predicts over one analysis: the next tokens and the logit lens."""

    next_tokens: NextTokenPredictions
    lens: LogitLens


def predict(loaded: LoadedModel, analysis: Analysis, *, top_k: int = 5) -> Predictions:
    """The ``top_k`` next tokens at every position and the logit lens of ``analysis`` under a
    decoder, from one forward pass of its own token ids. Encoders, and families without a known
    final norm, raise an :class:`InputError` / :class:`UnsupportedModelError` before any pass."""
    _require_decoder(loaded)
    architecture = architecture_for(loaded.model)
    if architecture.final_norm is None:
        raise UnsupportedModelError(
            "error.no_final_norm", model=loaded.title, family=architecture.family
        )
    out = _decoder_forward(loaded, analysis)
    return Predictions(
        next_tokens=_next_tokens(loaded, analysis, out, top_k),
        lens=_logit_lens(loaded, analysis, out),
    )
