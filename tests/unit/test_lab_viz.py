"""The lab's figure and table on hand-made records: the loss curves are the records' numbers,
the right panel is each detector's best head per checkpoint, and the checkpoint on screen is a
dashed line on both panels."""

from __future__ import annotations

import math

from core.lab.runs import CheckpointRecord, StepRecord
from core.lab.tokenizer import TokenSplit
from viz.lab import best_scores, split_frame, training_figure

HISTORY = [
    StepRecord(step=1, loss=4.0, repeated_loss=4.1, first_loss=3.9, seconds=0.1, lr=1e-3),
    StepRecord(step=2, loss=3.0, repeated_loss=2.0, first_loss=3.8, seconds=0.2, lr=1e-3),
    StepRecord(step=3, loss=2.5, repeated_loss=None, first_loss=None, seconds=0.3, lr=1e-3),
]
SCORES = {
    "induction": [[0.1, 0.05], [0.02, float("nan")]],
    "previous_token": [[0.3, 0.9], [0.2, 0.1]],
    "duplicate_token": [[0.0, 0.0], [0.4, 0.0]],
}
LATER = {name: [[2 * v if v == v else v for v in row] for row in m] for name, m in SCORES.items()}
CHECKPOINTS = [
    CheckpointRecord(step=0, folder="step-000000", loss=None, scores=SCORES, n_tokens=8),
    CheckpointRecord(step=3, folder="step-000003", loss=2.5, scores=LATER, n_tokens=8),
]


def test_best_scores_skip_nan_and_take_the_maximum():
    assert best_scores(CHECKPOINTS, "induction") == [0.1, 0.2]
    assert best_scores(CHECKPOINTS, "previous_token") == [0.9, 1.8]
    nothing = CheckpointRecord(0, "s", None, {"induction": [[float("nan")]]}, 2)
    assert math.isnan(best_scores([nothing], "induction")[0])


def test_training_figure_draws_the_records_and_the_marker():
    fig = training_figure(HISTORY, CHECKPOINTS, marker=3, lang="en")
    by_name = {trace.name: trace for trace in fig.data}
    assert list(by_name["loss"].y) == [4.0, 3.0, 2.5]
    repeated = list(by_name["loss, repeated half"].y)
    assert repeated[:2] == [4.1, 2.0] and math.isnan(repeated[2])  # no repeated half: a gap
    assert list(by_name["induction"].x) == [0, 3]
    assert list(by_name["induction"].y) == [0.1, 0.2]
    assert by_name["induction"].xaxis == "x2" and by_name["loss"].xaxis == "x"
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(lines) == 2 and all(s.x0 == s.x1 == 3 for s in lines)
    japanese = training_figure(HISTORY, CHECKPOINTS, lang="ja")
    assert {t.name for t in japanese.data} >= {"損失", "誘導"} and not japanese.layout.shapes


def test_split_frame_lists_each_tokenizer_in_order():
    splits = [
        TokenSplit("lab", ("▁吾輩", "は"), ("吾輩", "は"), (False, False)),
        TokenSplit("MiniLM", ("[CLS]", "吾", "[SEP]"), ("[CLS]", "吾", "[SEP]"), (1, 0, 1)),
    ]
    frame = split_frame(splits, lang="ja")
    assert list(frame.columns) == ["トークナイザー", "トークン数", "分割"]
    assert frame.values.tolist() == [["lab", 2, "吾輩 | は"], ["MiniLM", 3, "[CLS] | 吾 | [SEP]"]]
