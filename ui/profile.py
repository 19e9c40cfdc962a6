"""The profiler's Streamlit glue: one forward pass of the current model and text under
``torch.profiler`` (sortable tables per operator and per layer, CSV, the Chrome trace), and time
and peak memory against sequence length. Results are kept for the analysis they were made of."""

from __future__ import annotations

import streamlit as st

from core import Analysis, AttnScopeError, LoadedModel
from core.methods.profile import ForwardProfile, LengthCurve, length_curve, profile_forward
from core.policy.errors import InputError
from core.policy.i18n import Lang, t
from ui.figures import show_figure
from ui.services import heavy_work
from ui.text import show_error
from ui.widgets import table_with_csv
from viz.profile import layers_frame, length_figure, lengths_frame, operators_frame

__all__ = ["render_profile"]

REPEATS_WIDGET = "profile_repeats"
RUN_WIDGET = "profile_run"
MAX_LEN_WIDGET = "profile_max_len"
LENGTHS_WIDGET = "profile_lengths_run"
PROFILE_KEY = "profile_result"  # (content key, device, repeats) -> ForwardProfile, one kept
CURVE_KEY = "profile_curve"  # (content key, device, cap) -> LengthCurve, one kept
LENGTH_CAPS = (32, 64, 128, 256, 512, 1024)
MEMORY_KEYS = {
    "cuda_max_memory_allocated": "profile.memory_cuda",
    "profiler_cpu_allocations": "profile.memory_cpu",
}


def _kept(state_key: str, key: tuple) -> object | None:
    stored = st.session_state.get(state_key)
    return stored[1] if stored and stored[0] == key else None


def _profile_section(loaded: LoadedModel, analysis: Analysis, lang: Lang) -> None:
    repeats = st.slider(t("profile.repeats", lang), 1, 5, 1, key=REPEATS_WIDGET)
    key = (analysis.content_key, str(loaded.device), repeats)
    if st.button(t("profile.run", lang), key=RUN_WIDGET, type="primary"):
        try:
            with heavy_work(), st.spinner(t("profile.running", lang)):
                st.session_state[PROFILE_KEY] = (
                    key,
                    profile_forward(loaded, analysis, repeats=repeats),
                )
        except AttnScopeError as error:
            show_error(error)
            return
    result: ForwardProfile | None = _kept(PROFILE_KEY, key)
    if result is None:
        st.info(t("profile.prompt", lang))
        return
    st.caption(
        t(
            "profile.summary",
            lang,
            ms=f"{result.forward_cpu_us / 1e3 / result.repeats:.1f}",
            tokens=result.seq_len,
            device=result.device,
            peak=f"{result.peak_bytes / 2**20:.2f}",
            memory=t(MEMORY_KEYS[result.memory_source], lang),
        )
    )
    st.markdown(f"**{t('profile.layers', lang)}**")
    table_with_csv(
        layers_frame(result, lang=lang), t("profile.download_layers", lang), "profile_layers.csv"
    )
    st.markdown(f"**{t('profile.operators', lang)}**")
    table_with_csv(
        operators_frame(result, lang=lang),
        t("profile.download_operators", lang),
        "profile_operators.csv",
    )
    st.download_button(
        t("profile.trace", lang),
        result.trace,
        file_name="attnscope_trace.json",
        mime="application/json",
        help=t("profile.trace_help", lang),
        key="profile_trace_download",
    )


def _lengths_section(loaded: LoadedModel, analysis: Analysis, lang: Lang) -> None:
    st.markdown(f"**{t('profile.lengths', lang)}**")
    caps = [cap for cap in LENGTH_CAPS if cap <= loaded.max_tokens] or [loaded.max_tokens]
    cap = st.select_slider(
        t("profile.max_len", lang), caps, value=min(128, caps[-1]), key=MAX_LEN_WIDGET
    )
    key = (analysis.content_key, str(loaded.device), cap)
    if st.button(t("profile.lengths_run", lang), key=LENGTHS_WIDGET):
        try:
            with heavy_work(), st.spinner(t("profile.running", lang)):
                st.session_state[CURVE_KEY] = (key, length_curve(loaded, analysis, max_tokens=cap))
        except AttnScopeError as error:
            show_error(error)
            return
    curve: LengthCurve | None = _kept(CURVE_KEY, key)
    if curve is None:
        return
    show_figure(length_figure(curve, lang=lang), key="profile_lengths_figure", name="lengths")
    st.caption(t(MEMORY_KEYS[curve.memory_source], lang))
    table_with_csv(
        lengths_frame(curve, lang=lang), t("profile.download_lengths", lang), "profile_lengths.csv"
    )


def render_profile(loaded: LoadedModel, analysis: Analysis, lang: Lang) -> None:
    """The profiler for ``loaded`` on ``analysis``' tokens (a runnable analysis): a profile of
    the forward pass and the curve against sequence length, each on its own button."""
    st.subheader(t("profile.header", lang))
    st.caption(t("profile.caption", lang))
    if not analysis.runnable:
        show_error(InputError("error.derived_inputs", derived=analysis.derived_from))
        return
    _profile_section(loaded, analysis, lang)
    _lengths_section(loaded, analysis, lang)
