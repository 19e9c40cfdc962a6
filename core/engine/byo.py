"""Bring your own model: a learner's ``.py`` file that builds an ``nn.Module``, run on a text with
its attention captured (:mod:`core.engine.capture`) and turned into a derived
:class:`~core.engine.analysis.Analysis` that the heatmaps, the head and model view and the head
statistics read like any other.

The file's contract (only ``build`` is required)::

    def build() -> torch.nn.Module: ...            # the model, untrained or not
    def load_state(model) -> None: ...             # optional: load weights into it
    def encode(text: str) -> list[int]: ...        # optional: token ids of a text
    def decode(ids: list[int]) -> list[str]: ...   # optional: one label per id
    def run(model, ids: torch.Tensor): ...         # optional: one forward pass of ids (1, T)

Without ``encode`` the text is read character by character, each character's id its code point
(``ord``), labelled by the character itself; without ``decode`` labels are the ids (or the
characters); without ``run`` the pass is ``model(ids)``. The model is put in ``eval()``.

Loading the file runs its code with this process' rights: only where the settings allow a model's
own code (never in demo mode) and the user turned the remote-code switch on
(:func:`require_user_code`).
"""

from __future__ import annotations

import hashlib
import itertools
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from core.engine.analysis import Analysis
from core.engine.budget import DEFAULT_BUDGET_BYTES
from core.engine.capture import Capture, capture_attention
from core.policy.errors import AttnScopeError, InputError
from core.policy.settings import Settings

__all__ = [
    "UserModel",
    "capture_analysis",
    "load_user_model",
    "require_user_code",
    "user_analysis",
]

MAX_SOURCE_BYTES = 1_000_000  # a model file, not a data file


def require_user_code(settings: Settings, *, trusted: bool) -> None:
    """Refuse to run a user's code in demo mode, where the server does not allow a model's own
    code, or while the user's remote-code switch is off (``trusted``), with an
    :class:`~core.policy.errors.InputError` that says which.

    >>> from core.policy.settings import DEMO, LOCAL
    >>> require_user_code(LOCAL, trusted=True)
    >>> require_user_code(DEMO, trusted=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    core.policy.errors.InputError: This is a public demo: it never runs uploaded Python code. ...
    """
    if settings.demo:
        raise InputError("error.byo_demo")
    if not settings.allow_remote_code:
        raise InputError("error.byo_not_allowed")
    if not trusted:
        raise InputError("error.byo_switch_off")


@dataclass(frozen=True, eq=False)
class UserModel:
    """A user's model built from their file, with its tokenizer hooks."""

    name: str  # the file's name and a digest of its text: "model.py#1a2b3c4d"
    model: nn.Module
    encode: Callable[[str], Sequence[int]]
    labels: Callable[[Sequence[int], str], list[str]]  # (ids, text) -> one label per id
    run: Callable[[nn.Module, Tensor], Any]


# Where the user's code failed -> the message that says so.
_STAGES = {
    "import": "error.byo_import",
    "build": "error.byo_build",
    "encode": "error.byo_encode",
    "forward": "error.byo_forward",
}


def _failed(stage: str, error: BaseException) -> InputError:
    """The user's code raised: what and where, never a traceback."""
    return InputError(_STAGES[stage], error=f"{type(error).__name__}: {error}"[:500])


def _device_of(model: nn.Module) -> torch.device:
    """Where the model's first parameter (or buffer) lives: the ids go there too."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _characters(text: str) -> list[int]:
    return [ord(character) for character in text]


def load_user_model(
    source: str | bytes, *, settings: Settings, trusted: bool, file_name: str = "model.py"
) -> UserModel:
    """Run the user's module text ``source`` (after :func:`require_user_code`) and build its
    model, in ``eval()``. Errors in the code are an ``InputError`` naming the step that failed."""
    require_user_code(settings, trusted=trusted)
    if isinstance(source, bytes):
        if len(source) > MAX_SOURCE_BYTES:
            raise InputError("error.byo_file_too_large", limit=MAX_SOURCE_BYTES // 1000)
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InputError("error.byo_not_utf8") from error
    if not source.strip():
        raise InputError("error.byo_empty")
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:8]
    module = types.ModuleType(f"attnscope_user_{digest}")
    module.__file__ = file_name
    try:
        exec(compile(source, file_name, "exec"), module.__dict__)  # the user's code, allowed above
    except (Exception, SystemExit) as error:
        raise _failed("import", error) from error
    namespace = vars(module)
    if not callable(namespace.get("build")):
        raise InputError("error.byo_no_build")
    try:
        model = namespace["build"]()
        if callable(namespace.get("load_state")):
            namespace["load_state"](model)
    except (Exception, SystemExit) as error:
        raise _failed("build", error) from error
    if not isinstance(model, nn.Module):
        raise InputError("error.byo_not_module", found=type(model).__name__)
    encode = namespace.get("encode")
    decode = namespace.get("decode")

    def labels(ids: Sequence[int], text: str) -> list[str]:
        if callable(decode):
            return [str(label) for label in decode(list(ids))]
        return list(text) if encode is None else [str(i) for i in ids]

    return UserModel(
        name=f"{file_name}#{digest}",
        model=model.eval(),
        encode=encode if callable(encode) else _characters,
        labels=labels,
        run=namespace["run"] if callable(namespace.get("run")) else lambda m, ids: m(ids),
    )


def capture_analysis(
    capture: Capture,
    tokens: Sequence[str],
    *,
    model_name: str,
    text: str = "",
    token_ids: Sequence[int] | None = None,
    forward_seconds: float = 0.0,
) -> Analysis:
    """The self-attention calls of ``capture`` (those over all ``len(tokens)`` positions, first
    item of the batch), one layer each in call order, as a derived analysis (``"byo"``): it is
    shown, never run again. A decoder when every map is 0 above the diagonal."""
    seq_len = len(tokens)
    maps = [
        call.weights[0]  # (H, T, T)
        for call in capture.calls
        if call.weights.shape[-2:] == (seq_len, seq_len)
    ]
    if not maps:
        raise InputError("error.byo_no_attention", calls=len(capture.calls))
    heads = sorted({m.shape[0] for m in maps})
    if len(heads) > 1:
        raise InputError("error.byo_heads", heads=", ".join(map(str, heads)))
    attn = torch.stack(maps)  # (L, H, T, T)
    causal = bool((attn.triu(diagonal=1) == 0).all())
    analysis = Analysis.from_attentions(
        attn,
        tokens,
        kind="decoder" if causal else "encoder",
        model_name=model_name,
        text=text,
        token_ids=token_ids,
        forward_seconds=forward_seconds,
    )
    # Its tokens are the model's input, but no loader can run this model again: mark it derived.
    return replace(analysis, derived_from="byo")


def user_analysis(
    user: UserModel, text: str, *, max_tokens: int, max_bytes: int = DEFAULT_BUDGET_BYTES
) -> Analysis:
    """``text`` through the user's model (at most ``max_tokens`` tokens): one pass with its
    attention captured, as a derived analysis (:func:`capture_analysis`)."""
    if not text.strip():
        raise InputError("error.empty_text")
    try:
        ids = [int(i) for i in user.encode(text)]
        labels = user.labels(ids, text)
    except (Exception, SystemExit) as error:
        raise _failed("encode", error) from error
    n_input = len(ids)
    ids, labels = ids[:max_tokens], labels[:max_tokens]
    if not ids or len(labels) != len(ids):
        raise InputError("error.byo_labels", ids=len(ids), labels=len(labels))
    started = time.perf_counter()
    try:
        with torch.inference_mode(), capture_attention(max_bytes=max_bytes) as capture:
            user.run(user.model, torch.tensor([ids], device=_device_of(user.model)))  # (1, T)
    except AttnScopeError:
        raise
    except (Exception, SystemExit) as error:
        raise _failed("forward", error) from error
    analysis = capture_analysis(
        capture,
        labels,
        model_name=user.name,
        text=text,
        token_ids=ids,
        forward_seconds=time.perf_counter() - started,
    )
    return replace(analysis, truncated=n_input > len(ids), n_input_tokens=n_input)
