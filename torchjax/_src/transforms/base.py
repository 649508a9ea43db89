"""What every transform shares: the two call paths, settings, caching, errors.

A transform object (``grad(f)``) is called either at top level with torch tensors, or
inside another torchjax capture (``vmap(grad(f))``) with JaxTensors. At top level the
whole computation is compiled once per signature and cached; inside a capture the
transform is applied to the enclosing trace directly, so nested transforms and the
user's Python between them become one JAX program.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import types
from collections.abc import Callable
from typing import Any

import torch
from torch.utils import _pytree as pytree

from .. import caches
from .._compat import check_unique_non_empty, validate_and_wrap_argnums
from ..capture import Capture, Context, TraceResult, is_array
from ..compile import Compiled
from ..grad_mode import has_tangent_space, stop_reverse
from ..tensor import JaxTensor, array_of, current_context, lift


def fn_name(fn: Callable) -> str:
    if isinstance(fn, functools.partial):
        return f"functools.partial({fn_name(fn.func)}, ...)"
    return getattr(fn, "__name__", repr(fn))


_KEY_DEPTH = 4  # how deep functions reached through globals and closures are keyed


class FnKey:
    """A callable's cache key and the objects it names by identity.

    ``key`` is a nested tuple of ints (object ids) and plain values: cheap to hash and
    compare on every call. An id alone could be reused by a new object once the old one
    is freed (a freed lambda's address is often the next lambda's), so whatever stores
    ``key`` also stores ``held``, which keeps those objects alive for as long as the
    key is stored: while it is, no other live object can have their ids.
    """

    __slots__ = ("held", "key")

    def __init__(self, key, held: list):
        self.key = key
        self.held = held


def fn_key(fn: Callable) -> FnKey:
    """The key of a callable, equal for equivalent callables (a lambda re-created in a loop).

    Closure cells, the globals the code names and the defaults are part of the key, by
    identity; a plain function found among them is keyed the same way (to a few levels),
    so ``lambda x: f(x)`` does not reuse a program after ``f``'s own globals changed.
    """
    held: list = []
    return FnKey(_key(fn, 0, held), held)


def _ident(obj, held: list) -> int:
    held.append(obj)
    return id(obj)


_FUNCTION = types.FunctionType


def _key(fn: Callable, depth: int, held: list) -> Any:
    # On every call of every transform: list comprehensions and bulk appends, which cost
    # about half of generator expressions and a helper call per value.
    t = type(fn)
    if t is _FUNCTION:
        code = fn.__code__
        g = fn.__globals__
        values = [g[n] for n in _global_names(code) if n in g]
        if fn.__closure__:
            values[:0] = _cell_values(fn.__closure__)
        defaults, kwdefaults = fn.__defaults__, fn.__kwdefaults__
        held += values
        held += (code, defaults, kwdefaults)
        if depth < _KEY_DEPTH:
            parts = tuple([_key(v, depth + 1, held) if type(v) is _FUNCTION else id(v) for v in values])
        else:
            parts = tuple(map(id, values))
        return (0, id(code), parts, id(defaults), id(kwdefaults))
    if isinstance(fn, Transform):
        return (1, t, _key(fn.fn, depth, held), fn.config_key())
    if t is functools.partial:
        return (2, _key(fn.func, depth, held), tuple(_ident(a, held) for a in fn.args),
                tuple((k, _ident(v, held)) for k, v in sorted(fn.keywords.items())))  # fmt: skip
    if t is types.MethodType:
        return (3, _ident(fn.__self__, held), _key(fn.__func__, depth, held))
    return (4, _ident(fn, held))


def _cell_values(closure: tuple) -> list:
    try:
        return [c.cell_contents for c in closure]
    except ValueError:  # an empty cell (a name bound later): the cell itself stands in
        return [_cell_value(c) for c in closure]


def _cell_value(cell) -> Any:
    try:
        return cell.cell_contents
    except ValueError:
        return cell


_GLOBAL_NAMES: dict[int, tuple] = {}  # id(code) -> (code, names); the code is held so that its id stays its own


def _global_names(code: types.CodeType) -> tuple[str, ...]:
    """The names a code object and the functions nested in it may read as globals."""
    hit = _GLOBAL_NAMES.get(id(code))
    if hit is not None and hit[0] is code:
        return hit[1]
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += _global_names(const)
    names = tuple(dict.fromkeys(names))
    if len(_GLOBAL_NAMES) > 8192:
        _GLOBAL_NAMES.clear()
    _GLOBAL_NAMES[id(code)] = (code, names)
    return names


class _LRU:
    def __init__(self, size: int):
        self.size = size
        self.data: collections.OrderedDict = collections.OrderedDict()

    def get(self, key):
        hit = self.data.get(key)
        if hit is not None:
            self.data.move_to_end(key)
        return hit

    def put(self, key, value) -> None:
        self.data[key] = value
        if len(self.data) > self.size:
            self.data.popitem(last=False)

    def get_or_create(self, key, factory):
        hit = self.get(key)
        if hit is None:
            hit = factory()
            self.put(key, hit)
        return hit

    def clear(self) -> None:
        self.data.clear()


_COMPILED = _LRU(512)  # FnKey.key -> Compiled, which holds the FnKey's objects
caches.register("transforms.compiled", _COMPILED.clear)
caches.register("transforms.global_names", _GLOBAL_NAMES.clear)


def clear_cache() -> None:
    """Empty every cache of torchjax, compiled programs among them (all are rebuilt when next needed)."""
    caches.clear_all()


def unwrap_tree(tree):
    """JaxTensors (and plain tensors met inside a capture) -> their arrays."""
    return pytree.tree_map(array_of, tree)


def wrap_tree(tree):
    return pytree.tree_map(lambda x: JaxTensor(x) if is_array(x) else x, tree)


def prefix_error(exc: Exception, prefix: str) -> Exception:
    """The same exception class, its message starting with the call as the user wrote it."""
    msg = str(exc.args[0]) if exc.args else str(exc)
    if msg.startswith(prefix.split("(")[0] + "("):
        return exc
    new = type(exc)(f"{prefix}: {msg}")
    new.__cause__ = exc.__cause__
    return new


@dataclasses.dataclass(frozen=True, eq=False)
class Settings:
    """What a transform was created with besides the function (subclasses add the fields).

    Fields hold the values as the user passed them: torch.func reads a list or dict among
    them (vmap's ``in_dims``) when the transform is called, so a change made to one
    afterwards is seen. ``key`` is the settings' part of the transform's cache key: their
    frozen form, a plain tuple (hashed and compared at C speed on every call) that tells
    apart what torch tells apart (a list from a tuple, False from 0); None while a list or
    dict among them could still change, and :meth:`frozen` then freezes them as they are.
    """

    def __post_init__(self):
        values = tuple(self.__dict__.values())  # the fields, in order: nothing else is set yet
        types = tuple(map(type, values))
        if _ATOMS.issuperset(types):  # the common case, frozen cheaply (as _freeze would)
            key = (type(self), ("tuple", values, types))
        else:
            try:
                key = (type(self), _freeze(values, strict=True))
            except _Changeable:
                key = None
        self.__dict__["key"] = key  # past the frozen __setattr__: derived from the fields, not one

    def frozen(self) -> tuple:
        """``key``, or while it is None, the settings frozen as they are now."""
        if self.key is not None:
            return self.key
        return (type(self), _freeze(tuple(getattr(self, name) for name in self.__dataclass_fields__)))

    def __eq__(self, other) -> bool:
        return isinstance(other, Settings) and self.frozen() == other.frozen()

    def __hash__(self) -> int:
        return hash(self.frozen())


_ATOMS = frozenset({int, bool, float, str, type(None)})


class _Changeable(Exception):
    """A list or dict met by ``_freeze(strict=True)``: its contents could still change."""


def _freeze(x, strict: bool = False):
    """``x`` as a hashable value that tells apart what torch tells apart (a list from a tuple, False from 0)."""
    t = type(x)
    if t is tuple:
        types = tuple(map(type, x))
        if _ATOMS.issuperset(types):  # the common case, frozen cheaply
            return ("tuple", x, types)
    elif t in _ATOMS:
        return (t, x)
    if isinstance(x, (list, dict)) and strict:
        raise _Changeable
    if isinstance(x, (list, tuple)):
        return (t.__name__, tuple([_freeze(v, strict) for v in x]))
    if isinstance(x, dict):  # in insertion order, which torch's pytree keeps
        return ("dict", tuple([(_freeze(k, strict), _freeze(v, strict)) for k, v in x.items()]))
    try:
        hash(x)
    except TypeError:  # a wrong setting (argnums={0}): the call rejects it as torch.func does
        return ("unhashable", t.__name__, repr(x))
    return (t, x)


class Transform:
    """Base of the torch.func-style transform objects."""

    api = "transform"
    # Reverse-mode transforms (grad, vjp, jacrev) turn gradient recording on for their
    # function, as torch.func's do.
    enables_grad = False

    def __init__(self, fn: Callable, settings: Settings):
        if not callable(fn):
            raise TypeError(f"{self.api}: expected a callable, got {type(fn).__name__}")
        self.fn = fn
        self.settings = settings
        if hasattr(fn, "__name__"):
            functools.update_wrapper(self, fn, updated=())

    def config_key(self) -> Any:
        """The transform's part of its cache key: its settings, frozen."""
        key = self.settings.key
        return key if key is not None else self.settings.frozen()

    # ---- subclasses implement these
    def call_repr(self) -> str:
        return f"{self.api}({fn_name(self.fn)})"

    def plan(self, args: tuple, kwargs: dict) -> Any:
        """Validate the call (as torch.func does) and return its hashable static plan."""
        return ()

    def impl(self, ctx: Context, plan: Any, args: tuple, kwargs: dict) -> TraceResult:
        raise NotImplementedError

    def finish(self, out: Any, plan: Any, to_torch_values: bool) -> Any:
        """Post-process the outputs (e.g. wrap residuals into a callable)."""
        return out

    # ---- shared machinery
    def __call__(self, *args, **kwargs):
        if current_context() is not None:
            return self._inner(self.plan(args, kwargs), args, kwargs)
        return self._top(fn_key(self), args, kwargs)

    def _top(self, key: FnKey, args: tuple, kwargs: dict):
        compiled = _COMPILED.get_or_create(key.key, lambda: Compiled(Capture(self.fn), self.call_repr(), key.held))
        call = compiled.prepare(args, kwargs, type(self))
        hot = compiled.hot_entry(call.sig)
        if hot is not None:  # a signature seen before: its plan and executable at once
            plan, entry = hot
            return self.finish(compiled.execute(entry, call), plan, to_torch_values=True)
        plan = compiled.plan_of(call.sig, lambda: self.plan(args, kwargs))
        out = compiled.run(functools.partial(self._body, plan), call, plan_key=plan)
        return self.finish(out, plan, to_torch_values=True)

    def _body(self, plan: Any, ctx: Context, args: tuple, kwargs: dict) -> TraceResult:
        # at top level a transform records gradients whatever the caller's grad mode, as
        # torch.func's do (a no_grad around the call is ignored)
        ctx.torch_func = True
        with torch.inference_mode(False), torch.enable_grad():
            return self.impl(ctx, plan=plan, args=args, kwargs=kwargs)

    def _inner(self, plan, args, kwargs):
        ctx = current_context()
        leaves, spec = pytree.tree_flatten((args, kwargs))
        arr_args, arr_kwargs = unwrap_tree((args, kwargs))
        recording = torch.is_grad_enabled()
        with torch.enable_grad() if self.enables_grad else contextlib.nullcontext():
            res = self.impl(ctx, plan=plan, args=arr_args, kwargs=arr_kwargs)
        out = res.out
        if self.enables_grad and not recording:
            # torch.func: a reverse-mode transform inside no_grad computes its result with
            # gradients on, but the enclosing level does not record that computation
            out = pytree.tree_map(lambda v: stop_reverse(v) if has_tangent_space(v) else v, out)
        for slot, value in res.arg_updates.items():
            target = leaves[slot]
            if isinstance(target, torch.Tensor):
                lift(target).set_value(value)
        return self.finish(wrap_tree(out), plan, to_torch_values=False)


def check_argnums(call: str, argnums, num_args: int) -> tuple[int, ...]:
    """torch.func's argnums validation, with the call as the user wrote it in front."""
    if not isinstance(argnums, (int, tuple)) or isinstance(argnums, bool):
        raise RuntimeError(f"{call}: argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    try:
        if isinstance(argnums, tuple):
            check_unique_non_empty(argnums)
        wrapped = validate_and_wrap_argnums(argnums, num_args)
    except RuntimeError as e:  # the only class torch's validators raise
        raise prefix_error(e, call) from None
    return wrapped if isinstance(wrapped, tuple) else (wrapped,)
