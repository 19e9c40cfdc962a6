"""AttnScope's core: load a model, turn a text into an :class:`Analysis`. Never imports streamlit.

>>> from core import analyze, load_model          # doctest: +SKIP
>>> result = analyze(load_model("minilm"), "The cat sat on the mat.")  # doctest: +SKIP
>>> result.head_entropy.shape                     # doctest: +SKIP
torch.Size([6, 12])
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
