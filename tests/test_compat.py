"""The private JAX and torch names torchjax uses, all imported in ``_src/_compat.py``.

A release that moves one fails here, naming it, rather than somewhere deep in a
transform. The second test keeps them in that one module.
"""

from __future__ import annotations

import importlib
import pathlib
import re

import pytest

from torchjax._src import _compat


def _resolve(dotted: str):
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("name", sorted(_compat.NAMES))
def test_private_name_resolves(name):
    assert _resolve(name) is _compat.NAMES[name], f"{name} moved: update torchjax/_src/_compat.py"


# These predate _compat.py; the architecture issue (12) moves them. Nothing new joins them.
_NOT_YET_MOVED = {"_src/crossing.py", "_src/ops/linalg.py"}
_PRIVATE_IMPORT = re.compile(r"^\s*(from|import) (jax\._src|jax\.interpreters|torch\._C\._functorch)\b", re.M)


def test_private_imports_only_in_compat():
    root = pathlib.Path(__file__).resolve().parents[1] / "torchjax"
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if p.name != "_compat.py" and _PRIVATE_IMPORT.search(p.read_text())
    ]
    assert set(offenders) <= _NOT_YET_MOVED, f"private imports outside _compat.py: {offenders}"
