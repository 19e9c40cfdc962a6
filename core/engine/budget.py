"""The one memory budget and the one size formula for attention weights.

Every place that decides whether weights may be held, built or sent (the analysis' held layers,
words, norm-based attention, the comparison, BertViz, the weights download) asks here, so the limit
and the arithmetic cannot drift apart.
"""

from __future__ import annotations

import math

__all__ = [
    "BYTES_PER_WEIGHT",
    "DEFAULT_BUDGET_BYTES",
    "DOWNLOAD_BUDGET_BYTES",
    "attention_bytes",
    "fits",
    "max_seq_len",
]

# float32: every weight AttnScope holds on the CPU.
BYTES_PER_WEIGHT = 4
# Hold at most this much attention at once (512 MiB: MiniLM to 8k tokens is far below; SmolLM2
# fits up to ~700 tokens). Beyond it only statistics and the chosen layers are held.
DEFAULT_BUDGET_BYTES = 512 * 2**20
# A weights file (npz, safetensors) is built in memory beside the held weights and served by the
# app: at most half the budget (every layer and head: MiniLM to 965 tokens, SmolLM2 to 498).
DOWNLOAD_BUDGET_BYTES = DEFAULT_BUDGET_BYTES // 2


def attention_bytes(
    n_layers: int, n_heads: int, seq_len: int, *, bytes_per_weight: int = BYTES_PER_WEIGHT
) -> int:
    """Bytes of ``n_layers x n_heads x seq_len x seq_len`` weights: ``L·H·T²·b``.

    >>> attention_bytes(6, 12, 512)  # MiniLM at 512 tokens: 72 MiB
    75497472
    >>> attention_bytes(30, 9, 2048) > DEFAULT_BUDGET_BYTES  # SmolLM2 at 2048 tokens: 4.5 GB
    True
    """
    return n_layers * n_heads * seq_len * seq_len * bytes_per_weight


def fits(n_layers: int, n_heads: int, seq_len: int, budget: int = DEFAULT_BUDGET_BYTES) -> bool:
    """Whether ``L x H x T x T`` float32 weights fit in ``budget`` bytes.

    >>> fits(6, 12, 512), fits(30, 9, 2048)
    (True, False)
    """
    return attention_bytes(n_layers, n_heads, seq_len) <= budget


def max_seq_len(n_layers: int, n_heads: int, budget: int = DEFAULT_BUDGET_BYTES) -> int:
    """The longest sequence whose ``n_layers x n_heads`` attention fits in ``budget`` bytes.

    >>> max_seq_len(30, 9)  # SmolLM2
    705
    >>> fits(30, 9, 705), fits(30, 9, 706)
    (True, False)
    """
    per_cell = attention_bytes(n_layers, n_heads, 1)
    return math.isqrt(budget // max(1, per_cell))
