""" "Rank every head" in the app runs the same forward passes as ``rank_heads`` outside it. On a
short text a pass costs about the same whatever its batch, and the page ranked layer by layer:
SmolLM2's 9 heads a layer made 60 passes (8 + 1 a layer) where one call makes 34, 17 % more CPU
(``python -m bench app`` compares the two)."""

from __future__ import annotations

from core.methods import ablation
from tests.app.helpers import analyze_in_app


def test_rank_every_head_runs_full_batches(app, monkeypatch):
    analyze_in_app(app, "Ablate a head and see.")  # MiniLM: 6 layers of 12 heads
    app.switch_page("pages/ablation.py").run()
    batches: list[int] = []
    measure = ablation._measure

    def counted(loaded, inputs, copies=1):
        batches.append(copies)
        return measure(loaded, inputs, copies)

    monkeypatch.setattr(ablation, "_measure", counted)
    app.button(key="ablation_rank").click().run()
    assert not app.exception, app.exception
    # One unablated pass, then 72 heads 8 at a time, as one rank_heads call runs them (the
    # page ran 12 passes, 8 + 4 for every layer).
    assert batches == [1] + [8] * 9
