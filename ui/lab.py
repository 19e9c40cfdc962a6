"""Streamlit glue of the Lab page's first two tabs: train a SentencePiece tokenizer and compare
its split of a sentence with the bundled models'; train a small GPT (Llama or GPT-2) of the
learner's shape on repeated random sequences or on text, with a live loss curve, an ETA and a
Stop that keeps a checkpoint. The work is :mod:`core.lab`'s; the figures :mod:`viz.lab`'s.

Stop: the button reruns the script. The running loop learns it two ways: Streamlit raises at
its next call (a chart update), and a process-wide flag for the run folder is set; either way
the training generator is closed, and its ``finally`` saves a checkpoint of the last step and
writes ``run.json`` as "stopped" before the new script run reads it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import replace

import streamlit as st

from core.corpus.sources import sample_corpus
from core.lab.model import LabShape
from core.lab.runs import (
    CheckpointRecord,
    StepRecord,
    check_limits,
    lab_root,
    load_run,
    new_run_folder,
)
from core.lab.tasks import RepeatTask, text_task
from core.lab.tokenizer import (
    LabVocabulary,
    compare_splits,
    round_trip,
    synthetic_vocabulary,
    train_vocabulary,
)
from core.lab.train import INDUCTION_RECIPE, TrainConfig, train
from core.policy.errors import AttnScopeError, InputError
from core.policy.settings import Settings
from ui.figures import live_figure
from ui.services import get_model, heavy_work, stop_flags
from ui.text import lang, md, show_error, tr
from ui.widgets import table_with_csv
from viz.lab import split_frame, training_figure

__all__ = ["RUN_KEY", "STATUS_KEYS", "TAB_KEY", "train_tab", "vocabulary_tab"]

VOCABULARY_KEY = "lab_vocabulary"  # the LabVocabulary trained in this session
TAB_KEY = "lab_tab"  # the open tab's label (st.tabs' key)
RUN_KEY = "lab_run"  # the run folder the Watch tab shows (str)
ACTIVE_KEY = "lab_active"  # the run folder being trained by this session (str)
DONE_KEY = "lab_done"  # the message after a finished run, shown once
TRAIN_BUTTON, STOP_BUTTON, VOCABULARY_BUTTON = "lab_train", "lab_stop", "lab_train_vocabulary"
SOURCES = {"sample": "lab.source_sample", "upload": "lab.source_upload"}
TASKS = {"repeat": "lab.task_repeat", "text": "lab.task_text"}
FAMILIES = {"llama": "lab.family_llama", "gpt2": "lab.family_gpt2"}
JAPANESE = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
STATUS_KEYS = {
    "finished": "lab.status_finished",
    "stopped": "lab.status_stopped",
    "diverged": "lab.status_diverged",
    "running": "lab.status_running",
}
UPDATE_SECONDS = 0.5  # the live curve is redrawn at most this often


def _labels(keys: dict[str, str]):
    """An option's label in the language of this run (Streamlit may format options later,
    outside the script run that knows the session's language)."""
    names = {option: tr(key) for option, key in keys.items()}
    return names.get


def _texts(source: str) -> list[str] | None:
    """The training texts: the bundled corpus (English and Japanese), or an uploaded file
    (UTF-8, one text per line); None until a file is given."""
    if source == "sample":
        return list(sample_corpus().texts)
    upload = st.file_uploader(tr("lab.upload"), type=["txt"], key="lab_upload")
    if upload is None:
        return None
    try:
        text = upload.getvalue().decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError("lab.error_upload_encoding") from error
    return [line for line in text.splitlines() if line.strip()]


def vocabulary_tab(settings: Settings) -> None:
    """Train a tokenizer; show how it and the bundled models split a Japanese sentence."""
    left, middle, right = st.columns(3)
    source = left.radio(
        tr("lab.source"), list(SOURCES), key="lab_source", format_func=_labels(SOURCES)
    )
    kind = middle.radio(tr("lab.tokenizer_kind"), ["unigram", "bpe"], key="lab_kind")
    limit = dict(settings.lab_limits).get("vocab_size", 32000)
    vocab = right.number_input(tr("lab.vocab"), 64, limit, min(1000, limit), key="lab_vocab")
    try:
        texts = _texts(source)
        if st.button(tr("lab.train_tokenizer"), key=VOCABULARY_BUTTON, disabled=texts is None):
            with heavy_work(), st.spinner(tr("lab.training_tokenizer")):
                st.session_state[VOCABULARY_KEY] = train_vocabulary(
                    texts or [], kind=kind, vocab_size=int(vocab)
                )
    except AttnScopeError as error:
        show_error(error)
    vocabulary: LabVocabulary | None = st.session_state.get(VOCABULARY_KEY)
    if vocabulary is None:
        st.info(tr("lab.no_tokenizer"))
        return
    st.success(tr("lab.tokenizer_ready", kind=vocabulary.kind, vocab=vocabulary.vocab_size))
    sentence = st.text_input(tr("lab.sentence"), JAPANESE, key="lab_sentence")
    if not sentence.strip():
        return
    found = round_trip(vocabulary, sentence)
    if found.exact:
        st.caption(tr("lab.round_trip_ok", n=len(found.ids)))
    else:
        st.warning(tr("lab.round_trip_bad", back=md(found.back)))
    models = {tr("lab.yours"): vocabulary}
    with heavy_work(), st.spinner(tr("lab.loading_tokenizers")):
        for name in ("minilm", "smollm2"):
            loaded = get_model(name, None)
            models[loaded.title] = loaded
    table_with_csv(
        split_frame(compare_splits(sentence, models), lang=lang()),
        tr("lab.download_split"),
        "splits.csv",
    )


def _shape_and_config() -> tuple[str, LabShape, RepeatTask, TrainConfig]:
    """The task, the model's shape, the repeat task and the training options from the widgets;
    every default is the induction recipe's (:data:`core.lab.train.INDUCTION_RECIPE`)."""
    shape0, task0, config0 = INDUCTION_RECIPE
    task = st.radio(
        tr("lab.task"), list(TASKS), key="lab_task", format_func=_labels(TASKS),
        horizontal=True,
    )  # fmt: skip
    family = st.radio(
        tr("lab.family"), list(FAMILIES), index=list(FAMILIES).index(shape0.family),
        key="lab_family", format_func=_labels(FAMILIES), horizontal=True,
        help=tr("lab.family_help"),
    )  # fmt: skip
    cols = st.columns(5)
    n_layers = cols[0].number_input(tr("lab.layers"), 1, 12, shape0.n_layers, key="lab_layers")
    n_heads = cols[1].number_input(tr("lab.heads"), 1, 16, shape0.n_heads, key="lab_heads")
    d_model = cols[2].number_input(
        tr("lab.width"), 8, 1024, shape0.d_model, step=8, key="lab_width"
    )
    context = cols[3].number_input(tr("lab.context"), 8, 2048, shape0.context, key="lab_context")
    half = cols[4].number_input(tr("lab.half"), 2, 512, task0.half, key="lab_half")
    attention_only = st.checkbox(
        tr("lab.attention_only"),
        shape0.attention_only,
        key="lab_attention_only",
        help=tr("lab.attention_only_help"),
    )
    cols = st.columns(5)
    steps = cols[0].number_input(tr("lab.steps"), 1, 100_000, config0.steps, key="lab_steps")
    batch = cols[1].number_input(tr("lab.batch"), 1, 512, config0.batch_size, key="lab_batch")
    lr = cols[2].number_input(tr("lab.lr"), 1e-5, 1.0, config0.lr, format="%.4f", key="lab_lr")
    every = cols[3].number_input(
        tr("lab.every"), 0, 100_000, config0.checkpoint_every, key="lab_every"
    )
    seed = cols[4].number_input(tr("lab.seed"), 0, 2**31 - 1, config0.seed, key="lab_seed")
    vocabulary: LabVocabulary | None = st.session_state.get(VOCABULARY_KEY)
    vocab = shape0.vocab_size if task == "repeat" or vocabulary is None else vocabulary.vocab_size
    if task == "repeat":
        vocab = max(vocab, int(half) + 8)
    shape = replace(
        shape0, n_layers=int(n_layers), n_heads=int(n_heads), d_model=int(d_model),
        context=int(context), attention_only=attention_only, vocab_size=vocab, family=family,
    )  # fmt: skip
    repeat = replace(task0, half=int(half))
    if repeat.min_half is not None:
        repeat = replace(repeat, min_half=min(repeat.min_half, repeat.half))
    config = replace(
        config0, steps=int(steps), batch_size=int(batch), lr=float(lr),
        checkpoint_every=int(every), seed=int(seed),
    )  # fmt: skip
    return task, shape, repeat, config


def _wait_for(folder: str) -> None:
    """A Stop's new script run: ask the old loop to stop and wait (at most 30 s) until its run
    folder no longer says "running" (its last checkpoint is written)."""
    flag = stop_flags().get(folder)
    if flag is not None:
        flag.set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(AttnScopeError, OSError, ValueError):
            if load_run(folder).status != "running":
                return
        time.sleep(0.2)


def _eta(record: StepRecord, steps: int) -> str:
    left = record.seconds / max(record.step, 1) * (steps - record.step)
    return tr(
        "lab.progress", step=record.step, steps=steps, loss=f"{record.loss:.3f}", eta=f"{left:.0f}"
    )


def train_tab(settings: Settings) -> None:
    """The shape and options, Train and Stop, and the live curves of the run under way."""
    if DONE_KEY in st.session_state:
        st.success(st.session_state.pop(DONE_KEY))
    task_kind, shape, task, config = _shape_and_config()
    st.caption(tr("lab.train_note"))
    left, right = st.columns([1, 5])
    start = left.button(tr("lab.train"), key=TRAIN_BUTTON, type="primary")
    active = st.session_state.get(ACTIVE_KEY)
    if active is not None and not start:  # a Stop (or a click elsewhere) ended the run
        _wait_for(active)
        st.session_state.pop(ACTIVE_KEY, None)
        st.session_state[RUN_KEY] = active
        found = load_run(active)
        st.info(tr("lab.stopped", step=found.checkpoints[-1].step, folder=md(active)))
        return
    if not start:
        return
    try:
        check_limits(settings, shape, config.steps)
        vocabulary = synthetic_vocabulary(shape.vocab_size, context=shape.context, bos=task.bos)
        if task_kind == "text":
            vocabulary = st.session_state.get(VOCABULARY_KEY)
            if vocabulary is None:
                raise InputError("lab.error_no_tokenizer")
            texts = list(sample_corpus().texts)
            task = text_task(vocabulary, texts, window=shape.context, source="sample")
        folder = new_run_folder(lab_root())
        records = train(shape, vocabulary, task, config, folder)
    except AttnScopeError as error:
        show_error(error)
        return
    active = str(folder)
    st.session_state[ACTIVE_KEY] = active
    stop_flags().setdefault(active, threading.Event()).clear()
    right.button(tr("lab.stop"), key=STOP_BUTTON)
    bar = st.progress(0.0, text=tr("lab.starting"))
    chart = st.empty()
    history: list[StepRecord] = []
    checkpoints: list[CheckpointRecord] = []
    drawn = 0.0
    with heavy_work(), contextlib.closing(records):
        for record in records:
            if isinstance(record, CheckpointRecord):
                checkpoints.append(record)
            else:
                history.append(record)
            if stop_flags()[active].is_set():
                break
            if history and time.monotonic() - drawn > UPDATE_SECONDS:
                drawn = time.monotonic()
                bar.progress(history[-1].step / config.steps, text=_eta(history[-1], config.steps))
                live_figure(chart, training_figure(history, checkpoints, lang=lang()))
    st.session_state.pop(ACTIVE_KEY, None)
    st.session_state[RUN_KEY] = active
    found = load_run(active)
    st.session_state[DONE_KEY] = tr(
        "lab.finished",
        step=found.checkpoints[-1].step,
        status=tr(STATUS_KEYS[found.status]),
        folder=md(active),
    )
    st.rerun()
