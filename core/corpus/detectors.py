"""Head detector scores over a corpus run, and a seeded sample of its texts for the query-key map.

A run stores two kinds of detector score (TransformerLens's head detector, computed live):

- per text, in the heads table: ``previous_token`` (the share of each query's attention on the
  token just before it) and ``duplicate_token`` (the share on earlier copies of the query's own
  token; null for a text in which no token repeats);
- once per run, in the manifest: ``induction``, ``previous_token`` and ``duplicate_token`` on
  sequences of random tokens repeated twice, generated with a seed
  (:func:`core.methods.detector_scores.detector_scores`).

:func:`corpus_detectors` reads both: each per-text score as its mean over the texts that have
it, ``(L, H)``, and the manifest's scores as arrays. No model is needed. :func:`sample_texts`
draws texts for :func:`core.methods.qk_map.qk_map` with a seed, so a map can be made again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.corpus.store import CorpusRun
from core.policy.errors import InputError

__all__ = ["CorpusDetectors", "corpus_detectors", "sample_texts"]

TEXT_SCORES = ("previous_token", "duplicate_token")  # heads-table columns
RANDOM_SCORES = ("induction", "previous_token", "duplicate_token")  # the manifest's


@dataclass(frozen=True)
class CorpusDetectors:
    """Detector scores of every head of a run: ``on_texts`` (name -> ``(L, H)`` mean over the
    texts that have the score, NaN where none has it), ``texts_with`` (name -> ``(L, H)`` how
    many texts had it), ``on_random`` (name -> ``(L, H)`` on repeated random tokens, empty for a
    run made before the manifest kept them) with its ``seed``, ``n_tokens`` and
    ``n_sequences``."""

    on_texts: dict[str, np.ndarray]
    texts_with: dict[str, np.ndarray]
    on_random: dict[str, np.ndarray]
    seed: int | None
    n_tokens: int | None
    n_sequences: int | None

    @property
    def induction(self) -> np.ndarray | None:
        """The induction score ``(L, H)``, or None when the run did not measure it."""
        return self.on_random.get("induction")


def _shape(run: CorpusRun) -> tuple[int, int]:
    model = run.manifest["model"]
    return int(model["n_layers"]), int(model["n_heads"])


def corpus_detectors(run: CorpusRun) -> CorpusDetectors:
    """The run's detector scores (see the module docstring). A run of the first store format
    has no ``duplicate_token`` column: that score is then NaN everywhere, with 0 texts."""
    n_layers, n_heads = _shape(run)
    columns = set(run.query("SELECT * FROM heads LIMIT 0").columns)
    on_texts, texts_with = {}, {}
    for name in TEXT_SCORES:
        mean = np.full((n_layers, n_heads), np.nan)  # (L, H)
        count = np.zeros((n_layers, n_heads), np.int64)  # (L, H)
        if name in columns:
            frame = run.query(
                f'SELECT layer, head, avg("{name}") AS mean, count("{name}") AS n '
                "FROM heads GROUP BY layer, head"
            )
            layers, heads = frame["layer"].to_numpy(int), frame["head"].to_numpy(int)
            mean[layers, heads] = frame["mean"].to_numpy(float)  # avg of no values is NULL
            count[layers, heads] = frame["n"].to_numpy(np.int64)
        on_texts[name], texts_with[name] = mean, count
    found = run.detector_scores() or {}
    on_random = {
        name: np.asarray(found[name], dtype=np.float64).reshape(n_layers, n_heads)
        for name in RANDOM_SCORES
        if name in found
    }
    return CorpusDetectors(
        on_texts=on_texts,
        texts_with=texts_with,
        on_random=on_random,
        seed=found.get("seed"),
        n_tokens=found.get("n_tokens"),
        n_sequences=found.get("n_sequences"),
    )


def sample_texts(run: CorpusRun, n: int, seed: int = 0) -> list[tuple[int, str]]:
    """``n`` of the run's texts (all of them when it has fewer), as ``(text_id, text)``, drawn
    without replacement by ``numpy.random.default_rng(seed)`` from the ids in ascending order:
    the same run, ``n`` and seed give the same texts in the same order."""
    if n < 1:
        raise InputError("error.qk_max_tokens", max_tokens=n)
    ids = run.query("SELECT text_id FROM texts ORDER BY text_id")["text_id"].to_numpy(np.int64)
    if len(ids) == 0:
        raise InputError("error.no_tokens")
    chosen = np.random.default_rng(seed).choice(ids, size=min(n, len(ids)), replace=False)
    wanted = [int(i) for i in chosen]
    frame = run.query(
        "SELECT text_id, text FROM texts WHERE text_id IN (SELECT unnest(?))", [wanted]
    )
    by_id = dict(zip(frame["text_id"].astype(int), frame["text"].astype(str), strict=True))
    return [(i, by_id[i]) for i in wanted]
