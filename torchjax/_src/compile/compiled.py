"""The compiled callable: one captured torch callable, compiled once per call signature."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import torch

from ..capture import Capture, seed_from_torch
from ..crossing import release_all, restore
from .program import Entry
from .settings import jit_disabled
from .signature import Prepared, RecompileWatch, prepare
from .trace import Body, TraceAgain, run_eagerly, trace

_NO_SEED = np.zeros(2, np.uint32)
_NOT_DIFFERENTIABLE = object()  # a call torch autograd need not record: run it as any other


class Compiled:
    """The compiled executables of one captured callable, one per signature.

    A call is prepared (:meth:`prepare`), then run (:meth:`run`): compiled the first time
    its signature is met, executed every time. A transform derives a *plan* from a call
    (validation, what its arguments fix); the plan is a function of the signature, so it
    is computed once (:meth:`plan_of`), and a signature met before finds its plan and
    program at once (:meth:`hot_entry`).
    """

    def __init__(self, capture: Capture, name: str, held: Any = ()):
        self.capture = capture
        self.name = name
        self.held = held  # objects the cache key names by id, kept alive with it
        self._cache: dict[Any, Entry] = {}  # (signature, plan) -> entry
        self.plans: dict[Any, Any] = {}  # signature -> plan
        self.hot: dict[Any, tuple[Any, Entry]] = {}  # signature -> (plan, entry)
        self._watch = RecompileWatch(name)
        self._last: Entry | None = None  # the entry the last call executed

    # Flatten a call and compute its signature (``sig`` is None if a static leaf is unhashable).
    prepare = staticmethod(prepare)

    def call(self, body: Body, args: tuple, kwargs: dict, *, transform_key: Any = (), to_torch: bool = True):
        return self.run(body, prepare(args, kwargs, transform_key), to_torch=to_torch)

    def hot_entry(self, sig: Any) -> tuple[Any, Entry] | None:
        """``(plan, entry)`` of a signature compiled before; None if there is none (or jit is disabled)."""
        return None if jit_disabled() else self.hot.get(sig)

    def plan_of(self, sig: Any, make_plan: Callable[[], Any]) -> Any:
        """The plan of a signature: ``make_plan()``, called the first time it is met."""
        if sig is None:
            return make_plan()
        plan = self.plans.get(sig)
        if plan is None:
            plan = self.plans[sig] = make_plan()
        return plan

    def run(self, body: Body, call: Prepared, *, plan_key: Any = (), to_torch: bool = True):
        """Run a prepared call: compile its signature once (with ``plan_key``, what the
        transform derived from it), then execute."""
        if call.sig is None:
            raise call.unhashable_error(self.name)
        if jit_disabled():
            return run_eagerly(self.capture, body, call, to_torch)
        entry = self._cache.get((call.sig, plan_key))
        if entry is None:
            entry = self._compile(body, call, plan_key)
        return self.execute(entry, call, to_torch)

    def entry(self, sig: Any, plan_key: Any) -> Entry | None:
        """The compiled entry of a signature, if there is one."""
        return self._cache.get((sig, plan_key))

    def execute(self, entry: Entry, call: Prepared, to_torch: bool = True):
        """One call of a compiled entry: inputs in, writes to inputs and captured tensors
        applied, outputs out."""
        program = entry.program
        self._last = entry
        dyn_vals = entry.inputs.values(call.leaves, call.dyn_pos)
        cvals = self.capture.captured_values(program.n_captured)
        seed = seed_from_torch() if program.used_random else _NO_SEED
        if to_torch and torch.is_grad_enabled() and not entry.info.trains:
            wrt = _requiring_grad(self.capture, program.n_captured, call)
            if wrt:
                out = _run_differentiable(self, entry, call, wrt, [*cvals, seed, *dyn_vals])
                if out is not _NOT_DIFFERENTIABLE:
                    return out
        args: tuple = (cvals, seed, dyn_vals)
        executable = program.executable
        if executable is None:
            executable = program.compile()
        reuse = entry.reuse
        buffers = reuse.take_buffers() if reuse is not None and reuse.kept else None
        if buffers is not None:
            donating = entry.donating((*args, buffers), self.name)
            if donating is not None:
                executable, args = donating, (*args, buffers)
        released = _release_donated(self.capture, program, call, cvals, dyn_vals) if program.donate else ()
        try:
            if program.x64:
                with jax.enable_x64(True):
                    out_arrays, arg_updates, cap_updates = executable(*args)
            else:
                out_arrays, arg_updates, cap_updates = executable(*args)
        except BaseException:
            for t, value in released:
                restore(t, value)
            raise
        del args, cvals, dyn_vals  # the inputs' buffers: not kept past the call
        if arg_updates or cap_updates:
            entry.info.write_back(call, self.capture, arg_updates, cap_updates, {id(t) for t, _ in released})
        return entry.result(out_arrays, to_torch)

    def last_memory_analysis(self) -> Any:
        """XLA's memory analysis of the executable the last call ran, or None."""
        entry = self._last
        if entry is None or entry.program.executable is None:
            return None
        return entry.program.executable.memory_analysis()

    def clear_cache(self) -> None:
        """Drop every compiled program (each signature is traced and compiled again when next met)."""
        self._cache.clear()
        self.plans.clear()
        self.hot.clear()
        self._watch.clear()
        self._last = None

    def cache_size(self) -> int:
        return len(self._cache)

    def _compile(self, body: Body, call: Prepared, plan_key: Any) -> Entry:
        entry = trace(self.capture, body, call, self.name)
        if entry.info.again:
            raise TraceAgain
        self._cache[(call.sig, plan_key)] = entry
        self.hot[call.sig] = (plan_key, entry)
        self._watch.note(call)
        return entry


def _run_differentiable(compiled: Compiled, entry: Entry, call: Prepared, wrt: tuple[int, ...], values: list):
    """A call torch autograd records: its outputs' backward is the compiled pullback of
    the program (see ``torch_autograd``). Writes to buffers are applied once, here."""
    capture = compiled.capture
    info = entry.info
    n_args = len(info.arg_update_slots)
    program = entry.program.autograd
    if program is None:
        program = entry.program.differentiable(n_args + len(info.captured_update_slots), compiled.name)
    leaves = call.leaves
    sources = [
        *capture.captured[: entry.program.n_captured],
        None,  # the PRNG seed
        *[leaves[i] if isinstance(leaves[i], torch.Tensor) else None for i in call.dyn_pos],
    ]
    result = program.run(wrt, values, sources)
    if result is None:
        return _NOT_DIFFERENTIABLE
    outs, updates = result
    if updates:
        info.write_back(call, capture, updates[:n_args], updates[n_args:])
    return entry.outputs.build(outs)


def _release_donated(capture: Capture, program, call: Prepared, cvals: list, dyn_vals: list) -> list:
    """The tensors whose buffers the program may write its updates into, let go of
    (``crossing.release_all``): ``[(tensor, its input value)]``."""
    n = program.n_captured
    captured, leaves, dyn_pos = capture.captured, call.leaves, call.dyn_pos
    pairs = [
        (captured[p], cvals[p]) if p < n else (leaves[dyn_pos[p - n - 1]], dyn_vals[p - n - 1])
        for p, _ in program.donate
    ]
    return release_all(pairs)


def _requiring_grad(capture: Capture, n_captured: int, call: Prepared) -> tuple[int, ...]:
    """Positions, among the program's inputs (captured tensors, seed, call tensors), of
    the tensors that require grad (only floating and complex tensors can)."""
    captured = capture.captured
    wrt = [i for i in range(n_captured) if captured[i].requires_grad]
    leaves = call.leaves
    for j, i in enumerate(call.dyn_pos):
        x = leaves[i]
        if isinstance(x, torch.Tensor) and x.requires_grad:
            wrt.append(n_captured + 1 + j)
    return tuple(wrt)
