"""A call's signature: what its compiled program is keyed on.

The signature is the input tree structure, the shape and dtype of every array leaf,
the type and value of every other leaf (those are compiled in as constants), and what
the transform fixes (argnums, in_dims, ...). Calls of the usual kinds (tensors in
tuples, lists, dicts, Python scalars) are flattened by a walk much cheaper than torch's
pytree; others (namedtuples, registered containers) by torch's pytree. Both describe a
leaf the same way (:func:`_structure`, :func:`leaf_key`).
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import numpy as np
import torch
from torch.utils import _pytree as pytree

from .. import caches
from ..crossing import ARRAY_TYPE

_PLAIN = (torch.Tensor, torch.nn.Parameter)
_STATIC_TYPES = {int, float, bool, complex, str, type(None), torch.dtype}


class _Slow(Exception):
    """A container the fast flattener does not know: use torch's pytree."""


def _structure(x, leaves: list, dyn: list):
    """A hashable description of ``x``'s tree (its static leaves' values included),
    appending its leaves to ``leaves`` and the positions of its arrays to ``dyn``.

    Covers what calls are made of (tensors, tuples, lists, dicts, Python scalars) in a
    fraction of torch pytree's time; anything else raises :class:`_Slow`. The order of
    leaves is torch pytree's: dicts in insertion order. A leaf is described as
    :func:`leaf_key` does (inlined: this runs on every call).
    """
    t = type(x)
    if t in _PLAIN or t is ARRAY_TYPE or t is np.ndarray:
        dyn.append(len(leaves))
        leaves.append(x)
        return (x.shape, x.dtype)
    if t is tuple or t is list:
        return (t, *[_structure(e, leaves, dyn) for e in x])
    if t is dict:
        return (dict, tuple(x), *[_structure(e, leaves, dyn) for e in x.values()])
    if t in _STATIC_TYPES:
        leaves.append(x)
        return (t, x)  # the type too: f(x, 1) and f(x, True) must not share a program
    raise _Slow


def is_dynamic(x) -> bool:
    """Whether a leaf is an input of the program (else it is compiled in as a constant)."""
    return isinstance(x, (torch.Tensor, jax.Array, np.ndarray))


def static_key(x) -> tuple:
    if type(x) is slice:  # unhashable before Python 3.12
        return ("slice", x.start, x.stop, x.step)
    return (type(x), x)


def leaf_key(x) -> tuple:
    """An array's shape and dtype; any other leaf's type and value."""
    return (x.shape, x.dtype) if is_dynamic(x) else static_key(x)


_SPECS: dict[Any, Any] = {}  # structure -> torch TreeSpec, for calls the fast walk flattened
caches.register("compile.tree_specs", _SPECS.clear)


class Prepared:
    """A call flattened once: its leaves, where the tensors are, and its signature
    (``sig``: None if a constant leaf is unhashable).

    The torch pytree spec is only needed to trace; it is looked up when first asked for.
    """

    __slots__ = ("_spec", "args", "dyn_pos", "kwargs", "leaves", "sig")

    def __init__(self, leaves: list, spec: Any, dyn_pos: list[int], sig: Any, args=None, kwargs=None):
        self.leaves, self._spec, self.dyn_pos, self.sig = leaves, spec, dyn_pos, sig
        self.args, self.kwargs = args, kwargs

    @property
    def spec(self) -> Any:
        if self._spec is None:
            structure = self.sig[0]
            spec = _SPECS.get(structure)
            if spec is None:
                if len(_SPECS) > 4096:
                    _SPECS.clear()
                spec = _SPECS[structure] = pytree.tree_flatten((self.args, self.kwargs))[1]
            self._spec = spec
        return self._spec

    def variant(self) -> tuple[Any, tuple]:
        """The signature split in two: the tree and array shapes, and the constants' values."""
        leaves = self.leaves
        shapes = (self.spec, tuple([leaf_key(leaves[i]) for i in self.dyn_pos]))
        constants = tuple((i, static_key(x)) for i, x in enumerate(leaves) if not is_dynamic(x))
        return shapes, constants

    def unhashable_error(self, name: str) -> TypeError:
        bad = next(x for x in self.leaves if not is_dynamic(x) and not _hashable(static_key(x)))
        return TypeError(
            f"{name}: an argument of type {type(bad).__name__} is neither a tensor nor "
            "hashable; torchjax compiles non-tensor arguments in as constants, so they must be hashable"
        )


def prepare(args: tuple, kwargs: dict, transform_key: Any = ()) -> Prepared:
    """Flatten a call and compute its signature, ``(structure, transform_key)``."""
    leaves: list = []
    dyn_pos: list[int] = []
    try:
        structure = tuple([_structure(a, leaves, dyn_pos) for a in args])
        if kwargs:  # tagged: a positional structure never starts with a bare type
            kw = tuple([_structure(v, leaves, dyn_pos) for v in kwargs.values()])
            structure = (dict, structure, tuple(kwargs), kw)
    except _Slow:
        pass
    else:
        return Prepared(leaves, None, dyn_pos, (structure, transform_key), args, kwargs)
    leaves, spec = pytree.tree_flatten((args, kwargs))
    dyn_pos = [i for i, x in enumerate(leaves) if is_dynamic(x)]
    # starts with a TreeSpec: never equal to a structure of the fast walk
    sig: Any = ((spec, tuple([leaf_key(x) for x in leaves])), transform_key)
    if not _hashable(sig):
        sig = None
    return Prepared(leaves, spec, dyn_pos, sig)


def _hashable(x) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


_STORM_THRESHOLD = 8


class RecompileWatch:
    """Warns once when one function is compiled again and again for inputs of the same
    shapes because a Python number among its arguments keeps changing."""

    def __init__(self, name: str):
        self.name = name
        self._variants: dict[Any, set] = {}  # shapes -> the constants compiled for them
        self._warned = False

    def note(self, call: Prepared) -> None:
        shapes, constants = call.variant()
        variants = self._variants.setdefault(shapes, set())
        variants.add(constants)
        if len(variants) >= _STORM_THRESHOLD and not self._warned:
            self._warned = True
            warnings.warn(
                f"{self.name}: compiled {len(variants)} times for inputs of the same shapes because "
                f"non-tensor arguments changed value (leaf positions {_changing_positions(variants)}). "
                "Each new Python number is compiled in as a constant; pass values that change as "
                "tensors (torch.tensor(x)) to compile once.",
                RuntimeWarning,
                stacklevel=5,
            )

    def clear(self) -> None:
        self._variants.clear()


def _changing_positions(variants) -> list[int]:
    dicts = [dict(v) for v in variants]
    keys = set().union(*dicts)
    return sorted(k for k in keys if len({repr(d.get(k)) for d in dicts}) > 1)
