"""How a head is taken out of a forward pass: zero ablation or mean ablation of its output, by a
forward pre-hook on the output projection that is always removed (transformers 5 has no
``head_mask``). :mod:`core.methods.ablation` measures what the ablation changes.

The hook edits the output projection's input, the heads' outputs concatenated ``(batch, T,
n_heads * head_dim)``, so head h's term ``a_h V_h W_O^h`` changes and nothing else. The
projection's bias ``b_O`` belongs to no head and stays: in BERT and GPT-2, ablating every head of
a layer leaves the attention output at ``b_O``, not 0 (Llama's ``o_proj`` has no bias).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from core.engine.hooks import HookSet, projections
from core.policy.errors import InputError

if TYPE_CHECKING:
    from core.engine.models import LoadedModel

__all__ = [
    "ABLATION_MODES",
    "AblationMode",
    "Head",
    "ablate_heads",
    "ablated_input",
    "check_head",
]

Head = tuple[int, int]  # (layer, head)
# "zero": the head's output is 0 (off-distribution: the model never saw it); "mean": its output
# at every position is its mean over the text's positions (Wang et al. 2022, "Interpretability in
# the Wild", ablate with means; here over one text, so in a decoder the mean carries information
# from later positions, the same vector at every position).
AblationMode = Literal["zero", "mean"]
ABLATION_MODES: tuple[AblationMode, ...] = ("zero", "mean")


def ablated_input(x: Tensor, keep: Tensor, mode: AblationMode = "zero") -> Tensor:
    """The output projection's input ``x`` ``(batch, T, width)`` with the columns where ``keep``
    ``(batch, 1, width)`` is false replaced: by 0 (``"zero"``) or by their mean over positions,
    ``mean_t x[b, t, c]`` (``"mean"``). A new tensor; ``x`` is not modified.

    >>> x = torch.tensor([[[1.0, 10.0], [3.0, 20.0]]])  # one item, T = 2, width 2
    >>> keep = torch.tensor([[[True, False]]])
    >>> ablated_input(x, keep, "zero"), ablated_input(x, keep, "mean")
    (tensor([[[1., 0.],
             [3., 0.]]]), tensor([[[ 1., 15.],
             [ 3., 15.]]]))
    """
    keep = keep.to(x.device)
    if mode == "zero":
        return x.masked_fill(~keep, 0.0)
    if mode == "mean":
        return torch.where(keep, x, x.mean(dim=1, keepdim=True))
    raise ValueError(f"mode must be one of {ABLATION_MODES}, got {mode!r}")


def check_head(loaded: LoadedModel, layer: int, head: int) -> None:
    """An :class:`InputError` naming the model's last layer and head, for a head it lacks."""
    if not (0 <= layer < loaded.n_layers and 0 <= head < loaded.n_heads):
        raise InputError(
            "error.no_such_head",
            head=head,
            layer=layer,
            model=loaded.title,
            last_layer=loaded.n_layers - 1,
            last_head=loaded.n_heads - 1,
        )


def heads_by_layer(loaded: LoadedModel, heads: Iterable[Head]) -> dict[int, list[int]]:
    """``heads`` grouped by layer; an :class:`InputError` for a head the model does not have."""
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        check_head(loaded, layer, head)
        by_layer.setdefault(int(layer), []).append(int(head))
    return by_layer


def _masked(keep: Tensor, mode: AblationMode) -> Callable[..., tuple[object, ...]]:
    """A forward pre-hook: the first input as :func:`ablated_input` makes it."""

    def hook(module, args):
        return (ablated_input(args[0], keep, mode), *args[1:])

    return hook


@contextmanager
def ablate_per_item(
    loaded: LoadedModel, items: Sequence[Iterable[Head]], mode: AblationMode = "zero"
) -> Iterator[None]:
    """Batch item b runs with the heads ``items[b]`` ablated (one item: every item of any
    batch). Masks are ``(len(items), 1, n_heads * head_dim)``, broadcast over positions."""
    if mode not in ABLATION_MODES:
        raise ValueError(f"mode must be one of {ABLATION_MODES}, got {mode!r}")
    per_item = [heads_by_layer(loaded, heads) for heads in items]
    layers = sorted({layer for by_layer in per_item for layer in by_layer})
    modules = projections(loaded) if layers else ()
    with HookSet() as hooks:
        for layer in layers:
            found = modules[layer]
            keep = torch.ones(len(items), found.n_heads, found.head_dim, dtype=torch.bool)
            for item, by_layer in enumerate(per_item):
                keep[item, by_layer.get(layer, [])] = False
            hooks.forward_pre(found.output, _masked(keep.reshape(len(items), 1, -1), mode))
        yield


@contextmanager
def ablate_heads(
    loaded: LoadedModel, heads: Iterable[Head], *, mode: AblationMode = "zero"
) -> Iterator[None]:
    """Inside the ``with`` block, every ``(layer, head)`` in ``heads`` is ablated.

    A forward pre-hook on each affected layer's output projection replaces its input ``x``
    ``(batch, T, n_heads * head_dim)`` by a copy whose columns ``h * head_dim .. (h + 1) *
    head_dim`` are 0 (``mode="zero"``, the default) or their mean over the text's positions
    (``"mean"``), see :func:`ablated_input`. The projection's bias stays. The hooks are removed
    on leaving the block, also when the forward pass raises.
    """
    with ablate_per_item(loaded, [list(heads)], mode):
        yield
