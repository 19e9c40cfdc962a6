"""Streamlit glue of "where does this head fire" (exBERT's search over a corpus run: a head's
strongest instances with context, filtered by pattern and token; a hit opens its text in the
single-text pages at that layer and head) and of the corpus tables' downloads (CSV, Parquet)."""

from __future__ import annotations

import hashlib
import tempfile
from functools import partial
from pathlib import Path

import streamlit as st

from core.corpus import CorpusRun, open_run
from core.corpus import views as queries
from core.corpus.batch import PATTERNS
from core.corpus.tables import TABLES
from core.engine.models import BUILTIN_MODELS
from core.policy.i18n import Lang, t
from ui.analyze import ask
from ui.corpus_views import head_choice, run_version
from ui.services import app_settings
from ui.state import (
    CUSTOM_CHOICE,
    CUSTOM_MODEL_KEY,
    HEAD_KEY,
    LAYER_KEY,
    MAX_TOKENS_KEY,
    MODEL_KEY,
    PAIR_KEY,
    TEXT_KEY,
    Request,
)
from ui.text import lang, tr
from viz.corpus import fire_table, hit_label

__all__ = ["atlas_opened", "exports_view", "fires_view", "follow_open", "show_hits", "top_hits"]

PATTERN_WIDGET = "corpus_fires_pattern"
TOKEN_WIDGET = "corpus_fires_token"
HIT_WIDGET = "corpus_fires_hit"
OPEN_BUTTON = "corpus_fires_open"
TABLE_WIDGET = "corpus_export_table"
FORMAT_WIDGET = "corpus_export_format"
PREPARE_BUTTON = "corpus_export_prepare"
OPEN_PENDING_KEY = "corpus_fires_opening"  # set by Open's callback: switch to Heatmaps
EXPORT_KEY = "corpus_export_file"  # (folder, version, table, format) -> bytes, the last one
HEATMAPS_PAGE = "pages/heatmaps.py"
HITS_SHOWN = 50
EXPORT_FORMATS = ("csv", "parquet")


@st.cache_data(max_entries=32, show_spinner=False)
def top_hits(
    folder: str, version: str, layer: int, head: int, pattern: str | None, token: str | None
) -> list[queries.FireHit]:
    """The head's strongest instances (cached per run version and filters)."""
    run = open_run(folder, verify=False)
    return queries.where_it_fires(run, layer, head, pattern=pattern, token=token, limit=HITS_SHOWN)


def _pattern_label(pattern: str | None, language: Lang) -> str:
    return t("corpus.view_any_pattern", language) if pattern is None else pattern


def _open(run: CorpusRun, hit: queries.FireHit, layer: int, head: int) -> None:
    """Open's callback (before the script runs): put the hit's text, the run's model and the
    head into the sidebar and the shared layer/head choice, and ask for its analysis."""
    model = str(run.manifest["model"]["name"])
    if model in BUILTIN_MODELS:
        st.session_state[MODEL_KEY] = model
    else:
        st.session_state[MODEL_KEY] = CUSTOM_CHOICE
        st.session_state[CUSTOM_MODEL_KEY] = model
    st.session_state[TEXT_KEY] = hit.text
    st.session_state[PAIR_KEY] = ""
    st.session_state[LAYER_KEY] = layer
    st.session_state[HEAD_KEY] = head
    limit = min(
        int(st.session_state.get(MAX_TOKENS_KEY, app_settings().max_tokens)),
        int(run.manifest["options"].get("max_tokens") or app_settings().max_tokens),
        app_settings().max_tokens,
    )
    st.session_state[MAX_TOKENS_KEY] = limit
    ask(Request(model=model, text=hit.text, pair=None, max_tokens=limit, device=None))
    st.session_state[OPEN_PENDING_KEY] = True


def follow_open() -> None:
    """After Open: go to the Heatmaps page (its analysis is already asked for)."""
    if st.session_state.pop(OPEN_PENDING_KEY, False):
        st.switch_page(HEATMAPS_PAGE)


def fires_view(run: CorpusRun) -> None:
    """A head's strongest instances over the run, filters, the table and Open in Heatmaps."""
    language = lang()
    st.caption(tr("corpus.view_fires_caption", top_n=int(run.manifest["options"]["top_n"])))
    layer, head = head_choice(run, "corpus_fires")
    left, right = st.columns(2)
    pattern = left.selectbox(
        tr("corpus.view_pattern_filter"),
        [None, *PATTERNS],
        key=PATTERN_WIDGET,
        format_func=partial(_pattern_label, language=language),
    )
    token = right.text_input(
        tr("corpus.view_token_filter"), key=TOKEN_WIDGET, max_chars=100
    ).strip()
    show_hits(run, layer, head, pattern=pattern, token=token or None)


def show_hits(
    run: CorpusRun,
    layer: int,
    head: int,
    *,
    pattern: str | None = None,
    token: str | None = None,
    key: str = "",
) -> None:
    """The hits as a table (Streamlit's grid shows every text as text) and Open for one."""
    language = lang()
    hits = top_hits(str(run.folder), run_version(run), layer, head, pattern, token)
    if not hits:
        st.info(tr("corpus.view_no_hits"))
        return
    st.dataframe(fire_table(hits, lang=language), hide_index=True, key=f"{key}table")
    left, right = st.columns([3, 1])
    # One picker per run folder: the choices are ranks 1..n whatever the run, so a picker kept
    # across runs could go on showing the previous run's label for rank 1.
    run_tag = hashlib.sha1(str(run.folder).encode("utf-8")).hexdigest()[:10]
    rank = left.selectbox(
        tr("corpus.view_hit"),
        range(1, len(hits) + 1),
        key=f"{key}{HIT_WIDGET}_{run_tag}",
        format_func=lambda r: hit_label(r, hits[r - 1], language),
    )
    right.button(
        tr("corpus.view_open_hit"),
        key=f"{key}{OPEN_BUTTON}",
        on_click=_open,
        args=(run, hits[int(rank) - 1], layer, head),
        type="primary",
    )


def atlas_opened(run: CorpusRun, layer: int, head: int) -> None:
    """Under the atlas, where the clicked head fires (and Open)."""
    show_hits(run, layer, head, key="corpus_atlas_")


def exports_view(run: CorpusRun) -> None:
    """Any of the run's tables (texts, layers, heads, instances: every chunk's rows, and the
    run-wide top instances) as CSV or Parquet, written by DuckDB when asked for."""
    st.caption(tr("corpus.view_export_caption"))
    left, right = st.columns(2)
    table = left.selectbox(
        tr("corpus.view_export_table"), [*TABLES, "instances_all"], key=TABLE_WIDGET
    )
    fmt = right.radio(
        tr("common.export_format"),
        EXPORT_FORMATS,
        key=FORMAT_WIDGET,
        horizontal=True,
        format_func=str.upper,
    )
    wanted = (str(run.folder), run_version(run), table, fmt)
    if st.button(tr("corpus.view_export_prepare"), key=PREPARE_BUTTON):
        with st.spinner(tr("common.export_preparing")):
            st.session_state[EXPORT_KEY] = (wanted, _table_bytes(run, table, fmt))
    found = st.session_state.get(EXPORT_KEY)
    if found is not None and found[0] == wanted:
        name = f"{run.folder.name}_{table}.{fmt}"
        st.download_button(
            tr("common.export_download", name=name),
            found[1],
            file_name=name,
            mime="text/csv" if fmt == "csv" else "application/vnd.apache.parquet",
            key="corpus_export_download",
        )


def _table_bytes(run: CorpusRun, table: str, fmt: str) -> bytes:
    """One of the run's views as a CSV (header row, UTF-8) or Parquet (zstd) file's bytes."""
    assert table in (*TABLES, "instances_all") and fmt in EXPORT_FORMATS
    order = {"texts": "text_id", "layers": "text_id, layer", "heads": "text_id, layer, head"}
    by = order.get(table, "layer, head, weight DESC, text_id, query, key")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"table.{fmt}"
        options = "FORMAT csv, HEADER" if fmt == "csv" else "FORMAT parquet, COMPRESSION zstd"
        connection = run.connect()
        try:
            target = str(path).replace("'", "''")
            connection.execute(
                f"COPY (SELECT * FROM {table} ORDER BY {by}) TO '{target}' ({options})"
            )
        finally:
            connection.close()
        return path.read_bytes()
