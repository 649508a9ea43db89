"""Tracing a call: the torch code run once on tracers, giving a JAX program and its
:class:`~.program.TraceInfo`; or, with jit disabled, run on concrete values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import jax
import numpy as np
from torch.utils import _pytree as pytree

from ..capture import Capture, Context, TraceResult, is_size, seed_from_torch
from ..torch_autograd import needs_x64
from .program import Entry, OutputStructure, Program, TraceInfo, to_jax_leaf
from .reuse import OutputReuse, reusable_outputs
from .signature import Prepared

Body = Callable[[Context, tuple, dict], TraceResult]

_TRACE_SEED = np.zeros(2, np.uint32)  # a placeholder: the program takes the seed as an input


def _is_array(x) -> bool:
    return isinstance(x, (jax.Array, jax.core.Tracer))


class TraceAgain(Exception):
    """The trace asked not to be compiled (``TraceResult.again``): its caller, which knows
    why, calls again. Raised after JAX's trace has finished, never through it."""


class PureCall:
    """The torch code of one call as a pure function of ``(captured values, seed, call
    arrays)`` returning ``(outputs, input updates, captured updates)``; each run records
    what it learnt in ``info``."""

    def __init__(self, capture: Capture, body: Body, call: Prepared):
        self.capture = capture
        self.body = body
        self.leaves, self.spec, self.dyn_pos = call.leaves, call.spec, call.dyn_pos
        self._info: TraceInfo | None = None

    @property
    def info(self) -> TraceInfo:
        if self._info is None:
            raise RuntimeError("PureCall.info: the function has not run yet")
        return self._info

    def __call__(self, cvals: list, seed, dyn: list) -> tuple[list, list, list]:
        full = list(self.leaves)
        for i, v in zip(self.dyn_pos, dyn):
            full[i] = v
        args, kwargs = pytree.tree_unflatten(full, self.spec)
        ctx = Context(self.capture, cvals, key=jax.numpy.asarray(seed))
        res = self.body(ctx, args, kwargs)
        out_leaves, out_spec = pytree.tree_flatten(res.out, is_leaf=is_size)
        arg_slots = sorted(res.arg_updates)
        # a root context gives every tensor it lifts a slot
        captured = cast("list[tuple[int, Any]]", [(slot, jt.value) for _, jt, slot in ctx.mutated_lifted()])
        self._info = TraceInfo(
            out_spec=out_spec,
            out_static={i: x for i, x in enumerate(out_leaves) if not _is_array(x)},
            used_random=ctx.used_random,
            discovered=ctx.discovered,
            arg_update_slots=[self.dyn_pos.index(i) for i in arg_slots],
            captured_update_slots=[slot for slot, _ in captured],
            trains=res.trains,
            again=res.again,
        )
        arrays = [x for x in out_leaves if _is_array(x)]
        return arrays, [res.arg_updates[i] for i in arg_slots], [v for _, v in captured]


def trace(capture: Capture, body: Body, call: Prepared, name: str) -> Entry:
    """The call's program, traced (it is compiled when first run).

    Tensors the code meets for the first time become captured inputs; the code is
    traced again until it meets none.
    """
    dyn_vals = [to_jax_leaf(call.leaves[i]) for i in call.dyn_pos]
    pure = PureCall(capture, body, call)
    with jax.enable_x64(True):
        for _ in range(3):
            cvals = capture.captured_values()
            traced = jax.jit(pure).trace(cvals, _TRACE_SEED, dyn_vals)
            if not pure.info.discovered:
                break
        else:  # pragma: no cover - a function that meets new tensors on every trace
            raise RuntimeError(f"{name}: the captured tensors kept changing between traces")
    info = pure.info
    program = Program(traced, len(cvals), info.used_random, needs_x64([*cvals, *dyn_vals]))
    if info.trains:  # a training step writes its state into the buffers it came in
        n, n_out = len(cvals), len(traced.out_info[0])
        n_arg = len(info.arg_update_slots)
        pairs = [(n + 1 + slot, n_out + k) for k, slot in enumerate(info.arg_update_slots)]
        pairs += [(slot, n_out + n_arg + k) for k, slot in enumerate(info.captured_update_slots)]
        program.donate = tuple(sorted(pairs))
    reuse = None
    positions = reusable_outputs(traced.jaxpr.jaxpr, traced.out_info[0])
    if positions:
        reuse = OutputReuse(positions, traced.jaxpr, jax.tree_util.tree_structure(traced.out_info))
    return Entry(program, info, reuse)


def run_eagerly(capture: Capture, body: Body, call: Prepared, to_torch: bool) -> Any:
    """The call run op by op on concrete values (``disable_jit``): its result, its writes
    to tensors applied."""
    dyn = [to_jax_leaf(call.leaves[i]) for i in call.dyn_pos]
    pure = PureCall(capture, body, call)
    with jax.enable_x64(True):
        dyn = [jax.numpy.asarray(v) if isinstance(v, np.ndarray) else v for v in dyn]
        out_arrays, arg_updates, cap_updates = pure(capture.captured_values(), seed_from_torch(), dyn)
    info = pure.info
    if info.again:
        raise TraceAgain
    info.write_back(call, capture, arg_updates, cap_updates)
    outputs = OutputStructure(info.out_spec, info.out_static)
    return outputs.build(outputs.to_torch(out_arrays) if to_torch else out_arrays)
