"""Errors AttnScope shows to people: each message says what went wrong and what to do next."""

from __future__ import annotations

__all__ = [
    "AttnScopeError",
    "InputError",
    "ModelLoadError",
    "ModelNotFoundError",
    "UnsupportedModelError",
]


class AttnScopeError(Exception):
    """Base class: ``str(error)`` is a complete, user-facing sentence, safe to show as is."""


class InputError(AttnScopeError, ValueError):
    """The text or an option is unusable (empty text, a pair for a decoder, ...)."""


class ModelNotFoundError(AttnScopeError, LookupError):
    """No model by that name: not built in, not a model folder, not found on the Hub."""


class ModelLoadError(AttnScopeError, RuntimeError):
    """The model was found but could not be loaded (broken config, truncated weights, ...)."""


class UnsupportedModelError(AttnScopeError, TypeError):
    """The model loads but its attention cannot be read (no weights, encoder-decoder, ...)."""
