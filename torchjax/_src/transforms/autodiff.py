"""grad, grad_and_value, vjp, jvp, linearize, jacrev, jacfwd, hessian — executed by JAX."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import torch
from torch.utils import _pytree as pytree

from .. import dtypes
from ..capture import Context, TraceResult, is_array
from ..errors import TracingError
from ..grad_mode import mode_specific_count
from ..tensor import current_context
from .base import _LRU, Child, Packed, Transform, check_argnums, fn_key, fn_name, unwrap_tree, wrap_tree

_PLAIN = (torch.Tensor, torch.nn.Parameter)
_RANDOM_ERROR = (
    "vmap: called random operation while in randomness error mode. Please either use the "
    "'same' or 'different' randomness flags on vmap or perform the randomness operation out of vmap"
)


def _not_float(call: str, leaf: torch.Tensor) -> RuntimeError:
    return RuntimeError(
        f"{call}: only Tensors of floating point dtype can require gradients; got an "
        f"input of dtype {leaf.dtype}. Differentiate with respect to floating point inputs "
        "(x.float()) or move integer inputs out of argnums."
    )


def _check_diff_inputs(call: str, diff_args, forward: bool = False) -> None:
    """torch.func's checks on the inputs it differentiates, in its order.

    Reverse mode (grad, vjp, jacrev) marks one leaf after another as requiring grad;
    jacfwd takes every leaf's ``numel()`` first, then makes each a dual tensor.
    """
    leaves = pytree.tree_leaves(diff_args)
    if forward:
        for leaf in leaves:
            if not isinstance(leaf, torch.Tensor):
                raise AttributeError(
                    f"{call}: '{type(leaf).__name__}' object has no attribute 'numel': every input "
                    f"that is differentiated must be a Tensor, got {type(leaf)}. Pass non-tensor "
                    "arguments outside argnums (or through a closure)."
                )
        for leaf in leaves:
            if not (leaf.is_floating_point() or leaf.is_complex()):
                raise ValueError(f"{call}: Expected primal to be floating point or complex, but got: {leaf.dtype}")
        return
    for leaf in leaves:
        if not isinstance(leaf, torch.Tensor):
            raise ValueError(
                f"{call}: Thing passed to transform API must be Tensor, got {type(leaf)}. Pass "
                "non-tensor arguments outside argnums (or through a closure or functools.partial)."
            )
        if not (leaf.is_floating_point() or leaf.is_complex()):
            raise _not_float(call, leaf)


def _check_real(call: str, tree, what: str) -> None:
    """jacrev and jacfwd take no complex inputs or outputs (``what``), as in torch.func."""
    for idx, leaf in enumerate(pytree.tree_leaves(tree)):
        if (isinstance(leaf, torch.Tensor) and leaf.is_complex()) or (
            is_array(leaf) and jnp.issubdtype(leaf.dtype, jnp.complexfloating)
        ):
            raise RuntimeError(
                f"{call}: Expected all {what} to be real but received complex tensor at flattened "
                f"input idx: {idx}. Differentiate the real and imaginary parts separately "
                "(torch.view_as_real), or use vjp/jvp."
            )


def _split_aux(out, has_aux: bool, call: str):
    """``(output, aux)`` of a has_aux function, checked as torch.func checks it."""
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise RuntimeError(f"{call}: output of function f should be a tuple: (output, aux) if has_aux is True")
    return out


def _check_aux(call: str, aux, has_aux: bool) -> None:
    if not has_aux:
        return
    for leaf in pytree.tree_leaves(aux):
        if not is_array(leaf):
            raise RuntimeError(
                f"{call}: Expected tensors, got unsupported type {type(leaf)} in aux. With "
                "has_aux=True every leaf of aux must be a Tensor; return other values some other way."
            )


def _check_outputs(call: str, leaves: list, outputs: str) -> None:
    """The outputs of a function vjp, jvp, jacrev or jacfwd differentiates, as torch.func
    checks them: ``outputs`` is ``"tensors"`` (forward mode), ``"inexact"`` (reverse mode:
    floating point or complex tensors) or ``"any"`` (linearize passes other values through)."""
    if outputs == "any":
        return
    if not leaves or (len(leaves) == 1 and leaves[0] is None):
        raise RuntimeError(f"{call}: Expected f to be a function that has non-empty output (got output = {leaves})")
    for leaf in leaves:
        if not is_array(leaf):
            raise RuntimeError(
                f"{call}: expected f(*primals) to return only tensors, got unsupported type {type(leaf)}"
            )
    if outputs == "inexact":
        for leaf in leaves:
            if not jnp.issubdtype(leaf.dtype, jnp.inexact):
                raise RuntimeError(
                    f"{call}: All outputs of f must be floating-point or complex Tensors, got Tensor "
                    f"with dtype {dtypes.to_torch_dtype(leaf.dtype)}"
                )


def _argnums_key(argnums) -> Any:
    """argnums as part of a cache key: a wrong, unhashable one (a list) is rejected at the call, as torch does."""
    try:
        hash(argnums)
    except TypeError:
        return repr(argnums)
    return argnums


def _flat_body(child: Child, packs: list, kwargs: dict, has_aux: bool, call: str, rec: dict, outputs: str):
    """The user's function over flat array lists, one per positional argument, for jax.vjp/jvp.

    Returns ``(output arrays, (aux arrays, side effects))``; ``rec`` receives the packing of
    the output and aux, to rebuild their torch structure afterwards.
    """

    def g(*flat):
        out, side = child.run(tuple(p.unpack(x) for p, x in zip(packs, flat)), kwargs)
        out, aux = _split_aux(out, has_aux, call)
        _check_aux(call, aux, has_aux)
        _check_outputs(call, pytree.tree_leaves(out), outputs)
        rec["out"], rec["aux"] = Packed(out), Packed(aux)
        return Packed.arrays(out), (Packed.arrays(aux), side)

    return g


def _replace(args: tuple, argnums: tuple[int, ...], values) -> tuple:
    a = list(args)
    for i, v in zip(argnums, values):
        a[i] = v
    return tuple(a)


class _Differentiating(Transform):
    """Differentiation transforms fall back to torch.func on data-dependent Python control flow."""

    _eager_fallback: dict = {}  # FnKey.key -> FnKey.held (keeps the ids in the key valid)

    def torch_func_equivalent(self) -> Callable:
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        if current_context() is not None:
            return self._inner(self.plan(args, kwargs), args, kwargs)
        key = fn_key(self)
        if _Differentiating._eager_fallback and key.key in _Differentiating._eager_fallback:
            return self.torch_func_equivalent()(*args, **kwargs)
        try:
            return self._top(key, args, kwargs)
        except TracingError as e:
            warnings.warn(
                f"{self.call_repr()}: the function uses a tensor's value in Python control flow, "
                f"which JAX cannot trace; running it with torch.func instead (eager, not XLA).\n{e}",
                RuntimeWarning,
                stacklevel=2,
            )
            _Differentiating._eager_fallback[key.key] = key.held
            return self.torch_func_equivalent()(*args, **kwargs)


class GradAndValue(_Differentiating):
    api = "grad_and_value"
    enables_grad = True

    def __init__(self, fn: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False):
        super().__init__(fn)
        self.argnums = argnums
        self._argnums_key = _argnums_key(argnums)
        self.has_aux = has_aux

    def config_key(self):
        return (self._argnums_key, self.has_aux)

    def call_repr(self):
        return f"{self.api}({fn_name(self.fn)}, argnums={self.argnums})(<inputs>)"

    def torch_func_equivalent(self):
        f = torch.func.grad_and_value if self.api == "grad_and_value" else torch.func.grad
        return f(self.fn, argnums=self.argnums, has_aux=self.has_aux)

    def plan(self, args, kwargs):
        n = self.argnums
        if type(n) is int and -len(args) <= n < len(args) and type(args[n]) in _PLAIN:
            if args[n].is_floating_point() or args[n].is_complex():  # the common case, checked cheaply
                return (n % len(args),)
        call = self.call_repr()
        argnums = check_argnums(self.api, call, self.argnums, len(args))
        _check_diff_inputs(call, [args[i] for i in argnums])
        return argnums

    def impl(self, ctx: Context, plan, args, kwargs) -> TraceResult:
        argnums = plan
        child = Child(self.fn, ctx)
        has_aux = self.has_aux
        call = self.call_repr()
        packs = [Packed(args[i]) for i in argnums]
        rec: dict = {}

        def g(*diff):
            trees = [p.unpack(d) for p, d in zip(packs, diff)]
            out, side = child.run(_replace(args, argnums, trees), kwargs)
            out, aux = _split_aux(out, has_aux, call)
            if not is_array(out):
                raise RuntimeError(f"{call}: Expected f(*args) to return a Tensor, got {type(out)}")
            if out.ndim != 0:
                raise RuntimeError(
                    f"{call}: Expected f(*args) to return a scalar Tensor, got tensor with {out.ndim} "
                    "dims. Maybe you wanted to use the vjp or jacrev APIs instead?"
                )
            _check_aux(call, aux, has_aux)  # after the output, as torch.func checks it
            value = out
            if not jnp.issubdtype(out.dtype, jnp.inexact):
                out = out.astype(jnp.float32)  # integer outputs have zero gradient, as in torch
            rec["aux"] = Packed(aux)
            return out, (value, Packed.arrays(aux), side)

        grads, (value, aux_arrays, side) = jax.grad(g, argnums=tuple(range(len(packs))), has_aux=True)(
            *[Packed.arrays(args[i]) for i in argnums]
        )
        updates = child.apply_side(side)
        grads = tuple(p.unpack(gr) for p, gr in zip(packs, grads))
        if isinstance(self.argnums, int):
            grads = grads[0]
        result = self.assemble(grads, value, rec["aux"].unpack(aux_arrays))
        return TraceResult(result, updates)

    def assemble(self, grads, value, aux):
        return (grads, (value, aux)) if self.has_aux else (grads, value)


class Grad(GradAndValue):
    api = "grad"

    def assemble(self, grads, value, aux):
        return (grads, aux) if self.has_aux else grads


def grad(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """``torch.func.grad``, executed by JAX: the gradient of a scalar function.

    Example:
        >>> import torch, torchjax.func as func
        >>> func.grad(lambda x: (x ** 2).sum())(torch.tensor([1.0, 2.0]))
        tensor([2., 4.])
    """
    return Grad(func, argnums, has_aux)


def grad_and_value(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """``torch.func.grad_and_value``: the gradient and the value, in one JAX pass.

    Example:
        >>> import torch, torchjax.func as func
        >>> g, v = func.grad_and_value(lambda x: (x ** 2).sum())(torch.tensor([1.0, 2.0]))
        >>> g, v
        (tensor([2., 4.]), tensor(5.))
    """
    return GradAndValue(func, argnums, has_aux)


# --------------------------------------------------------------------------- residual functions


class _ResidualFn:
    """A function of cotangents closed over the residuals of a ``vjp``.

    Called at top level, it runs a cached ``jax.jit`` of the pullback on the residuals
    (torch tensors, zero-copy views of JAX buffers). Called inside a capture
    (``vmap(vjp_fn)``, ``grad`` of it), the pullback joins the enclosing trace: the
    residuals enter as values of that trace (a torch tensor as a captured input, read
    afresh), the cotangents as they come (batched tracers under vmap).
    """

    _jitted = _LRU(256)  # the jitted pullbacks, one per traced function

    def __init__(self, api: str, treedef, residuals: list, out_pack, primal_packs, out_avals):
        self.api = api
        self.treedef = treedef
        self.residuals = residuals
        self.out_pack = out_pack
        self.primal_packs = primal_packs
        self.out_avals = out_avals

    def _check(self, cts):
        _, spec = pytree.tree_flatten(cts)
        if spec != self.out_pack.spec:
            raise RuntimeError(
                f"{self.api}: Expected pytree structure of cotangents to be the same as pytree "
                f"structure of outputs to the function. cotangents: {spec}, primal output: {self.out_pack.spec}"
            )

    def _conform(self, cts: list) -> list:
        """Shapes must match the outputs; dtypes are cast to the outputs' as torch does;
        ``None`` stands for ones for a scalar output, as in ``torch.autograd.grad``."""
        fixed = []
        for i, (ct, (shape, dtype)) in enumerate(zip(cts, self.out_avals)):
            if ct is None:
                if shape != ():
                    raise RuntimeError(
                        f"{self.api}: grad can be implicitly created only for scalar outputs; "
                        f"output[{i}] has a shape of {torch.Size(shape)}, pass a cotangent for it"
                    )
                fixed.append(jnp.ones((), dtype))
                continue
            if not (isinstance(ct, torch.Tensor) or is_array(ct)):
                raise TypeError(f"{self.api}: gradients can be either Tensors or None, but got {type(ct).__name__}")
            if tuple(ct.shape) != shape:
                raise RuntimeError(
                    f"{self.api}: Mismatch in shape: grad_output[{i}] has a shape of "
                    f"{torch.Size(ct.shape)} and output[{i}] has a shape of {torch.Size(shape)}."
                )
            fixed.append(ct.to(dtypes.to_torch_dtype(dtype)) if isinstance(ct, torch.Tensor) else ct.astype(dtype))
        return fixed

    def apply(self, cts) -> tuple:
        cts = pytree.tree_leaves(cts)
        if current_context() is not None:
            fn = jax.tree_util.tree_unflatten(self.treedef, unwrap_tree(self.residuals))
            grads = fn(self._conform(unwrap_tree(cts)))
            return wrap_tree(tuple(p.unpack(gr) for p, gr in zip(self.primal_packs, grads)))
        from ..crossing import to_jax_array, to_torch

        treedef = self.treedef
        jitted = _ResidualFn._jitted.get_or_create(
            treedef, lambda: jax.jit(lambda res, ct: jax.tree_util.tree_unflatten(treedef, res)(ct))
        )
        with jax.enable_x64(True):
            grads = jitted(to_jax_array(self.residuals), to_jax_array(self._conform(cts)))
        return to_torch(tuple(p.unpack(list(gr)) for p, gr in zip(self.primal_packs, grads)))


def _split_residuals(fn) -> tuple[Any, list]:
    leaves, treedef = jax.tree_util.tree_flatten(fn)
    return treedef, leaves


class Vjp(_Differentiating):
    api = "vjp"
    enables_grad = True

    def __init__(self, fn, has_aux: bool):
        super().__init__(fn)
        self.has_aux = has_aux

    def config_key(self):
        return (self.has_aux,)

    def call_repr(self):
        return f"vjp({fn_name(self.fn)}, *primals)"

    def torch_func_equivalent(self):
        return lambda *primals: torch.func.vjp(self.fn, *primals, has_aux=self.has_aux)

    def plan(self, args, kwargs):
        _check_diff_inputs(self.call_repr(), args)
        return len(args)

    def impl(self, ctx, plan, args, kwargs):
        child = Child(self.fn, ctx)
        packs = [Packed(a) for a in args]
        rec: dict = {}
        g = _flat_body(child, packs, kwargs, self.has_aux, self.call_repr(), rec, outputs="inexact")

        out, pullback, (aux, side) = jax.vjp(g, *[Packed.arrays(a) for a in args], has_aux=True)
        updates = child.apply_side(side)
        treedef, residuals = _split_residuals(pullback)
        avals = tuple((tuple(x.shape), x.dtype) for x in out)
        meta = (treedef, rec["out"], tuple(packs), avals)
        return TraceResult((rec["out"].unpack(out), residuals, rec["aux"].unpack(aux), meta), updates)

    def finish(self, out, plan, to_torch_values):
        primal_out, residuals, aux, (treedef, out_pack, primal_packs, avals) = out
        rfn = _ResidualFn("vjp", treedef, residuals, out_pack, primal_packs, avals)

        def vjp_fn(cotangents, *, retain_graph=None, create_graph=None):
            rfn._check(cotangents)
            return rfn.apply(cotangents)

        return (primal_out, vjp_fn, aux) if self.has_aux else (primal_out, vjp_fn)


def vjp(func: Callable, *primals: Any, has_aux: bool = False):
    """``torch.func.vjp``: the output and a function mapping cotangents to input gradients.

    Example:
        >>> import torch, torchjax.func as func
        >>> out, vjp_fn = func.vjp(torch.sin, torch.zeros(2))
        >>> vjp_fn(torch.ones(2))
        (tensor([1., 1.]),)
    """
    return Vjp(func, has_aux)(*primals)


class Jvp(_Differentiating):
    api = "jvp"
    outputs = "tensors"  # what the function must return (see _check_outputs)

    def __init__(self, fn, has_aux: bool, strict: bool):
        super().__init__(fn)
        self.has_aux = has_aux
        self.strict = strict

    def config_key(self):
        return (self.has_aux,)

    def call_repr(self):
        return f"jvp({fn_name(self.fn)}, primals, tangents)"

    def torch_func_equivalent(self):
        return lambda primals, tangents: torch.func.jvp(self.fn, primals, tangents, has_aux=self.has_aux)

    def plan(self, args, kwargs):
        """torch.func's checks, in its order; torch.func names the call ``jvp(f, primals, tangents)``."""
        call = self.call_repr()
        primals, tangents = args
        if not isinstance(primals, tuple):
            raise RuntimeError(f"{call}: Expected primals to be a tuple. E.g. it should be valid to call f(*primals).")
        p_leaves, p_spec = pytree.tree_flatten(primals)
        t_leaves, t_spec = pytree.tree_flatten(tangents)
        if p_spec != t_spec:
            raise RuntimeError(
                f"{call}: Expected primals and tangents to have the same python structure. For "
                f"example, if primals is a tuple of 3 tensors, tangents also must be. Got primals "
                f"with structure {p_spec} and tangents with structure {t_spec}"
            )
        for leaves, name in ((p_leaves, "primals"), (t_leaves, "tangents")):
            if not leaves:
                raise RuntimeError(f"{call}: Expected {name} to contain at least one Tensor.")
            for leaf in leaves:
                if not isinstance(leaf, torch.Tensor):
                    raise RuntimeError(
                        f"{call}: Expected {name} to only contain Tensors, got {type(leaf)}. Pass "
                        "non-tensor arguments through a closure or functools.partial."
                    )
        for p, t in zip(p_leaves, t_leaves):
            for x, name in ((p, "primal"), (t, "tangent")):
                if not (x.is_floating_point() or x.is_complex()):
                    raise ValueError(f"{call}: Expected {name} to be floating point or complex, but got: {x.dtype}")
            if p.shape != t.shape:
                raise RuntimeError(
                    f"{call}: Trying to set a forward gradient that has a different size than that of "
                    f"the original Tensor, this is not supported. Tensor is of size {list(p.shape)} "
                    f"while the given forward gradient is of size {list(t.shape)}."
                )
        return ()

    def impl(self, ctx, plan, args, kwargs):
        primals, tangents = args
        child = Child(self.fn, ctx)
        packs = [Packed(p) for p in primals]
        rec: dict = {}
        g = _flat_body(child, packs, kwargs, self.has_aux, self.call_repr(), rec, self.outputs)

        flat_p = [Packed.arrays(p) for p in primals]
        flat_t = [[t.astype(x.dtype) for t, x in zip(Packed.arrays(tt), fp)] for tt, fp in zip(tangents, flat_p)]
        out, tangent_out, (aux, side) = jax.jvp(g, flat_p, flat_t, has_aux=True)
        # an integer output's tangent is JAX's float0; torch.func gives zeros of the output's dtype
        tangent_out = [jnp.zeros_like(o) if t.dtype == jax.dtypes.float0 else t for o, t in zip(out, tangent_out)]
        updates = child.apply_side(side)
        out, tangent_out = rec["out"].unpack(out), rec["out"].unpack(tangent_out)
        result = (out, tangent_out, rec["aux"].unpack(aux)) if self.has_aux else (out, tangent_out)
        return TraceResult(result, updates)


def jvp(func: Callable, primals: Any, tangents: Any, *, strict: bool = False, has_aux: bool = False):
    """``torch.func.jvp``: the output and the Jacobian-vector product, forward mode.

    Example:
        >>> import torch, torchjax.func as func
        >>> func.jvp(torch.sin, (torch.zeros(2),), (torch.ones(2),))
        (tensor([0., 0.]), tensor([1., 1.]))
    """
    return Jvp(func, has_aux, strict)(primals, tangents)


class _LinearizedJvp(Jvp):
    """The jvp behind ``linearize``, whose outputs may hold non-tensors (passed through), as in torch.func."""

    outputs = "any"


def linearize(func: Callable, *primals: Any):
    """``torch.func.linearize``: the output and a cached jvp function at ``primals``.

    Example:
        >>> import torch, torchjax.func as func
        >>> out, jvp_fn = func.linearize(torch.sin, torch.zeros(2))
        >>> jvp_fn(torch.ones(2))
        tensor([1., 1.])
    """
    saved = primals
    call = f"linearize({fn_name(func)}, *primals)"
    flat_primals, p_spec = pytree.tree_flatten(saved)
    for p in flat_primals:  # torch.func makes a tangent with p.new_empty for each, then a dual tensor
        if not isinstance(p, torch.Tensor):
            raise AttributeError(
                f"{call}: '{type(p).__name__}' object has no attribute 'new_empty': every primal must "
                f"be a Tensor, got {type(p)}. Pass non-tensor arguments through a closure or functools.partial."
            )
    for p in flat_primals:
        if not (p.is_floating_point() or p.is_complex()):
            raise ValueError(f"{call}: Expected primal to be floating point or complex, but got: {p.dtype}")
    jvp_t = _LinearizedJvp(func, False, False)
    out, _ = jvp_t(saved, tuple(pytree.tree_map(torch.zeros_like, saved)))

    def jvp_fn(*tangents):
        flat_tangents, t_spec = pytree.tree_flatten(tangents)
        if t_spec != p_spec:
            raise RuntimeError(
                f"{call}(*tangents): Expected the tangents to have the same structure as the "
                f"primals, got {t_spec} and {p_spec}"
            )
        for idx, (p, t) in enumerate(zip(flat_primals, flat_tangents)):
            for what in ("shape", "dtype"):
                if getattr(t, what) != getattr(p, what):
                    raise RuntimeError(
                        f"{call}(*tangents): tangent:{idx} with {what} {getattr(t, what)} in flattened "
                        f"pytree doesn't match the {what} {getattr(p, what)} of the corresponding primal."
                    )
        return jvp_t(saved, tangents)[1]

    return out, jvp_fn


# --------------------------------------------------------------------------- jacobians


class _Jacobian(_Differentiating):
    jax_fn: Callable = jax.jacrev

    def __init__(self, fn, argnums=0, has_aux=False, chunk_size=None, randomness="error"):
        super().__init__(fn)
        if chunk_size is not None and chunk_size <= 0:
            raise ValueError(f"{self.api}: `chunk_size` should be greater than 0.")
        if randomness not in ("error", "different", "same"):
            raise RuntimeError(
                f"Only allowed values for randomness are 'error', 'different', or 'same'. Got {randomness}"
            )
        self.argnums = argnums
        self._argnums_key = _argnums_key(argnums)
        self.has_aux = has_aux
        self.chunk_size = chunk_size
        self.randomness = randomness

    def config_key(self):
        return (self._argnums_key, self.has_aux, self.randomness)

    def call_repr(self):
        return f"{self.api}({fn_name(self.fn)}, argnums={self.argnums})(<inputs>)"

    def torch_func_equivalent(self):
        f = getattr(torch.func, self.api)
        return f(self.fn, argnums=self.argnums, has_aux=self.has_aux)

    def plan(self, args, kwargs):
        call = self.call_repr()
        _check_real(call, args, "inputs")
        argnums = check_argnums(self.api, call, self.argnums, len(args))
        _check_diff_inputs(call, [args[i] for i in argnums], forward=self.api == "jacfwd")
        return argnums

    def impl(self, ctx, plan, args, kwargs):
        argnums = plan
        rng_error = None
        if self.api == "jacfwd" and self.randomness == "error":
            rng_error = f"{self.call_repr()}: {_RANDOM_ERROR}"
        child = Child(self.fn, ctx, rng_error=rng_error)
        has_aux = self.has_aux
        outputs = "inexact" if self.api == "jacrev" else "tensors"
        call = self.call_repr()
        packs = [Packed(args[i]) for i in argnums]
        rec: dict = {}

        def g(*diff):
            trees = [p.unpack(d) for p, d in zip(packs, diff)]
            out, side = child.run(_replace(args, argnums, trees), kwargs)
            out, aux = _split_aux(out, has_aux, call)
            _check_aux(call, aux, has_aux)
            _check_outputs(call, pytree.tree_leaves(out), outputs)
            _check_real(call, out, "outputs")
            rec["out"], rec["aux"] = Packed(out), Packed(aux)
            return Packed.arrays(out), (Packed.arrays(aux), side)

        flat_args = [Packed.arrays(args[i]) for i in argnums]
        # randomness='different' asks for a fresh draw per forward-mode pass: that mode stays
        jac, (aux, side) = _jacobian(type(self).jax_fn, g, flat_args, may_switch=self.randomness != "different")
        updates = child.apply_side(side)
        per_output = []
        for per_arg in jac:  # one entry per output leaf, each a tuple over argnums
            trees = tuple(p.unpack(list(j)) for p, j in zip(packs, per_arg))
            per_output.append(trees[0] if isinstance(self.argnums, int) else trees)
        result = rec["out"].unpack(per_output)
        return TraceResult((result, rec["aux"].unpack(aux)) if self.has_aux else result, updates)


_OTHER_MODE = {jax.jacrev: jax.jacfwd, jax.jacfwd: jax.jacrev}
_MODE_GAIN = 2  # change mode only when the other one needs at most half the passes


def switches_mode(reverse: bool, n_in: int, n_out: int) -> bool:
    """Whether a Jacobian asked for in reverse (or forward) mode runs in the other one:
    reverse mode takes one pass per output element, forward mode one per input element."""
    need, other_need = (n_out, n_in) if reverse else (n_in, n_out)
    return other_need * _MODE_GAIN <= need


def _jacobian(mode: Callable, g: Callable, flat_args: list, may_switch: bool = True):
    """The Jacobian of ``g`` (over lists of arrays, with aux) by the mode that needs fewer passes.

    Reverse mode pulls back one basis vector per output element, forward mode pushes
    forward one per input element: both give the same matrix (up to rounding) at a cost
    proportional to those counts, so a wide-output ``jacrev`` (or a wide-input
    ``jacfwd``) runs in the other mode. Only for real floating inputs and outputs (complex
    ones have mode-specific holomorphic rules), and if the other mode cannot trace (a
    rule with only a reverse derivative), the requested one runs.
    """
    argnums = tuple(range(len(flat_args)))
    n_in = sum(a.size for xs in flat_args for a in xs)
    other = _OTHER_MODE[mode]
    if may_switch and n_in and all(_real_float(a) for xs in flat_args for a in xs):
        seen = mode_specific_count()
        outs = jax.eval_shape(lambda *d: g(*d)[0], *flat_args)
        n_out = sum(o.size for o in outs)
        # no_grad and autograd.Function rules make the two modes differ: keep the one asked for
        if all(_real_float(o) for o in outs) and mode_specific_count() == seen:
            if switches_mode(mode is jax.jacrev, n_in, n_out):
                try:
                    return other(g, argnums=argnums, has_aux=True)(*flat_args)
                except Exception:  # e.g. a custom_vjp rule under forward mode
                    pass
    return mode(g, argnums=argnums, has_aux=True)(*flat_args)


def _real_float(a) -> bool:
    return jnp.issubdtype(a.dtype, jnp.floating)


class JacRev(_Jacobian):
    api = "jacrev"
    enables_grad = True
    jax_fn = staticmethod(jax.jacrev)


class JacFwd(_Jacobian):
    api = "jacfwd"
    jax_fn = staticmethod(jax.jacfwd)


def jacrev(func: Callable, argnums: int | tuple[int, ...] = 0, *, has_aux: bool = False,
           chunk_size: int | None = None, _preallocate_and_copy: bool = False) -> Callable:  # fmt: skip
    """``torch.func.jacrev``: the Jacobian by reverse mode.

    ``chunk_size`` is validated as torch does; XLA computes all rows in one batched
    program, so it does not change the result.

    Example:
        >>> import torch, torchjax.func as func
        >>> func.jacrev(torch.sin)(torch.zeros(2))
        tensor([[1., 0.],
                [0., 1.]])
    """
    return JacRev(func, argnums, has_aux, chunk_size)


def jacfwd(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False, *,
           randomness: str = "error") -> Callable:  # fmt: skip
    """``torch.func.jacfwd``: the Jacobian by forward mode.

    Example:
        >>> import torch, torchjax.func as func
        >>> func.jacfwd(lambda x: x ** 2)(torch.tensor([1.0, 2.0]))
        tensor([[2., 0.],
                [0., 4.]])
    """
    return JacFwd(func, argnums, has_aux, randomness=randomness)


def hessian(func: Callable, argnums: int | tuple[int, ...] = 0) -> Callable:
    """``torch.func.hessian``: ``jacfwd(jacrev(func, argnums), argnums)``.

    Example:
        >>> import torch, torchjax.func as func
        >>> func.hessian(lambda x: (x ** 3).sum())(torch.tensor([1.0, 2.0]))
        tensor([[ 6.,  0.],
                [ 0., 12.]])
    """
    return jacfwd(jacrev(func, argnums), argnums)
