"""The lab's model, tasks, training generator and run folders on tiny shapes: the attention-only
MLP adds exactly zero, a seed repeats a run bitwise, Stop keeps a loadable checkpoint of the step
it stopped at, run.json reads back as written, and demo mode refuses shapes over its limits."""

from __future__ import annotations

import contextlib
import json
import math

import pytest
import torch

from core import load_model
from core.corpus.sources import sample_corpus
from core.lab.model import LabShape, build_model, gpt2_config, mlp_is_zero
from core.lab.runs import (
    CheckpointRecord,
    StepRecord,
    check_limits,
    lab_root,
    list_runs,
    load_run,
    new_run_folder,
)
from core.lab.tasks import RepeatTask, masked_mean, position_losses, text_task
from core.lab.tokenizer import synthetic_vocabulary, train_vocabulary
from core.lab.train import TrainConfig, detector_tokens, train
from core.policy.errors import InputError
from core.policy.settings import DEMO, LOCAL

SHAPE = LabShape(n_layers=2, n_heads=2, d_model=16, context=16, vocab_size=20)
TASK = RepeatTask(half=6, min_half=3)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run(tmp_path, name, steps=8, seed=0, every=4, stop_after=None):
    """Records of a run, its folder; ``stop_after``: close the generator after that step."""
    config = TrainConfig(steps=steps, batch_size=4, lr=3e-3, warmup=2, checkpoint_every=every,
                         seed=seed, detector_sequences=2)  # fmt: skip
    folder = new_run_folder(tmp_path, name)
    records = []
    with contextlib.closing(train(SHAPE, synthetic_vocabulary(20), TASK, config, folder)) as gen:
        for record in gen:
            records.append(record)
            if isinstance(record, StepRecord) and record.step == stop_after:
                break
    return records, folder


def mlp_outputs(model, mlps) -> list[torch.Tensor]:
    """What each of ``mlps`` returned in one forward pass of a short sequence (hooks removed)."""
    outputs = []
    hooks = [mlp.register_forward_hook(lambda m, i, o: outputs.append(o)) for mlp in mlps]
    try:
        with torch.no_grad():
            model(input_ids=torch.tensor([[1, 5, 6, 7, 5, 6, 7]]))
    finally:
        for hook in hooks:
            hook.remove()
    return outputs


def steps_of(records):
    return [r for r in records if isinstance(r, StepRecord)]


def test_repeat_task_halves_are_equal_distinct_and_ordinary():
    ids = RepeatTask(half=5).batch(3, 12, torch.Generator().manual_seed(1)).ids  # (3, 11)
    assert ids.shape == (3, 11) and ids[:, 0].tolist() == [1, 1, 1]
    assert torch.equal(ids[:, 1:6], ids[:, 6:])
    for row in ids[:, 1:6]:
        assert len(set(row.tolist())) == 5 and row.min() >= 4 and row.max() <= 11
    with pytest.raises(InputError):
        RepeatTask(half=9).batch(1, 12, torch.Generator())  # 9 distinct of 8 ordinary tokens


def test_varied_halves_are_padded_and_masked():
    found = RepeatTask(half=6, min_half=3).batch(40, 20, torch.Generator().manual_seed(0))
    assert found.ids.shape == (40, 13)
    lengths = set()
    for row, counted, first, repeated in zip(
        found.ids.tolist(), found.counted, found.first, found.repeated, strict=True
    ):
        body = [t for t in row[1:] if t != 3]  # <pad> is 3
        n = len(body) // 2
        lengths.add(n)
        assert body[:n] == body[n:] and len(set(body[:n])) == n
        assert row[1 + 2 * n :] == [3] * (12 - 2 * n)  # padding only after the sequence
        # column p is target p + 1: counted 1..2n, first 2..n, repeated n+2..2n
        assert counted.nonzero().flatten().tolist() == list(range(2 * n))
        assert first.nonzero().flatten().tolist() == list(range(1, n))
        assert repeated.nonzero().flatten().tolist() == list(range(n + 1, 2 * n))
    assert lengths == {3, 4, 5, 6}


def test_masked_means_take_the_predictable_targets_of_each_half():
    # BOS, n = 3: targets 1..6; column p predicts token p + 1
    found = RepeatTask(half=3).batch(1, 10, torch.Generator())
    losses = torch.tensor([[9.0, 1.0, 2.0, 5.0, 0.5, 0.25]])  # (1, 6)
    assert masked_mean(losses, found.first) == 1.5  # (1 + 2) / 2
    assert masked_mean(losses, found.repeated) == 0.375  # (0.5 + 0.25) / 2
    assert masked_mean(losses, None) is None
    uniform = position_losses(torch.zeros(2, 4, 8), torch.zeros(2, 4, dtype=torch.long))
    torch.testing.assert_close(uniform, torch.full((2, 3), math.log(8)))


def test_text_task_windows_are_stretches_of_the_stream():
    lab = train_vocabulary(sample_corpus().texts, vocab_size=800)
    task = text_task(lab, ["猫は眠っている。", "妹は本を買った。"], window=5, source="t")
    assert task.ids.tolist().count(2) == 2 and task.n_texts == 2  # each text ends with </s>
    batch = task.batch(6, lab.vocab_size, torch.Generator().manual_seed(0)).ids  # (6, 5)
    stream = task.ids.tolist()
    for row in batch.tolist():
        starts = [i for i in range(len(stream) - 4) if stream[i : i + 5] == row]
        assert starts
    with pytest.raises(InputError) as error:
        text_task(lab, ["猫"], window=50)
    assert error.value.key == "lab.error_too_few_tokens"


def test_attention_only_mlp_adds_exactly_zero_after_training(tmp_path):
    records, folder = run(tmp_path, "mlp", steps=6, every=0)
    loaded = load_model(str(load_run(folder).checkpoint_path(6)))
    model = loaded.model
    assert mlp_is_zero(model) and model.config.n_inner == 1
    outputs = mlp_outputs(model, [b.mlp for b in model.transformer.h])
    assert len(outputs) == 2 and all(bool((o == 0).all()) for o in outputs)
    # the rest did train: the token embeddings moved from their initial values
    assert not torch.equal(model.transformer.wte.weight, build_model(SHAPE).transformer.wte.weight)
    full = build_model(LabShape(attention_only=False, vocab_size=20, d_model=16, n_heads=2))
    assert not mlp_is_zero(full) and full.config.n_inner == 64


def test_same_seed_same_losses_bitwise(tmp_path, one_thread):
    first, _ = run(tmp_path, "a", steps=10, seed=3)
    second, _ = run(tmp_path, "b", steps=10, seed=3)
    other, _ = run(tmp_path, "c", steps=10, seed=4)
    losses = [(r.loss, r.repeated_loss, r.first_loss) for r in steps_of(first)]
    assert losses == [(r.loss, r.repeated_loss, r.first_loss) for r in steps_of(second)]
    assert losses != [(r.loss, r.repeated_loss, r.first_loss) for r in steps_of(other)]
    checkpoints = [r.scores for r in first if isinstance(r, CheckpointRecord)]
    assert checkpoints == [r.scores for r in second if isinstance(r, CheckpointRecord)]


def test_stop_keeps_a_loadable_checkpoint_of_the_step_it_stopped_at(tmp_path, one_thread):
    records, folder = run(tmp_path, "stopped", steps=20, stop_after=6)
    saved = load_run(folder)
    assert saved.status == "stopped"
    assert [c.step for c in saved.checkpoints] == [0, 4, 6]
    assert [r.step for r in saved.history] == [1, 2, 3, 4, 5, 6]
    stopped = load_model(str(saved.checkpoint_path(6)))
    # a run of exactly 6 steps with the same seed ends with the same weights
    _, whole = run(tmp_path, "six", steps=6)
    finished = load_model(str(load_run(whole).checkpoint_path(6)))
    assert load_run(whole).status == "finished"
    for a, b in zip(stopped.model.parameters(), finished.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_run_json_reads_back_as_written(tmp_path):
    records, folder = run(tmp_path, "json", steps=5, every=2)
    saved = load_run(folder)
    assert saved.history == tuple(steps_of(records))
    assert saved.checkpoints == tuple(r for r in records if isinstance(r, CheckpointRecord))
    assert [c.step for c in saved.checkpoints] == [0, 2, 4, 5]
    assert saved.shape == SHAPE.to_dict() and saved.tokenizer == "synthetic"
    assert saved.task == {"kind": "repeat", "half": 6, "bos": True, "min_half": 3, "max_offset": 0}
    assert saved.config["steps"] == 5 and saved.seed == 0 and saved.status == "finished"
    data = json.loads((folder / "run.json").read_text())
    assert len(data["checkpoints"][0]["scores"]["induction"]) == 2  # (L, H) nested lists
    assert [r.folder for r in list_runs(tmp_path)] == [folder]
    (tmp_path / "not-a-run").mkdir()
    with pytest.raises(InputError) as error:
        load_run(tmp_path / "not-a-run")
    assert error.value.key == "lab.error_not_a_run"


def test_detector_tokens_follow_the_task():
    probe = detector_tokens(SHAPE, TASK, seed=0, n_sequences=3)
    assert probe.input_ids.shape == (3, 13) and probe.n_tokens == 6 and probe.start == 1
    assert probe.special[:, 0].all() and not probe.special[:, 1:].any()
    assert torch.equal(probe.input_ids[:, 1:7], probe.input_ids[:, 7:])


def test_shape_and_vocabulary_must_match(tmp_path):
    with pytest.raises(InputError) as error:
        next(train(SHAPE, synthetic_vocabulary(30), TASK, TrainConfig(steps=1), tmp_path))
    assert error.value.key == "lab.error_vocab_mismatch"
    with pytest.raises(InputError) as error:
        next(train(SHAPE, synthetic_vocabulary(20), RepeatTask(half=9), TrainConfig(), tmp_path))
    assert error.value.key == "lab.error_context"
    assert gpt2_config(SHAPE).n_positions == 16


def test_demo_mode_limits_shape_and_steps(monkeypatch, tmp_path):
    check_limits(LOCAL, LabShape(n_layers=12, d_model=768, n_heads=12), 10**6)  # no limit
    check_limits(DEMO, LabShape(n_layers=4, d_model=128, n_heads=8), 3000)
    with pytest.raises(InputError) as error:
        check_limits(DEMO, LabShape(n_layers=5), 100)
    assert error.value.key == "lab.error_demo_limit"
    assert error.value.params == {"field": "n_layers", "value": 5, "limit": 4}
    assert "5" in str(error.value) and "4" in error.value.localized("ja")
    assert error.value.localized("ja") != str(error.value)
    with pytest.raises(InputError) as error:
        check_limits(DEMO, LabShape(), 3001)
    assert error.value.params["field"] == "steps"
    monkeypatch.setenv("ATTNSCOPE_LAB_DIR", str(tmp_path / "lab"))
    assert lab_root() == tmp_path / "lab"


def test_a_llama_lab_model_is_attention_only_and_opens_as_a_folder(tmp_path, one_thread):
    shape = LabShape(
        n_layers=2, n_heads=4, d_model=16, context=16, vocab_size=20, family="llama", init=0.1
    )
    vocabulary = synthetic_vocabulary(20, context=16)
    folder = new_run_folder(tmp_path, "llama")
    config = TrainConfig(steps=4, batch_size=4, checkpoint_every=0)
    with contextlib.closing(train(shape, vocabulary, RepeatTask(half=5), config, folder)) as found:
        list(found)
    run = load_run(folder)
    assert run.shape["family"] == "llama" and run.shape["init"] == 0.1
    loaded = load_model(str(run.checkpoint_path(4)))  # no remote code
    model = loaded.model
    assert model.config.model_type == "llama" and "auto_map" not in model.config.to_dict()
    assert (loaded.n_layers, loaded.n_heads, loaded.n_kv_heads, loaded.max_tokens) == (2, 4, 4, 16)
    assert mlp_is_zero(model) and model.config.intermediate_size == 1
    outputs = mlp_outputs(model, [layer.mlp for layer in model.model.layers])
    assert len(outputs) == 2 and all(bool((o == 0).all()) for o in outputs)
    # the initial weights' spread is the shape's: std 0.1 (0.02 is transformers' default)
    fresh = build_model(shape, seed=3).model.layers[0].self_attn.q_proj.weight
    assert 0.08 < float(fresh.std()) < 0.12
    with pytest.raises(ValueError):
        build_model(LabShape(family="gpt3"))
