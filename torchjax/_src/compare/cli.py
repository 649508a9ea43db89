"""``python -m torchjax compare module.path:factory --input "randn(8,3,224,224)"``."""

from __future__ import annotations

import argparse
import ast
import importlib
import sys
from collections.abc import Sequence

import torch

from . import TRANSFORMS, compare

# name -> (torch factory, how its literal arguments become a call)
_FACTORIES = {
    "randn": lambda *shape: torch.randn(*shape),
    "rand": lambda *shape: torch.rand(*shape),
    "zeros": lambda *shape: torch.zeros(*shape),
    "ones": lambda *shape: torch.ones(*shape),
    "randint": lambda low, high, size: torch.randint(int(low), int(high), tuple(size)),
    "arange": lambda *bounds: torch.arange(*bounds),
}


def _literal(node: ast.AST, text: str):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_literal(node.operand, text)
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_literal(e, text) for e in node.elts)
    raise ValueError(f"--input {text!r}: only numbers and tuples of numbers may be arguments")


def parse_input(text: str) -> torch.Tensor:
    """A tensor from a small expression: ``randn(8,3,224,224)``, ``randint(0,100,(2,16))``.

    The text is parsed, never evaluated: one call of ``randn``, ``rand``, ``zeros``,
    ``ones``, ``randint`` or ``arange`` with number (or tuple) literals as arguments.

    Example:
        >>> parse_input("randint(0, 100, (2, 16))").shape
        torch.Size([2, 16])
        >>> parse_input("__import__('os')")
        Traceback (most recent call last):
        ...
        ValueError: --input "__import__('os')": expected one of randn, rand, zeros, ones, randint, arange(...)
    """
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as err:
        raise ValueError(f"--input {text!r}: not an expression ({err.msg})") from None
    if (
        not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id in _FACTORIES)
        or tree.keywords
    ):
        raise ValueError(f'--input "{text}": expected one of {", ".join(_FACTORIES)}(...)')
    args = [_literal(a, text) for a in tree.args]
    if tree.func.id in ("randn", "rand", "zeros", "ones") and len(args) == 1 and isinstance(args[0], tuple):
        args = list(args[0])
    try:
        return _FACTORIES[tree.func.id](*args)
    except (TypeError, RuntimeError) as err:
        raise ValueError(f"--input {text!r}: {err}") from None


def load_factory(spec: str):
    """``package.module:name``: the object itself if it is a module, else what calling it returns."""
    if ":" not in spec:
        raise ValueError(f"{spec!r}: expected module.path:factory (e.g. torchvision.models:resnet18)")
    mod_name, attr = spec.split(":", 1)
    obj = importlib.import_module(mod_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj if isinstance(obj, torch.nn.Module) else obj()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torchjax", description="torchjax tools")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("compare", help="where torch and torchjax numerics part ways (docs/compare.md)")
    p.add_argument("factory", help="module.path:factory returning an nn.Module (or the module object itself)")
    p.add_argument(
        "--input", action="append", required=True, help='an argument, e.g. "randn(8,3,224,224)"; repeat for more'
    )
    p.add_argument("--transform", action="append", choices=TRANSFORMS, help="forward (default), grad, ...; repeatable")
    p.add_argument("--granularity", choices=("module", "op"), default="module")
    p.add_argument("--isolate", action="store_true", help="feed each module torch's inputs (module granularity)")
    p.add_argument("--no-reference", action="store_true", help="compare torch and torchjax directly, no float64 run")
    p.add_argument("--rtol", type=float)
    p.add_argument("--atol", type=float)
    p.add_argument("--json", help="also write the report to this file")
    p.add_argument("--limit", type=int, help="print only the worst N entries")
    p.add_argument("--seed", type=int, default=0, help="torch.manual_seed before building the model and inputs")
    p.add_argument("--progress", action="store_true", help="a progress bar at op granularity (needs tqdm)")
    p.add_argument("--train", action="store_true", help="keep the model in train mode (default: eval())")
    ns = parser.parse_args(argv)
    torch.manual_seed(ns.seed)
    try:
        model = load_factory(ns.factory)
        inputs = [parse_input(t) for t in ns.input]
    except (ValueError, ImportError, AttributeError) as err:
        parser.error(str(err))
    if isinstance(model, torch.nn.Module) and not ns.train:
        model.eval()
    report = compare(
        model,
        *inputs,
        transforms=tuple(ns.transform or ("forward",)),
        granularity=ns.granularity,
        reference=None if ns.no_reference else "float64",
        rtol=ns.rtol,
        atol=ns.atol,
        isolate=ns.isolate,
        progress=ns.progress,
    )
    print(report.table(limit=ns.limit))
    if ns.json:
        report.to_json(ns.json)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
