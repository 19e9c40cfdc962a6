"""Choosing where models run: CUDA, then MPS, then CPU, unless the user says otherwise."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Literal, get_args

import torch

from core.policy.errors import InputError
from core.policy.parsing import whole_number

__all__ = [
    "DeviceName",
    "configure_cpu_threads",
    "effective_server_threads",
    "pick_device",
    "prefer_threads",
    "preferred_threads",
    "server_threads",
    "usable_cores",
]

DeviceName = Literal["cuda", "mps", "cpu"]
DEVICE_ENV = "ATTNSCOPE_DEVICE"
THREADS_ENV = "ATTNSCOPE_THREADS"


def _available(name: DeviceName) -> bool:
    if name == "cuda":
        return torch.cuda.is_available()
    if name == "mps":
        return torch.backends.mps.is_available()
    return True


def pick_device(requested: str | None = None) -> torch.device:
    """The device to run on: ``requested``, else ``$ATTNSCOPE_DEVICE``, else the best available.

    >>> pick_device("cpu")
    device(type='cpu')
    """
    choice = (requested or os.environ.get(DEVICE_ENV) or "").strip().lower()
    if not choice or choice == "auto":
        for name in get_args(DeviceName):
            if _available(name):
                return torch.device(name)
    base = choice.split(":")[0]
    if base not in get_args(DeviceName):
        raise InputError("error.unknown_device", device=choice)
    if not _available(base):
        raise InputError("error.device_unavailable", device=choice)
    return torch.device(choice)


def usable_cores() -> int:
    """The cores this process may run on (at least 1)."""
    if hasattr(os, "sched_getaffinity"):  # Linux: the cores this process may use
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)  # macOS and Windows


def server_threads(cores: int) -> int:
    """Torch threads for a process that serves the app: one core left to everything else.

    An OpenMP parallel region waits for its slowest thread, so a thread on every core stalls
    whenever anything else wants one, and a server never has its cores to itself (Streamlit's
    threads, other sessions, a local browser). Measured on 2 cores with other work running
    (``python -m bench app``): SmolLM2's 256-token analysis took 48 s in the app with 2 threads,
    6.6 s with 1.

    >>> server_threads(1), server_threads(2), server_threads(8)
    (1, 1, 7)
    """
    return max(1, cores - 1)


def effective_server_threads(environ: Mapping[str, str] = os.environ) -> int:
    """The torch threads a server or corpus run ends up on: ``$ATTNSCOPE_THREADS`` in
    ``environ`` when it is a whole number (as :func:`configure_cpu_threads` reads it), else
    :func:`server_threads` of the usable cores.

    >>> effective_server_threads({THREADS_ENV: "3"}), effective_server_threads({THREADS_ENV: "0"})
    (3, 1)
    """
    given = whole_number(environ.get(THREADS_ENV))
    return max(1, given) if given is not None else server_threads(usable_cores())


def prefer_threads(n: int | None) -> None:
    """From now on :func:`configure_cpu_threads` uses ``n`` threads (``None``: every core), unless
    ``$ATTNSCOPE_THREADS`` says otherwise; the app prefers :func:`server_threads`."""
    global _preferred
    _preferred = n


_preferred: int | None = None


@contextmanager
def preferred_threads(n: int | None) -> Iterator[None]:
    """:func:`prefer_threads` ``n`` for the block, then the previous preference again (the
    torch thread count a model load set stays: it is per process)."""
    global _preferred
    before = _preferred
    _preferred = n
    try:
        yield
    finally:
        _preferred = before


def configure_cpu_threads() -> int:
    """Use every core this process may run on, or the count :func:`prefer_threads` chose
    (``$ATTNSCOPE_THREADS`` overrides both); returns the count.

    PyTorch sometimes starts with fewer intra-op threads than usable cores, which halves speed on a
    2-core machine.
    """
    wanted = whole_number(os.environ.get(THREADS_ENV))
    if wanted is None:
        wanted = _preferred if _preferred is not None else usable_cores()
    n = max(1, wanted)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
