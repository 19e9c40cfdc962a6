"""The lab's model: a small GPT-2 (learned position embeddings, as nanoGPT and the learners' own
GPT) or Llama (rotary positions, RMSNorm) made from a :class:`LabShape`, wrapped as a
:class:`~core.engine.models.LoadedModel` so that every method and page of AttnScope reads it as
it reads a loaded model. Why two: GPT-2 is the model learners write; the induction recipe needs
rotary positions, since with learned ones a layer-0 head can copy by absolute position (see
:data:`core.lab.train.INDUCTION_RECIPE`).

Attention-only models (Olsson et al. 2022, "In-context Learning and Induction Heads") stay a plain
GPT-2 or Llama that any transformers install opens without remote code: every block's MLP output
projection (GPT-2's ``c_proj``, weight and bias; Llama's ``down_proj``) is set to zero and
frozen, so ``mlp(x) = 0`` exactly and each block adds attention only; the MLP's inner width is 1
so that the dead branch costs nothing. The zeros are saved with the weights and stay zero when
loaded.
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
    "llama_config",
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
    family: str = "gpt2"  # "gpt2" (learned positions) or "llama" (rotary, RMSNorm)
    init: float = 0.02  # standard deviation of the initial weights (initializer_range)

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


def llama_config(shape: LabShape) -> Any:
    """The Hugging Face ``LlamaConfig`` of ``shape``: rotary positions (no position embedding to
    learn, so no head can copy by absolute position), RMSNorm, as many key heads as query heads,
    tied embeddings, the same special ids as :func:`gpt2_config`."""
    from transformers import LlamaConfig

    if shape.d_model % shape.n_heads:
        raise ValueError(f"d_model {shape.d_model} is not a multiple of n_heads {shape.n_heads}")
    return LlamaConfig(
        vocab_size=shape.vocab_size,
        hidden_size=shape.d_model,
        intermediate_size=1 if shape.attention_only else 4 * shape.d_model,
        num_hidden_layers=shape.n_layers,
        num_attention_heads=shape.n_heads,
        num_key_value_heads=shape.n_heads,
        max_position_embeddings=shape.context,
        initializer_range=shape.init,
        attention_dropout=0.0,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
        tie_word_embeddings=True,
        architectures=["LlamaForCausalLM"],
    )


def _mlp_outputs(model: Any) -> list[Any]:
    """Every block's MLP output projection (GPT-2's ``c_proj``, Llama's ``down_proj``)."""
    if model.config.model_type == "llama":
        return [layer.mlp.down_proj for layer in model.model.layers]
    return [block.mlp.c_proj for block in model.transformer.h]


def build_model(shape: LabShape, *, seed: int = 0) -> Any:
    """A freshly initialised ``GPT2LMHeadModel`` or ``LlamaForCausalLM`` of ``shape`` (weights
    drawn from a generator seeded with ``seed``, so the same seed gives the same model), in
    train mode, eager attention. Attention-only: every MLP's output projection is zero and
    frozen."""
    from transformers import GPT2LMHeadModel, LlamaForCausalLM

    if shape.family not in ("gpt2", "llama"):
        raise ValueError(f"family must be 'gpt2' or 'llama', got {shape.family!r}")
    if shape.family == "llama":
        config, build = llama_config(shape), LlamaForCausalLM
    else:
        config, build = gpt2_config(shape), GPT2LMHeadModel
        config.initializer_range = shape.init
    config._attn_implementation = "eager"
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = build(config)
    finally:
        torch.random.set_rng_state(state)
    if shape.attention_only:
        for projection in _mlp_outputs(model):
            for weight in (projection.weight, projection.bias):
                if weight is not None:
                    with torch.no_grad():
                        weight.zero_()
                    weight.requires_grad_(False)
    return model.train()


def mlp_is_zero(model: Any) -> bool:
    """Whether every block's MLP output projection is exactly zero (weight and bias)."""
    return all(
        bool((p.weight == 0).all()) and (p.bias is None or bool((p.bias == 0).all()))
        for p in _mlp_outputs(model)
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
        n_layers=int(config.num_hidden_layers),
        n_heads=int(config.num_attention_heads),
        n_kv_heads=int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads),
        max_tokens=int(config.max_position_embeddings),
        device=torch.device("cpu"),
        load_seconds=0.0,
    )


def vocabulary_model(vocabulary: LabVocabulary) -> LoadedModel:
    """A vocabulary with no trained model yet, wrapped in a one-layer, one-head GPT-2 (a few
    hundred weights per token) so that it can be tokenized and shown like any model."""
    size = vocabulary.vocab_size
    shape = LabShape(n_layers=1, n_heads=1, d_model=8, context=8, vocab_size=size)
    return lab_loaded(build_model(shape).eval(), vocabulary, name=f"lab-{vocabulary.kind}")
