"""Profile of one forward pass with ``torch.profiler``: time and memory per operator and per
layer (CPU, and CUDA on a GPU), the Chrome trace, and time and peak memory against sequence
length.

Layers are ``record_function`` scopes opened and closed by forward pre/post hooks on each block
(:class:`core.engine.hooks.HookSet`, always removed; a scope left open by a failed pass is
closed too). Memory per row is the profiler's: bytes allocated minus bytes freed inside the
scope. Peak memory is, on CUDA, ``torch.cuda.max_memory_allocated`` above what was allocated
before the pass (the caching allocator's own count of live tensors); on the CPU, the highest
running sum of the profiler's allocation and free records (``profile_memory=True``) over the pass.
``tracemalloc`` is not used: it sees Python's allocator only, not the memory of tensors.
"""

from __future__ import annotations

import itertools
import statistics as pystats
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.profiler import ProfilerActivity, profile, record_function

from core.engine.analysis import Analysis
from core.engine.hooks import HookSet, architecture_for, attention_modules
from core.engine.models import LoadedModel
from core.policy.errors import UnsupportedModelError

__all__ = [
    "ForwardProfile",
    "LayerRow",
    "LengthCurve",
    "LengthPoint",
    "OperatorRow",
    "doubling_lengths",
    "length_curve",
    "profile_forward",
]

SCOPE = "attnscope::"
FORWARD_SCOPE = SCOPE + "forward"
MemorySource = Literal["cuda_max_memory_allocated", "profiler_cpu_allocations"]


@dataclass(frozen=True)
class OperatorRow:
    """One operator over every profiled pass; times in microseconds, memory in bytes."""

    name: str
    calls: int
    cpu_total_us: float  # with the operators it called
    cpu_self_us: float  # without them
    cuda_total_us: float
    cuda_self_us: float
    cpu_memory_bytes: int  # allocated minus freed, with the operators it called
    cpu_self_memory_bytes: int
    cuda_memory_bytes: int


@dataclass(frozen=True)
class LayerRow:
    """One block (layer) of the model over every profiled pass."""

    layer: int
    module: str  # the block's class
    calls: int
    cpu_total_us: float
    cuda_total_us: float
    cpu_memory_bytes: int
    cuda_memory_bytes: int
    share: float  # of the forward pass's CPU time


@dataclass(frozen=True)
class ForwardProfile:
    """The profile of ``repeats`` forward passes of one analysis' tokens."""

    model_name: str
    seq_len: int
    device: str
    repeats: int
    forward_cpu_us: float  # the whole pass (every repeat), CPU
    forward_cuda_us: float
    peak_bytes: int  # see the module docstring: CUDA allocator or CPU allocation records
    memory_source: MemorySource
    operators: tuple[OperatorRow, ...]  # largest CPU self time first
    layers: tuple[LayerRow, ...]  # in layer order
    trace: bytes  # Chrome trace (JSON), for chrome://tracing or ui.perfetto.dev


@dataclass(frozen=True)
class LengthPoint:
    seq_len: int
    seconds: float  # median over the timed passes
    peak_bytes: int


@dataclass(frozen=True)
class LengthCurve:
    """Time and peak memory of one forward pass against the number of tokens."""

    model_name: str
    device: str
    memory_source: MemorySource
    points: tuple[LengthPoint, ...]  # increasing seq_len


def doubling_lengths(start: int, cap: int) -> tuple[int, ...]:
    """``start, 2·start, 4·start, ...`` up to ``cap``, then ``cap`` itself if not reached.

    >>> doubling_lengths(8, 100)
    (8, 16, 32, 64, 100)
    >>> doubling_lengths(8, 8), doubling_lengths(16, 4)
    ((8,), (4,))
    """
    start = max(1, min(start, cap))
    lengths = [start]
    while lengths[-1] * 2 <= cap:
        lengths.append(lengths[-1] * 2)
    if lengths[-1] != cap:
        lengths.append(cap)
    return tuple(lengths)


def _blocks(model: nn.Module) -> list[nn.Module]:
    """The model's layers: its family's blocks, else the modules holding its attention."""
    try:
        return list(architecture_for(model).blocks(model.base_model))
    except UnsupportedModelError:
        return attention_modules(model)[0]


@contextmanager
def _layer_scopes(blocks: Sequence[nn.Module]) -> Iterator[None]:
    """A ``record_function`` scope around every call of each block, ``attnscope::layer <i>``;
    hooks removed and any scope left open (a pass that raised) closed on leaving."""
    open_scopes: list[Any] = []

    def enter(name: str):
        def hook(module: nn.Module, args: Any) -> None:
            scope = record_function(name)
            scope.__enter__()
            open_scopes.append(scope)

        return hook

    def leave(module: nn.Module, args: Any, output: Any) -> None:
        open_scopes.pop().__exit__(None, None, None)

    with HookSet() as hooks:
        for layer, block in enumerate(blocks):
            hooks.forward_pre(block, enter(f"{SCOPE}layer {layer}"))
            hooks.forward(block, leave)
        try:
            yield
        finally:
            while open_scopes:
                open_scopes.pop().__exit__(None, None, None)


def _device_time(event: Any, self_only: bool) -> float:
    name = "self_device_time_total" if self_only else "device_time_total"
    return float(getattr(event, name, 0.0) or 0.0)


def _peak_of_records(prof: profile, device_type: str) -> int:
    """The highest running sum of the profiler's allocation (+) and free (-) records."""
    records = sorted(
        (event.start_ns(), event.nbytes())
        for event in prof.profiler.kineto_results.events()
        if event.name() == "[memory]" and str(event.device_type()).lower().endswith(device_type)
    )
    return max(itertools.accumulate(size for _, size in records), default=0)


def _inputs(loaded: LoadedModel, ids: Sequence[int]) -> dict[str, Tensor]:
    return loaded.place(
        {
            "input_ids": torch.tensor([list(ids)]),  # (1, T)
            "attention_mask": torch.ones(1, len(ids), dtype=torch.long),  # (1, T)
        }
    )


def _synchronize(loaded: LoadedModel) -> None:
    if loaded.device.type == "cuda":
        torch.cuda.synchronize(loaded.device)


def profile_forward(
    loaded: LoadedModel, analysis: Analysis, *, repeats: int = 1, warmup: int = 1
) -> ForwardProfile:
    """Profile ``repeats`` forward passes of ``analysis``' own inputs (after ``warmup`` passes
    outside the profiler): operators, layers, peak memory and the Chrome trace."""
    inputs = loaded.place(analysis.model_inputs())  # (1, T) each
    cuda = loaded.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    blocks = _blocks(loaded.model)
    with torch.inference_mode():
        for _ in range(warmup):
            loaded.model(**inputs)
        _synchronize(loaded)
        if cuda:
            torch.cuda.reset_peak_memory_stats(loaded.device)
            before = torch.cuda.memory_allocated(loaded.device)
        with profile(activities=activities, profile_memory=True) as prof, _layer_scopes(blocks):
            for _ in range(repeats):
                with record_function(FORWARD_SCOPE):
                    loaded.model(**inputs)
                _synchronize(loaded)
    if cuda:
        peak = torch.cuda.max_memory_allocated(loaded.device) - before
    else:
        peak = _peak_of_records(prof, "cpu")
    events = prof.key_averages()
    forward = next(e for e in events if e.key == FORWARD_SCOPE)
    operators = sorted(
        (
            OperatorRow(
                name=e.key,
                calls=e.count,
                cpu_total_us=float(e.cpu_time_total),
                cpu_self_us=float(e.self_cpu_time_total),
                cuda_total_us=_device_time(e, False),
                cuda_self_us=_device_time(e, True),
                cpu_memory_bytes=int(e.cpu_memory_usage),
                cpu_self_memory_bytes=int(e.self_cpu_memory_usage),
                cuda_memory_bytes=int(getattr(e, "device_memory_usage", 0) or 0),
            )
            for e in events
            if not e.key.startswith(SCOPE) and e.key != "[memory]"
        ),
        key=lambda row: -row.cpu_self_us,
    )
    by_name = {e.key: e for e in events}
    layers = []
    for layer, block in enumerate(blocks):
        e = by_name.get(f"{SCOPE}layer {layer}")
        if e is None:  # a block the pass never called
            continue
        layers.append(
            LayerRow(
                layer=layer,
                module=type(block).__name__,
                calls=e.count,
                cpu_total_us=float(e.cpu_time_total),
                cuda_total_us=_device_time(e, False),
                cpu_memory_bytes=int(e.cpu_memory_usage),
                cuda_memory_bytes=int(getattr(e, "device_memory_usage", 0) or 0),
                share=float(e.cpu_time_total) / max(float(forward.cpu_time_total), 1e-9),
            )
        )
    with tempfile.TemporaryDirectory(prefix="attnscope-trace-") as folder:
        path = Path(folder) / "trace.json"
        prof.export_chrome_trace(str(path))
        trace = path.read_bytes()
    return ForwardProfile(
        model_name=loaded.name,
        seq_len=analysis.seq_len,
        device=str(loaded.device),
        repeats=repeats,
        forward_cpu_us=float(forward.cpu_time_total),
        forward_cuda_us=_device_time(forward, False),
        peak_bytes=int(peak),
        memory_source="cuda_max_memory_allocated" if cuda else "profiler_cpu_allocations",
        operators=tuple(operators),
        layers=tuple(layers),
        trace=trace,
    )


def _peak_bytes(loaded: LoadedModel, inputs: dict[str, Tensor]) -> int:
    """Peak memory of one pass, above what was allocated before it (see the module docstring)."""
    if loaded.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(loaded.device)
        before = torch.cuda.memory_allocated(loaded.device)
        loaded.model(**inputs)
        _synchronize(loaded)
        return torch.cuda.max_memory_allocated(loaded.device) - before
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        loaded.model(**inputs)
    return _peak_of_records(prof, "cpu")


def length_curve(
    loaded: LoadedModel,
    analysis: Analysis,
    *,
    start: int = 8,
    max_tokens: int = 256,
    repeats: int = 2,
) -> LengthCurve:
    """Time (median of ``repeats`` passes after one warm-up) and peak memory of one forward
    pass at ``start, 2·start, ...`` tokens up to ``max_tokens`` (and the model's own limit): the
    analysis' token ids repeated to each length."""
    ids = list(analysis.model_inputs()["input_ids"][0].tolist())  # the model's own tokens
    cap = max(1, min(max_tokens, loaded.max_tokens))
    points = []
    with torch.inference_mode():
        for seq_len in doubling_lengths(start, cap):
            inputs = _inputs(loaded, (ids * (seq_len // len(ids) + 1))[:seq_len])  # (1, T)
            loaded.model(**inputs)  # warm-up
            _synchronize(loaded)
            seconds = []
            for _ in range(max(1, repeats)):
                started = time.perf_counter()
                loaded.model(**inputs)
                _synchronize(loaded)
                seconds.append(time.perf_counter() - started)
            peak = _peak_bytes(loaded, inputs)
            points.append(LengthPoint(seq_len, pystats.median(seconds), int(peak)))
    cuda = loaded.device.type == "cuda"
    return LengthCurve(
        model_name=loaded.name,
        device=str(loaded.device),
        memory_source="cuda_max_memory_allocated" if cuda else "profiler_cpu_allocations",
        points=tuple(points),
    )
