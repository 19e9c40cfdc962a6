"""Loading a model reports each stage as it starts, first of all the import of transformers'
model classes (seconds, once per process), as :class:`~core.policy.progress.Stage` lines that
the app shows in the reader's language."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = """
import json
from core import load_model
first, second = [], []
load_model("minilm", progress=first.append)
load_model("minilm", progress=second.append)
print(json.dumps([[(s.key, str(s), s.localized("ja")) for s in run] for run in (first, second)]))
"""


def test_a_fresh_process_reports_every_stage_of_loading_in_order():
    out = subprocess.run(
        [sys.executable, "-c", SNIPPET],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    first, second = json.loads(out.stdout.strip().splitlines()[-1])
    assert [key for key, _, _ in first] == [
        "run.stage_libraries",
        "run.stage_tokenizer",
        "run.stage_weights",
    ]
    assert [english for _, english, _ in first] == [
        "Importing transformers (once per process, a few seconds)",
        "Loading the tokenizer of all-MiniLM-L6-v2",
        "Loading the weights of all-MiniLM-L6-v2 onto cpu",
    ]
    assert first[2][2] == "all-MiniLM-L6-v2 の重みを cpu に読み込んでいます"
    # transformers is imported now: the second load does not say it again
    assert [key for key, _, _ in second] == ["run.stage_tokenizer", "run.stage_weights"]
