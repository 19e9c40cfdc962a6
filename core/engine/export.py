"""The analysed attention weights as a file: NumPy ``.npz`` or ``.safetensors``, with the tokens,
for the layers and heads chosen, size-checked against the download budget
(:data:`core.engine.budget.DOWNLOAD_BUDGET_BYTES`).

Both files hold ``attention`` ``(n_layers', n_heads', seq_len, seq_len)`` float32 (axes
``[layer, head, query_pos, key_pos]``, the layers and heads chosen, in the order given),
``layers`` and ``heads`` (which ones they are) and, for a runnable analysis, ``token_ids``. The
``.npz`` holds ``tokens`` as a string array and the model and derivation as 0-d strings, all
loadable with ``np.load(path)`` (no pickle); ``.safetensors`` keeps tokens, model and derivation as
JSON text in its metadata.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from core.engine.analysis import Analysis
from core.engine.budget import DOWNLOAD_BUDGET_BYTES, attention_bytes
from core.policy.errors import InputError

__all__ = [
    "FORMATS",
    "WeightsFormat",
    "read_weights_file",
    "weights_file",
    "weights_file_bytes",
]

WeightsFormat = Literal["npz", "safetensors"]
FORMATS: dict[WeightsFormat, str] = {  # format -> MIME type
    "npz": "application/zip",
    "safetensors": "application/octet-stream",
}
FILE_FORMAT = "attnscope-attention-1"


def weights_file_bytes(analysis: Analysis, layers: Sequence[int], heads: Sequence[int]) -> int:
    """The size of the chosen weights, float32: ``L'·H'·T²·4`` (the file adds a few kB)."""
    return attention_bytes(len(layers), len(heads), analysis.seq_len)


def _chosen(analysis: Analysis, layers: Sequence[int], heads: Sequence[int], budget: int):
    if not layers or not heads:
        raise InputError("views.pick_one")
    if any(not 0 <= layer < analysis.n_layers for layer in layers) or any(
        not 0 <= head < analysis.n_heads for head in heads
    ):
        raise IndexError(f"layers {list(layers)} or heads {list(heads)} out of range")
    size = weights_file_bytes(analysis, layers, heads)
    if size > budget:
        raise InputError(
            "error.weights_too_large", megabytes=f"{size / 1e6:.0f}", limit=f"{budget / 1e6:.0f}"
        )
    index = torch.tensor(list(heads))
    return torch.stack([analysis.layer(layer)[index] for layer in layers])  # (L', H', T, T)


def weights_file(
    analysis: Analysis,
    layers: Sequence[int],
    heads: Sequence[int],
    fmt: WeightsFormat = "npz",
    *,
    budget: int = DOWNLOAD_BUDGET_BYTES,
) -> bytes:
    """The weights of ``layers`` x ``heads`` of ``analysis`` (which must hold those layers) as a
    file in ``fmt``; :class:`InputError` when they are over ``budget`` bytes.

    >>> a = Analysis.from_attentions(torch.full((2, 3, 2, 2), 0.5), ["a", "b"], kind="encoder")
    >>> weights, meta = read_weights_file(weights_file(a, [1], [2, 0]), "npz")
    >>> weights.shape, meta["tokens"], meta["layers"], meta["heads"]
    ((1, 2, 2, 2), ['a', 'b'], [1], [2, 0])
    """
    attention = _chosen(analysis, layers, heads, budget).numpy().astype(np.float32)
    meta = {
        "model": analysis.model_name,
        "derived_from": analysis.derived_from or "",
        "format": FILE_FORMAT,
    }
    arrays = {
        "attention": attention,
        "layers": np.asarray(layers, dtype=np.int64),
        "heads": np.asarray(heads, dtype=np.int64),
    }
    if analysis.runnable:
        arrays["token_ids"] = np.asarray(analysis.token_ids, dtype=np.int64)
    if fmt == "npz":
        buffer = io.BytesIO()
        strings = {key: np.asarray(value) for key, value in meta.items()}
        np.savez(buffer, **arrays, tokens=np.asarray(analysis.tokens, dtype=str), **strings)
        return buffer.getvalue()
    if fmt == "safetensors":
        from safetensors.numpy import save

        metadata = {**meta, "tokens": json.dumps(list(analysis.tokens), ensure_ascii=False)}
        return save(arrays, metadata=metadata)
    raise ValueError(f"unknown format {fmt!r}: one of {sorted(FORMATS)}")


def read_weights_file(data: bytes, fmt: WeightsFormat) -> tuple[np.ndarray, dict]:
    """The ``attention`` array of a file made by :func:`weights_file` and what it says about it
    (``tokens``, ``layers``, ``heads``, ``model``, ``derived_from``, ``token_ids`` if any)."""
    if fmt == "npz":
        with np.load(io.BytesIO(data), allow_pickle=False) as loaded:
            arrays = {key: loaded[key] for key in loaded.files}
        meta = {key: arrays.pop(key).item() for key in ("model", "derived_from", "format")}
        meta["tokens"] = arrays.pop("tokens").tolist()
    else:
        from safetensors.numpy import load

        arrays = load(data)
        # The documented layout: a little-endian u64 header length, then the JSON header.
        length = int.from_bytes(data[:8], "little")
        meta = dict(json.loads(data[8 : 8 + length])["__metadata__"])
        meta["tokens"] = json.loads(meta["tokens"])
    listed = ("layers", "heads", "token_ids")
    meta.update({key: arrays[key].tolist() for key in listed if key in arrays})
    return arrays["attention"], meta
