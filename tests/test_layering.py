"""The rooms of ../shared/DESIGN.md: each module imports only modules in its layer or below.

Imports are read from the source (module level and inside functions alike), so a
function-local import cannot hide a cycle. Optional dependencies (transformers) are
not torchjax modules and do not count.
"""

from __future__ import annotations

import ast
import fnmatch
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1] / "torchjax"

# Lowest first. A module may import modules of its own layer or of a lower one.
LAYERS = [
    # foundations: no torchjax imports of their own beyond each other
    [
        "_src",
        "_src.errors",
        "_src.dtypes",
        "_src._compat",
        "_src.caches",
        "_src.registry",
        "_src.module_path",
        "_src.capture_patch",
        "_src.hf",
    ],
    ["_src.grad_mode"],  # torch's gradient rules as JAX primitives
    ["_src.crossing"],  # plain torch tensors <-> arrays
    ["_src.tensor", "_src.foreach"],  # the subclass, the capture stack; ops over tensor lists
    ["_src.dispatch"],  # every op to its rule
    ["_src.ops", "_src.ops.*", "_src.autograd_function", "_src.checkpoint", "_src.custom_ops", "_src.from_jax"],
    ["_src.capture"],
    ["_src.training"],
    ["_src.torch_autograd"],
    ["_src.compile", "_src.compile.*"],
    ["_src.convert", "_src.transforms", "_src.transforms.*"],
    ["_src.compare", "_src.compare.*"],  # torch against torchjax, by module and by op
    ["func", "functorch", "autograd", "autograd.*", "testing", "", "demo", "__main__"],
]


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: pathlib.Path) -> set[str]:
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1] if node.level > 1 else package
            target = [*base, *(node.module.split(".") if node.module else [])]
            found.add(".".join(target))
            found.update(".".join([*target, a.name]) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("torchjax"):
            found.add(node.module.removeprefix("torchjax").lstrip("."))
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix("torchjax").lstrip(".") for a in node.names if a.name.startswith("torchjax")
            )
    return found


def _layer(module: str) -> int:
    for i, patterns in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(module, p) for p in patterns):
            return i
    raise AssertionError(f"torchjax.{module} is in no layer of tests/test_layering.py: place it")


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    return {m: {t for t in _imports(p) if t in modules and t != m} for m, p in modules.items()}


def test_every_module_imports_only_its_layer_or_below():
    upward = [
        f"torchjax.{m} imports torchjax.{t}"
        for m, targets in _graph().items()
        for t in sorted(targets)
        if _layer(t) > _layer(m)
    ]
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append(" -> ".join([*path[path.index(t) :], t]))
            elif t not in state:
                visit(t, [*path, t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    # a package importing its own submodules for re-export is not a cycle of concern
    real = [c for c in cycles if not all(part.startswith(c.split(" -> ")[0]) for part in c.split(" -> "))]
    assert not real, "import cycles:\n" + "\n".join(real)
