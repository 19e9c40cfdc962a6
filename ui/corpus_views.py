"""Streamlit glue of the corpus views: head distributions (grid of medians and IQRs, a head's
histogram, layer boxes, a label split) and the head atlas. The queries are
:mod:`core.corpus.views`', cached per run folder and its chunks; the figures :mod:`viz.corpus`'s.
A head clicked in a grid or on the atlas becomes the head of every corpus view."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from core.corpus import CorpusRun, open_run
from core.corpus import atlas as atlases
from core.corpus import views as queries
from core.policy.errors import AttnScopeError
from ui.figures import show_figure
from ui.text import lang, md, show_error, tr
from ui.widgets import table_with_csv
from viz.corpus import atlas_figure, grid_figure, head_histogram, layer_box_figure, split_figure

__all__ = [
    "atlas_view",
    "chosen_head",
    "distributions_view",
    "head_choice",
    "run_version",
    "shown_run",
]

STATISTIC_WIDGET = "corpus_views_statistic"
LAYER_KEY = "corpus_views_layer"  # the chosen head, shared by the tabs (not a widget)
HEAD_KEY = "corpus_views_head"
GRID_CHART = "corpus_views_grid"
IQR_CHART = "corpus_views_iqr"
ATLAS_CHART = "corpus_views_atlas"
SPLIT_LABEL_WIDGET = "corpus_views_split_label"
SPLIT_A_WIDGET = "corpus_views_split_a"
SPLIT_B_WIDGET = "corpus_views_split_b"
CLUSTERS_WIDGET = "corpus_views_clusters"
COLOUR_WIDGET = "corpus_views_colour"
SHOWN_KEY = "corpus_shown"  # ui.corpus's: the run folder on screen
DEFAULT_STATISTIC = "entropy"
COLOURS = {"cluster": "corpus.view_colour_cluster", "pattern": "corpus.view_colour_pattern"}


def shown_run() -> CorpusRun | None:
    """The run on screen (opened or just made on the Run tab), or None; errors are shown there."""
    folder = st.session_state.get(SHOWN_KEY)
    if not folder:
        return None
    try:
        run = open_run(folder, verify=False)
        run.connect().close()  # a run with no rows yet is refused here
        with st.spinner(tr("corpus.view_preparing")):
            _profiles(str(run.folder), run_version(run))
    except AttnScopeError:
        return None
    return run


def run_version(run: CorpusRun) -> str:
    """What identifies the run's rows: its chunks and status (a resumed run is a new version)."""
    return json.dumps([sorted(run.manifest.get("chunks", {})), run.status])


# Cached per (folder, version, options): the run's rows never change under a version.
@st.cache_data(max_entries=16, show_spinner=False)
def _statistics(folder: str, version: str) -> list[str]:
    return queries.numeric_statistics(open_run(folder, verify=False))


@st.cache_data(max_entries=16, show_spinner=False)
def _grid(folder: str, version: str, statistic: str) -> queries.HeadGrid:
    return queries.head_grid(open_run(folder, verify=False), statistic)


@st.cache_data(max_entries=16, show_spinner=False)
def _values(folder: str, version: str, statistic: str, layer: int, head: int) -> np.ndarray:
    return queries.head_values(open_run(folder, verify=False), statistic, layer, head)


@st.cache_data(max_entries=16, show_spinner=False)
def _boxes(folder: str, version: str, statistic: str) -> pd.DataFrame:
    return queries.layer_boxes(open_run(folder, verify=False), statistic)


@st.cache_data(max_entries=16, show_spinner=False)
def _label_values(folder: str, version: str, label: str) -> list[str]:
    return queries.label_values(open_run(folder, verify=False), label)


@st.cache_data(max_entries=16, show_spinner=False)
def _split(folder: str, version: str, stat: str, label: str, a: str, b: str) -> queries.GroupSplit:
    return queries.group_split(open_run(folder, verify=False), stat, label, a, b)


@st.cache_data(max_entries=8, show_spinner=False)
def _profiles(folder: str, version: str) -> pd.DataFrame:
    """Every head's medians of every statistic: the atlas' input, the slowest query (seconds
    for 10 000 texts of SmolLM2), so it is made once when the run is opened."""
    return atlases.head_profiles(open_run(folder, verify=False))


@st.cache_data(max_entries=8, show_spinner=False)
def _atlas(folder: str, version: str, n_clusters: int) -> atlases.Atlas:
    return atlases.head_atlas(_profiles(folder, version), n_clusters=n_clusters, seed=0)


def _shape(run: CorpusRun) -> tuple[int, int]:
    return int(run.manifest["model"]["n_layers"]), int(run.manifest["model"]["n_heads"])


def _select_from(chart_key: str) -> None:
    """A chart's click callback: its first selected point's ``[layer, head]`` becomes the
    chosen head of every corpus view (before the pickers are drawn)."""
    event = st.session_state.get(chart_key)
    points = (event or {}).get("selection", {}).get("points", [])
    if not points:
        return
    custom = points[0].get("customdata")
    if isinstance(custom, list | tuple) and len(custom) >= 2:
        st.session_state[LAYER_KEY], st.session_state[HEAD_KEY] = int(custom[0]), int(custom[1])


def _remember(widget: str, store: str) -> None:
    st.session_state[store] = st.session_state[widget]


def chosen_head(run: CorpusRun) -> tuple[int, int]:
    """The head every corpus view shows (clicked, or picked on any tab), within the model."""
    n_layers, n_heads = _shape(run)
    layer = min(max(int(st.session_state.get(LAYER_KEY, 0)), 0), n_layers - 1)
    head = min(max(int(st.session_state.get(HEAD_KEY, 0)), 0), n_heads - 1)
    st.session_state[LAYER_KEY], st.session_state[HEAD_KEY] = layer, head
    return layer, head


def head_choice(run: CorpusRun, tab: str) -> tuple[int, int]:
    """Layer and head pickers on one tab (``tab`` makes their keys), sharing one choice with
    the other tabs and with clicks on the grids and the atlas."""
    n_layers, n_heads = _shape(run)
    layer, head = chosen_head(run)
    left, right = st.columns(2)
    picked = []
    for column, label, size, store, value in (
        (left, "common.layer", n_layers, LAYER_KEY, layer),
        (right, "common.head", n_heads, HEAD_KEY, head),
    ):
        widget = f"{tab}_{store}"
        st.session_state[widget] = value
        picked.append(
            column.selectbox(
                tr(label), range(size), key=widget, on_change=_remember, args=(widget, store)
            )
        )
    return int(picked[0]), int(picked[1])


def statistic_choice(run: CorpusRun) -> str:
    """The statistic the distributions show: any numeric per-head column of the run."""
    names = _statistics(str(run.folder), run_version(run))
    if st.session_state.get(STATISTIC_WIDGET) not in names:
        st.session_state[STATISTIC_WIDGET] = (
            DEFAULT_STATISTIC if DEFAULT_STATISTIC in names else names[0]
        )
    return st.selectbox(
        tr("corpus.view_statistic"),
        names,
        key=STATISTIC_WIDGET,
        help=tr("corpus.view_statistic_help"),
    )


def distributions_view(run: CorpusRun) -> None:
    """Grid of medians (click a head) and of IQRs, the head's histogram, layer boxes, a split."""
    folder, version, language = str(run.folder), run_version(run), lang()
    statistic = statistic_choice(run)
    try:
        grid = _grid(folder, version, statistic)
    except AttnScopeError as error:
        show_error(error)
        return
    st.caption(tr("corpus.view_grid_caption"))
    left, right = st.columns(2)
    with left:
        show_figure(
            grid_figure(grid, "median", lang=language),
            key=GRID_CHART,
            name=f"median_{statistic}",
            on_select=lambda: _select_from(GRID_CHART),
        )
    with right:
        show_figure(
            grid_figure(grid, "iqr", lang=language),
            key=IQR_CHART,
            name=f"iqr_{statistic}",
            on_select=lambda: _select_from(IQR_CHART),
        )
    layer, head = head_choice(run, "corpus_views_distributions")
    values = _values(folder, version, statistic, layer, head)
    show_figure(
        head_histogram(values, statistic, layer, head, lang=language),
        key="corpus_views_histogram",
        name=f"histogram_{statistic}_{layer}_{head}",
    )
    st.caption(
        tr(
            "corpus.view_head_numbers",
            layer=layer,
            head=head,
            median=f"{grid.median[layer, head]:.4g}",
            q1=f"{grid.q1[layer, head]:.4g}",
            q3=f"{grid.q3[layer, head]:.4g}",
            iqr=f"{grid.iqr[layer, head]:.4g}",
            n=int(grid.count[layer, head]),
        )
    )
    show_figure(
        layer_box_figure(_boxes(folder, version, statistic), statistic, lang=language),
        key="corpus_views_boxes",
        name=f"boxes_{statistic}",
    )
    st.caption(tr("corpus.view_boxes_caption"))
    _grid_table(grid)
    _split_view(run, statistic)


def _grid_table(grid: queries.HeadGrid) -> None:
    layers, heads = np.meshgrid(np.arange(grid.n_layers), np.arange(grid.n_heads), indexing="ij")
    table = pd.DataFrame(
        {
            "layer": layers.reshape(-1),
            "head": heads.reshape(-1),
            "median": grid.median.reshape(-1),
            "q1": grid.q1.reshape(-1),
            "q3": grid.q3.reshape(-1),
            "iqr": grid.iqr.reshape(-1),
            "mean": grid.mean.reshape(-1),
            "texts": grid.count.reshape(-1),
        }
    )
    with st.expander(tr("corpus.view_grid_table")):
        table_with_csv(table, tr("corpus.download"), f"corpus_{grid.statistic}_per_head.csv")


def _split_view(run: CorpusRun, statistic: str) -> None:
    """Texts of one label value against another: per head, the difference and Cohen's d."""
    st.subheader(tr("corpus.view_split_header"))
    labels = run.manifest["corpus"].get("label_columns") or []
    if not labels:
        st.info(tr("corpus.view_no_labels"))
        return
    folder, version = str(run.folder), run_version(run)
    label = st.selectbox(tr("corpus.group_column"), labels, key=SPLIT_LABEL_WIDGET)
    values = _label_values(folder, version, label)
    if len(values) < 2:
        st.info(tr("corpus.view_one_value", label=md(label)))
        return
    left, right = st.columns(2)
    a = left.selectbox(tr("corpus.view_group_a"), values, index=0, key=SPLIT_A_WIDGET)
    b = right.selectbox(tr("corpus.view_group_b"), values, index=1, key=SPLIT_B_WIDGET)
    if a == b:
        st.info(tr("corpus.view_same_group"))
        return
    split = _split(folder, version, statistic, label, a, b)
    show_figure(
        split_figure(split, lang=lang()), key="corpus_views_split", name=f"split_{statistic}"
    )
    st.caption(tr("corpus.view_split_caption"))
    with st.expander(tr("corpus.view_split_table")):
        table_with_csv(split.table, tr("corpus.download"), f"corpus_{statistic}_{label}_split.csv")


def atlas_view(run: CorpusRun, opened) -> None:
    """Every head on a PCA map of its statistic profile, coloured by KMeans cluster or pattern;
    a click opens the head (``opened(run, layer, head)`` draws it under the map)."""
    left, right = st.columns(2)
    k = left.slider(tr("corpus.view_clusters"), 2, 12, 6, key=CLUSTERS_WIDGET)
    colour = right.radio(
        tr("corpus.view_colour"),
        list(COLOURS),
        key=COLOUR_WIDGET,
        horizontal=True,
        format_func=lambda c: tr(COLOURS[c]),
    )
    atlas = _atlas(str(run.folder), run_version(run), int(k))
    show_figure(
        atlas_figure(atlas, colour, lang=lang()),
        key=ATLAS_CHART,
        name="head_atlas",
        on_select=lambda: _select_from(ATLAS_CHART),
    )
    st.caption(
        tr(
            "corpus.view_atlas_caption",
            k=atlas.n_clusters,
            seed=atlas.seed,
            n=len(atlas.statistics),
            pc1=f"{atlas.explained[0]:.0%}",
            pc2=f"{atlas.explained[1]:.0%}",
        )
    )
    with st.expander(tr("corpus.view_atlas_table")):
        table_with_csv(atlas.table, tr("corpus.download"), "corpus_head_atlas.csv")
    st.subheader(tr("corpus.view_atlas_head"))
    layer, head = chosen_head(run)
    row = atlas.table[(atlas.table.layer == layer) & (atlas.table["head"] == head)].iloc[0]
    st.markdown(
        tr(
            "corpus.view_atlas_opened",
            layer=layer,
            head=head,
            cluster=int(row["cluster"]),
            pattern=md(str(row["pattern"])),
        )
    )
    opened(run, layer, head)
