"""``from_jax``: a JAX function as a torch callable that torch autograd differentiates.

Outside a capture, a call crosses the tensor leaves to JAX (zero-copy), runs the jitted
JAX function, and crosses the outputs back. The call is one ``torch.autograd.Function``
over a :class:`_Kernel`, a JAX function of flat arrays. Its backward, forward-mode and
batching rules are calls of the same ``autograd.Function`` over *derived* kernels (the
kernel's ``jax.vjp``, ``jax.jvp`` and ``jax.vmap``), so torch can differentiate and
batch them again: double backward, ``torch.func.hessian``, ``vmap(grad(f))`` all recurse
through the same code.

Inside a capture (``torchjax.jit``, ``torchjax.func.*``) the call is just the JAX
function applied to the traced values: one XLA program, differentiated by JAX itself.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch.utils import _pytree as pytree

from . import caches
from ._compat import is_legacy_batchedtensor, peek_interpreter_stack
from .crossing import array_to_torch, to_jax_array
from .dtypes import to_jax_dtype
from .tensor import JaxTensor, array_of, current_context


def _functorch_active() -> bool:
    """Whether a torch.func transform is running (its backward may be differentiated again)."""
    return peek_interpreter_stack() is not None


def _legacy_batched(tensors) -> bool:
    return any(is_legacy_batchedtensor(t) for t in tensors)


def _inexact(dtype) -> bool:
    """Whether values of ``dtype`` carry gradients (floating or complex)."""
    return jnp.issubdtype(dtype, jnp.inexact)


def _torch_inexact(t: torch.Tensor) -> bool:
    return t.is_floating_point() or t.is_complex()


def _conj(x: jax.Array) -> jax.Array:
    # torch's backward computes the adjoint of the JVP, JAX's vjp its transpose; they
    # differ by a conjugation of the cotangents on both sides (identity for real values).
    return jnp.conj(x) if jnp.iscomplexobj(x) else x


class _Kernel:
    """A JAX function of flat arrays returning a tuple of arrays, and the kernels derived from it.

    ``n_in`` is the number of arrays it takes. Derived kernels are built on first use
    and kept, each with its own ``jax.jit``, so no call compiles twice.
    """

    def __init__(self, fn: Callable[..., tuple], n_in: int, name: str):
        self.fn = fn
        self.n_in = n_in
        self.name = name
        self._jit = jax.jit(fn)
        self._vjp: _Kernel | None = None
        self._jvp: _Kernel | None = None
        self._batched: dict[tuple, _Kernel] = {}
        self._residual_forward: Callable | None = None
        self._residual_backward: Callable | None = None

    def __call__(self, arrays: list) -> tuple:
        with jax.enable_x64(True):
            return self._jit(*arrays)

    def eval_shape(self, specs: list) -> Any:
        with jax.enable_x64(True):
            return self._jit.eval_shape(*specs)

    # ---- residuals kept as JAX arrays (plain eager autograd)
    def forward_with_residuals(self, arrays: list) -> tuple[tuple, Any]:
        """The outputs and the ``jax.vjp`` pullback (a pytree of residual arrays)."""
        if self._residual_forward is None:
            self._residual_forward = jax.jit(functools.partial(_linearized, self.fn))
        with jax.enable_x64(True):
            return self._residual_forward(*arrays)

    def pull(self, pullback: Any, cotangents: list, outs: tuple) -> tuple:
        """Cotangents of the inexact inputs from a pullback and those of the inexact outputs.

        ``outs`` is ``((shape, dtype), ...)`` of every output, the int ones included.
        """
        if self._residual_backward is None:
            self._residual_backward = jax.jit(_pull, static_argnums=2)
        with jax.enable_x64(True):
            return self._residual_backward(pullback, tuple(cotangents), outs)

    # ---- derived kernels
    # A kernel's shapes and dtypes are fixed, so are the counts its derived kernels take.
    def vjp(self, n_cotangents: int) -> _Kernel:
        """``(*primals, *cotangents of inexact outputs) -> cotangents of inexact inputs``."""
        if self._vjp is None:
            fn, n = self.fn, self.n_in

            def vjp(*arrays):
                outs, pullback = _linearized(fn, *arrays[:n])
                return _pull(pullback, arrays[n:], _shapes(outs))

            self._vjp = _Kernel(vjp, n + n_cotangents, f"vjp({self.name})")
        return self._vjp

    def jvp(self, n_tangents: int) -> _Kernel:
        """``(*primals, *tangents of inexact inputs) -> tangents of inexact outputs``."""
        if self._jvp is None:
            fn, n = self.fn, self.n_in

            def jvp(*arrays):
                primals = arrays[:n]
                diff = [i for i, p in enumerate(primals) if _inexact(p.dtype)]
                tangents = [t.astype(primals[i].dtype) for i, t in zip(diff, arrays[n:])]
                outs, out_tangents = jax.jvp(_on_inexact(fn, primals, diff), [primals[i] for i in diff], tangents)
                return tuple(t for o, t in zip(outs, out_tangents) if _inexact(o.dtype))

            self._jvp = _Kernel(jvp, n + n_tangents, f"jvp({self.name})")
        return self._jvp

    def batched(self, in_dims: tuple, size: int) -> _Kernel:
        """The kernel mapped over ``in_dims`` (one per array, ``None`` for unbatched), batch first out."""
        key = (in_dims, size)
        hit = self._batched.get(key)
        if hit is None:
            mapped = jax.vmap(self.fn, in_axes=in_dims, out_axes=0, axis_size=size)
            hit = self._batched[key] = _Kernel(mapped, self.n_in, f"vmap({self.name})")
        return hit


def _on_inexact(fn: Callable, primals, diff: list[int]) -> Callable:
    """``fn`` as a function of its inexact arguments only; the others are held fixed."""

    def of_inexact(*values):
        full = list(primals)
        for i, v in zip(diff, values):
            full[i] = v
        return fn(*full)

    return of_inexact


def _linearized(fn: Callable, *primals) -> tuple[tuple, Any]:
    diff = [i for i, p in enumerate(primals) if _inexact(p.dtype)]
    return jax.vjp(_on_inexact(fn, primals, diff), *[primals[i] for i in diff])


def _shapes(arrays) -> tuple:
    return tuple((tuple(a.shape), np.dtype(a.dtype)) for a in arrays)


def _pull(pullback, cotangents, outs: tuple) -> tuple:
    """Apply a ``jax.vjp`` pullback to torch-convention cotangents of the inexact outputs."""
    cts = iter(cotangents)
    full = []
    for shape, dtype in outs:
        if _inexact(dtype):
            full.append(_conj(jnp.asarray(next(cts)).astype(dtype)))
        else:  # an integer output: JAX wants a float0 zero cotangent
            full.append(np.zeros(shape, jax.dtypes.float0))
    return tuple(_conj(g) for g in pullback(tuple(full)))


class _Residuals:
    """Where ``forward`` leaves the pullback for ``setup_context`` (one call's worth)."""

    __slots__ = ("outs", "pullback")

    def __init__(self):
        self.pullback = None
        self.outs: tuple = ()


class _KernelCall(torch.autograd.Function):
    """A kernel called on torch tensors: ``apply(kernel, residuals, *tensors) -> tuple of tensors``.

    New-style (``setup_context``), with ``vmap`` and ``jvp`` rules, so the torch.func
    transforms accept it. Every rule calls ``apply`` again on a derived kernel, which is
    what lets torch differentiate or batch a rule's result once more.
    """

    @staticmethod
    def forward(kernel: _Kernel, residuals: _Residuals | None, *tensors: torch.Tensor) -> tuple:
        # Crossing copies a tensor that is not dense (transposed, expanded with stride 0):
        # DLPack and XLA take compact buffers only.
        try:
            arrays = [to_jax_array(t) for t in tensors]
        except RuntimeError as exc:
            if _legacy_batched(tensors):
                raise NotImplementedError(
                    f"from_jax({kernel.name}): torch's legacy vmap (torch.autograd.grad(..., "
                    "is_grads_batched=True), torch.autograd.functional.jacobian(..., vectorize=True)) "
                    "cannot batch a JAX function. Use torch.func.jacrev / torch.func.vmap, or "
                    "vectorize=False."
                ) from exc
            raise
        if residuals is None:
            outs = kernel(arrays)
        else:
            outs, residuals.pullback = kernel.forward_with_residuals(arrays)
            residuals.outs = _shapes(outs)
        return tuple(array_to_torch(o) for o in outs)

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: tuple) -> None:
        kernel, residuals, *tensors = inputs
        ctx.kernel = kernel
        ctx.residuals = residuals
        ctx.in_inexact = [_torch_inexact(t) for t in tensors]
        ctx.out_inexact = [_torch_inexact(o) for o in output]
        ctx.mark_non_differentiable(*[o for o, d in zip(output, ctx.out_inexact) if not d])
        ctx.save_for_backward(*tensors)
        ctx.save_for_forward(*tensors)

    @staticmethod
    def backward(ctx, *cotangents: torch.Tensor) -> tuple:
        primals = ctx.saved_tensors  # (also torch's check that no input was written in place)
        cts = [ct for ct, d in zip(cotangents, ctx.out_inexact) if d]
        kernel, residuals = ctx.kernel, ctx.residuals
        if residuals is not None and residuals.pullback is not None and not torch.is_grad_enabled():
            if not _functorch_active() and not _legacy_batched(cts):
                arrays = [to_jax_array(ct) for ct in cts]
                grads = tuple(array_to_torch(g) for g in kernel.pull(residuals.pullback, arrays, residuals.outs))
                return (None, None, *_place(grads, ctx.in_inexact))
        # create_graph=True or a torch.func transform: the backward must itself be differentiable
        grads = _KernelCall.apply(kernel.vjp(len(cts)), None, *primals, *cts)
        return (None, None, *_place(grads, ctx.in_inexact))

    @staticmethod
    def jvp(ctx, _kernel_tangent, _residuals_tangent, *tangents: torch.Tensor | None) -> tuple:
        primals = ctx.saved_tensors
        diff = [torch.zeros_like(p) if t is None else t for p, t, d in zip(primals, tangents, ctx.in_inexact) if d]
        out_tangents = _KernelCall.apply(ctx.kernel.jvp(len(diff)), None, *primals, *diff)
        return _place(out_tangents, ctx.out_inexact)

    @staticmethod
    def vmap(info, in_dims: tuple, kernel: _Kernel, residuals, *tensors: torch.Tensor) -> tuple:
        batched = kernel.batched(tuple(in_dims[2:]), info.batch_size)
        outs = _KernelCall.apply(batched, None, *tensors)
        return outs, (0,) * len(outs)


def _place(values, mask: list[bool]) -> tuple:
    """``values`` at the ``True`` positions of ``mask``, ``None`` elsewhere."""
    it = iter(values)
    return tuple(next(it) if m else None for m in mask)


_MAX_KERNELS = 64  # input signatures kept per from_jax function


class FromJaxFunction:
    """What :func:`from_jax` returns: a torch callable that runs a JAX function."""

    def __init__(self, jax_fn: Callable[..., Any]):
        self.jax_fn = jax_fn
        self.name = getattr(jax_fn, "__qualname__", None) or type(jax_fn).__name__
        self._kernels: collections.OrderedDict[Any, tuple[_Kernel, Any]] = collections.OrderedDict()
        if hasattr(jax_fn, "__name__"):
            functools.update_wrapper(self, jax_fn, updated=())
        caches.register_owner(self)

    def clear_cache(self) -> None:
        """Drop the compiled kernels of this function (they are rebuilt on the next call)."""
        self._kernels.clear()

    def __repr__(self) -> str:
        return f"<from_jax({self.name})>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        leaves, spec = pytree.tree_flatten((args, kwargs))
        if current_context() is not None or any(isinstance(x, JaxTensor) for x in leaves):
            return self._inline(leaves, spec)
        positions = tuple(i for i, x in enumerate(leaves) if isinstance(x, torch.Tensor))
        tensors = [leaves[i] for i in positions]
        for i in positions:  # the kernel holds Python values only, never a tensor
            leaves[i] = None
        kernel, out_tree = self._kernel(spec, leaves, positions, tensors)
        residuals = None
        if torch.is_grad_enabled() and any(t.requires_grad for t in tensors) and not _functorch_active():
            residuals = _Residuals()
        outs = _KernelCall.apply(kernel, residuals, *tensors)
        return jax.tree_util.tree_unflatten(out_tree, outs)

    def _inline(self, leaves: list, spec: Any) -> Any:
        """Inside a capture: the JAX function on the traced values, one program, no crossing."""
        args, kwargs = pytree.tree_unflatten([array_of(x) for x in leaves], spec)
        out_leaves, out_tree = self._flatten_outputs(self.jax_fn(*args, **kwargs))
        return jax.tree_util.tree_unflatten(out_tree, [JaxTensor(x) for x in out_leaves])

    def _kernel(self, spec: Any, static: list, positions: tuple, tensors: list) -> tuple[_Kernel, Any]:
        """The kernel for one input signature; ``static`` holds the non-tensor leaves (``None`` at
        ``positions``, where the tensors go)."""
        avals = tuple((tuple(t.shape), t.dtype) for t in tensors)
        # the type too: 1, 1.0 and True are equal keys but not the same constant to JAX
        key = (spec, tuple((type(x), x) for x in static), positions, avals)
        try:
            hit = self._kernels.get(key)
        except TypeError:
            bad = next(x for x in static if not _hashable(x))
            raise TypeError(
                f"from_jax({self.name}): an argument of type {type(bad).__name__} is neither a tensor nor "
                "hashable; pass tensors (or pytrees of tensors) and hashable Python values"
            ) from None
        if hit is not None:
            self._kernels.move_to_end(key)
            return hit

        traced: dict[str, Any] = {}

        def flat(*arrays):
            full = list(static)
            for i, a in zip(positions, arrays):
                full[i] = a
            args, kwargs = pytree.tree_unflatten(full, spec)
            out_leaves, traced["out_tree"] = self._flatten_outputs(self.jax_fn(*args, **kwargs))
            return tuple(out_leaves)

        kernel = _Kernel(flat, len(positions), self.name)
        # Traces once: the jit call that follows reuses this trace.
        kernel.eval_shape([jax.ShapeDtypeStruct(shape, to_jax_dtype(dtype)) for shape, dtype in avals])
        out_tree = traced["out_tree"]
        self._kernels[key] = (kernel, out_tree)
        if len(self._kernels) > _MAX_KERNELS:
            self._kernels.popitem(last=False)
        return kernel, out_tree

    def _flatten_outputs(self, out: Any) -> tuple[list, Any]:
        out_leaves, out_tree = jax.tree_util.tree_flatten(out)
        for x in out_leaves:
            if not isinstance(x, (jax.Array, jax.core.Tracer)):
                raise TypeError(
                    f"from_jax({self.name}): the JAX function returned a leaf of type {type(x).__name__}; "
                    "it must return jax.Arrays (or pytrees of them). Wrap other values with jnp.asarray."
                )
        return out_leaves, out_tree


def _hashable(x: Any) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


def from_jax(jax_fn: Callable[..., Any]) -> FromJaxFunction:
    """Wrap a JAX function as a torch callable whose gradients flow through torch autograd.

    The callable takes torch tensors (and dicts, lists and tuples of them; other
    arguments are passed as they are and compiled in as constants) and returns torch
    tensors in the structure the JAX function returns. Tensors cross to JAX without a
    copy where their buffer allows it, and dtypes are kept: the JAX function runs with
    ``jax_enable_x64`` on, scoped to the call, so float64 stays float64 and int64 stays
    int64 (write ``jnp.zeros(n, x.dtype)``, not ``jnp.zeros(n)``, to stay in float32).
    It is compiled with ``jax.jit`` once per input structure, shapes and dtypes.

    torch differentiates it with JAX's rules: ``backward()`` runs the compiled
    ``jax.vjp``, keeping the forward's residuals as JAX arrays; ``create_graph=True``
    and ``torch.autograd.gradgradcheck`` work, as do ``torch.func.vmap``, ``grad``,
    ``jvp``, ``jacrev``, ``jacfwd`` and ``hessian`` (through ``jax.vmap``/``jax.jvp``).
    Floating and complex arguments get gradients; integer and bool ones get ``None``.

    Inside torch code that torchjax captures (``torchjax.jit``, ``torchjax.func.*``)
    the callable is the JAX function itself, applied to the traced values: it joins
    the surrounding XLA program and JAX differentiates it.

    Args:
        jax_fn: a function of ``jax.Array``s (and pytrees of them) returning
            ``jax.Array``s (or a pytree of them). It must be traceable by ``jax.jit``.

    Returns:
        A torch callable with ``jax_fn``'s signature over torch tensors.

    Raises:
        TypeError: ``jax_fn`` is not callable; or, when called, it returns a leaf that
            is not a ``jax.Array``.

    Example:
        >>> import jax.numpy as jnp, torch, torchjax
        >>> f = torchjax.from_jax(lambda x, w: jnp.tanh(x @ w).sum())
        >>> x = torch.ones(2, 3, dtype=torch.float64)
        >>> w = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
        >>> loss = f(x, w)
        >>> loss.backward()
        >>> loss.dtype, w.grad.shape, w.grad[0, 0].item()
        (torch.float64, torch.Size([3, 4]), 2.0)
    """
    if not callable(jax_fn):
        raise TypeError(f"from_jax: expected a callable JAX function, got {type(jax_fn).__name__}")
    return FromJaxFunction(jax_fn)
