"""``torch.library.custom_op`` operators inside captured code, with no hand-written rule.

A custom op whose implementation is torch code is traced like any other torch code: its
implementation runs on the captured tensors. If the op has a ``register_autograd``
backward, that backward is its gradient (the op becomes an ``autograd.Function`` with
``setup_context`` and ``backward`` from the registration, see
:mod:`autograd_function`); torch.func itself cannot do this today, so eager autograd is
the reference.

An implementation torchjax cannot trace (NumPy inside, a C extension) raises
``UnsupportedOpError`` naming the op and the two fixes: a rule
(:func:`torchjax.register_op`) or :func:`register_callback`, which runs the op's own
implementation on the host through ``jax.pure_callback`` with output shapes from its
fake (meta) implementation.
"""

from __future__ import annotations

import weakref
from typing import Any

import jax
import numpy as np
import torch
from torch._ops import OpOverload
from torch.utils import _pytree as pytree

from . import dtypes
from ._compat import custom_op_defs, disable_current_modes
from .autograd_function import call_function
from .dispatch import register_fallback
from .errors import UnsupportedOpError
from .tensor import JaxTensor, array_of, current_context

_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # CustomOpDef -> {on host?: Function}
_CALLBACKS: set = set()  # overloads the user asked to run on the host


def _opdef(func):
    if func.namespace in ("aten", "prims"):
        return None
    return custom_op_defs().get(f"{func.namespace}::{func._overloadpacket.__name__}")


def _positional(func, args: tuple, kwargs: dict) -> tuple:
    """The op's arguments in schema order, defaults filled in (as torch's autograd kernel passes them)."""
    out = list(args)
    for a in func._schema.arguments[len(args) :]:
        if a.name in kwargs:
            out.append(kwargs[a.name])
        elif a.has_default_value():
            out.append(a.default_value)
        else:
            raise TypeError(f"{func}: missing argument {a.name!r}")
    return tuple(out)


def _function_for(opdef, impl, on_host: bool):
    """The op as a new-style ``autograd.Function`` whose backward is the registered one."""
    per_impl = _FUNCTIONS.setdefault(opdef, {})
    cls = per_impl.get(on_host)
    if cls is None:
        setup = opdef._setup_context_fn

        def setup_context(ctx, inputs, output):
            if setup is not None:
                setup(ctx=ctx, inputs=inputs, output=output)

        cls = type(
            f"{opdef._name}_autograd",
            (torch.autograd.Function,),
            {
                "forward": staticmethod(impl),
                "setup_context": staticmethod(setup_context),
                "backward": staticmethod(opdef._backward_fn),
                "generate_vmap_rule": True,
            },
        )
        per_impl[on_host] = cls
    return cls


def _run_custom_op(func, args: tuple, kwargs: dict):
    opdef = _opdef(func)
    if opdef is None:
        return NotImplemented
    on_host = func in _CALLBACKS
    impl = _callback_impl(func) if on_host else _traced_impl(func, opdef)
    full = _positional(func, args, kwargs)
    if opdef._backward_fn is not None and current_context() is not None:
        return call_function(_function_for(opdef, impl, on_host), full, {})
    return impl(*full)


def _traced_impl(func, opdef):
    fn = opdef._backend_fns.get("cpu") or opdef._backend_fns.get(None) or opdef._init_fn

    def impl(*args):
        try:
            return fn(*args)
        except UnsupportedOpError:
            raise
        except Exception as e:  # the implementation is not torch code torchjax can trace
            raise UnsupportedOpError(
                f"torchjax cannot trace the implementation of the custom op {func} "
                f"({type(e).__name__}: {e}).\n"
                "Either register a JAX rule for it:\n"
                f"    @torchjax.register_op(torch.ops.{func.namespace}.{func._overloadpacket.__name__}."
                f"{func._overloadname})\n"
                f"    def {func._overloadpacket.__name__}(*args): return <jax.numpy expression>\n"
                "or run its own implementation on the host (output shapes from its register_fake):\n"
                f"    torchjax.register_callback(torch.ops.{func.namespace}.{func._overloadpacket.__name__}"
                f".{func._overloadname})"
            ) from e

    return impl


def _callback_impl(func):
    def impl(*args):
        leaves, spec = pytree.tree_flatten(args)
        tensor_pos = [i for i, x in enumerate(leaves) if isinstance(x, torch.Tensor)]
        metas = list(leaves)
        for i in tensor_pos:
            metas[i] = torch.empty(leaves[i].shape, dtype=leaves[i].dtype, device="meta")
        with disable_current_modes():
            fake_out = func(*pytree.tree_unflatten(metas, spec))
        out_leaves, out_spec = pytree.tree_flatten(fake_out)
        shapes = [jax.ShapeDtypeStruct(tuple(o.shape), dtypes.to_jax_dtype(o.dtype)) for o in out_leaves]

        def host(*arrays):
            real = list(leaves)
            for i, a in zip(tensor_pos, arrays):
                real[i] = torch.from_numpy(np.array(a))
            with disable_current_modes():
                result = func(*pytree.tree_unflatten(real, spec))
            return [np.asarray(r.detach()) for r in pytree.tree_leaves(result)]

        arrays = [array_of(leaves[i]) for i in tensor_pos]
        outs = jax.pure_callback(host, shapes, *arrays, vmap_method="sequential")
        return pytree.tree_unflatten([JaxTensor(o) for o in outs], out_spec)

    return impl


def register_callback(*ops: Any) -> None:
    """Run these custom ops' own (torch) implementations on the host under torchjax.

    For an op torchjax cannot trace (NumPy or a C extension inside): the compiled
    program calls back into Python through ``jax.pure_callback``, with output shapes and
    dtypes from the op's ``register_fake`` implementation. A ``register_autograd``
    backward still gives the gradient. The op runs on the host, one call per sample
    under vmap, and XLA cannot fuse across it.

    Example:
        >>> import numpy as np, torch, torchjax
        >>> @torch.library.custom_op("demo::np_sin", mutates_args=())
        ... def np_sin(x: torch.Tensor) -> torch.Tensor:
        ...     return torch.from_numpy(np.sin(x.numpy()))
        >>> @np_sin.register_fake
        ... def _(x):
        ...     return torch.empty_like(x)
        >>> torchjax.register_callback(torch.ops.demo.np_sin.default)
        >>> torchjax.jit(lambda x: np_sin(x) * 2)(torch.zeros(3))
        tensor([0., 0., 0.])
    """
    for op in ops:
        if not isinstance(op, OpOverload):
            raise TypeError(f"register_callback: expected torch.ops.<ns>.<op>.<overload>, got {op!r}")
        _CALLBACKS.add(op)


register_fallback(_run_custom_op)
