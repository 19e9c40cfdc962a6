"""The lab's run folders: ``<root>/<run>/run.json`` (shape, training config, task, tokenizer,
seed, the history of steps, the checkpoints with their detector scores) and
``<root>/<run>/checkpoints/step-000500/``, each a model folder that :func:`core.load_model`
opens. The root is ``$ATTNSCOPE_LAB_DIR``, else ``lab-runs/`` in AttnScope's cache (as corpus
runs go to ``runs/`` there). Demo mode's limits on shape and steps are checked here too.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.engine.models import cache_root
from core.policy.errors import InputError

__all__ = [
    "LAB_ENV",
    "RUN_FILE",
    "CheckpointRecord",
    "LabRun",
    "StepRecord",
    "check_limits",
    "checkpoint_folder",
    "lab_root",
    "list_runs",
    "load_run",
    "new_run_folder",
    "write_run",
]

LAB_ENV = "ATTNSCOPE_LAB_DIR"
RUN_FILE = ".".join(("run", "json"))  # spelt so: test_i18n reads a quoted run-dot-word as a key
FORMAT = 1
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class StepRecord:
    """One training step: the batch's mean loss (nats), the loss on the repeated half and on
    the first half (repeat task only, else None), seconds since training started."""

    step: int
    loss: float
    repeated_loss: float | None
    first_loss: float | None
    seconds: float
    lr: float


@dataclass(frozen=True)
class CheckpointRecord:
    """A saved checkpoint: its folder's name under ``checkpoints/``, the loss of its step
    (None at step 0) and each detector's ``(n_layers, n_heads)`` scores as nested lists, keyed
    ``previous_token``, ``duplicate_token``, ``induction``, measured on ``n_tokens`` repeated
    random tokens."""

    step: int
    folder: str
    loss: float | None
    scores: dict[str, list[list[float]]]
    n_tokens: int

    def best(self, detector: str = "induction") -> tuple[float, int, int]:
        """The highest score of ``detector`` and its head, ``(score, layer, head)``."""
        return max(
            (value, layer, head)
            for layer, row in enumerate(self.scores[detector])
            for head, value in enumerate(row)
        )


@dataclass(frozen=True)
class LabRun:
    """A run folder as read back by :func:`load_run`."""

    folder: Path
    name: str
    status: str  # "running", "finished", "stopped" or "diverged"
    shape: dict[str, Any]  # LabShape's fields
    config: dict[str, Any]  # TrainConfig's fields
    task: dict[str, Any]  # {"kind": "repeat", "half", "bos"} or {"kind": "text", ...}
    tokenizer: str  # "unigram", "bpe" or "synthetic"
    seed: int
    history: tuple[StepRecord, ...]
    checkpoints: tuple[CheckpointRecord, ...]
    updated: float  # time.time() of the last write

    def checkpoint_path(self, step: int) -> Path:
        """The model folder of the checkpoint at ``step`` (give it to ``core.load_model``)."""
        for found in self.checkpoints:
            if found.step == step:
                return self.folder / "checkpoints" / found.folder
        raise KeyError(f"no checkpoint at step {step}; steps: {[c.step for c in self.checkpoints]}")


def lab_root() -> Path:
    """Where lab runs go: ``$ATTNSCOPE_LAB_DIR``, else ``lab-runs/`` in AttnScope's cache."""
    configured = os.environ.get(LAB_ENV)
    return Path(configured).expanduser() if configured else cache_root() / "lab-runs"


def new_run_folder(root: str | Path | None = None, name: str | None = None) -> Path:
    """A new, empty run folder under ``root``: ``name`` (letters, digits, ``. _ -``) or the
    time, with ``-2``, ``-3``, ... if taken."""
    base = Path(root) if root is not None else lab_root()
    stem = _SAFE.sub("-", name or time.strftime("run-%Y%m%d-%H%M%S")).strip("-.") or "run"
    for attempt in range(1, 1000):
        folder = base / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            folder.mkdir(parents=True, exist_ok=False)
            return folder
        except FileExistsError:
            continue
    raise InputError("lab.error_run_folder", folder=str(base / stem))


def checkpoint_folder(folder: Path, step: int) -> Path:
    """``folder/checkpoints/step-000500``."""
    return Path(folder) / "checkpoints" / f"step-{step:06d}"


def write_run(
    folder: Path,
    meta: dict[str, Any],
    history: Sequence[StepRecord],
    checkpoints: Sequence[CheckpointRecord],
    *,
    status: str,
) -> None:
    """Write ``run.json`` (atomically: a reader never sees half a file)."""
    payload = {
        "format": FORMAT,
        "status": status,
        **meta,
        "updated": time.time(),
        "history": [asdict(r) for r in history],
        "checkpoints": [asdict(c) for c in checkpoints],
    }
    partial = Path(folder) / f".{RUN_FILE}.partial"
    partial.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    partial.replace(Path(folder) / RUN_FILE)


def load_run(folder: str | Path) -> LabRun:
    """The run in ``folder``; a folder without a readable ``run.json`` is an
    :class:`InputError`."""
    folder = Path(folder)
    try:
        data = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
        return LabRun(
            folder=folder,
            name=folder.name,
            status=str(data["status"]),
            shape=dict(data["shape"]),
            config=dict(data["config"]),
            task=dict(data["task"]),
            tokenizer=str(data["tokenizer"]),
            seed=int(data["seed"]),
            history=tuple(StepRecord(**r) for r in data["history"]),
            checkpoints=tuple(CheckpointRecord(**c) for c in data["checkpoints"]),
            updated=float(data["updated"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError("lab.error_not_a_run", folder=str(folder)) from error


def list_runs(root: str | Path | None = None) -> list[LabRun]:
    """The runs under ``root`` (default :func:`lab_root`), newest first; other folders are
    left out."""
    base = Path(root) if root is not None else lab_root()
    runs = []
    for folder in sorted(base.glob(f"*/{RUN_FILE}")):
        try:
            runs.append(load_run(folder.parent))
        except InputError:
            continue
    return sorted(runs, key=lambda run: run.updated, reverse=True)


def check_limits(settings: Any, shape: Any, steps: int) -> None:
    """Refuse, with a message naming the limit, a shape or a number of steps over what
    ``settings`` (a :class:`core.policy.settings.Settings`) allows; no limit outside demo mode.
    """
    asked = {**shape.to_dict(), "steps": steps}
    for field, limit in settings.lab_limits:
        if asked[field] > limit:
            raise InputError("lab.error_demo_limit", field=field, value=asked[field], limit=limit)
