"""The head atlas of a corpus run (Dodrio's and AttentionViz's head maps): every head's profile
(the median over the texts of every numeric statistic), z-scored, clustered with scikit-learn's
KMeans and placed on a 2-D map with PCA."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from core.corpus.store import CorpusRun
from core.corpus.views import check_statistic, numeric_statistics

__all__ = ["Atlas", "ColourBy", "head_atlas", "head_profiles", "standardise"]

ColourBy = Literal["cluster", "pattern"]


def head_profiles(run: CorpusRun, statistics: list[str] | None = None) -> pd.DataFrame:
    """One row per head (``layer``, ``head``, ``pattern``: its most frequent label, and the
    median over the texts of each statistic, default every numeric one), ordered by layer and
    head: the input of :func:`head_atlas`."""
    allowed = numeric_statistics(run)
    names = statistics if statistics is not None else allowed
    columns = [check_statistic(run, name, allowed) for name in names]
    medians = ", ".join(
        f"quantile_cont(CASE WHEN isnan({c}::DOUBLE) THEN NULL ELSE {c} END, 0.5) AS {c}"
        for c in columns
    )
    return run.query(
        f"SELECT layer, head, mode(pattern)::VARCHAR AS pattern, {medians} "
        "FROM heads GROUP BY layer, head ORDER BY layer, head"
    )


def standardise(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns of ``matrix`` ``(N, S)`` as z-scores, ``(x - mean) / std`` (population std, as
    scikit-learn's ``StandardScaler``); columns with no spread or any NaN are dropped. Returns
    the z-scores ``(N, S')`` and the boolean mask of the columns kept ``(S,)``.

    >>> z, kept = standardise(np.array([[1.0, 5.0, 0.0], [3.0, 5.0, 2.0]]))
    >>> z.tolist(), kept.tolist()
    ([[-1.0, -1.0], [1.0, 1.0]], [True, False, True])
    """
    matrix = np.asarray(matrix, np.float64)  # (N, S)
    std = matrix.std(axis=0)  # (S,)
    kept = np.isfinite(matrix).all(axis=0) & (std > 1e-12)
    kept_matrix = matrix[:, kept]  # (N, S')
    return (kept_matrix - kept_matrix.mean(axis=0)) / std[kept], kept


@dataclass(frozen=True)
class Atlas:
    """Every head placed on a 2-D PCA map of its standardised statistic profile, with a KMeans
    cluster. ``table``: one row per head (``layer``, ``head``, ``pattern``, ``cluster``, ``x``,
    ``y`` and the medians profiled). ``explained``: PCA's explained variance ratio of x and y."""

    table: pd.DataFrame
    statistics: tuple[str, ...]  # the statistics used (those with spread)
    n_clusters: int
    seed: int
    explained: tuple[float, float]


def head_atlas(profiles: pd.DataFrame, *, n_clusters: int = 6, seed: int = 0) -> Atlas:
    """Cluster heads by their profiles (:func:`head_profiles`): z-scores of every statistic's
    median (:func:`standardise`), scikit-learn ``KMeans(n_clusters, n_init=10,
    random_state=seed)`` on them, and ``PCA(n_components=2)`` of the same z-scores for the map."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    names = [c for c in profiles.columns if c not in ("layer", "head", "pattern")]
    z, kept = standardise(profiles[names].to_numpy(np.float64))  # (N, S')
    used = tuple(name for name, keep in zip(names, kept, strict=True) if keep)
    n = len(profiles)
    k = max(1, min(int(n_clusters), n))
    if z.shape[1] == 0:
        z = np.zeros((n, 1))
    clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(z)
    components = min(2, z.shape[1], n)
    pca = PCA(n_components=components, random_state=seed).fit(z)
    xy = np.zeros((n, 2))
    xy[:, :components] = pca.transform(z)  # (N, 2)
    ratio = list(pca.explained_variance_ratio_) + [0.0] * (2 - components)
    table = profiles.copy()
    table.insert(3, "cluster", clusters.astype(int))
    table.insert(4, "x", xy[:, 0])
    table.insert(5, "y", xy[:, 1])
    return Atlas(table, used, k, seed, (float(ratio[0]), float(ratio[1])))
