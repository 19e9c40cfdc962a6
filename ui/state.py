"""The session's state: widget and session-state keys (constants, so pages and tests agree on
them), the sidebar's :class:`Request`, and the bounded per-session stores of derived results.

Every store is keyed by content (an analysis' ``content_key`` plus the options that shaped the
value), never by ``id()`` of an object that a cache may drop and a new object may then reuse.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import streamlit as st

from core import Analysis

# Widget keys.
LANG_KEY = "lang"
MODEL_KEY = "model_choice"
CUSTOM_MODEL_KEY = "custom_model"
EXAMPLE_KEY = "example"
TEXT_KEY = "text"
PAIR_KEY = "pair"
MAX_TOKENS_KEY = "max_tokens"
DEVICE_KEY = "device"
ANALYZE_KEY = "analyze"
REMOTE_CODE_KEY = "trust_remote_code"
VIEW_KIND_KEY = "view_kind"
VIEW_COMPONENT_KEY = "attention_view"
WORDS_KEY = "words"
CJK_KEY = "cjk"
BERTVIZ_LAYERS_KEY = "bertviz_layers"
BERTVIZ_HEADS_KEY = "bertviz_heads"
NEURON_QUERY_KEY = "neuron_query"
WEIGHTS_LAYERS_KEY = "weights_layers"
WEIGHTS_HEADS_KEY = "weights_heads"
WEIGHTS_FORMAT_KEY = "weights_format"
CUSTOM_CHOICE = "other"  # the model picker's "Other": a Hub id or folder typed in
# Session state that is not a widget.
RESULT_KEY = "result"
LAYER_KEY = "selected_layer"
HEAD_KEY = "selected_head"
EFFECTIVE_KEY = "effective_mode"
# Rollout's options, shared by the attention pages: leave the sink out; the first layer rolled.
ROLLOUT_SINK_KEY = "rollout_exclude_sink"
ROLLOUT_START_KEY = "rollout_start_layer"
REQUEST_KEY = "last_request"
GENERATION_KEY = "generation"
# While tokens stream: (model name, prompt, config, the steps so far). A Stop reruns the script
# mid-stream; the next run turns what was made into the Generation (derived.finish_generation).
GENERATION_PENDING_KEY = "generation_pending"
RATE_KEY = "rate_limiter"
LINK_KEY = "link_applied"
# (request, started): the analysis asked for and whether it started. A click during the work
# stops the script at its next Streamlit call; the next run finishes the request instead of
# dropping it (ui.analyze).
PENDING_KEY = "pending_request"
# A link's (or session file's) view and problems, said once its analysis is done (ui.links).
LINK_NOTE_KEY = "link_notes"
LINK_UPLOAD_KEY = "link_upload"  # the session-file uploader
LINK_OPENED_KEY = "link_opened"  # a session file just read, for the sidebar to apply
# Widgets whose defaults depend on the result: reset when a new result arrives.
RESULT_BOUND_KEYS = (
    BERTVIZ_LAYERS_KEY,
    BERTVIZ_HEADS_KEY,
    NEURON_QUERY_KEY,
    WEIGHTS_LAYERS_KEY,
    WEIGHTS_HEADS_KEY,
)


Origin = Literal["analyze", "link", "file", "start", "resumed"]


@dataclass(frozen=True)
class Request:
    """What the sidebar asks for."""

    model: str
    text: str
    pair: str | None
    max_tokens: int
    device: str | None
    trust_remote_code: bool = False
    # Who asked: the Analyze button, a link or session file, the start page's default example,
    # or a run a click interrupted. Not part of what is analysed (ignored when compared).
    origin: Origin = field(default="analyze", compare=False)


Value = TypeVar("Value")


@dataclass(frozen=True)
class SessionStore:
    """A dict in ``st.session_state[name]`` holding at most ``max_entries`` values, newest last
    (the oldest is dropped first). Keys are content keys; values are never ``None``."""

    name: str
    max_entries: int
    doc: str

    def get(self, key: Hashable) -> object | None:
        return st.session_state.get(self.name, {}).get(key)

    def put(self, key: Hashable, value: Value) -> Value:
        store = st.session_state.setdefault(self.name, {})
        store.pop(key, None)
        store[key] = value
        while len(store) > self.max_entries:
            store.pop(next(iter(store)))
        return value

    def get_or_make(self, key: Hashable, make: Callable[[], Value]) -> Value:
        """The value kept for ``key``, made (and kept) the first time it is asked for."""
        found = self.get(key)
        return found if found is not None else self.put(key, make())

    def clear(self) -> None:
        st.session_state.pop(self.name, None)


# Sizes: L layers, H heads, T tokens; the budget is core.engine.budget.DEFAULT_BUDGET_BYTES
# (512 MiB). Each store is emptied when a new result arrives (start_result).
LAYERS = SessionStore(
    "layer_cache",
    3,
    "Recomputed layers of a long input, (content_key, layer) -> (H, T, T) float32: at most 3 "
    "layers, 3·H·T²·4 bytes (one SmolLM2 layer at 2048 tokens is 150 MB).",
)
SHOWN = SessionStore(
    "display_cache",
    3,
    "What the views show: (content_key, mode, words, cjk) -> a derived Analysis (rollout, "
    "norm-based, words) holding every layer: at most 3, each within the budget (rollout is "
    "L·T²·4 bytes, norm-based L·H·T²·4 and refused past the budget): at most about 1.5 GiB.",
)
PAYLOADS = SessionStore(
    "payload_cache",
    3,
    "Encoded views: (view, display key, layer or selection, ...) -> payload bytes (uint16 "
    "weights, H·T²·2 bytes a layer) or a BertViz page (within BertViz's byte budget): at most 3.",
)
HEAD_STATS = SessionStore(
    "head_stats",
    1,
    "Head statistics: display key -> HeadStats (a few L x H float tensors, kilobytes): one.",
)
PREDICTIONS = SessionStore(
    "predictions",
    1,
    "Predictions: (content_key, top_k) -> Predictions (T·k candidates and an L x T logit lens, "
    "kilobytes to a few MB): one.",
)
ABLATION = SessionStore(
    "ablation_effect",
    1,
    "The last ablation: content_key -> AblationEffect (the heads and top tokens, kilobytes): one.",
)
RANKING = SessionStore(
    "head_ranking",
    1,
    "Head importance: content_key -> HeadRanking (an L x H tensor; kept partial while it "
    "runs): one.",
)
COMPARISON = SessionStore(
    "comparison",
    1,
    "The comparison: content_key -> Comparison (both analyses with every layer, each within "
    "the budget, so at most 2 x 512 MiB): one.",
)
NEURONS = SessionStore(
    "neuron_cache",
    1,
    "The neuron view's layer: (content_key, layer) -> NeuronLayer (every head's q and k, "
    "(H + KV)·T·d·4 bytes, and a T x T mask, T²·4: SmolLM2 at 2048 tokens about 23 MB): one.",
)
ATTRIBUTION = SessionStore(
    "attribution",
    1,
    "Attributions: (content_key, measure, position, token, baseline, steps) -> (Attributions, "
    "Agreement or None): T scores per method, every head's attention and its gradient "
    "(2·L·H·T²·4 bytes: SmolLM2 at 128 tokens 35 MB) and T² per layer of value zeroing; kept "
    "partial while it runs: one.",
)
DETECTORS = SessionStore(
    "detectors",
    3,
    "Head detector scores: (content_key, 'detectors', seed) -> (TextScores, DetectorScores) "
    "and (content_key, 'custom', pattern options) -> (a T x T pattern, L x H scores): a few "
    "L x H tensors and one T² pattern (2048 tokens: 16 MB): at most 3.",
)
QK_MAPS = SessionStore(
    "qk_maps",
    1,
    "The query-key map: (content_key, layer, head) -> QKMap (2N points and 2N x d vectors, "
    "N at most 2000 tokens, d 64: about 1 MB): one.",
)
FIGURE_FILES = SessionStore(
    "figure_files",
    1,
    "The last figure rendered as a file: (widget key, format, scale, figure hash) -> "
    "RenderedFigure (a PNG at scale 4 of a 512-token heatmap is a few MB): one.",
)
LONG_VIEWS = SessionStore(
    "long_views",
    2,
    "A long layer's overview and window: (content_key, layer, rows, keys) -> LayerWindow "
    "(H x 128 x 128 and H x 256 x 256 floats: SmolLM2 3 MB): two.",
)
EVICTIONS = SessionStore(
    "evictions",
    1,
    "Simulated KV-cache eviction: content_key -> Eviction (2 x L x H x 6 floats): one.",
)
DERIVED_STORES = (
    LAYERS,
    SHOWN,
    PAYLOADS,
    HEAD_STATS,
    PREDICTIONS,
    ABLATION,
    RANKING,
    COMPARISON,
    NEURONS,
    ATTRIBUTION,
    DETECTORS,
    QK_MAPS,
    LONG_VIEWS,
    EVICTIONS,
    FIGURE_FILES,
)


def current_result() -> Analysis | None:
    """The session's analysis (the last Analyze that succeeded), if any."""
    return st.session_state.get(RESULT_KEY)


def start_result(result: Analysis, request: Request) -> None:
    """Make ``result`` the session's analysis: drop everything derived from the previous one,
    keep the layer and head choice within the new model's size, reset result-bound widgets."""
    st.session_state[RESULT_KEY] = result
    st.session_state[REQUEST_KEY] = request
    for store in DERIVED_STORES:
        store.clear()
    # (a page that draws no layer or head picker, the Lab, may be the first to start a result)
    st.session_state[LAYER_KEY] = min(st.session_state.get(LAYER_KEY, 0), result.n_layers - 1)
    head = st.session_state.get(HEAD_KEY, 0)
    if head is not None:  # None: the head average, kept as chosen
        st.session_state[HEAD_KEY] = min(head, result.n_heads - 1)
    for widget in RESULT_BOUND_KEYS:
        st.session_state.pop(widget, None)
