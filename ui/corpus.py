"""Streamlit glue of the Corpus page: choosing a corpus, running it with a progress bar, Stop
and Resume, and showing a run folder's summary. The work is :mod:`core.corpus`'s.

Stop reruns the script, which ends the run at its next progress update (a Streamlit call); the
chunks already written stay on disk, and the next script run offers Resume, which runs the same
corpus into the same folder.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import streamlit as st

from core.corpus import BatchOptions, Corpus, CorpusRun, list_runs, open_run, run_corpus
from core.corpus.run import CorpusProgress, StopRun, default_out, runs_root
from core.corpus.sources import corpus_columns, load_source, read_corpus_bytes, sample_corpus
from core.corpus.store import run_busy
from core.policy.errors import AttnScopeError, InputError
from core.policy.settings import Settings, check_request
from ui.services import count_request, get_model, heavy_work, stop_flags
from ui.text import lang, md, show_error, tr
from ui.widgets import table_with_csv

__all__ = ["choose_corpus", "open_controls", "run_controls", "show_run"]

SOURCE_WIDGET = "corpus_source"
UPLOAD_WIDGET = "corpus_upload"
PATH_WIDGET = "corpus_path"
TEXT_COLUMN_WIDGET = "corpus_text_column"
LABELS_WIDGET = "corpus_labels"
RUN_BUTTON = "corpus_run"
STOP_BUTTON = "corpus_stop"
RESUME_BUTTON = "corpus_resume"
OPEN_PATH_WIDGET = "corpus_open_path"
OPEN_PICK_WIDGET = "corpus_open_pick"
OPEN_BUTTON = "corpus_open"
GROUP_WIDGET = "corpus_group"
SQL_WIDGET = "corpus_sql"
# Session state: the run being made (corpus, model, folder) until it ends; the folder shown.
ACTIVE_KEY = "corpus_active"
SHOWN_KEY = "corpus_shown"
DONE_KEY = "corpus_done"  # the message of a run that just finished, shown once
SESSION_FOLDER_KEY = "corpus_session_folder"
SOURCES = {
    "sample": "corpus.source_sample",
    "upload": "corpus.source_upload",
    "path": "corpus.source_path",
}
STATUSES = {
    "complete": "corpus.status_complete",
    "running": "corpus.status_running",
    "stopped": "corpus.status_stopped",
    "failed": "corpus.status_failed",
}
# Small chunks: Stop and Resume lose at most 32 texts' work.
APP_OPTIONS = BatchOptions(batch_size=16, chunk_size=32)


def _runs_folder(settings: Settings) -> Path:
    """Where this session's runs go: the runs folder, or in demo mode a folder of its own (a
    public server never shows one visitor's texts to another)."""
    if not settings.demo:
        return runs_root()
    session = st.session_state.setdefault(SESSION_FOLDER_KEY, uuid.uuid4().hex)
    return runs_root() / "sessions" / session


def choose_corpus(settings: Settings) -> Corpus | None:
    """The source widgets; the corpus they name (None until one is chosen). Errors are shown."""
    sources = [s for s in SOURCES if s != "path" or not settings.demo]
    source = st.radio(
        tr("corpus.source"),
        sources,
        key=SOURCE_WIDGET,
        horizontal=True,
        format_func=lambda s: tr(SOURCES[s]),
    )
    try:
        if source == "sample":
            corpus = sample_corpus()
        elif source == "upload":
            upload = st.file_uploader(
                tr("corpus.upload"),
                type=["csv", "tsv", "jsonl", "ndjson", "txt"],
                key=UPLOAD_WIDGET,
            )
            if upload is None:
                return None
            data = upload.getvalue()
            columns = corpus_columns(data, upload.name)
            text_column, labels = _columns(columns)
            corpus = read_corpus_bytes(
                data,
                upload.name,
                text_column=text_column,
                label_columns=labels,
                max_text_chars=settings.max_text_chars,
            )
        else:
            spec = st.text_input(tr("corpus.path"), key=PATH_WIDGET).strip()
            if not spec:
                return None
            corpus = load_source(spec, max_text_chars=settings.max_text_chars)
    except AttnScopeError as error:
        show_error(error)
        return None
    st.caption(tr("corpus.ready", count=len(corpus), source=md(Path(corpus.source).name)))
    for notice in corpus.notices(lang()):
        st.warning(notice)
    return corpus


def _columns(columns: list[str]) -> tuple[str | None, list[str]]:
    """The text column and label columns chosen among ``columns`` (none for plain text)."""
    if not columns:
        return None, []
    text_column = st.selectbox(tr("corpus.text_column"), columns, key=TEXT_COLUMN_WIDGET)
    others = [c for c in columns if c != text_column]
    return text_column, st.multiselect(tr("corpus.label_columns"), others, key=LABELS_WIDGET)


def _progress_text(p: CorpusProgress) -> str:
    if p.eta is None:
        return tr("corpus.progress_start", done=p.done, total=p.total)
    return tr("corpus.progress", done=p.done, total=p.total, elapsed=p.elapsed, eta=p.eta)


def run_controls(corpus: Corpus | None, model: str, settings: Settings) -> None:
    """Run (and Stop) or, after a Stop, Resume; a finished run becomes the one shown."""
    if DONE_KEY in st.session_state:
        st.success(st.session_state.pop(DONE_KEY))
    columns = st.columns([1, 1, 4])
    start = columns[0].button(
        tr("corpus.run"), key=RUN_BUTTON, type="primary", disabled=corpus is None
    )
    active = st.session_state.get(ACTIVE_KEY)
    if active is not None and not start:  # a Stop (or a click elsewhere) ended the last run
        _stop(active["out"])
        st.info(
            tr(
                "corpus.stopped",
                done=_done(active["out"]),
                total=len(active["corpus"]),
                folder=md(active["out"]),
            )
        )
        if not columns[1].button(tr("corpus.resume"), key=RESUME_BUTTON):
            return
    elif start and corpus is not None:
        out = default_out(corpus, model)
        out = _runs_folder(settings) / out.name
        active = {"corpus": corpus, "model": model, "out": str(out)}
    else:
        return
    st.session_state[ACTIVE_KEY] = active
    _stop(active["out"])  # a run of this folder still stopping must end first
    stop = stop_flags().setdefault(active["out"], threading.Event())
    stop.clear()
    columns[1].button(tr("corpus.stop"), key=STOP_BUTTON)
    bar = st.progress(0.0, text=tr("corpus.progress_start", done=0, total=len(active["corpus"])))
    try:
        check_request(settings, model=active["model"], text="")
        count_request()
        with heavy_work():
            run = run_corpus(
                active["corpus"],
                get_model(active["model"], None),
                out=active["out"],
                options=APP_OPTIONS,
                settings=settings,
                progress=lambda p: bar.progress(p.fraction, text=_progress_text(p)),
                should_stop=stop.is_set,
            )
    except StopRun:  # this script run was replaced by the Stop click's: it says what was kept
        return
    except AttnScopeError as error:
        st.session_state.pop(ACTIVE_KEY, None)
        show_error(error)
        return
    st.session_state.pop(ACTIVE_KEY, None)
    st.session_state[SHOWN_KEY] = str(run.folder)
    seconds = run.manifest["timings"].get("last_seconds", 0.0)
    done = tr("corpus.complete", done=run.n_done, seconds=seconds, folder=md(run.folder))
    st.session_state[DONE_KEY] = done
    st.rerun()  # draw the page again without the finished run's buttons and progress bar


def _stop(folder: str) -> None:
    """Ask a run of ``folder`` still going in this process to stop, and wait until it has (its
    last batch; at most a few minutes), so its folder can be read or taken up."""
    flag = stop_flags().get(folder)
    if flag is not None:
        flag.set()
    if run_busy(folder):
        with st.spinner(tr("corpus.stopping")):
            deadline = time.monotonic() + 300
            while run_busy(folder) and time.monotonic() < deadline:
                time.sleep(0.2)


def _done(folder: str) -> int:
    try:
        return open_run(folder, verify=False).n_done
    except InputError:
        return 0


def open_controls(settings: Settings) -> None:
    """Open a run folder: any path (outside demo mode) or one of the runs listed."""
    runs = [row["folder"] for row in list_runs(_runs_folder(settings))]
    picked = st.selectbox(
        tr("corpus.open_pick"),
        runs,
        key=OPEN_PICK_WIDGET,
        index=None,
        placeholder=tr("corpus.no_runs") if not runs else None,
        format_func=lambda f: Path(f).name,
    )
    typed = ""
    if not settings.demo:
        typed = st.text_input(tr("corpus.open_path"), key=OPEN_PATH_WIDGET).strip()
    if st.button(tr("corpus.open"), key=OPEN_BUTTON) and (typed or picked):
        st.session_state[SHOWN_KEY] = typed or picked


def show_run(settings: Settings) -> None:
    """The run being shown: status, the per-head summary, a comparison by label and, outside
    demo mode, SQL over its views."""
    folder = st.session_state.get(SHOWN_KEY)
    if not folder:
        return
    try:
        run = open_run(folder)
        summary = run.head_summary()
    except AttnScopeError as error:
        show_error(error)
        return
    _status(run)
    st.subheader(tr("corpus.summary"))
    table_with_csv(summary, tr("corpus.download"), "corpus_heads.csv")
    labels = run.manifest["corpus"].get("label_columns") or []
    if labels:
        st.subheader(tr("corpus.groups"))
        column = st.selectbox(tr("corpus.group_column"), labels, key=GROUP_WIDGET)
        st.dataframe(run.label_summary(column), hide_index=True)
    if not settings.demo:
        with st.expander(tr("corpus.sql")):
            default = "SELECT pattern, count(*) AS n FROM heads GROUP BY ALL ORDER BY n DESC"
            sql = st.text_area(tr("corpus.sql"), default, key=SQL_WIDGET)
            try:
                st.dataframe(run.query(sql), hide_index=True)
            except Exception as error:  # the user's SQL: DuckDB says what is wrong
                st.error(md(str(error).splitlines()[0][:300]))
    with st.expander(tr("corpus.manifest")):
        st.json(run.manifest, expanded=False)


def _status(run: CorpusRun) -> None:
    manifest = run.manifest
    st.caption(
        tr(
            "corpus.status",
            status=tr(STATUSES.get(run.status, "corpus.status_running")),
            done=run.n_done,
            total=run.n_texts,
            model=md(manifest["model"]["name"]),
            source=md(Path(manifest["corpus"]["source"]).name),
        )
    )
