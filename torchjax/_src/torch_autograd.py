"""Torch autograd over compiled JAX programs.

A torchjax call that torch has to differentiate (grad mode on, and an input or a captured
tensor requiring grad) runs its traced program through :class:`AutogradProgram`. For the
set of inputs that require grad it compiles, once, a forward that returns the outputs
and the residuals of ``jax.vjp``, and, at the first backward, the pullback applied to the
cotangents. One ``torch.autograd.Function`` joins the two to torch's graph.

The residuals stay the forward's JAX buffers. Those that are an input or an output of the
program are not returned by it a second time (XLA would copy them): the backward takes
them from the torch tensor they came from or went to. All of them are saved with
``ctx.save_for_backward``, so torch frees them after ``backward()`` and raises its usual
error if one was written in place in between, exactly as for its own saved tensors.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.extend.core as jax_core
import jax.numpy as jnp
import numpy as np
import torch

from . import dtypes
from .crossing import array_to_torch, tensor_to_jax

_UNKNOWN = object()
# dtypes NumPy holds natively: CPU tensors of these enter a program as NumPy views of
# their buffer, which XLA's CPU client takes without a copy
NUMPY_DTYPES = {
    torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
    torch.float16, torch.float32, torch.float64, torch.complex64, torch.complex128,
}  # fmt: skip
_64_BIT = {np.dtype(d) for d in ("float64", "int64", "uint64", "complex128")}


class AutogradProgram:
    """A traced JAX program whose calls torch autograd can differentiate.

    ``jaxpr`` (a ``ClosedJaxpr``) maps a flat list of arrays to ``n_out`` outputs followed
    by auxiliary outputs (writes to buffers): those are handed back as arrays and never
    differentiated. Compiled programs are kept per set of differentiated inputs (``wrt``).
    """

    def __init__(self, jaxpr, n_out: int, name: str):
        self.jaxpr = jaxpr
        self.n_out = n_out
        self.name = name
        self._forwards: dict[tuple[int, ...], Any] = {}

    def run(self, wrt: tuple[int, ...], values: list, sources: list) -> tuple[list[torch.Tensor], list] | None:
        """Call the program on ``values`` (arrays, or NumPy views of tensors), recording it
        on torch's graph as a function of the tensors at positions ``wrt`` of ``sources``
        (``sources[i]``: the torch tensor ``values[i]`` was crossed from, or None).

        Returns the outputs as torch tensors and the auxiliary outputs as arrays; None
        (and nothing run) when no output depends on the inputs at ``wrt``: the call is
        then an ordinary one.
        """
        forward = self._forwards.get(wrt, _UNKNOWN)
        if forward is _UNKNOWN:
            with jax.enable_x64(True):
                forward = self._forwards[wrt] = _Forward.build(self, wrt, values)
        if forward is None:
            return None
        call = _Call(forward, values, sources)
        outs = JaxProgram.apply(call, *[sources[p] for p in wrt])
        aux, call.aux = call.aux, None
        return list(outs), aux


class _Forward:
    """The compiled forward of one (program, wrt), and its compiled backwards."""

    def __init__(self, program: AutogradProgram, wrt: tuple[int, ...]):
        self.program = program
        self.wrt = wrt
        # the floating outputs, which jax.vjp sees, and which of them torch differentiates:
        # those whose cotangent reaches an input's gradient (not an output computed under
        # no_grad or from detached values; the others are non-differentiable to torch)
        self.inexact: tuple[int, ...] = ()
        self.avals: list[tuple[tuple[int, ...], Any]] = []
        self.live: tuple[bool, ...] = ()
        self.non_differentiable: tuple[int, ...] = ()
        self.executable: Any = None
        self.x64 = False
        self.treedef: Any = None
        # where each residual of the pullback lives: (0, input position), (1, position in
        # inexact), (2, position among the residuals the program returns); ``layout[j]``:
        # the layout operations the backward applies to residual j's input to remake it
        self.plan: list[tuple[int, int]] = []
        self.layout: list[tuple | None] = []
        self.res_inputs: list[int] = []
        self.res_outputs: list[int] = []
        self._backwards: dict[tuple[bool, ...], tuple[Any, bool]] = {}
        self._vjp_programs: dict[tuple[bool, ...], AutogradProgram] = {}

    @classmethod
    def build(cls, program: AutogradProgram, wrt: tuple[int, ...], values: list) -> _Forward | None:
        self = cls(program, wrt)
        closed, n_out = program.jaxpr, program.n_out
        outvars = closed.jaxpr.outvars[:n_out]
        self.inexact = inexact = tuple(k for k, v in enumerate(outvars) if _inexact(v.aval.dtype))
        if not inexact:
            return None
        other = tuple(k for k in range(n_out) if k not in inexact)
        self.avals = [(tuple(outvars[k].aval.shape), outvars[k].aval.dtype) for k in inexact]
        self.x64 = needs_x64(values)
        body = jax_core.jaxpr_as_fun(closed)
        res_avals: list = []

        def forward_keeping(keep: list[int] | None):
            # a new function for each trace: jax.jit caches traces by function
            def forward(*vals):
                def f(*w):
                    flat = body(*_replace(vals, wrt, w))
                    return [flat[k] for k in inexact], ([flat[k] for k in other], list(flat[n_out:]))

                outs, pullback, (other_outs, aux) = jax.vjp(f, *[vals[p] for p in wrt], has_aux=True)
                leaves, self.treedef = jax.tree_util.tree_flatten(pullback)
                plan, kept = _place(leaves, vals, outs)
                if keep is not None:  # the residuals the backward remakes are left out
                    return outs, other_outs, aux, [kept[m] for m in keep]
                res_avals[:] = [jax.ShapeDtypeStruct(r.shape, r.dtype) for r in leaves]
                self.plan = plan
                return outs, other_outs, aux, kept

            return forward

        traced = jax.jit(forward_keeping(None)).trace(*values)
        self.live = _live_cotangents(self.treedef, res_avals, self.avals)
        if not any(self.live):
            return None
        self.non_differentiable = tuple(sorted([*other, *[k for k, on in zip(inexact, self.live) if not on]]))
        n_kept = sum(1 for kind, _ in set(self.plan) if kind == 2)
        remade = _layout_of_inputs(traced.jaxpr.jaxpr, n_kept)
        self.layout = [None] * len(self.plan)
        if any(remade):
            keep = [m for m, r in enumerate(remade) if r is None]
            renumber = {m: i for i, m in enumerate(keep)}
            for j, (kind, i) in enumerate(self.plan):
                if kind == 2 and remade[i] is not None:
                    self.plan[j], self.layout[j] = (0, remade[i][0]), remade[i][1]
                elif kind == 2:
                    self.plan[j] = (2, renumber[i])
            traced = jax.jit(forward_keeping(keep)).trace(*values)
        self.res_inputs = sorted({i for kind, i in self.plan if kind == 0})
        self.res_outputs = sorted({i for kind, i in self.plan if kind == 1})
        self.executable = traced.lower().compile()
        return self

    def backward_executable(self, ct_mask: tuple[bool, ...], res: list, cts: list) -> tuple[Any, bool]:
        """The pullback compiled for the outputs that got a cotangent (``ct_mask``), and
        whether it runs with 64-bit inputs."""
        hit = self._backwards.get(ct_mask)
        if hit is not None:
            return hit
        treedef, avals, layout = self.treedef, self.avals, self.layout

        def backward(res, cts):
            res = [r if ops is None else _apply_layout(ops, r) for r, ops in zip(res, layout)]
            pullback = jax.tree_util.tree_unflatten(treedef, res)
            return [_conj(g) for g in pullback(_full_cotangents(cts, ct_mask, avals))]

        with jax.enable_x64(True):
            executable = jax.jit(backward).trace(res, cts).lower().compile()
        hit = self._backwards[ct_mask] = (executable, needs_x64([*res, *cts]))
        return hit


def _vjp_program(fwd: _Forward, ct_mask: tuple[bool, ...], values: list) -> AutogradProgram:
    """``(inputs, cotangents) -> input gradients`` as a program torch can differentiate
    in turn (``create_graph=True``); it recomputes the forward."""
    hit = fwd._vjp_programs.get(ct_mask)
    if hit is not None:
        return hit
    body = jax_core.jaxpr_as_fun(fwd.program.jaxpr)
    wrt, inexact, avals = fwd.wrt, fwd.inexact, fwd.avals
    n = len(values) - sum(ct_mask)

    def vjp_of(*vals):
        primal, cts = vals[:n], vals[n:]

        def f(*w):
            flat = body(*_replace(primal, wrt, w))
            return [flat[k] for k in inexact]

        _, pullback = jax.vjp(f, *[primal[p] for p in wrt])
        return [_conj(g) for g in pullback(_full_cotangents(cts, ct_mask, avals))]

    with jax.enable_x64(True):
        closed = jax.make_jaxpr(vjp_of)(*values)
    hit = fwd._vjp_programs[ct_mask] = AutogradProgram(closed, len(wrt), f"{fwd.program.name} (backward)")
    return hit


class _Call:
    """One differentiable call: what its forward made and its backward needs."""

    __slots__ = ("aux", "forward", "kept", "sources", "values")

    def __init__(self, forward: _Forward, values: list, sources: list):
        self.forward = forward
        self.values = values
        self.sources = sources
        self.aux: list | None = None
        self.kept: list[torch.Tensor] | None = None

    def run_forward(self) -> tuple[torch.Tensor, ...]:
        fwd = self.forward
        if fwd.x64:
            with jax.enable_x64(True):
                inexact_outs, other_outs, self.aux, kept = fwd.executable(*self.values)
        else:
            inexact_outs, other_outs, self.aux, kept = fwd.executable(*self.values)
        self.kept = [array_to_torch(a) for a in kept]
        outs = [array_to_torch(a) for a in other_outs]
        for k, a in zip(fwd.inexact, inexact_outs):
            outs.insert(k, array_to_torch(a))
        return tuple(outs)

    def to_save(self, outputs: tuple) -> list[torch.Tensor]:
        fwd, sources = self.forward, self.sources
        saved = [sources[p] for p in fwd.res_inputs if sources[p] is not None]
        saved += [outputs[fwd.inexact[k]] for k in fwd.res_outputs]
        saved += self.kept
        self.kept = None  # from now on torch holds them, and frees them after backward
        return saved

    def residuals(self, saved: tuple) -> list:
        """The pullback's residuals, from the tensors torch saved (and checked) for us."""
        fwd, sources = self.forward, self.sources
        it = iter(saved)
        inputs = {p: as_input(next(it)) if sources[p] is not None else self.values[p] for p in fwd.res_inputs}
        outputs = {k: as_input(next(it)) for k in fwd.res_outputs}
        kept = [as_input(t) for t in it]
        places = (inputs, outputs, kept)
        return [places[kind][i] for kind, i in fwd.plan]

    def backward(self, saved: tuple, cts: tuple) -> list:
        fwd = self.forward
        given = [cts[k] if on else None for k, on in zip(fwd.inexact, fwd.live)]
        ct_mask = tuple(ct is not None for ct in given)
        if not any(ct_mask):
            return [None] * len(fwd.wrt)
        present = [_cotangent(ct, dtype) for ct, (_, dtype) in zip(given, fwd.avals) if ct is not None]
        if torch.is_grad_enabled():  # create_graph: gradients torch can differentiate again
            grads = self._differentiable_backward(ct_mask, [c for c in given if c is not None], present)
            if grads is not None:
                return grads
        res = self.residuals(saved)
        executable, x64 = fwd.backward_executable(ct_mask, res, present)
        if x64:
            with jax.enable_x64(True):
                grads = executable(res, present)
        else:
            grads = executable(res, present)
        return [array_to_torch(g) for g in grads]

    def _differentiable_backward(self, ct_mask, ct_tensors: list, ct_values: list) -> list | None:
        fwd = self.forward
        values = [*self.values, *ct_values]
        n, wrt = len(self.values), set(fwd.wrt)
        sources = [*[self.sources[p] if p in wrt else None for p in range(n)], *ct_tensors]
        positions = (*fwd.wrt, *[n + j for j, ct in enumerate(ct_tensors) if ct.requires_grad])
        result = _vjp_program(fwd, ct_mask, values).run(positions, values, sources)
        return None if result is None else result[0]


class JaxProgram(torch.autograd.Function):
    """A compiled JAX program on torch's graph (its nodes read ``JaxProgramBackward``);
    its inputs are the tensors that require grad."""

    @staticmethod
    def forward(call: _Call, *tensors: torch.Tensor):
        return call.run_forward()

    @staticmethod
    def setup_context(ctx, inputs, output):
        call = inputs[0]
        ctx.call = call
        ctx.set_materialize_grads(False)  # an unused output costs a zero in the program, not a tensor
        constant = [output[k] for k in call.forward.non_differentiable]
        if constant:
            ctx.mark_non_differentiable(*constant)
        ctx.save_for_backward(*call.to_save(output))

    @staticmethod
    def backward(ctx, *cts):
        call = ctx.call
        return (None, *call.backward(ctx.saved_tensors, cts))


def as_input(t: torch.Tensor) -> Any:
    """A tensor as a program input: a NumPy view of a CPU tensor (XLA's CPU client takes
    it without a copy), else a ``jax.Array`` crossed through DLPack."""
    if t.is_cpu and t.dtype in NUMPY_DTYPES and not (t.is_conj() or t.is_neg()):
        return t.detach().numpy()
    return tensor_to_jax(t)


def _cotangent(ct: torch.Tensor, dtype) -> Any:
    """A cotangent as the program takes it: its output's dtype, dense (``sum().backward()``
    hands over an expanded tensor of stride 0)."""
    if ct.dtype != dtypes.to_torch_dtype(dtype):
        ct = ct.to(dtypes.to_torch_dtype(dtype))
    if not ct.is_contiguous():
        ct = ct.contiguous()
    return as_input(ct)


def _full_cotangents(cts, ct_mask, avals) -> list:
    """A cotangent for every differentiated output: zeros for those torch gave none.

    torch's gradient of a complex function is the conjugate of JAX's pullback of the
    conjugate cotangent (JAX differentiates ``f(z)``, torch the conjugate Wirtinger side).
    """
    it = iter(cts)
    return [_conj(next(it)) if given else jnp.zeros(shape, dtype) for given, (shape, dtype) in zip(ct_mask, avals)]


def _conj(x):
    return jnp.conj(x) if jnp.iscomplexobj(x) else x


def _place(leaves: list, vals: tuple, outs: list) -> tuple[list[tuple[int, int]], list]:
    """Where each residual comes from: an input or an output of the program (then it is
    not returned a second time: XLA would copy it), or the program's own extra outputs."""
    inputs = {id(v): p for p, v in enumerate(vals)}
    outputs = {id(o): k for k, o in enumerate(outs)}
    kept: list = []
    kept_at: dict[int, int] = {}
    plan = []
    for leaf in leaves:
        key = id(leaf)
        if key in inputs:
            plan.append((0, inputs[key]))
        elif key in outputs:
            plan.append((1, outputs[key]))
        else:
            if key not in kept_at:
                kept_at[key] = len(kept)
                kept.append(leaf)
            plan.append((2, kept_at[key]))
    return plan, kept


# Operations that only lay out or relabel their operand. A residual made from an input by
# these alone (the transposed weight of ``nn.Linear``) would be a copy of a value the
# backward has anyway: the backward remakes it from the input instead.
_LAYOUT = frozenset(
    {"transpose", "reshape", "squeeze", "expand_dims", "broadcast_in_dim", "convert_element_type", "copy"}
)


def _layout_of_inputs(jaxpr, n_kept: int) -> list[tuple[int, tuple] | None]:
    """For each residual the program returns (its last ``n_kept`` outputs): the input it
    is made from and the layout operations that make it, or None."""
    made_by = {v: eqn for eqn in jaxpr.eqns for v in eqn.outvars}
    inputs = {v: p for p, v in enumerate(jaxpr.invars)}
    found: list[tuple[int, tuple] | None] = []
    for v in jaxpr.outvars[len(jaxpr.outvars) - n_kept :]:
        ops = []
        while not isinstance(v, jax_core.Literal) and v not in inputs:
            eqn = made_by.get(v)
            if eqn is None or eqn.primitive.name not in _LAYOUT or len(eqn.invars) != 1:
                break
            ops.append((eqn.primitive, eqn.params))
            v = eqn.invars[0]
        remade = ops and not isinstance(v, jax_core.Literal) and v in inputs
        found.append((inputs[v], tuple(reversed(ops))) if remade else None)
    return found


def _apply_layout(ops: tuple, x):
    for primitive, params in ops:
        x = primitive.bind(x, **params)
    return x


def _replace(vals, positions, new) -> list:
    full = list(vals)
    for p, v in zip(positions, new):
        full[p] = v
    return full


def _inexact(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.inexact)


def needs_x64(values) -> bool:
    """Whether a value is 64-bit: a program taking it runs with ``jax_enable_x64`` on."""
    return any(np.dtype(v.dtype) in _64_BIT for v in values)


def _live_cotangents(treedef, res_avals: list, avals: list) -> tuple[bool, ...]:
    """Which outputs' cotangents reach the pullback's result. The others are constants to
    torch, as in eager: an output computed under ``no_grad`` or from detached values
    (whose cotangent JAX transposes to a symbolic zero) does not require grad.
    Conservative: an equation with a nested program uses all of its inputs."""

    def pull(res, cts):
        return jax.tree_util.tree_unflatten(treedef, res)(list(cts))

    cts = [jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in avals]
    jaxpr = jax.make_jaxpr(pull)(res_avals, cts).jaxpr
    needed = {v for v in jaxpr.outvars if not isinstance(v, jax_core.Literal)}
    for eqn in reversed(jaxpr.eqns):
        if any(v in needed for v in eqn.outvars):
            needed.update(v for v in eqn.invars if not isinstance(v, jax_core.Literal))
    return tuple(v in needed for v in jaxpr.invars[len(res_avals) :])
