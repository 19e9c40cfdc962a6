"""The lab's model: a small GPT-2 (learned position embeddings, as nanoGPT and the learners' own
GPT) made from a :class:`LabShape`, wrapped as a :class:`~core.engine.models.LoadedModel` so that
every method and page of AttnScope reads it as it reads a loaded model.

Attention-only models (Olsson et al. 2022, "In-context Learning and Induction Heads") stay a plain
GPT-2 that any transformers install opens without remote code: every block's MLP output
projection ``c_proj`` (weight and bias) is set to zero and frozen, so ``mlp(x) = 0`` exactly and
each block adds attention only (``h + attn(ln_1(h)) + 0``); the MLP's inner width is 1 so that
the dead branch costs nothing. The zeros are saved with the weights and stay zero when loaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch

from core.engine.models import LoadedModel

if TYPE_CHECKING:
    from core.lab.tokenizer import LabVocabulary

__all__ = [
    "LabShape",
    "build_model",
    "gpt2_config",
    "lab_loaded",
    "mlp_is_zero",
    "vocabulary_model",
]


@dataclass(frozen=True)
class LabShape:
    """A lab model's shape. ``d_model`` must be a multiple of ``n_heads``."""

    n_layers: int = 2
    n_heads: int = 4
    d_model: int = 64
    context: int = 64  # the most tokens one input may have (learned positions)
    attention_only: bool = True
    vocab_size: int = 64

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gpt2_config(shape: LabShape) -> Any:
    """The Hugging Face ``GPT2Config`` of ``shape``: no dropout (a run is repeatable), tied
    embeddings, ids 1 and 2 as BOS and EOS (see :data:`core.lab.tokenizer.SPECIAL_TOKENS`)."""
    from transformers import GPT2Config

    if shape.d_model % shape.n_heads:
        raise ValueError(f"d_model {shape.d_model} is not a multiple of n_heads {shape.n_heads}")
    return GPT2Config(
        vocab_size=shape.vocab_size,
        n_positions=shape.context,
        n_embd=shape.d_model,
        n_layer=shape.n_layers,
        n_head=shape.n_heads,
        n_inner=1 if shape.attention_only else 4 * shape.d_model,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
        tie_word_embeddings=True,
        architectures=["GPT2LMHeadModel"],
    )


def build_model(shape: LabShape, *, seed: int = 0) -> Any:
    """A freshly initialised ``GPT2LMHeadModel`` of ``shape`` (weights drawn from a generator
    seeded with ``seed``, so the same seed gives the same model), in train mode, eager
    attention. Attention-only: every MLP's ``c_proj`` is zero and frozen."""
    from transformers import GPT2LMHeadModel

    config = gpt2_config(shape)
    config._attn_implementation = "eager"
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = GPT2LMHeadModel(config)
    finally:
        torch.random.set_rng_state(state)
    if shape.attention_only:
        for block in model.transformer.h:
            projection = block.mlp.c_proj
            with torch.no_grad():
                projection.weight.zero_()
                projection.bias.zero_()
            projection.weight.requires_grad_(False)
            projection.bias.requires_grad_(False)
    return model.train()


def mlp_is_zero(model: Any) -> bool:
    """Whether every block's MLP output projection is exactly zero (weight and bias)."""
    return all(
        bool((block.mlp.c_proj.weight == 0).all() and (block.mlp.c_proj.bias == 0).all())
        for block in model.transformer.h
    )


def lab_loaded(model: Any, vocabulary: LabVocabulary, *, name: str = "lab") -> LoadedModel:
    """``model`` and ``vocabulary``'s tokenizer as a :class:`LoadedModel` (CPU, as it is now:
    the caller sets train or eval mode), with AttnScope's attention function where its family
    allows."""
    from core.engine.attention_fn import use_attnscope

    use_attnscope(model)
    config = model.config
    return LoadedModel(
        name=name,
        source=name,
        model=model,
        tokenizer=vocabulary.tokenizer,
        kind="decoder",
        n_layers=int(config.n_layer),
        n_heads=int(config.n_head),
        n_kv_heads=int(config.n_head),
        max_tokens=int(config.n_positions),
        device=torch.device("cpu"),
        load_seconds=0.0,
    )


def vocabulary_model(vocabulary: LabVocabulary) -> LoadedModel:
    """A vocabulary with no trained model yet, wrapped in a one-layer, one-head GPT-2 (a few
    hundred weights per token) so that it can be tokenized and shown like any model."""
    size = vocabulary.vocab_size
    shape = LabShape(n_layers=1, n_heads=1, d_model=8, context=8, vocab_size=size)
    return lab_loaded(build_model(shape).eval(), vocabulary, name=f"lab-{vocabulary.kind}")
