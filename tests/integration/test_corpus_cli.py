"""``python -m core corpus run|show|list`` on the bundled corpus, for both bundled models."""

from __future__ import annotations

import pytest

from core.cli import main
from core.corpus import open_run

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("model", "layers", "heads"), [("minilm", 6, 12), ("smollm2", 30, 9)])
def test_corpus_run_on_the_bundled_sample(model, layers, heads, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ATTNSCOPE_RUNS_DIR", str(tmp_path))
    out = tmp_path / f"sample-{model}"
    assert main(["corpus", "run", "sample", "--model", model, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    assert "240/240 texts" in captured.err and "texts/s" in captured.err
    run = open_run(out)
    assert run.complete and run.n_done == 240
    assert run.manifest["model"]["kind"] == ("decoder" if model == "smollm2" else "encoder")
    counts = run.query("SELECT count(*) AS n, count(DISTINCT text_id) AS t FROM heads")
    assert counts.n[0] == 240 * layers * heads and counts.t[0] == 240
    by_group = run.query(
        "SELECT label_lang, label_kind, count(*) AS n FROM texts GROUP BY ALL ORDER BY ALL"
    )
    assert by_group.n.tolist() == [60, 60, 60, 60]
    if model == "smollm2":  # query 0 sees only itself: only the decoder's two scopes differ
        differ = run.query("SELECT avg(abs(first_token - first_token_choice)) AS d FROM heads")
        assert differ.d[0] > 0.01

    assert main(["corpus", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "complete, 240 of 240 texts" in shown and "pattern_share" in shown
    assert (
        len([line for line in shown.splitlines() if line.strip()[:1].isdigit()]) == layers * heads
    )
    assert main(["corpus", "show", str(out), "--sql", "SELECT count(*) AS n FROM instances"]) == 0
    assert capsys.readouterr().out.split() == ["n", str(layers * heads * 20)]
    assert main(["corpus", "list"]) == 0
    assert str(out) in capsys.readouterr().out


def test_corpus_errors_are_one_line(tmp_path, capsys):
    missing = tmp_path / "nothing.csv"
    assert main(["corpus", "run", str(missing), "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip() == f"error: No such file: {missing}."
    assert main(["corpus", "show", str(tmp_path)]) == 2
    assert "not a corpus run folder" in capsys.readouterr().err


def test_a_corpus_run_leaves_a_core_free_unless_told(tmp_path, capsys, monkeypatch):
    """The CLI runs torch on one core fewer than usable, as the app's server does (a thread on
    every core crawls when anything else wants one); --threads and $ATTNSCOPE_THREADS say
    otherwise. The final line names the count the run used."""
    import torch

    from core.engine.devices import THREADS_ENV, server_threads, usable_cores

    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.setenv("ATTNSCOPE_RUNS_DIR", str(tmp_path))
    before = torch.get_num_threads()
    try:
        for flag, expected in (([], server_threads(usable_cores())), (["--threads", "3"], 3)):
            out = tmp_path / f"run-{expected}-{len(flag)}"
            argv = ["corpus", "run", "sample", "--model", "minilm", "--limit", "4", "--out"]
            assert main([*argv, str(out), *flag]) == 0
            assert f"texts/s, {expected} torch thread" in capsys.readouterr().err
            assert torch.get_num_threads() == expected
        monkeypatch.setenv(THREADS_ENV, "2")
        assert main([*argv, str(tmp_path / "env"), "--threads", "1"]) == 0
        assert "texts/s, 2 torch thread" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)
