"""The bad-input suite through core: a clear message or a correct result, never a crash."""

from __future__ import annotations

import pytest
import torch

from core import AttnScopeError, analyze, load_model
from core.engine.models import BUILTIN_MODELS, _package_dir
from core.policy.examples import load_examples
from core.policy.links import parse_link
from tests.bad_inputs import CASES, make_folders, resolved

EXAMPLES = [example.id for example in load_examples()]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    minilm_folder = _package_dir(BUILTIN_MODELS["minilm"]) / "model"
    return make_folders(tmp_path_factory.mktemp("bad-models"), minilm_folder)


def check_result(result) -> None:
    sums = result.attentions.sum(-1)
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-4)
    for label in result.tokens:  # every label is visible text: no raw control characters
        assert label and not any(ord(ch) < 32 for ch in label), repr(label)


@pytest.mark.parametrize("case", [c for c in CASES if c.kind == "text"], ids=lambda c: c.id)
def test_texts(case, minilm):
    if case.error:
        with pytest.raises(AttnScopeError, match=case.error):
            analyze(minilm, case.text)
    else:
        check_result(analyze(minilm, case.text))
    check_result(analyze(minilm, "And the next good text works."))


@pytest.mark.parametrize("case", [c for c in CASES if c.kind == "model"], ids=lambda c: c.id)
def test_models(case, folders):
    with pytest.raises(AttnScopeError, match=case.error) as caught:
        load_model(resolved(case, folders))
    assert "Traceback" not in str(caught.value)


@pytest.mark.parametrize("case", [c for c in CASES if c.kind == "link"], ids=lambda c: c.id)
def test_links(case, minilm):
    view, problems = parse_link(case.link, examples=EXAMPLES)
    if view.model:
        with pytest.raises(AttnScopeError, match=case.error):
            load_model(view.model)
    elif case.error:
        assert problems, case.id
    if view.text:
        check_result(analyze(minilm, view.text))


def test_the_suite_is_large_enough():
    assert len(CASES) >= 30
    assert {case.kind for case in CASES} == {"text", "model", "link"}
