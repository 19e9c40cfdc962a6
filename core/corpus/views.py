"""The corpus views' queries: per-head distributions of a statistic (medians, quartiles, layer
boxes, a split by a corpus label with an effect size), where a head fires (its strongest
instances with context); the head atlas is :mod:`core.corpus.atlas`.

Every query runs in DuckDB over the run's Parquet views (``python -m bench corpus_views``
measures it against pandas on the same files: DuckDB was faster for every view). The
statistics offered are every numeric per-head column of the ``heads`` table, so columns added
to the store later appear without a change here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.corpus.store import CorpusRun
from core.corpus.tables import label_field
from core.policy.errors import InputError

__all__ = [
    "HEAD_KEYS",
    "FireHit",
    "GroupSplit",
    "HeadGrid",
    "check_statistic",
    "cohens_d",
    "group_split",
    "head_grid",
    "head_values",
    "label_values",
    "layer_boxes",
    "numeric_statistics",
    "where_it_fires",
]

HEAD_KEYS = ("text_id", "layer", "head")
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "REAL")
_NUMERIC_PREFIXES = ("DECIMAL", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")


def _quote(name: str) -> str:
    """A column name as a DuckDB identifier.

    >>> _quote('a"b')
    '"a""b"'
    """
    return '"' + name.replace('"', '""') + '"'


def numeric_statistics(run: CorpusRun) -> list[str]:
    """The ``heads`` table's numeric per-head columns (every statistic, ``*_choice`` variants
    and any column added later), in table order; the keys ``text_id``, ``layer``, ``head`` and
    list columns are left out."""
    described = run.query("DESCRIBE heads")
    return [
        str(name)
        for name, kind in zip(described.column_name, described.column_type, strict=True)
        if name not in HEAD_KEYS
        and (str(kind) in _NUMERIC or str(kind).startswith(_NUMERIC_PREFIXES))
    ]


def check_statistic(run: CorpusRun, statistic: str, allowed: list[str] | None = None) -> str:
    """``statistic`` quoted, after checking it is one of the run's numeric head columns
    (``allowed``, read from the run if not given): a name from outside never reaches SQL
    unchecked."""
    if statistic not in (allowed if allowed is not None else numeric_statistics(run)):
        raise InputError("error.corpus_no_statistic", statistic=statistic)
    return _quote(statistic)


def _label(run: CorpusRun, column: str) -> str:
    if column not in (run.manifest["corpus"].get("label_columns") or []):
        raise InputError("error.corpus_no_label", column=column)
    return _quote(label_field(column))


@dataclass(frozen=True)
class HeadGrid:
    """One statistic's distribution over the texts, per head: arrays ``(n_layers, n_heads)``
    (NaN where a head has no finite value). ``iqr = q3 - q1``."""

    statistic: str
    median: np.ndarray  # (L, H)
    q1: np.ndarray  # (L, H)
    q3: np.ndarray  # (L, H)
    mean: np.ndarray  # (L, H)
    count: np.ndarray  # (L, H) texts with a finite value

    @property
    def iqr(self) -> np.ndarray:
        return self.q3 - self.q1  # (L, H)

    @property
    def n_layers(self) -> int:
        return self.median.shape[0]

    @property
    def n_heads(self) -> int:
        return self.median.shape[1]


def _shape(run: CorpusRun) -> tuple[int, int]:
    return int(run.manifest["model"]["n_layers"]), int(run.manifest["model"]["n_heads"])


def _grid(frame: pd.DataFrame, column: str, shape: tuple[int, int]) -> np.ndarray:
    out = np.full(shape, np.nan)  # (L, H)
    out[frame.layer.to_numpy(int), frame["head"].to_numpy(int)] = frame[column].to_numpy(float)
    return out


def head_grid(run: CorpusRun, statistic: str) -> HeadGrid:
    """Median, quartiles (linear interpolation, as ``numpy.percentile``), mean and count of
    ``statistic`` over the texts, for every head. NaN values (a statistic undefined for a text)
    are left out."""
    column = check_statistic(run, statistic)
    frame = run.query(
        f"""
        SELECT layer, head, quantile_cont({column}, [0.25, 0.5, 0.75]) AS q,
               avg({column}) AS mean, count({column}) AS n
        FROM heads WHERE NOT isnan({column}::DOUBLE) GROUP BY layer, head
        """
    )
    quartiles = np.array(frame.pop("q").tolist(), np.float64).reshape(-1, 3)  # (L*H, 3)
    frame["q1"], frame["median"], frame["q3"] = quartiles.T
    shape = _shape(run)
    return HeadGrid(
        statistic,
        *(_grid(frame, name, shape) for name in ("median", "q1", "q3", "mean")),
        count=np.nan_to_num(_grid(frame, "n", shape)).astype(np.int64),
    )


def head_values(run: CorpusRun, statistic: str, layer: int, head: int) -> np.ndarray:
    """``statistic`` of one head over every text, in text order ``(n_texts,)`` (finite only)."""
    column = check_statistic(run, statistic)
    frame = run.query(
        f"SELECT {column} AS v FROM heads WHERE layer = ? AND head = ? "
        f"AND NOT isnan({column}::DOUBLE) ORDER BY text_id",
        [int(layer), int(head)],
    )
    return frame.v.to_numpy(np.float64)


def layer_boxes(run: CorpusRun, statistic: str) -> pd.DataFrame:
    """Per layer, over every head and text: ``p05``, ``q1``, ``median``, ``q3``, ``p95``,
    ``mean``, ``n`` (the boxes' whiskers are the 5th and 95th percentiles)."""
    column = check_statistic(run, statistic)
    frame = run.query(
        f"""
        SELECT layer, quantile_cont({column}, [0.05, 0.25, 0.5, 0.75, 0.95]) AS q,
               avg({column}) AS mean, count(*) AS n
        FROM heads WHERE NOT isnan({column}::DOUBLE) GROUP BY layer ORDER BY layer
        """
    )
    quantiles = np.array(frame.pop("q").tolist(), np.float64).reshape(-1, 5)  # (L, 5)
    for i, name in enumerate(("p05", "q1", "median", "q3", "p95")):
        frame.insert(1 + i, name, quantiles[:, i])
    return frame


def label_values(run: CorpusRun, column: str) -> list[str]:
    """The values a corpus label ``column`` takes, most frequent first (blank ones left out)."""
    field = _label(run, column)
    frame = run.query(
        f"SELECT {field} AS v, count(*) AS n FROM texts WHERE {field} IS NOT NULL "
        "AND trim(" + field + ") <> '' GROUP BY 1 ORDER BY n DESC, v"
    )
    return [str(v) for v in frame.v]


def cohens_d(
    mean_a: np.ndarray,
    var_a: np.ndarray,
    n_a: np.ndarray,
    mean_b: np.ndarray,
    var_b: np.ndarray,
    n_b: np.ndarray,
) -> np.ndarray:
    """Cohen's d of group A against group B, elementwise (any shape): the difference of means
    over the pooled standard deviation (Cohen 1988, *Statistical Power Analysis for the
    Behavioral Sciences*, 2nd ed., eq. 2.5.2 with the pooled sample variance):

        d = (mean_a - mean_b) / s,   s = sqrt(((n_a - 1) var_a + (n_b - 1) var_b) / (n_a + n_b - 2))

    ``var_*`` are sample variances (``ddof=1``). NaN where ``s`` is 0 or either group has
    fewer than 2 values. Conventionally 0.2 is small, 0.5 medium, 0.8 large.

    >>> a, b = np.array([1.0, 2.0, 3.0]), np.array([3.0, 4.0, 5.0])
    >>> float(cohens_d(a.mean(), a.var(ddof=1), 3, b.mean(), b.var(ddof=1), 3))
    -2.0
    >>> float(cohens_d(1.0, 0.0, 4, 1.0, 0.0, 4))
    nan
    """
    mean_a, var_a, n_a = (np.asarray(x, np.float64) for x in (mean_a, var_a, n_a))
    mean_b, var_b, n_b = (np.asarray(x, np.float64) for x in (mean_b, var_b, n_b))
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = np.sqrt(((n_a - 1) * var_a + (n_b - 1) * var_b) / (n_a + n_b - 2))
        d = (mean_a - mean_b) / pooled
    return np.where((pooled > 0) & (n_a >= 2) & (n_b >= 2), d, np.nan)


@dataclass(frozen=True)
class GroupSplit:
    """A statistic per head, texts of label value ``a`` against those of value ``b``: one row
    per head in ``table`` (``layer``, ``head``, ``n_a``, ``n_b``, ``median_a``, ``median_b``,
    ``mean_a``, ``mean_b``, ``median_diff`` = a - b, ``mean_diff`` = a - b, ``cohens_d``)."""

    statistic: str
    label: str
    a: str
    b: str
    table: pd.DataFrame

    def grid(self, column: str) -> np.ndarray:
        """``column`` of :attr:`table` as ``(n_layers, n_heads)``."""
        shape = (int(self.table.layer.max()) + 1, int(self.table["head"].max()) + 1)
        return _grid(self.table, column, shape)


def group_split(run: CorpusRun, statistic: str, label: str, a: str, b: str) -> GroupSplit:
    """Per head, ``statistic`` over the texts whose ``label`` is ``a`` against those where it
    is ``b``: medians, means, their differences (a - b) and Cohen's d (:func:`cohens_d`)."""
    column, field = check_statistic(run, statistic), _label(run, label)
    frame = run.query(
        f"""
        SELECT h.layer, h.head, t.{field} = ? AS in_a, count(h.{column}) AS n,
               quantile_cont(h.{column}, 0.5) AS median, avg(h.{column}) AS mean,
               coalesce(var_samp(h.{column}), 0) AS var
        FROM heads h JOIN texts t USING (text_id)
        WHERE t.{field} IN (?, ?) AND NOT isnan(h.{column}::DOUBLE)
        GROUP BY ALL
        """,
        [a, a, b],
    )
    one = frame[frame.in_a].set_index(["layer", "head"])
    other = frame[~frame.in_a].set_index(["layer", "head"])
    table = one.merge(other, how="outer", left_index=True, right_index=True, suffixes=("_a", "_b"))
    table = table.sort_index().reset_index()
    table = table.fillna({"n_a": 0, "n_b": 0})
    table["median_diff"] = table.median_a - table.median_b
    table["mean_diff"] = table.mean_a - table.mean_b
    table["cohens_d"] = cohens_d(
        table.mean_a, table.var_a, table.n_a, table.mean_b, table.var_b, table.n_b
    )
    columns = ["layer", "head", "n_a", "n_b", "median_a", "median_b", "mean_a", "mean_b"]
    table = table[[*columns, "median_diff", "mean_diff", "cohens_d"]]
    return GroupSplit(statistic, label, a, b, table.astype({"n_a": int, "n_b": int}))


@dataclass(frozen=True)
class FireHit:
    """One instance where a head fires: in text ``text_id``, query position ``query`` puts
    ``weight`` on key position ``key``; ``*_before`` / ``*_after``: up to ``window`` tokens on
    each side of the query and of the key. ``pattern``: the head's pattern label on that text."""

    text_id: int
    weight: float
    query: int
    key: int
    query_token: str
    key_token: str
    pattern: str
    text: str
    query_before: tuple[str, ...]
    query_after: tuple[str, ...]
    key_before: tuple[str, ...]
    key_after: tuple[str, ...]


def where_it_fires(
    run: CorpusRun,
    layer: int,
    head: int,
    *,
    pattern: str | None = None,
    token: str | None = None,
    limit: int = 50,
    window: int = 4,
) -> list[FireHit]:
    """The head's strongest instances across the run (every chunk's top instances of the head,
    strongest first; ties by text, query, key), each with its text and ``window`` tokens of
    context around the query and the key. ``pattern``: only texts on which the head's pattern
    label is this; ``token``: only instances whose query or key token is this (case-insensitive,
    ``##``/``Ġ`` markers and spaces ignored)."""
    where, params = ["i.layer = ?", "i.head = ?"], [int(layer), int(head)]
    if pattern:
        where.append("h.pattern = ?")
        params.append(pattern)
    if token and token.strip():
        bare = "lower(trim(regexp_replace({0}, '^(##|Ġ|▁)', '')))"
        where.append(f"({bare.format('i.query_token')} = ? OR {bare.format('i.key_token')} = ?)")
        wanted = token.strip().lower().removeprefix("##")
        params += [wanted, wanted]
    frame = run.query(
        f"""
        SELECT i.text_id, i.weight, i.query, i.key, i.query_token, i.key_token,
               h.pattern::VARCHAR AS pattern, t.text, t.tokens
        FROM instances_all i
        JOIN heads h ON h.text_id = i.text_id AND h.layer = i.layer AND h.head = i.head
        JOIN texts t ON t.text_id = i.text_id
        WHERE {" AND ".join(where)}
        ORDER BY i.weight DESC, i.text_id, i.query, i.key LIMIT {int(limit)}
        """,
        params,
    )
    hits = []
    for row in frame.itertuples(index=False):
        tokens = tuple(str(t) for t in row.tokens)
        q, k = int(row.query), int(row.key)
        hits.append(
            FireHit(
                text_id=int(row.text_id),
                weight=float(row.weight),
                query=q,
                key=k,
                query_token=str(row.query_token),
                key_token=str(row.key_token),
                pattern=str(row.pattern),
                text=str(row.text),
                query_before=tokens[max(q - window, 0) : q],
                query_after=tokens[q + 1 : q + 1 + window],
                key_before=tokens[max(k - window, 0) : k],
                key_after=tokens[k + 1 : k + 1 + window],
            )
        )
    return hits
