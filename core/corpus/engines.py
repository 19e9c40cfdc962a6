"""The engines that turn chunks of a corpus into tables: ``local`` (in this process, one chunk
after another) and ``ray`` (Ray Data ``map_batches`` over model-holding actors, on a local
cluster or an existing one). Both call :func:`process_chunk`, so they write the same rows.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from core.corpus.batch import BatchOptions, batch_statistics, plan_batches
from core.corpus.tables import TABLES, ChunkBuilder
from core.engine.tokenize import tokenize_many
from core.policy.errors import InputError

if TYPE_CHECKING:
    from core.engine.models import LoadedModel

__all__ = [
    "ENGINES",
    "ChunkWork",
    "Engine",
    "StopRun",
    "local_chunks",
    "process_chunk",
    "ray_chunks",
]

Engine = Literal["local", "ray"]
ENGINES: tuple[Engine, ...] = ("local", "ray")
ROOT = Path(__file__).resolve().parents[2]
# Passed on to Ray's workers, so they find the same models and caches as this process.
_WORKER_ENV = ("ATTNSCOPE_CACHE_DIR", "HF_HUB_OFFLINE", "HF_HOME", "ATTNSCOPE_DEVICE")


@dataclass(frozen=True)
class ChunkWork:
    """One chunk to compute: its index, and its texts (ids into the corpus, texts, labels) in
    the order they are batched."""

    index: int
    text_ids: tuple[int, ...]
    texts: tuple[str, ...]
    labels: Mapping[str, Sequence[str | None]]

    def to_json(self) -> str:
        return json.dumps([self.index, self.text_ids, self.texts, dict(self.labels)])

    @classmethod
    def from_json(cls, payload: str) -> ChunkWork:
        index, ids, texts, labels = json.loads(payload)
        return cls(index, tuple(ids), tuple(texts), labels)


@dataclass(frozen=True)
class ChunkDone:
    """A computed chunk: its tables and the seconds it took."""

    index: int
    tables: dict[str, pa.Table]
    seconds: float


def process_chunk(
    loaded: LoadedModel,
    work: ChunkWork,
    options: BatchOptions,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, pa.Table]:
    """The tables of one chunk: its texts tokenized, batched by length (see
    :func:`core.corpus.batch.plan_batches`) and run; never more than one batch's weights (one
    layer of them, in fact) alive at a time. ``should_stop`` is asked before each batch; when it
    says yes the chunk is dropped (:class:`StopRun`)."""
    tokenized = tokenize_many(loaded, work.texts, max_tokens=options.max_tokens)
    lengths = [t.input_ids.shape[-1] for t in tokenized]
    builder = ChunkBuilder(loaded.n_layers, loaded.n_heads, list(work.labels), options.top_n)
    for batch in plan_batches(lengths, loaded.n_heads, options.batch_size):
        if should_stop is not None and should_stop():
            raise StopRun
        stats = batch_statistics(loaded, [tokenized[i] for i in batch], options)
        builder.add(
            stats,
            [work.text_ids[i] for i in batch],
            [tokenized[i] for i in batch],
            [work.texts[i] for i in batch],
            {column: [values[i] for i in batch] for column, values in work.labels.items()},
        )
    return builder.tables()


def local_chunks(
    loaded: LoadedModel,
    works: Sequence[ChunkWork],
    options: BatchOptions,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[ChunkDone]:
    """Each chunk in turn, in this process (``should_stop``: see :func:`process_chunk`)."""
    for work in works:
        started = time.perf_counter()
        tables = process_chunk(loaded, work, options, should_stop)
        yield ChunkDone(work.index, tables, time.perf_counter() - started)


def _to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


class StopRun(Exception):
    """Stops a run: raised by a ``should_stop`` that said yes, or by a ``progress`` callback of
    :func:`core.corpus.run.run_corpus`. What was written stays, resumable."""


class ChunkWorker:
    """A Ray actor holding one model; each call computes the chunks of one Ray Data batch and
    returns their tables as Arrow IPC bytes."""

    def __init__(self, model: str, device: str | None, options: dict[str, Any]):
        from core.engine.models import load_model

        self.loaded = load_model(model, device=device)
        self.options = BatchOptions(**options)

    def __call__(self, batch: pa.Table) -> dict[str, list]:
        out: dict[str, list] = {"index": [], "seconds": [], **{name: [] for name in TABLES}}
        for payload in batch["work"].to_pylist():
            work = ChunkWork.from_json(payload)
            started = time.perf_counter()
            tables = process_chunk(self.loaded, work, self.options)
            out["index"].append(work.index)
            out["seconds"].append(time.perf_counter() - started)
            for name in TABLES:
                out[name].append(_to_ipc(tables[name]))
        return out


def ray_chunks(
    model: str,
    works: Sequence[ChunkWork],
    options: BatchOptions,
    *,
    address: str | None = None,
    workers: int = 2,
    device: str | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[ChunkDone]:
    """The chunks computed on Ray: ``ray.data.from_items`` of the chunks, ``map_batches`` with
    ``workers`` :class:`ChunkWorker` actors (one GPU each when the cluster has GPUs), results
    streamed back as they finish. Joins the cluster at ``address``, else starts a local one
    (``workers`` CPUs, no dashboard), and always shuts Ray down afterwards."""
    try:
        import ray
    except ImportError as error:
        raise InputError("error.corpus_ray_missing") from error
    env = {name: os.environ[name] for name in _WORKER_ENV if name in os.environ}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    if address is None:  # one thread per worker on a local cluster: they share this machine
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        env.setdefault("ATTNSCOPE_THREADS", str(max(1, cores // max(1, workers))))
    try:
        if address is None:
            ray.init(
                num_cpus=workers,
                include_dashboard=False,
                runtime_env={"env_vars": env},
                log_to_driver=False,
                configure_logging=False,
            )
        else:
            ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False)
        gpus = ray.cluster_resources().get("GPU", 0) >= 1
        data = ray.data.from_items([{"work": work.to_json()} for work in works])
        results = data.map_batches(
            ChunkWorker,
            fn_constructor_kwargs={
                "model": model,
                "device": "cuda" if gpus and device is None else device,
                "options": asdict(options),
            },
            batch_size=1,
            concurrency=workers,
            num_gpus=1 if gpus else 0,
            num_cpus=0 if gpus else 1,
            batch_format="pyarrow",
        )
        for row in results.iter_rows():
            if should_stop is not None and should_stop():
                raise StopRun
            tables = {name: _from_ipc(row[name]) for name in TABLES}
            yield ChunkDone(int(row["index"]), tables, float(row["seconds"]))
    finally:
        ray.shutdown()
