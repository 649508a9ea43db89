"""The dispatcher: every ATen op a capture meets, to its JAX rule.

:func:`handle` is the entry (from ``JaxTensor.__torch_dispatch__`` and
:class:`CaptureMode`): for an op the user's code called it applies torch's gradient
rules (``grad_mode``); :func:`dispatch` then finds how to run the overload: a
tensor-level handler, the rule (``registry``), a view, an in-place or ``out=`` form
derived from the functional rule, a functionalized twin, a registered fallback
(custom ops), torch's decomposition, or :class:`UnsupportedOpError`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

import jax
import jaxlib
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

from . import caches
from ._compat import decomposition_table, disable_current_modes
from .crossing import to_jax_array
from .errors import TracingError, UnsupportedOpError
from .foreach import is_foreach, run_foreach
from .grad_mode import detached_write, has_tangent_space, stop_reverse, untracked_write
from .module_path import module_path
from .registry import lookup, lookup_handler, register_handler, rules_version
from .tensor import JaxTensor, array_of, current_context, lift, route_ops_to

aten = torch.ops.aten
_unwrap = array_of


def _wrap(x):
    if isinstance(x, (jax.Array, jax.core.Tracer)):
        return JaxTensor(x)
    return x


class CaptureMode(TorchDispatchMode):
    """Routes every ATen op (factories included) to torchjax while a capture runs."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return handle(func, args, kwargs or {})


def _library_dirs() -> tuple[str, ...]:
    """The folders of the libraries between the user's code and a traced op."""
    mods = (torch, jax, jaxlib, sys.modules[__name__.rsplit(".", 2)[0]])
    return (*(os.path.dirname(m.__file__) + os.sep for m in mods), contextlib.__file__, functools.__file__)


def _user_frame() -> str:
    """The innermost stack frame that belongs to the user rather than torch/torchjax/jax."""
    libraries = _library_dirs()
    for frame in reversed(traceback.extract_stack()):
        name = frame.filename
        if name.startswith("<frozen") or name.startswith(libraries):
            continue
        return f'File "{name}", line {frame.lineno}, in {frame.name}\n    {frame.line}'
    return "<unknown>"


def _to_python_scalar(func, t) -> Any:
    value = _unwrap(t)
    if isinstance(value, jax.core.Tracer):
        raise TracingError(
            f"torchjax: the traced code needs a tensor's value as a Python "
            f"{'bool' if func is aten.is_nonzero.default else 'number'} "
            f"({func}), which JAX cannot know while it traces.\n"
            f"  at {_user_frame()}\n"
            "Data-dependent Python control flow (`if x.sum() > 0:`, `.item()`, `.tolist()`) "
            "must become tensor code: `torch.where(cond, a, b)` instead of `if`, or keep "
            "the value a tensor. Outside vmap, torchjax.func's differentiation transforms "
            "fall back to torch.func for such functions (with a warning), and "
            "torchjax.disable_jit() runs converted code eagerly."
        )
    return value.item()


def _is_view(func) -> bool:
    rets = func._schema.returns
    return bool(rets) and rets[0].alias_info is not None and not rets[0].alias_info.is_write


def _functional_of(func):
    """The functional overload an in-place (``add_``) or ``out=`` overload computes."""
    schema = func._schema
    name = func._overloadpacket.__name__
    if any(a.is_out for a in schema.arguments):
        packet = func._overloadpacket
        wanted = [a.name for a in schema.arguments if not a.is_out]
        for ov in packet.overloads():
            cand = getattr(packet, ov)
            if cand._schema.is_mutable:
                continue
            if [a.name for a in cand._schema.arguments] == wanted:
                return cand
        return None
    if name.endswith("_"):
        packet = getattr(aten, name[:-1], None)
        if packet is None:
            return None
        if func._overloadname in packet.overloads():
            cand = getattr(packet, func._overloadname)
            if not cand._schema.is_mutable:
                return cand
        # e.g. bernoulli_.float computes bernoulli.p: match on argument names and types
        wanted = [(a.name, str(a.type)) for a in schema.arguments]
        inplace_view = torch.Tag.inplace_view in func.tags
        for ov in packet.overloads():
            cand = getattr(packet, ov)
            if cand._schema.is_mutable or (_is_view(cand) and not inplace_view):
                continue
            if [(a.name, str(a.type)) for a in cand._schema.arguments] == wanted:
                return cand
    return None


def _functional_twin(func):
    """``aten.<op>_functional``, torch's functionalized form of an op that mutates some of
    its arguments (``rrelu_with_noise`` writes ``noise``, ``_native_batch_norm_legit`` the
    running stats), if it exists and has a rule: it returns the op's outputs followed by
    the new value of each argument the op writes. Also for the in-place form of such an
    op (``rrelu_with_noise_``), whose result is written into ``self`` as well."""
    name = func._overloadpacket.__name__
    inplace = name.endswith("_")
    packet = getattr(aten, name.rstrip("_") + "_functional", None)
    if packet is None or func._overloadname not in packet.overloads():
        return None
    twin = getattr(packet, func._overloadname)
    schema = func._schema
    writes = [a for a in schema.arguments if a.alias_info is not None and a.alias_info.is_write]
    aliased_return = any(r.alias_info is not None for r in schema.returns)
    expected = len(writes) if inplace else len(schema.returns) + len(writes)
    if lookup(twin) is None or aliased_return != inplace or len(twin._schema.returns) != expected:
        return None
    return twin


def _run_functionalized(func, twin, args, kwargs):
    schema = func._schema
    result = dispatch(twin, args, kwargs)
    result = result if isinstance(result, (list, tuple)) else (result,)
    written = [i for i, a in enumerate(schema.arguments) if a.alias_info is not None and a.alias_info.is_write]
    targets = [args[i] if i < len(args) else kwargs.get(schema.arguments[i].name) for i in written]
    inplace = any(r.alias_info is not None for r in schema.returns)
    n_out = 0 if inplace else len(schema.returns)  # in place: self's new value is the first output
    for target, new in zip(targets, result[n_out:]):
        if isinstance(target, torch.Tensor):
            lift(target).set_value(new.value)
    if inplace:
        return targets[0]
    return result[0] if n_out == 1 else tuple(result[:n_out])


_FALLBACKS: list[Callable] = []


def register_fallback(fn: Callable) -> None:
    """Add a handler tried, before torch's decompositions, for an op with no rule: it
    returns the op's result, or ``NotImplemented`` to pass (custom ops use this)."""
    _FALLBACKS.append(fn)


def _decompose(func, args, kwargs):
    for fallback in _FALLBACKS:
        out = fallback(func, args, kwargs)
        if out is not NotImplemented:
            return out

    decomp = decomposition_table.get(func)
    ctx = current_context()
    if decomp is not None:
        if ctx is not None:
            with CaptureMode():
                return decomp(*args, **kwargs)
        return decomp(*args, **kwargs)
    if ctx is not None:
        with CaptureMode():
            out = func.decompose(*args, **kwargs)
    else:
        out = func.decompose(*args, **kwargs)
    return out


def unsupported(func) -> UnsupportedOpError:
    where = module_path()
    where = f"  called in module: {where}\n" if where else ""
    return UnsupportedOpError(
        f"torchjax has no rule for {func._schema.name}.{func._overloadname or 'default'} "
        f"and torch has no decomposition for it.\n  schema: {func._schema}\n{where}"
        "Register a rule (it receives jax.Arrays for the tensor arguments):\n"
        f"    @torchjax.register_op(torch.ops.{func.namespace}.{func._overloadpacket.__name__}"
        f".{func._overloadname})\n"
        f"    def {func._overloadpacket.__name__}(*args, **kwargs):\n"
        "        return <jax.numpy expression>"
    )


@register_handler(aten.lift_fresh.default, aten.lift_fresh_copy.default)
def _lift_fresh(func, args, kwargs):
    (t,) = args
    return t if isinstance(t, JaxTensor) else JaxTensor(to_jax_array(t))


@register_handler(aten._local_scalar_dense.default, aten.is_nonzero.default)
def _scalar(func, args, kwargs):
    out = _to_python_scalar(func, args[0])
    return bool(out) if func is aten.is_nonzero.default else out


@register_handler(aten.detach.default)
def _inner_detach(func, args, kwargs):
    """A detach inside another op (a decomposition): torch's autograd never sees it, so
    it is a plain alias. The user's own detach is :func:`_detach`."""
    t = lift(args[0])
    return t.view_of(lambda v: v, t.value)


@register_handler(aten.set_.source_Tensor)
def _set_source(func, args, kwargs):
    self, src = lift(args[0]), lift(args[1])
    if tuple(self.shape) != tuple(src.shape) or self.dtype != src.dtype:
        raise UnsupportedOpError("torchjax: Tensor.set_ (`t.data = other`) needs the same shape and dtype")
    self.set_value(src.value)
    return self


@register_handler(aten.resize_.default)
def _resize(func, args, kwargs):
    self = lift(args[0])
    if tuple(self.shape) == tuple(args[1]):
        return self
    raise UnsupportedOpError(
        f"torchjax: Tensor.resize_ from {tuple(self.shape)} to {tuple(args[1])} is not supported "
        "(JAX arrays have fixed shapes); create a new tensor instead"
    )


_REINTERPRETING_VIEWS = {aten.view.dtype, aten.view_as_real.default, aten.view_as_complex.default}


def _inplace_view(func, view_op, args, kwargs):
    """``squeeze_``, ``t_``, ``transpose_``...: the tensor itself becomes a view of new shape.

    The tensor keeps its identity and becomes a view of the new shape over the same
    storage.
    """
    target = args[0]
    if not isinstance(target, JaxTensor):
        raise UnsupportedOpError(
            f"torchjax: {func} would change the shape of a tensor captured from outside the "
            "converted function; use the out-of-place form (x = x.squeeze(0)) instead"
        )
    view = dispatch(view_op, args, kwargs)
    # The op's own CPU kernel only rewrites sizes and strides (no data is touched), so
    # running it below the Python key updates the wrapper's metadata in place; C++
    # callers that hold this tensor see the new shape too.
    with torch._C._DisableTorchDispatch():
        func(*args, **kwargs)
    target._storage, target._view_fn = view._storage, view._view_fn
    target._cached, target._cached_version = view._cached, view._cached_version
    return target


class _Depth(threading.local):
    value = 0  # 0: no op running; 1: an op the user's code called; more: ops inside it


_depth = _Depth()


def handle(func, args, kwargs):
    """Run one ATen op, applying torch's gradient rules if the user's code called it.

    Ops reached from inside another op (a decomposition, a functional rewrite, a rule
    calling torch) are invisible to torch's autograd, which records only the op the
    user called: for them, ``detach`` is a plain alias and grad mode is not consulted.
    """
    if _depth.value:
        return dispatch(func, args, kwargs)
    _depth.value = 1
    try:
        return _user_op(func, args, kwargs)
    finally:
        _depth.value = 0


def _user_op(func, args, kwargs):
    if func in _DETACHING:
        return _DETACHING[func](args[0])
    inference = torch.is_inference_mode_enabled()
    recording = torch.is_grad_enabled() and not inference
    written = _written_storages(func, args, kwargs) if func._schema.is_mutable else ()
    out = dispatch(func, args, kwargs)
    for jt, st, before in written:
        after = st.value
        if after is before or not (has_tangent_space(after) or has_tangent_space(before)):
            continue
        if inference or jt._detached:
            st.value = detached_write(before, after)
        elif not recording:
            st.value = untracked_write(before, after)
        else:
            continue
        st.version += 1
    if not recording:
        stop = jax.lax.stop_gradient if inference else stop_reverse
        _stop_outputs(out, args, lambda v: stop(v) if has_tangent_space(v) else v)
    return out


def _written_storages(func, args, kwargs) -> list:
    """(tensor, storage, value before the op) for each tensor argument the op writes."""
    found = []
    for i, a in enumerate(func._schema.arguments):
        if a.alias_info is None or not a.alias_info.is_write:
            continue
        t = args[i] if i < len(args) else kwargs.get(a.name)
        for x in t if isinstance(t, (list, tuple)) else (t,):  # a foreach op writes a list
            if isinstance(x, torch.Tensor):
                jt = lift(x)
                found.append((jt, jt._storage, jt._storage.value))
    return found


def _stop_outputs(out, args, stop) -> None:
    """Stop the gradient of each tensor the op created (not of an argument it returns)."""
    outs = out if isinstance(out, (list, tuple)) else (out,)
    for o in outs:
        if isinstance(o, JaxTensor) and not any(o is a for a in args):
            o.map_read(stop)


def _detach(t) -> JaxTensor:
    """``t.detach()`` / ``t.data``: an alias of ``t`` with no gradient, forward or reverse."""
    base = lift(t)
    out = base.view_of(_stop_gradient, _stop_gradient(base.value))
    out._detached = True
    return out


def _detach_inplace(t) -> torch.Tensor:
    """``t.detach_()``: ``t`` itself stops carrying a gradient."""
    jt = lift(t)
    jt.map_read(_stop_gradient)
    jt._detached = True
    return t


def _stop_gradient(v):
    return jax.lax.stop_gradient(v) if has_tangent_space(v) else v


_DETACHING = {aten.detach.default: _detach, aten.detach_.default: _detach_inplace}


def dispatch(func, args, kwargs):
    """Run ``func`` by the handler chosen for it (once per overload, from its schema)."""
    if _plans_version[0] != rules_version():
        _PLANS.clear()
        _plans_version[0] = rules_version()
    handler = _PLANS.get(func)
    if handler is None:
        handler = _PLANS[func] = _choose(func)
    return handler(func, args, kwargs)


_PLANS: dict[Any, Callable] = {}  # overload -> its handler; emptied when a rule is registered
_plans_version = [-1]
caches.register("dispatch.plans", _PLANS.clear)


def _choose(func) -> Callable:
    """How ``func`` runs: a torch-level handler, its rule (as a view, or writing into its
    ``out=`` or in-place target through its functional form), a functionalized twin, or
    torch's decomposition."""
    special = lookup_handler(func)
    if special is not None:
        return special
    if func.namespace == "profiler":
        return _outside_capture
    rule = lookup(func)
    if _is_view(func):
        return functools.partial(_viewed, rule) if rule is not None else _decomposed
    schema = func._schema
    if rule is not None:
        return functools.partial(_ruled, rule)
    if is_foreach(func):
        return run_foreach
    if not schema.is_mutable:
        return _decomposed
    functional = _functional_of(func)
    if functional is None:
        twin = _functional_twin(func)
        return functools.partial(_functionalized, twin) if twin is not None else _decomposed
    out_names = tuple(a.name for a in schema.arguments if a.is_out)
    if out_names:
        return functools.partial(_into_out, functional, out_names)
    if torch.Tag.inplace_view in func.tags:
        return functools.partial(_inplace_view_of, functional)
    # in-place: the first write-annotated argument is the target
    idx = next(i for i, a in enumerate(schema.arguments) if a.alias_info and a.alias_info.is_write)
    return functools.partial(_in_place, functional, idx)


def _outside_capture(func, args, kwargs):
    """An op on no tensors that only tells torch's profiler where it is (an optimizer's
    ``step`` records one): run by torch itself."""
    with disable_current_modes():
        return func(*args, **kwargs)


def _ruled(rule, func, args, kwargs):
    out = rule(*tree_map(_unwrap, args), **tree_map(_unwrap, kwargs))
    return tree_map(_wrap, out)


def _decomposed(func, args, kwargs):
    out = _decompose(func, args, kwargs)
    if out is NotImplemented:
        raise unsupported(func)
    return out


def _functionalized(twin, func, args, kwargs):
    return _run_functionalized(func, twin, args, kwargs)


def _viewed(rule, func, args, kwargs):
    base = lift(args[0])
    rest = tree_map(_unwrap, args[1:])
    kw = tree_map(_unwrap, kwargs)

    def view_fn(v):
        return rule(v, *rest, **kw)

    out = view_fn(base.value)
    if isinstance(out, (list, tuple)):
        return type(out)(base.view_of(lambda v, i=i: view_fn(v)[i], o) for i, o in enumerate(out))
    return base.view_of(view_fn, out, reinterprets=func in _REINTERPRETING_VIEWS)


def _into_out(functional, out_names, func, args, kwargs):
    targets = [kwargs[n] for n in out_names]
    fkwargs = {k: v for k, v in kwargs.items() if k not in out_names}
    result = dispatch(functional, args, fkwargs)
    results = result if isinstance(result, (list, tuple)) else (result,)
    written = []
    for tgt, res in zip(targets, results):
        tgt_j = lift(tgt)
        if tuple(tgt_j.shape) != tuple(res.shape) and tgt_j.numel() != 0:
            raise UnsupportedOpError(
                f"torchjax: {func} would resize its out= tensor from "
                f"{tuple(tgt_j.shape)} to {tuple(res.shape)}; pass an out= of the result's shape"
            )
        if tuple(tgt_j.shape) != tuple(res.shape):
            raise UnsupportedOpError(f"torchjax: {func}: out= tensor of shape 0 cannot be resized")
        tgt_j.set_value(res.value)
        written.append(tgt)
    return written[0] if len(written) == 1 else tuple(written)


def _inplace_view_of(functional, func, args, kwargs):
    return _inplace_view(func, functional, args, kwargs)


def _in_place(functional, idx, func, args, kwargs):
    target = args[idx]
    if isinstance(target, (list, tuple)):  # a foreach op (``_foreach_add_``): returns nothing
        targets = [lift(t) for t in target]
        for t, r in zip(targets, dispatch(functional, args, kwargs)):
            t.set_value(r.value)
        return None
    target = lift(target)
    result = dispatch(functional, args, kwargs)
    target.set_value(result.value)
    return args[idx]


route_ops_to(handle)
