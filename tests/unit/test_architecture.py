"""The architecture's rules, read from the source: short modules and pages, one tokenizer module,
methods that take an analysis (never a text), no id() keys, one budget and size formula, and a
docs/ARCHITECTURE.md that names the modules that exist.

Static: files are parsed with ``ast`` (only core.methods is imported, to read signatures), so the
whole file runs in about a second.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The application's code: what the rules are about. tests/ and bench/ are tooling.
APP_DIRS = ("core", "viz", "ui", "pages")
APP_FILES = ("app.py",)
SKIP_PARTS = {".venv", "tests", "vendor", "__pycache__", ".cache", "node_modules"}

MAX_MODULE_LINES = 400
MAX_PAGE_LINES = 150
TOKENIZE_MODULE = "core/engine/tokenize.py"
BUDGET_MODULE = "core/engine/budget.py"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def project_modules() -> list[Path]:
    """Every Python file of the project outside tests/, the virtualenv and vendored code."""
    return sorted(
        path
        for path in ROOT.rglob("*.py")
        if not SKIP_PARTS.intersection(path.relative_to(ROOT).parts)
    )


def app_modules() -> list[Path]:
    """The application's modules: core/, viz/, ui/, pages/ and app.py."""
    paths = [ROOT / name for name in APP_FILES if (ROOT / name).is_file()]
    for folder in APP_DIRS:
        paths += sorted((ROOT / folder).rglob("*.py"))
    return [path for path in paths if "__pycache__" not in path.parts]


@cache
def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


# --- sizes -------------------------------------------------------------------------------------


def test_no_module_is_longer_than_400_lines():
    long = {rel(p): n for p in project_modules() if (n := line_count(p)) > MAX_MODULE_LINES}
    assert not long, f"split these modules (over {MAX_MODULE_LINES} lines): {long}"


def test_no_page_is_longer_than_150_lines():
    pages = sorted((ROOT / "pages").glob("*.py"))
    assert pages, "no pages found"
    long = {rel(p): n for p in pages if (n := line_count(p)) > MAX_PAGE_LINES}
    assert not long, f"pages only compose; move logic out of (over {MAX_PAGE_LINES} lines): {long}"


# --- one module calls the tokenizer ------------------------------------------------------------

# Methods only a tokenizer has: any call or reference to them is a tokenizer call.
TOKENIZER_ONLY_METHODS = {
    "apply_chat_template",
    "batch_decode",
    "batch_encode_plus",
    "convert_ids_to_tokens",
    "convert_tokens_to_ids",
    "convert_tokens_to_string",
    "encode_plus",
}
# Methods that strings and bytes have too: a tokenizer call only on something named a tokenizer.
SHARED_METHODS = {"decode", "encode", "tokenize", "__call__"}


def names_a_tokenizer(node: ast.expr) -> bool:
    """``tokenizer``, ``self._tokenizer``, ``loaded.tokenizer``, ``model.tokenizer``, ..."""
    if isinstance(node, ast.Name):
        return "tokenizer" in node.id.lower()
    if isinstance(node, ast.Attribute):
        return "tokenizer" in node.attr.lower()
    return False


def tokenizer_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """Calls of a tokenizer object and references to its methods (``f(tokenizer.decode)`` calls
    it too), as (line, source)."""
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and names_a_tokenizer(node.func):
            hits.append((node.lineno, ast.unparse(node.func) + "(...)"))
        elif isinstance(node, ast.Attribute) and (
            node.attr in TOKENIZER_ONLY_METHODS
            or (node.attr in SHARED_METHODS and names_a_tokenizer(node.value))
        ):
            hits.append((node.lineno, ast.unparse(node)))
    return sorted(hits)


def test_tokenizer_detector_finds_calls_and_ignores_strings():
    source = """
ids = tokenizer(text)["input_ids"]
labels = loaded.tokenizer.convert_ids_to_tokens(ids)
decode = self._tokenizer.decode
t.apply_chat_template(messages)
"日本".encode()
payload.decode("utf-8")
tokenize(loaded, text)
"""
    found = [text for _, text in tokenizer_uses(ast.parse(source))]
    assert found == [
        "tokenizer(...)",
        "loaded.tokenizer.convert_ids_to_tokens",
        "self._tokenizer.decode",
        "t.apply_chat_template",
    ]


def test_the_tokenizer_is_called_in_one_module():
    assert (ROOT / TOKENIZE_MODULE).is_file(), f"{TOKENIZE_MODULE} is missing"
    elsewhere = {
        rel(path): hits
        for path in app_modules()
        if rel(path) != TOKENIZE_MODULE and (hits := tokenizer_uses(parse(path)))
    }
    assert not elsewhere, f"tokenizer used outside {TOKENIZE_MODULE}: {elsewhere}"
    assert tokenizer_uses(parse(ROOT / TOKENIZE_MODULE)), f"{TOKENIZE_MODULE} calls no tokenizer"


# --- methods take an analysis, never a text ----------------------------------------------------

TEXT_PARAMETERS = {"text", "pair"}
# Generation starts from a prompt, which core.engine.tokenize encodes once: allowed, as `prompt`.
PROMPT_MODULE = "core.methods.generate"
MODEL_PARAMETERS = {"loaded", "model", "_model", "tokenizer"}


def reaches_a_model(function) -> bool:
    """Whether ``function`` is given a model or tokenizer, so that it could tokenize a text.
    (A pure text rule such as ``words.character_words(text)`` cannot, and may take a text.)"""
    return any(
        name in MODEL_PARAMETERS or "LoadedModel" in str(parameter.annotation)
        for name, parameter in inspect.signature(function).parameters.items()
    )


def method_modules():
    import core.methods

    return [
        importlib.import_module(f"core.methods.{info.name}")
        for info in pkgutil.iter_modules(core.methods.__path__)
        if not info.name.startswith("_")
    ]


def public_functions(module):
    """Functions and public methods of classes defined in ``module`` (not imported into it)."""
    for name, value in vars(module).items():
        if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(value):
            yield name, value
        elif inspect.isclass(value):
            for attr, member in vars(value).items():
                if isinstance(member, staticmethod | classmethod):
                    member = member.__func__
                if inspect.isfunction(member) and not attr.startswith("_"):
                    yield f"{name}.{attr}", member


def test_no_analysis_method_takes_a_text():
    modules = method_modules()
    assert {m.__name__ for m in modules} >= {"core.methods.ablation", PROMPT_MODULE}
    offenders = []
    for module in modules:
        for name, function in public_functions(module):
            taken = TEXT_PARAMETERS & set(inspect.signature(function).parameters)
            if taken and reaches_a_model(function):
                offenders.append(f"{module.__name__}.{name}{sorted(taken)}")
    assert not offenders, f"methods take an analysis (tokenized once), not a text: {offenders}"


def test_generation_takes_a_prompt():
    generate = importlib.import_module(PROMPT_MODULE)
    takes_prompt = [
        name
        for name, function in public_functions(generate)
        if "prompt" in inspect.signature(function).parameters
    ]
    assert "generate_steps" in takes_prompt


# --- no cache keyed by id() --------------------------------------------------------------------


def id_calls(tree: ast.AST) -> list[int]:
    """Lines that call the builtin ``id`` (unless a local name shadows it)."""
    shadowed = any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "id"
        for node in ast.walk(tree)
    ) or any(
        isinstance(node, ast.Name) and node.id == "id" and isinstance(node.ctx, ast.Store)
        for node in ast.walk(tree)
    )
    if shadowed:
        return []
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "id"
    ]


def test_id_detector():
    assert id_calls(ast.parse("key = (id(result), layer)\nx.id(3)\nsession_id = 4")) == [1]


def test_no_cache_is_keyed_by_id():
    found = {rel(p): lines for p in app_modules() if (lines := id_calls(parse(p)))}
    assert not found, f"memoise by content (analysis.content_key), never by id(): {found}"


# --- one budget, one size formula --------------------------------------------------------------

BUDGET_BYTES = 512 * 2**20
_OPS = {
    ast.Mult: lambda a, b: a * b,
    ast.Pow: lambda a, b: a**b,
    ast.LShift: lambda a, b: a << b,
    ast.Add: lambda a, b: a + b,
}


def constant_value(node: ast.expr) -> int | None:
    """The value of an integer expression made of literals only (``512 * 2**20``, ``1 << 29``)."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = constant_value(node.left), constant_value(node.right)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Pow | ast.LShift) and not 0 <= right < 64:
            return None  # not a size; and never compute a huge power
        return _OPS[type(node.op)](left, right)
    return None


def budget_literals(tree: ast.AST) -> list[int]:
    """Lines where 512 MiB is spelled as a number (``512 * 2**20``, ``2**29``, ``536870912``)."""
    return sorted(
        {
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.expr) and constant_value(node) == BUDGET_BYTES
        }
    )


# A name for a sequence's length: seq_len, n_tokens, n_words, length, T, ...
_LENGTH = re.compile(r"(^|_)(seq_len|seq_length|n_tokens|n_words|n_keys|length|len)$|^[tT]$")


def _factors(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        return _factors(node.left) + _factors(node.right)
    return [node]


def _length_name(node: ast.expr) -> str | None:
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
    return name if name and _LENGTH.search(name) else None


def size_formulas(tree: ast.AST) -> list[tuple[int, str]]:
    """Products that square a sequence length (``L * H * T * T * 4``, ``n * seq_len**2``), and
    square roots of a budget per head (the formula solved for T), as (line, source)."""
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            factors = _factors(node)
            lengths = [ast.unparse(f) for f in factors if _length_name(f)]
            squared = any(
                isinstance(f, ast.BinOp)
                and isinstance(f.op, ast.Pow)
                and _length_name(f.left)
                and constant_value(f.right) == 2
                for f in factors
            )
            if squared or len(lengths) != len(set(lengths)):
                hits.append((node.lineno, ast.unparse(node)))
        elif (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Pow)
            and isinstance(node.right, ast.Constant)
            and node.right.value == 0.5
            and "n_heads" in ast.unparse(node.left)
        ):
            hits.append((node.lineno, ast.unparse(node)))
    # A product inside a product is one formula: report the outermost only.
    return sorted(
        (line, text) for line, text in hits if not any(text in o and text != o for _, o in hits)
    )


def test_size_detectors_find_the_old_spellings_and_nothing_else():
    old = """
DEFAULT_KEEP_BYTES = 512 * 2**20
budget = 1 << 29
fits = n_layers * n_heads * seq_len * seq_len * 4 <= keep_bytes
size = result.n_layers * result.n_heads * result.seq_len**2 * 4
words = analysis.n_layers * analysis.n_heads * n_words * n_words * 4
limit = int((MAX / (result.n_layers * result.n_heads * 4)) ** 0.5)
"""
    tree = ast.parse(old)
    assert budget_literals(tree) == [2, 3]
    assert [line for line, _ in size_formulas(tree)] == [4, 5, 6, 7]
    unrelated = """
DENSE_LIMIT = 16 * 2**20
mb = size / 2**20
area = width * height
scores = batch * n_heads
var = (x - mean) ** 2
"""
    assert budget_literals(ast.parse(unrelated)) == []
    assert size_formulas(ast.parse(unrelated)) == []


def test_the_memory_budget_is_spelled_once():
    found = {rel(p): lines for p in app_modules() if (lines := budget_literals(parse(p)))}
    assert set(found) == {BUDGET_MODULE}, f"512 MiB spelled outside {BUDGET_MODULE}: {found}"


def test_the_size_formula_is_written_once():
    found = {rel(p): hits for p in app_modules() if (hits := size_formulas(parse(p)))}
    assert BUDGET_MODULE in found, f"{BUDGET_MODULE} no longer holds the size formula"
    del found[BUDGET_MODULE]
    assert not found, f"use core.engine.budget (attention_bytes, fits, max_seq_len): {found}"


# --- docs/ARCHITECTURE.md matches the tree -----------------------------------------------------

_MODULE_PATH = re.compile(r"`((?:core|viz|ui|pages)/[\w/]*\.py|app\.py)`")


def named_modules() -> set[str]:
    assert ARCHITECTURE.is_file(), "docs/ARCHITECTURE.md is missing"
    return set(_MODULE_PATH.findall(ARCHITECTURE.read_text(encoding="utf-8")))


def test_architecture_names_only_modules_that_exist():
    named = named_modules()
    assert len(named) >= 10, f"docs/ARCHITECTURE.md names too few modules: {sorted(named)}"
    missing = sorted(path for path in named if not (ROOT / path).is_file())
    assert not missing, f"docs/ARCHITECTURE.md names modules that do not exist: {missing}"


def test_architecture_names_every_core_module():
    named = named_modules()
    core = {
        rel(p)
        for p in (ROOT / "core").rglob("*.py")
        if p.name not in {"__init__.py", "__main__.py"} and "__pycache__" not in p.parts
    }
    unnamed = sorted(core - named)
    assert not unnamed, f"docs/ARCHITECTURE.md does not name: {unnamed}"
