"""Where a model keeps its attention: the modules whose output holds the weights
(:func:`attention_modules`, for any model transformers records ``attentions`` of), each
architecture's value and output projections (:func:`projections`) and query and key projections
(:func:`query_key_modules`), and forward hooks that are always removed, so a failed run never
leaves a hook behind in a cached model.

Every supported family is one entry of :data:`ARCHITECTURES`, keyed by ``config.model_type``; its
accessors are plain functions over modules (no attribute names built from strings). Modules are
reached from ``model.base_model``, so ``BertModel`` and ``LlamaForCausalLM`` work alike.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from core.policy.errors import UnsupportedModelError

if TYPE_CHECKING:
    from core.engine.models import LoadedModel

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "Projections",
    "HookSet",
    "QueryKeyModules",
    "architecture_for",
    "attention_modules",
    "count_hooks",
    "output_matrix",
    "projections",
    "query_key_modules",
]


def _same(values: Tensor) -> Tensor:
    return values


def _third_of_fused_qkv(qkv: Tensor) -> Tensor:
    """GPT-2's ``c_attn`` returns ``[q | k | v]`` concatenated on the last axis: keep ``v``."""
    return qkv.chunk(3, dim=-1)[2]


def _first_of_fused_qkv(qkv: Tensor) -> Tensor:
    """GPT-2's ``c_attn`` output ``[q | k | v]``: keep ``q``."""
    return qkv.chunk(3, dim=-1)[0]


def _second_of_fused_qkv(qkv: Tensor) -> Tensor:
    """GPT-2's ``c_attn`` output ``[q | k | v]``: keep ``k``."""
    return qkv.chunk(3, dim=-1)[1]


@dataclass(frozen=True)
class Architecture:
    """How to reach one model family's attention modules, starting from ``model.base_model``.

    ``value(block)`` is the module whose output holds the values ``x W_V + b_V`` of every KV head,
    ``(..., n_kv_heads * head_dim)`` once passed through ``value_part``; ``output(block)`` is the
    output projection ``W_O``, whose *input* is the heads' outputs concatenated head by head,
    ``(..., n_heads * head_dim)``. ``weight_in_out`` is true where the output projection stores its
    weight as ``(in, out)`` (GPT-2's ``Conv1D``) rather than ``nn.Linear``'s ``(out, in)``.
    ``residual_in(block)`` is a module whose first input is the residual stream ``x`` entering the
    attention block, the ``x`` of ``x + Attn(...)``; ``post_norm(block)`` is the LayerNorm applied
    to that sum in post-LN models (BERT), None where the norm comes before the attention (pre-LN:
    Llama's RMSNorm, GPT-2's ``ln_1``).

    For the neuron view: ``attention(block)`` is the attention module (it holds ``scaling`` and is
    called with the mask and, in rotary models, ``position_embeddings``); ``query(block)`` and
    ``key(block)`` are the modules whose outputs, through ``query_part`` and ``key_part``, hold
    every head's ``x W_Q + b_Q`` and ``x W_K + b_K``; ``rotary`` says that q and k are rotated
    (RoPE) after the projection, before their dot product.
    """

    family: str
    blocks: Callable[[nn.Module], Sequence[nn.Module]]
    value: Callable[[nn.Module], nn.Module]
    output: Callable[[nn.Module], nn.Module]
    residual_in: Callable[[nn.Module], nn.Module]
    value_part: Callable[[Tensor], Tensor] = _same
    final_norm: Callable[[nn.Module], nn.Module] | None = None  # decoders: the norm before W_U
    post_norm: Callable[[nn.Module], nn.Module] | None = None  # post-LN: LN(x + Attn(x))
    weight_in_out: bool = False
    attention: Callable[[nn.Module], nn.Module] | None = None
    query: Callable[[nn.Module], nn.Module] | None = None
    key: Callable[[nn.Module], nn.Module] | None = None
    query_part: Callable[[Tensor], Tensor] = _same
    key_part: Callable[[Tensor], Tensor] = _same
    rotary: bool = False


_BERT = Architecture(
    family="BERT",
    blocks=lambda base: base.encoder.layer,
    value=lambda block: block.attention.self.value,
    output=lambda block: block.attention.output.dense,
    residual_in=lambda block: block.attention.self.value,  # post-LN: values read x itself
    post_norm=lambda block: block.attention.output.LayerNorm,
    attention=lambda block: block.attention.self,
    query=lambda block: block.attention.self.query,
    key=lambda block: block.attention.self.key,
)
_LLAMA = Architecture(
    family="Llama",
    blocks=lambda base: base.layers,
    value=lambda block: block.self_attn.v_proj,
    output=lambda block: block.self_attn.o_proj,
    residual_in=lambda block: block.input_layernorm,
    final_norm=lambda base: base.norm,
    attention=lambda block: block.self_attn,
    query=lambda block: block.self_attn.q_proj,
    key=lambda block: block.self_attn.k_proj,
    rotary=True,
)
_GPT2 = Architecture(
    family="GPT-2",
    blocks=lambda base: base.h,
    value=lambda block: block.attn.c_attn,
    output=lambda block: block.attn.c_proj,
    residual_in=lambda block: block.ln_1,
    value_part=_third_of_fused_qkv,
    final_norm=lambda base: base.ln_f,
    weight_in_out=True,
    attention=lambda block: block.attn,
    query=lambda block: block.attn.c_attn,
    key=lambda block: block.attn.c_attn,
    query_part=_first_of_fused_qkv,
    key_part=_second_of_fused_qkv,
)

# config.model_type -> architecture. RoBERTa shares BERT's modules; Mistral and Qwen2 Llama's
# (Qwen2 adds a bias to v_proj, which the norm-based attention includes as b_V).
ARCHITECTURES: dict[str, Architecture] = {
    "bert": _BERT,
    "roberta": _BERT,
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "gpt2": _GPT2,
}


def architecture_for(model: nn.Module) -> Architecture:
    """The :class:`Architecture` of ``model`` (any ``PreTrainedModel``), or an
    :class:`~core.policy.errors.UnsupportedModelError` saying which families are supported."""
    model_type = str(getattr(getattr(model, "config", None), "model_type", "") or "unknown")
    architecture = ARCHITECTURES.get(model_type)
    if architecture is None:
        supported = ", ".join(sorted(ARCHITECTURES))
        raise UnsupportedModelError(
            "error.unknown_architecture", model_type=model_type, supported=supported
        )
    return architecture


@dataclass(frozen=True)
class Projections:
    """One layer's value and output projections, and its sizes; the residual stream's way in and
    the post-attention LayerNorm (post-LN models only), see :class:`Architecture`."""

    layer: int
    value: nn.Module
    output: nn.Module
    n_heads: int
    n_kv_heads: int
    head_dim: int
    residual_in: nn.Module | None = None
    post_norm: nn.Module | None = None


def output_matrix(architecture: Architecture, output: nn.Module) -> Tensor:
    """The output projection as an ``(n_heads * head_dim, hidden)`` matrix: ``y = x @ W_O + b``."""
    weight = output.weight  # Linear: (out, in); Conv1D: (in, out)
    return weight if architecture.weight_in_out else weight.T


def projections(loaded: LoadedModel) -> tuple[Projections, ...]:
    """Every layer's value and output projection, from ``loaded.model.base_model``.

    ``head_dim`` is read from the output projection (``n_heads * head_dim`` inputs), so configs
    whose ``head_dim`` is not ``hidden / n_heads`` work too.
    """
    architecture = architecture_for(loaded.model)
    blocks = architecture.blocks(loaded.model.base_model)
    if len(blocks) != loaded.n_layers:
        raise UnsupportedModelError(
            "error.block_count", model=loaded.title, layers=loaded.n_layers, blocks=len(blocks)
        )
    found = []
    for layer, block in enumerate(blocks):
        output = architecture.output(block)
        width = output_matrix(architecture, output).shape[0]
        if width % loaded.n_heads or loaded.n_heads % loaded.n_kv_heads:
            raise UnsupportedModelError(
                "error.head_split",
                model=loaded.title,
                layer=layer,
                width=width,
                heads=loaded.n_heads,
                kv_heads=loaded.n_kv_heads,
            )
        found.append(
            Projections(
                layer=layer,
                value=architecture.value(block),
                output=output,
                n_heads=loaded.n_heads,
                n_kv_heads=loaded.n_kv_heads,
                head_dim=width // loaded.n_heads,
                residual_in=architecture.residual_in(block),
                post_norm=architecture.post_norm(block) if architecture.post_norm else None,
            )
        )
    return tuple(found)


@dataclass(frozen=True)
class QueryKeyModules:
    """One layer's attention module and the modules whose outputs hold its queries and keys (see
    :class:`Architecture`), with the parts that pick q and k out of those outputs."""

    layer: int
    attention: nn.Module
    query: nn.Module
    key: nn.Module
    query_part: Callable[[Tensor], Tensor]
    key_part: Callable[[Tensor], Tensor]
    rotary: bool


def query_key_modules(loaded: LoadedModel, layer: int) -> QueryKeyModules:
    """Layer ``layer``'s attention module and its query and key projections, from
    ``loaded.model.base_model``; :class:`UnsupportedModelError` for families without them."""
    architecture = architecture_for(loaded.model)
    if architecture.attention is None or architecture.query is None or architecture.key is None:
        supported = ", ".join(sorted(k for k, a in ARCHITECTURES.items() if a.query is not None))
        raise UnsupportedModelError(
            "error.unknown_architecture", model_type=architecture.family, supported=supported
        )
    block = architecture.blocks(loaded.model.base_model)[layer]
    return QueryKeyModules(
        layer=layer,
        attention=architecture.attention(block),
        query=architecture.query(block),
        key=architecture.key(block),
        query_part=architecture.query_part,
        key_part=architecture.key_part,
        rotary=architecture.rotary,
    )


# Attention modules return (attn_output, attn_weights): the weights are item 1 unless a model's
# OutputRecorder says otherwise (transformers uses the same default).
_WEIGHTS_INDEX = 1


def attention_modules(model: nn.Module) -> tuple[list[nn.Module], int]:
    """The attention modules of ``model`` in layer order, and where their output holds the weights.

    Found the way transformers itself records ``attentions``: from the model's
    ``_can_record_outputs`` entry (a module class, a class-name suffix or an ``OutputRecorder``).
    Raises :class:`UnsupportedModelError` for models that do not declare it.
    """
    base = getattr(model, "base_model", model)
    spec = (getattr(base, "_can_record_outputs", None) or {}).get("attentions")
    if spec is None:
        raise UnsupportedModelError("error.no_attention_modules", model=type(model).__name__)
    if isinstance(spec, type):  # a module class
        target_class, class_name, layer_name, index = spec, None, None, _WEIGHTS_INDEX
    elif isinstance(spec, str):  # a class-name suffix
        target_class, class_name, layer_name, index = None, spec, None, _WEIGHTS_INDEX
    else:  # an OutputRecorder, which states its own index
        target_class, class_name = spec.target_class, spec.class_name
        layer_name, index = spec.layer_name, spec.index
    found = []
    for name, module in base.named_modules():
        matches = (target_class is not None and isinstance(module, target_class)) or (
            class_name is not None and name.endswith(class_name)
        )
        if matches and (layer_name is None or f".{layer_name.strip('.')}." in f".{name}."):
            found.append(module)
    return found, index


def _this_thread_only(hook: Callable[..., Any]) -> Callable[..., Any]:
    """``hook``, run only for forward passes made by the thread that registered it.

    A cached model is shared by every session of a server, each in its own thread; without
    this, one session's hooks would read (or zero heads in) another session's forward pass.
    """
    owner = threading.get_ident()

    def guarded(*args: Any) -> Any:
        if threading.get_ident() != owner:
            return None
        return hook(*args)

    guarded.attnscope_hook = True  # what count_hooks counts
    return guarded


class HookSet:
    """Forward hooks registered for the duration of a ``with`` block, then always removed.
    Hooks act only on forward passes of the thread that registered them (see
    :func:`_this_thread_only`).

    >>> layer = nn.Linear(2, 2)
    >>> with HookSet() as hooks:
    ...     hooks.forward_pre(layer, lambda module, args: None)
    ...     count_hooks(layer)
    1
    >>> count_hooks(layer)
    0
    """

    def __init__(self) -> None:
        self._handles: list[Any] = []

    def forward(self, module: nn.Module, hook: Callable[..., Any]) -> None:
        """``hook(module, args, output)`` after ``module`` runs; a non-None return replaces the
        output."""
        self._handles.append(module.register_forward_hook(_this_thread_only(hook)))

    def forward_pre(
        self, module: nn.Module, hook: Callable[..., Any], *, with_kwargs: bool = False
    ) -> None:
        """``hook(module, args)`` before ``module`` runs; a non-None return replaces ``args``.
        With ``with_kwargs``, ``hook(module, args, kwargs)`` sees the keyword arguments too."""
        self._handles.append(
            module.register_forward_pre_hook(_this_thread_only(hook), with_kwargs=with_kwargs)
        )

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()

    def __enter__(self) -> HookSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def count_hooks(model: nn.Module) -> int:
    """How many of AttnScope's forward and forward-pre hooks ``model`` and its submodules hold
    (for tests). transformers' own hooks are not counted: a first call with
    ``output_attentions=True`` installs its output-capturing hooks for good.

    >>> layer = nn.Linear(2, 2)
    >>> handle = layer.register_forward_hook(lambda module, args, output: None)
    >>> count_hooks(layer)
    0
    >>> handle.remove()
    """
    return sum(
        getattr(hook, "attnscope_hook", False)
        for m in model.modules()
        for hook in (*m._forward_hooks.values(), *m._forward_pre_hooks.values())
    )
