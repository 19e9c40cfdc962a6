"""Streamlit glue of the Lab page's Watch tab: a training run's loss beside its heads' detector
scores, and a checkpoint slider that drives every view. The checkpoint on the slider is loaded
(a normal model folder), the text below is analysed by it, and that analysis becomes the
session's result: the tab's heatmap, head view and head statistics show it, and so do the
Heatmaps, Views and Heads pages. Outside demo mode the sidebar follows too (model: the
checkpoint's folder), so Analyze keeps it."""

from __future__ import annotations

import io
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from core.lab.runs import LabRun, lab_root, list_runs
from core.policy.errors import AttnScopeError
from core.policy.i18n import t
from ui.derived import cached_payload, display_key, head_stats
from ui.figures import show_figure
from ui.lab import RUN_KEY, STATUS_KEYS
from ui.services import analysis_for, app_settings, heavy_work
from ui.state import (
    CUSTOM_CHOICE,
    CUSTOM_MODEL_KEY,
    MODEL_KEY,
    PAIR_KEY,
    RESULT_KEY,
    TEXT_KEY,
    Request,
    start_result,
)
from ui.text import lang, md, show_error, tr
from ui.widgets import attention_view, head_selector, layer_selector, table_with_csv
from viz import head_heatmap
from viz.attention_view import encode_head_view
from viz.detectors import DETECTOR_KEYS, detector_heatmap
from viz.lab import training_figure
from viz.tables import head_stats_frame

__all__ = ["example_text", "watch_tab"]

PICK_WIDGET = "lab_watch_run"
SLIDER_WIDGET = "lab_checkpoint"
TEXT_WIDGET = "lab_watch_text"


def example_text(run: LabRun, seed: int = 0) -> str:
    """A text to watch the run's heads on: for the repeat task, ``half`` distinct random words
    of its vocabulary (seeded) written twice, so induction has something to copy; for a text
    task, a Japanese sentence.

    >>> from core.lab.runs import LabRun
    >>> run = LabRun(Path("r"), "r", "finished", {"vocab_size": 10}, {}, {"kind": "repeat",
    ...     "half": 3}, "synthetic", 0, (), (), 0.0)
    >>> words = example_text(run).split()
    >>> len(words), words[:3] == words[3:], len(set(words))
    (6, True, 3)
    """
    if run.task.get("kind") != "repeat":
        return "吾輩は猫である。名前はまだ無い。吾輩は猫である。"
    vocab, half = int(run.shape["vocab_size"]), int(run.task["half"])
    order = np.random.default_rng(seed).permutation(np.arange(4, vocab))[:half]
    words = [f"w{i}" for i in order]
    return " ".join(words + words)


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.name}")
    return buffer.getvalue()


def _follow(folder: str, text: str) -> None:
    """The slider's callback (before the script runs): the sidebar's model becomes the
    checkpoint's folder and its text the watched text, so Analyze on any page keeps them."""
    st.session_state[MODEL_KEY] = CUSTOM_CHOICE
    st.session_state[CUSTOM_MODEL_KEY] = folder
    st.session_state[TEXT_KEY] = text
    st.session_state[PAIR_KEY] = ""


def _pick_run() -> LabRun | None:
    runs = list_runs(lab_root())
    if not runs:
        st.info(tr("lab.no_runs"))
        return None
    folders = [str(r.folder) for r in runs]
    wanted = st.session_state.get(RUN_KEY)
    if wanted in folders and st.session_state.get(PICK_WIDGET) != wanted:
        st.session_state[PICK_WIDGET] = wanted
    labels = {
        str(r.folder): f"{r.name} · {tr(STATUS_KEYS[r.status])} · {len(r.checkpoints)}"
        for r in runs
    }
    folder = st.selectbox(tr("lab.run"), folders, key=PICK_WIDGET, format_func=labels.get)
    st.session_state[RUN_KEY] = folder
    return runs[folders.index(folder)]  # read once, with the list


def watch_tab() -> None:
    """The run's curves with the checkpoint marked, its detector scores, and the checkpoint's
    heatmap, head view and head statistics on the text."""
    language = lang()
    try:
        run = _pick_run()
    except AttnScopeError as error:
        show_error(error)
        return
    if run is None or not run.checkpoints:
        return
    st.caption(
        tr(
            "lab.run_caption",
            layers=run.shape["n_layers"],
            heads=run.shape["n_heads"],
            width=run.shape["d_model"],
            task=run.task.get("kind"),
            status=tr(STATUS_KEYS[run.status]),
            seed=run.seed,
        )
    )
    steps = [c.step for c in run.checkpoints]
    if st.session_state.get(SLIDER_WIDGET) not in steps:
        st.session_state[SLIDER_WIDGET] = steps[-1]
    text = st.session_state.get(TEXT_WIDGET) or example_text(run)
    step = st.select_slider(
        tr("lab.checkpoint"),
        steps,
        key=SLIDER_WIDGET,
        on_change=None if app_settings().demo else lambda: _follow(_path(run), text),
    )
    checkpoint = run.checkpoints[steps.index(step)]
    show_figure(
        training_figure(run.history, run.checkpoints, marker=step, lang=language),
        key="lab_curves",
        name="lab_training",
    )
    score, layer, head = checkpoint.best("induction")
    st.markdown(tr("lab.best_head", step=step, layer=layer, head=head, score=f"{score:.2f}"))
    tabs = st.tabs([t(DETECTOR_KEYS[name], language) for name in checkpoint.scores])
    for tab, (name, values) in zip(tabs, checkpoint.scores.items(), strict=True):
        with tab:
            title = tr("lab.scores_at", step=step)
            figure = detector_heatmap(torch.tensor(values), name, title=title, lang=language)
            show_figure(figure, key=f"lab_detector_{name}", name=f"lab_{name}_{step}")
    text = st.text_input(tr("lab.watch_text"), text, key=TEXT_WIDGET)
    _checkpoint_views(run, step, text)


def _path(run: LabRun) -> str:
    return str(run.checkpoint_path(st.session_state[SLIDER_WIDGET]))


@st.cache_resource(show_spinner=False, max_entries=8)
def _checkpoint_model(folder: str):
    """A checkpoint's model (a few MB), kept apart from the bundled models' cache so that moving
    the slider never pushes them out."""
    from core import load_model

    return load_model(folder)


def _checkpoint_views(run: LabRun, step: int, text: str) -> None:
    language = lang()
    folder = run.checkpoint_path(step)
    try:
        with heavy_work(), st.spinner(tr("lab.loading_checkpoint", step=step)):
            model = _checkpoint_model(str(folder))
            limit = min(model.max_tokens, app_settings().max_tokens)
            result = analysis_for(model, text, None, limit)
    except AttnScopeError as error:
        show_error(error)
        return
    current = st.session_state.get(RESULT_KEY)
    if current is None or current.content_key != result.content_key:
        request = Request(model=str(folder), text=text, pair=None, max_tokens=limit, device=None)
        start_result(result, request)
    st.caption(tr("lab.every_page", step=step, tokens=result.seq_len))
    left, right = st.columns(2)
    with left:
        layer = layer_selector(result, "lab_layer")
    with right:
        head = head_selector(result, "lab_head")
    if head is None:
        head = 0
    show_figure(head_heatmap(result, layer, head, lang=language), key="lab_heatmap")
    payload = cached_payload(
        ("head", display_key(result), layer, language),
        lambda: encode_head_view(result, layer, lang=language).data,
    )
    attention_view(payload)
    stats = head_stats(result)
    table_with_csv(head_stats_frame(stats, lang=language), tr("heads.download"), "lab_heads.csv")
    st.download_button(
        tr("lab.download_checkpoint"),
        partial(_zip, folder),  # zipped when clicked, not on every rerun
        file_name=f"{run.name}-{folder.name}.zip",
        mime="application/zip",
        key="lab_zip",
    )
    st.caption(tr("lab.folder", folder=md(str(folder))))
