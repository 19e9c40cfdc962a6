"""Choosing where models run: CUDA, then MPS, then CPU, unless the user says otherwise."""

from __future__ import annotations

import os
from typing import Literal, get_args

import torch

from core.policy.errors import InputError
from core.policy.parsing import whole_number

__all__ = ["DeviceName", "configure_cpu_threads", "pick_device"]

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


def configure_cpu_threads() -> int:
    """Use every core this process may run on (``$ATTNSCOPE_THREADS`` overrides); returns the count.

    PyTorch sometimes starts with fewer intra-op threads than usable cores, which halves speed on a
    2-core machine.
    """
    wanted = whole_number(os.environ.get(THREADS_ENV))
    if wanted is not None:
        n = wanted
    elif hasattr(os, "sched_getaffinity"):  # Linux: the cores this process may use
        n = len(os.sched_getaffinity(0))
    else:  # macOS and Windows
        n = os.cpu_count() or 1
    n = max(1, n)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
