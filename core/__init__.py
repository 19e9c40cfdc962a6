"""AttnScope's core: load a model, turn a text into an :class:`Analysis`. Never imports streamlit.

Example (tested in ``tests/integration``)::

    from core import analyze, load_model
    result = analyze(load_model("minilm"), "The cat sat on the mat.")
    result.head_entropy.shape  # torch.Size([6, 12]): n_layers x n_heads
"""

from core.analysis import Analysis, AttendedToken, analyze, check_text, tokenize
from core.errors import (
    AttnScopeError,
    InputError,
    ModelLoadError,
    ModelNotFoundError,
    UnsupportedModelError,
)
from core.models import BUILTIN_MODELS, DEFAULT_MODEL, LoadedModel, load_model

__all__ = [
    "BUILTIN_MODELS",
    "DEFAULT_MODEL",
    "Analysis",
    "AttendedToken",
    "AttnScopeError",
    "InputError",
    "LoadedModel",
    "ModelLoadError",
    "ModelNotFoundError",
    "UnsupportedModelError",
    "analyze",
    "check_text",
    "load_model",
    "tokenize",
]
