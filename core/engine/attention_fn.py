"""AttnScope's own attention function, registered with transformers' ``AttentionInterface`` as
``"attnscope"``.

Outside :func:`blocks_to` it is eager attention: ``softmax(q k^T * scaling + mask) v``, returning
the full ``(B, H, T, S)`` weights, so hooks on the attention modules and ``output_attentions``
work as they do under ``"eager"``. Inside ``blocks_to(sink)`` (this thread only: a cached model
is shared by every session) it computes attention in blocks of queries and hands each block's
exact weights and logits to ``sink(layer, start, weights, logits)``, then drops them; the
module returns no weights. Memory is then ``O(block x S)`` per layer instead of ``O(H x T x S)``.

Masks come from transformers' SDPA mask builder (registered for this name too): a boolean
``(B, 1, T, S)`` mask with True where a query may look, or None for a plain causal or
bidirectional pass, decided as ``sdpa_attention_forward`` decides it. Masked logits are set to
the dtype's minimum (eager adds it), so that a row with every key masked (a padding query) comes
out uniform, as in eager.

Which families use it: :data:`FAMILIES` (their modules call the interface with ``(module,
query, key, value, attention_mask, scaling=...)`` and nothing else that changes the result);
every other model keeps ``"eager"``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import contextmanager

import torch
from torch import Tensor, nn

__all__ = [
    "BLOCK_BYTES",
    "FAMILIES",
    "NAME",
    "BlockSink",
    "attnscope_attention",
    "block_rows",
    "blocks_to",
    "register",
    "use_attnscope",
    "uses_attnscope",
    "visible",
]

NAME = "attnscope"
# model_type values whose attention modules are known to call the interface plainly; the unit
# tests check each against eager (tests/unit/test_attention_fn.py).
FAMILIES = frozenset({"bert", "roberta", "llama", "qwen2", "mistral", "gpt2"})
BLOCK_BYTES = 64 * 2**20  # one block's float32 logits and weights, all heads: 2 x 64 MiB at most

# sink(layer, start, weights, logits): the block's queries start..start+b of batch item 0,
# weights (H, b, K) float32 and logits (H, b, K) float32 with masked entries at the minimum,
# over keys 0..K. K <= S: in a causal pass the keys past the block's last query are left out
# (their weights are 0).
BlockSink = Callable[[int, int, Tensor, Tensor], None]

_local = threading.local()


def block_rows(n_heads: int, n_keys: int, block_bytes: int = BLOCK_BYTES) -> int:
    """Queries per block: as many as keep one block's ``(H, b, S)`` float32 under
    ``block_bytes``, at least one.

    >>> block_rows(9, 8192)  # SmolLM2 at its full context: 227 queries a block
    227
    >>> block_rows(12, 16)
    87381
    """
    return max(1, block_bytes // (n_heads * n_keys * 4))


@contextmanager
def blocks_to(sink: BlockSink, layers: dict[nn.Module, int], *, block_bytes: int | None = None):
    """Within the block, this thread's passes through ``"attnscope"`` attention hand their
    weights to ``sink`` block by block. ``layers`` maps each attention module to its layer."""
    previous = getattr(_local, "state", None)
    _local.state = (sink, layers, BLOCK_BYTES if block_bytes is None else block_bytes)
    try:
        yield
    finally:
        _local.state = previous


def _is_causal(
    module: nn.Module, attention_mask: Tensor | None, q_len: int, **kwargs: object
) -> bool:
    """Whether a pass with no mask is causal, decided as ``sdpa_attention_forward`` decides."""
    is_causal = kwargs.get("is_causal")
    is_causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    return attention_mask is None and q_len > 1 and bool(is_causal)


def _keep(
    attention_mask: Tensor | None,
    causal: bool,
    offset: int,
    rows: slice,
    n_keys: int,
    device: torch.device,
) -> Tensor | None:
    """The boolean mask of queries ``rows`` over keys ``0..n_keys``: ``(B | 1, 1, b, n_keys)``,
    True where a query may look, or None where every key is visible. ``offset``: the position
    of query 0 among the keys (``S - T``)."""
    if attention_mask is not None:
        block = attention_mask[:, :, rows, :n_keys]
        if block.dtype == torch.bool:
            return block
        # a float mask (a model that builds its own): 0 to keep, a large negative to drop
        return block > torch.finfo(block.dtype).min / 2
    if not causal:
        return None
    queries = torch.arange(rows.start, rows.stop, device=device)[:, None]  # (b, 1)
    keys = torch.arange(n_keys, device=device)[None, :]  # (1, n_keys)
    return (keys <= queries + offset)[None, None]  # (1, 1, b, n_keys)


def visible(module: nn.Module, attention_mask: Tensor | None, seq_len: int) -> Tensor:
    """``(T, T)`` bool: which keys each query of one text saw in a pass through ``module`` called
    with ``attention_mask`` (None: causal or all, as the module's ``is_causal`` says, the way
    transformers' SDPA mask builder leaves it for a plain pass).

    >>> class Causal(nn.Module):
    ...     is_causal = True
    >>> visible(Causal(), None, 3).int().tolist()
    [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    """
    causal = _is_causal(module, attention_mask, seq_len)
    keep = _keep(attention_mask, causal, 0, slice(0, seq_len), seq_len, torch.device("cpu"))
    if keep is None:
        return torch.ones(seq_len, seq_len, dtype=torch.bool)
    while keep.dim() > 2:
        keep = keep[0]
    return keep.cpu().expand(seq_len, seq_len)


def _attend(logits: Tensor, keep: Tensor | None) -> tuple[Tensor, Tensor]:
    """Masked logits (in place) and their softmax ``(..., b, S)``, both float32."""
    logits = logits.float()
    if keep is not None:
        logits.masked_fill_(~keep, torch.finfo(torch.float32).min)
    return logits, torch.softmax(logits, dim=-1)


def attnscope_attention(
    module: nn.Module,
    query: Tensor,  # (B, H, T, D)
    key: Tensor,  # (B, KV, S, D)
    value: Tensor,  # (B, KV, S, D)
    attention_mask: Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: object,
) -> tuple[Tensor, Tensor | None]:
    """Attention of one layer: ``(output (B, T, H, D), weights (B, H, T, S) or None)``."""
    batch, n_heads, q_len, head_dim = query.shape
    k_len = key.shape[-2]
    offset = k_len - q_len  # queries are the last q_len positions
    if scaling is None:
        scaling = head_dim**-0.5
    groups = n_heads // key.shape[1]
    if groups > 1:  # GQA: query head h reads key/value head h // groups
        key = key.repeat_interleave(groups, dim=1)  # (B, H, S, D)
        value = value.repeat_interleave(groups, dim=1)  # (B, H, S, D)
    causal = _is_causal(module, attention_mask, q_len, **kwargs)
    state = getattr(_local, "state", None)
    layer = None if state is None else state[1].get(module)
    if layer is None:  # eager: the full weights, returned
        logits = torch.matmul(query, key.transpose(-1, -2)).mul_(scaling)  # (B, H, T, S)
        keep = _keep(attention_mask, causal, offset, slice(0, q_len), k_len, query.device)
        _, weights = _attend(logits, keep)
        weights = nn.functional.dropout(
            weights.to(value.dtype), p=dropout, training=module.training
        )
        return torch.matmul(weights, value).transpose(1, 2), weights  # (B, T, H, D)
    sink, _, block_bytes = state
    out = torch.empty(batch, n_heads, q_len, head_dim, dtype=value.dtype, device=value.device)
    step = block_rows(n_heads * batch, k_len, block_bytes)
    key_t = key.transpose(-1, -2)  # (B, H, D, S)
    for start in range(0, q_len, step):
        stop = min(q_len, start + step)
        # causal: the block's queries see no key past its last query, so those are not computed
        reach = min(k_len, offset + stop) if causal else k_len
        logits = torch.matmul(query[:, :, start:stop], key_t[..., :reach]).mul_(scaling)
        keep = _keep(attention_mask, causal, offset, slice(start, stop), reach, query.device)
        logits, weights = _attend(logits, keep)  # (B, H, b, reach) float32
        out[:, :, start:stop] = torch.matmul(weights.to(value.dtype), value[:, :, :reach])
        sink(layer, start, weights[0], logits[0])  # (H, b, reach): keys past reach weigh 0
        del logits, weights
    return out.transpose(1, 2), None  # (B, T, H, D)


def register() -> None:
    """Register ``"attnscope"`` with transformers' attention and mask interfaces (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, attnscope_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)


def uses_attnscope(model: nn.Module) -> bool:
    """Whether ``model`` runs its attention through ``"attnscope"``."""
    return getattr(model.config, "_attn_implementation", None) == NAME


def use_attnscope(model: nn.Module) -> bool:
    """Switch ``model`` to ``"attnscope"`` attention where its family is in :data:`FAMILIES`;
    True if it now uses it. Other models keep what they had (eager)."""
    if getattr(model.config, "model_type", None) not in FAMILIES:
        return False
    register()
    model.set_attn_implementation(NAME)
    return True
