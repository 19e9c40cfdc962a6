"""Binary payloads for AttnScope's own head, model and neuron views (``assets/attention_view``).

BertViz sends every weight of every layer as JSON text (869 MB at 512 tokens). These views send
only what is on screen, as bytes:

- head view: one layer, every head, each weight as a 16-bit fixed-point number (``round(w *
  65535)``, exact to 1e-5), or, past :data:`DENSE_LIMIT` weights, each row's top
  :data:`SPARSE_TOP_K` keys with their weights;
- model view: a max-pooled ``S x S`` thumbnail of every layer x head (8 bits each, scaled to its
  own maximum) and, at full resolution, the one head that is open;
- neuron view: one query's q, every key's k, their products, scores and softmax, float32
  (:class:`core.methods.neuron.NeuronView`).

Layout: ``b"ATV1"``, a little-endian ``uint32`` header length, a UTF-8 JSON header (tokens,
shapes, statistics for tooltips, where each blob starts), zero padding to a multiple of 4, then
the blobs, each starting at a multiple of 4. Tokens reach the page as JSON strings and are set
with ``textContent``, never parsed as markup.

Self-attention is square: ``tokens`` are both the queries and the keys. Cross-attention
(:class:`core.engine.seq2seq.CrossAttention`) is rectangular, ``T_q x T_k``: ``tokens`` are the
queries (the target) and the header adds ``key_tokens`` (the source) and ``key_len``, only then,
so a square payload is what it always was and one without ``key_tokens`` reads as square.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from core.engine.analysis import Analysis
from core.engine.seq2seq import CrossAttention
from core.engine.stats import pooled_attention
from core.engine.streaming import THUMBNAIL_SIZE
from core.methods.neuron import NeuronView
from core.policy.i18n import DEFAULT_LANG, Lang, catalogue

__all__ = [
    "DENSE_LIMIT",
    "MAGIC",
    "SPARSE_TOP_K",
    "encode_top_keys",
    "ViewMode",
    "ViewPayload",
    "decode_payload",
    "encode_cross_head_view",
    "encode_cross_model_view",
    "encode_head_view",
    "encode_model_view",
    "encode_neuron_view",
    "view_assets",
]

ViewMode = Literal["head", "model", "neuron"]
MAGIC = b"ATV1"
SCALE = 65535  # 16-bit fixed point: weight w is sent as round(w * SCALE)
# Up to 16M weights (32 MB) a layer goes dense, so hovering shows every weight; beyond, each
# row's strongest keys only (SmolLM2 at 2048 tokens: 75 MB dense, 2.4 MB sparse).
DENSE_LIMIT = 16 * 2**20
SPARSE_TOP_K = 32
ASSETS = Path(__file__).resolve().parent.parent / "assets" / "attention_view"

_DTYPES = {"u8": np.uint8, "u16": np.uint16, "f32": np.float32}
# The component's own words: templates with {placeholders}, filled in by the JS.
_STRINGS = (
    "view.layer_heads",
    "view.layer_head",
    "view.top_keys",
    "view.hide_below",
    "view.sparse_note",
    "view.swatch",
    "view.query",
    "view.key",
    "view.tooltip",
    "view.sentences",
    "view.pairs_all",
    "view.opened_beside",
    "view.opened_below",
    "view.neuron_title",
    "view.neuron_legend",
    "view.neuron_gqa",
    "view.neuron_rotary",
    "view.neuron_q",
    "view.neuron_k",
    "view.neuron_qk",
    "view.neuron_score",
    "view.neuron_softmax",
    "view.neuron_masked",
    "view.neuron_cell",
    "view.save_png",
    "view.save_svg",
    "view.save_title",
    "view.selection_count",
    "view.selection_sum",
    "view.selection_mean",
    "view.selection_clear",
)


@dataclass(frozen=True)
class ViewPayload:
    """The bytes for the component and what they hold, for tests and the benchmark."""

    data: bytes
    header: dict[str, Any]

    @property
    def size(self) -> int:
        return len(self.data)


# The entry file that gives the one ES module its export: the app's Streamlit component, or the
# Jupyter widget (viz/notebook.py). Both call the same drawAttentionView.
_ENTRIES = {"streamlit": "streamlit_entry.js", "notebook": "notebook_widget.js"}


@functools.cache
def view_assets(entry: Literal["streamlit", "notebook"] = "streamlit") -> tuple[str, str]:
    """The component's JavaScript and CSS, read once from ``assets/attention_view``: the neuron
    view's drawing, the PNG/SVG export of the head and model views, the module that draws the
    others and dispatches, then ``entry``'s export (one ES module)."""
    js = "\n".join(
        (ASSETS / name).read_text(encoding="utf-8")
        for name in ("neuron_view.js", "view_export.js", "attention_view.js", _ENTRIES[entry])
    )
    css = (ASSETS / "attention_view.css").read_text(encoding="utf-8")
    return js, css


def _fixed16(weights: Tensor) -> np.ndarray:
    """Probabilities in [0, 1] as ``uint16`` ``round(w * 65535)``.

    >>> _fixed16(torch.tensor([0.0, 0.5, 1.0])).tolist()
    [0, 32768, 65535]
    """
    scaled = weights.detach().float().clamp(0, 1).mul(SCALE).round()
    return scaled.to(torch.int32).numpy().astype(np.uint16)


def _pack(header: dict[str, Any], blobs: dict[str, tuple[np.ndarray, str]]) -> ViewPayload:
    """Lay out header and blobs (see the module docstring); blob offsets go into the header."""
    parts: list[bytes] = []
    offset = 0
    described = {}
    for name, (array, dtype) in blobs.items():
        raw = np.ascontiguousarray(array, dtype=_DTYPES[dtype]).tobytes()
        described[name] = {
            "offset": offset,
            "length": len(raw),
            "dtype": dtype,
            "shape": list(array.shape),
        }
        padding = (-len(raw)) % 4
        parts.append(raw + b"\0" * padding)
        offset += len(raw) + padding
    body = b"".join(parts)
    header = {**header, "blobs": described}
    header["view_id"] = hashlib.sha1(
        json.dumps(header, sort_keys=True).encode() + hashlib.sha1(body).digest()
    ).hexdigest()[:16]
    head = json.dumps(header, ensure_ascii=False).encode("utf-8")
    head += b" " * ((-(len(head) + 8)) % 4)  # JSON allows trailing spaces: keeps blobs aligned
    return ViewPayload(MAGIC + struct.pack("<I", len(head)) + head + body, header)


def decode_payload(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The inverse of the packing, as the browser does it: header and blobs as arrays."""
    if data[:4] != MAGIC:
        raise ValueError("not an AttnScope view payload")
    (length,) = struct.unpack("<I", data[4:8])
    header = json.loads(data[8 : 8 + length].decode("utf-8"))
    base = 8 + length
    blobs = {}
    for name, blob in header["blobs"].items():
        start = base + blob["offset"]
        flat = np.frombuffer(data[start : start + blob["length"]], dtype=_DTYPES[blob["dtype"]])
        blobs[name] = flat.reshape(blob["shape"])
    return header, blobs


def _rounded(table: Tensor) -> list[list[float]]:
    return [[round(v, 4) for v in row] for row in table.tolist()]


def _base_header(result: Analysis, mode: ViewMode, lang: Lang) -> dict[str, Any]:
    words = catalogue(lang)
    return {
        "mode": mode,
        "strings": {key.removeprefix("view."): words[key] for key in _STRINGS},
        "tokens": list(result.tokens),
        "seq_len": result.seq_len,
        "n_layers": result.n_layers,
        "n_heads": result.n_heads,
        "causal": result.causal,
        "sentence_b_start": result.sentence_b_start,
        "scale": SCALE,
        "head_entropy": _rounded(result.head_entropy),
        "normalized_head_entropy": _rounded(result.normalized_head_entropy),
    }


def _cross_header(cross: CrossAttention, mode: ViewMode, lang: Lang) -> dict[str, Any]:
    """The header of a rectangular view: queries in ``tokens``, keys in ``key_tokens``."""
    words = catalogue(lang)
    return {
        "mode": mode,
        "strings": {key.removeprefix("view."): words[key] for key in _STRINGS},
        "tokens": list(cross.query_tokens),
        "seq_len": len(cross.query_tokens),
        "n_layers": cross.n_layers,
        "n_heads": cross.n_heads,
        "causal": False,
        "sentence_b_start": None,
        "scale": SCALE,
        "head_entropy": _rounded(cross.head_entropy),
        "normalized_head_entropy": _rounded(cross.normalized_head_entropy),
        "key_tokens": list(cross.key_tokens),
        "key_len": len(cross.key_tokens),
    }


def encode_head_view(
    result: Analysis,
    layer: int,
    *,
    selected_head: int | None = None,
    dense_limit: int = DENSE_LIMIT,
    lang: Lang = DEFAULT_LANG,
) -> ViewPayload:
    """The head view of ``layer``: all its heads; ``result`` must hold that layer's weights."""
    weights = result.layer(layer)  # (H, T, T)
    header = _base_header(result, "head", lang)
    header.update({"layer": layer, "selected_head": selected_head})
    if weights.numel() <= dense_limit:
        header["encoding"] = "dense"
        blobs = {"weights": (_fixed16(weights), "u16")}
    else:
        k = min(SPARSE_TOP_K, result.seq_len)
        values, indices = torch.topk(weights, k, dim=-1)  # (H, T, k) each, largest first
        return encode_top_keys(
            result, layer, values, indices, selected_head=selected_head, lang=lang
        )
    return _pack(header, blobs)


def encode_top_keys(
    result: Analysis,
    layer: int,
    values: Tensor,  # (H, T, k): each row's k largest weights, largest first
    indices: Tensor,  # (H, T, k): their keys
    *,
    selected_head: int | None = None,
    lang: Lang = DEFAULT_LANG,
) -> ViewPayload:
    """The head view of ``layer`` from each row's strongest keys only (the sparse encoding),
    e.g. gathered block by block for a text too long to hold the layer
    (:func:`core.methods.long_view.layer_top_keys`)."""
    header = _base_header(result, "head", lang)
    header.update({"layer": layer, "selected_head": selected_head})
    header["encoding"] = "sparse"
    header["top_k"] = values.shape[-1]
    blobs = {
        "top_values": (_fixed16(values), "u16"),
        "top_indices": (indices.to(torch.int32).numpy(), "u16"),
    }
    return _pack(header, blobs)


def encode_model_view(
    result: Analysis, selected: tuple[int, int] | None = None, *, lang: Lang = DEFAULT_LANG
) -> ViewPayload:
    """Thumbnails of every layer x head, and the ``selected`` (layer, head) at full resolution
    when given (``result`` must then hold that layer)."""
    thumbs = result.thumbnails  # (L, H, S, S)
    peak = thumbs.amax(dim=(-1, -2), keepdim=True).clamp_min(1e-12)  # (L, H, 1, 1)
    # sqrt brightens faint structure; every thumbnail uses its own range, like a heatmap would
    pixels = (thumbs / peak).sqrt().mul(255).round().to(torch.uint8).numpy()
    header = _base_header(result, "model", lang)
    header["selected"] = list(selected) if selected else None
    blobs: dict[str, tuple[np.ndarray, str]] = {"thumbnails": (pixels, "u8")}
    if selected is not None:
        layer, head = selected
        blobs["detail"] = (_fixed16(result.head(layer, head).unsqueeze(0)), "u16")  # (1, T, T)
    return _pack(header, blobs)


def encode_neuron_view(
    result: Analysis, view: NeuronView, *, n_kv_heads: int, lang: Lang = DEFAULT_LANG
) -> ViewPayload:
    """The neuron view of ``view`` (one query and head of ``result``'s tokens): q ``(d,)``, keys
    and products ``(T, d)``, scores and probabilities ``(T,)``, float32 (masked scores -inf)."""
    header = _base_header(result, "neuron", lang)
    header.update(
        {
            "layer": view.layer,
            "head": view.head,
            "kv_head": view.kv_head,
            "n_kv_heads": n_kv_heads,
            "query_pos": view.query_pos,
            "head_dim": int(view.query.shape[0]),
            "scaling": view.scaling,
            "rotary": view.rotary,
        }
    )
    blobs = {
        name: (tensor.detach().float().numpy(), "f32")
        for name, tensor in (
            ("query", view.query),
            ("keys", view.keys),
            ("products", view.products),
            ("scores", view.scores),
            ("probabilities", view.probabilities),
        )
    }
    return _pack(header, blobs)


def encode_cross_head_view(
    cross: CrossAttention,
    layer: int,
    *,
    selected_head: int | None = None,
    dense_limit: int = DENSE_LIMIT,
    lang: Lang = DEFAULT_LANG,
) -> ViewPayload:
    """The head view of one layer of cross-attention: every head, target tokens (queries) on the
    left, source tokens (keys) on the right; past ``dense_limit`` weights each row's strongest
    keys only."""
    weights = cross.layer(layer)  # (H, T_q, T_k)
    header = _cross_header(cross, "head", lang)
    header.update({"layer": layer, "selected_head": selected_head})
    if weights.numel() <= dense_limit:
        header["encoding"] = "dense"
        return _pack(header, {"weights": (_fixed16(weights), "u16")})
    k = min(SPARSE_TOP_K, weights.shape[-1])
    values, indices = torch.topk(weights, k, dim=-1)  # (H, T_q, k) each, largest first
    header.update({"encoding": "sparse", "top_k": k})
    blobs = {
        "top_values": (_fixed16(values), "u16"),
        "top_indices": (indices.to(torch.int32).numpy(), "u16"),
    }
    return _pack(header, blobs)


def encode_cross_model_view(
    cross: CrossAttention, selected: tuple[int, int] | None = None, *, lang: Lang = DEFAULT_LANG
) -> ViewPayload:
    """Rectangular thumbnails of every layer x head of cross-attention (each axis max-pooled to
    at most 32), and the ``selected`` (layer, head) at full resolution when given."""
    thumbs = pooled_attention(cross.weights, THUMBNAIL_SIZE)  # (L, H, S_q, S_k)
    peak = thumbs.amax(dim=(-1, -2), keepdim=True).clamp_min(1e-12)  # (L, H, 1, 1)
    pixels = (thumbs / peak).sqrt().mul(255).round().to(torch.uint8).numpy()
    header = _cross_header(cross, "model", lang)
    header["selected"] = list(selected) if selected else None
    blobs: dict[str, tuple[np.ndarray, str]] = {"thumbnails": (pixels, "u8")}
    if selected is not None:
        layer, head = selected
        blobs["detail"] = (_fixed16(cross.head(layer, head).unsqueeze(0)), "u16")  # (1, T_q, T_k)
    return _pack(header, blobs)
