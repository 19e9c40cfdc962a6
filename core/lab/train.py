"""The lab's training loop, as a generator: one :class:`StepRecord` per step and one
:class:`CheckpointRecord` per checkpoint, so that a page draws a live curve and stops at any
step by no longer iterating.

Stop keeps where it stopped: closing the generator (``gen.close()``, or leaving a ``with
contextlib.closing(train(...))`` block, or the generator being collected) runs its ``finally``,
which saves a checkpoint of the last finished step (unless one was just saved) and writes
``run.json`` with status ``"stopped"``. Each checkpoint stores every head's previous-token,
duplicate-token and induction scores (:func:`core.methods.detector_scores.detector_scores`).

Repeatable: the weights come from ``seed``, the batches from a ``torch.Generator`` seeded with
``seed``, Adam is deterministic on the CPU, and no dropout is used; with one torch thread two
runs give bitwise the same losses.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from core.lab.model import LabShape, build_model, lab_loaded
from core.lab.runs import (
    CheckpointRecord,
    StepRecord,
    checkpoint_folder,
    write_run,
)
from core.lab.tasks import RepeatTask, TextTask, masked_mean, position_losses
from core.lab.tokenizer import LabVocabulary
from core.methods.detector_scores import DETECTORS, RepeatedTokens, scores_on_tokens
from core.policy.errors import InputError

__all__ = ["INDUCTION_RECIPE", "TrainConfig", "detector_tokens", "save_checkpoint", "train"]

Record = StepRecord | CheckpointRecord


@dataclass(frozen=True)
class TrainConfig:
    """How to train. ``checkpoint_every`` 0: checkpoints at the start and the end only."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    warmup: int = 50  # steps of linear warm-up, then a constant rate
    weight_decay: float = 0.0
    checkpoint_every: int = 250
    seed: int = 0
    detector_sequences: int = 8  # repeated random sequences per detector measurement

    def lr_at(self, step: int) -> float:
        """The learning rate of update ``step`` (1-based): ``lr * min(1, step / warmup)``.

        >>> TrainConfig(lr=1e-3, warmup=10).lr_at(5)
        0.0005
        """
        return self.lr * min(1.0, step / self.warmup) if self.warmup > 0 else self.lr

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# The induction run of tests/integration/test_lab_training.py and python -m bench lab: about
# 25 s on one CPU thread. Rotary positions and a half of 6 to 20 tokens after 0 to 8 others, so
# no head can copy by position: a layer-0 previous-token head and a layer-1 induction head form
# (between steps 500 and 750). Eight heads of size 8 and weights drawn with std 0.1 matter: with
# 4 or fewer heads the circuit formed shifted (3 to 4 tokens back), with std 0.02 not in 1250
# steps (see the README's Lab section).
INDUCTION_RECIPE: tuple[LabShape, RepeatTask, TrainConfig] = (
    LabShape(
        n_layers=2, n_heads=8, d_model=64, context=64, attention_only=True, vocab_size=64,
        family="llama", init=0.1,
    ),
    RepeatTask(half=20, bos=True, min_half=6, max_offset=8),
    TrainConfig(steps=1000, batch_size=32, lr=3e-3, warmup=50, checkpoint_every=50, seed=0),
)  # fmt: skip


def detector_tokens(
    shape: LabShape, task: RepeatTask | TextTask, *, seed: int, n_sequences: int
) -> RepeatedTokens:
    """The repeated random tokens every checkpoint is measured on: the repeat task's longest
    sequences, with its BOS or none (the text task: 20 tokens a half, no BOS, as its windows
    start anywhere), from a generator seeded with ``seed``; the same for every checkpoint."""
    if isinstance(task, RepeatTask):
        probe = RepeatTask(half=task.half, bos=task.bos)
    else:
        half = max(2, min(20, shape.vocab_size - 4, shape.context // 2))
        probe = RepeatTask(half=half, bos=False)
    ids = probe.batch(n_sequences, shape.vocab_size, torch.Generator().manual_seed(seed)).ids
    special = torch.zeros_like(ids, dtype=torch.bool)  # (S, T)
    special[:, : probe.start] = True
    return RepeatedTokens(
        input_ids=ids, special=special, start=probe.start, n_tokens=probe.half, seed=seed
    )


def save_checkpoint(
    folder: Path,
    step: int,
    model: Any,
    vocabulary: LabVocabulary,
    probe: RepeatedTokens,
    loss: float | None = None,
) -> CheckpointRecord:
    """Save ``model`` at ``step`` as a model folder that :func:`core.load_model` opens
    (``config.json``, ``model.safetensors``, tokenizer files) under ``folder/checkpoints``, and
    measure its detector scores on ``probe`` (:func:`detector_tokens`) in eval mode; the model
    is put back in train mode."""
    target = checkpoint_folder(folder, step)
    target.mkdir(parents=True, exist_ok=True)
    model.eval()
    try:
        model.save_pretrained(target)
        vocabulary.save(str(target))
        scores = scores_on_tokens(lab_loaded(model, vocabulary), probe)
    finally:
        model.train()
    by_name = {name: scores.score(name).tolist() for name in DETECTORS}  # each (L, H)
    return CheckpointRecord(
        step=step, folder=target.name, loss=loss, scores=by_name, n_tokens=scores.n_tokens
    )


def train(
    shape: LabShape,
    vocabulary: LabVocabulary,
    task: RepeatTask | TextTask,
    config: TrainConfig,
    folder: str | Path,
) -> Iterator[Record]:
    """Train a new model of ``shape`` on ``task`` into ``folder`` (an empty run folder, from
    :func:`core.lab.runs.new_run_folder`), yielding a :class:`StepRecord` per step and a
    :class:`CheckpointRecord` at step 0, every ``checkpoint_every`` steps and the last step.
    See the module docstring for Stop."""
    if task.seq_len > shape.context:
        raise InputError("lab.error_context", seq_len=task.seq_len, context=shape.context)
    if shape.vocab_size != vocabulary.vocab_size:
        raise InputError(
            "lab.error_vocab_mismatch", shape=shape.vocab_size, tokenizer=vocabulary.vocab_size
        )
    folder = Path(folder)
    generator = torch.Generator().manual_seed(config.seed)
    model = build_model(shape, seed=config.seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    history: list[StepRecord] = []
    checkpoints: list[CheckpointRecord] = []
    meta = {
        "shape": shape.to_dict(),
        "config": config.to_dict(),
        "task": task.to_dict(),
        "tokenizer": vocabulary.kind,
        "seed": config.seed,
    }

    probe = detector_tokens(shape, task, seed=config.seed, n_sequences=config.detector_sequences)

    def checkpoint(step: int, loss: float | None) -> CheckpointRecord:
        found = save_checkpoint(folder, step, model, vocabulary, probe, loss)
        checkpoints.append(found)
        write_run(folder, meta, history, checkpoints, status="running")
        return found

    status = "stopped"
    step = 0
    try:
        yield checkpoint(0, None)
        started = time.perf_counter()
        for step in range(1, config.steps + 1):
            batch = task.batch(config.batch_size, shape.vocab_size, generator)
            for group in optimizer.param_groups:
                group["lr"] = config.lr_at(step)
            ids = batch.ids  # (B, T); padding after each sequence, which no query sees
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits  # (B, T, V)
            losses = position_losses(logits, ids)  # (B, T-1)
            loss = losses[batch.counted].mean()  # padding never counts
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses = losses.detach()
            record = StepRecord(
                step=step,
                loss=float(loss.detach()),
                repeated_loss=masked_mean(losses, batch.repeated),
                first_loss=masked_mean(losses, batch.first),
                seconds=time.perf_counter() - started,
                lr=config.lr_at(step),
            )
            history.append(record)
            if not math.isfinite(record.loss):
                status = "diverged"
                return
            yield record
            last = step == config.steps
            if last or (config.checkpoint_every and step % config.checkpoint_every == 0):
                yield checkpoint(step, record.loss)
        status = "finished"
    finally:
        done = history[-1].step if history else 0
        if not checkpoints or checkpoints[-1].step != done:  # Stop between two checkpoints
            checkpoint(done, history[-1].loss if history else None)
        write_run(folder, meta, history, checkpoints, status=status)
