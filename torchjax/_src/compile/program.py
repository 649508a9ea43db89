"""One compiled signature (:class:`Entry`) and its parts: what the trace told, the traced
program and its executable, the structure its outputs leave in, and the memory of the
tensors its inputs came from (its kept output buffers are ``reuse.OutputReuse``)."""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from typing import Any

import jax
import jax.extend.core as jax_core
import torch
from torch.utils import _pytree as pytree

from ..capture import Capture, write_back_all
from ..crossing import ARRAY_TYPE, array_to_torch, crossing_cache, numpy_view_ok, numpy_view_to_torch, tensor_to_jax
from ..torch_autograd import NUMPY_DTYPES, AutogradProgram
from .reuse import OutputReuse
from .settings import SETTINGS
from .signature import Prepared


@dataclasses.dataclass(frozen=True)
class TraceInfo:
    """What running the torch code told about the call, beside the program itself."""

    out_spec: Any  # the torch pytree structure of the result
    out_static: dict[int, Any]  # output leaf position -> a value that is not an array
    used_random: bool  # a random op drew a key: the program takes a fresh seed per call
    discovered: bool  # new captured tensors were met: trace again with them as inputs
    arg_update_slots: list[int]  # inputs written in place (positions among the call's arrays)
    captured_update_slots: list[int]  # captured tensors written in place (their slots)
    trains: bool = False  # a training step: torch autograd does not record its call
    again: bool = False  # not to be compiled: the caller traces again (``TraceAgain``)

    def write_back(
        self, call: Prepared, capture: Capture, arg_updates: list, cap_updates: list, released=frozenset()
    ) -> None:
        """Apply the program's writes to the call's tensors and the captured ones."""
        leaves, dyn_pos, captured = call.leaves, call.dyn_pos, capture.captured
        updates = [(leaves[dyn_pos[slot]], value) for slot, value in zip(self.arg_update_slots, arg_updates)]
        updates = [(t, v) for t, v in updates if isinstance(t, torch.Tensor)]
        updates += [(captured[slot], value) for slot, value in zip(self.captured_update_slots, cap_updates)]
        write_back_all(updates, released)


class Program:
    """The traced program and its executable, compiled by the first call that does not
    need gradients (a training loop never does); torch autograd differentiates the
    traced program (:meth:`differentiable`) when a call does."""

    __slots__ = ("_traced", "autograd", "donate", "executable", "jaxpr", "n_captured", "out_tree", "used_random", "x64")

    def __init__(self, traced: Any, n_captured: int, used_random: bool, x64: bool):
        self._traced = traced
        self.jaxpr = traced.jaxpr  # a ClosedJaxpr: (captured values, seed, call arrays) -> outputs
        self.executable: Any = None
        self.n_captured = n_captured
        self.used_random = used_random
        # whether an input is 64-bit: the executable is then called with jax_enable_x64 on,
        # so that NumPy inputs keep their dtype (float32 programs skip that context)
        self.x64 = x64
        self.autograd: AutogradProgram | None = None
        self.out_tree = jax.tree_util.tree_structure(traced.out_info)
        # (input, output) pairs, positions among the flat inputs (captured values, seed,
        # call arrays) and outputs: the buffers a training step writes its updates into
        self.donate: tuple[tuple[int, int], ...] = ()

    def compile(self) -> Any:
        traced = self._traced
        if traced is None:  # another thread compiled it meanwhile
            return self.executable
        with jax.enable_x64(True):
            if self.donate:
                self.executable = _Donating(self.jaxpr, self.out_tree, self.donate)
            else:
                self.executable = traced.lower().compile()
        self._traced = None
        return self.executable

    def differentiable(self, n_updates: int, name: str) -> AutogradProgram:
        """The program for torch autograd; its last ``n_updates`` outputs are writes to buffers."""
        if self.autograd is None:
            self.autograd = AutogradProgram(self.jaxpr, len(self.jaxpr.jaxpr.outvars) - n_updates, name)
        return self.autograd


class _Donating:
    """The program over flat inputs, its update inputs donated: XLA writes each update
    into the buffer its old value came in (``Compiled.execute`` lets go of the torch
    views of those buffers first). Called as the plain executable is.

    JAX pairs donated inputs with outputs of the same shape in order, so the outputs are
    put in the donated inputs' order (each update beside its input): a parameter's
    update goes into the parameter's own buffer, not into a moment estimate's.
    """

    __slots__ = ("_executable", "_split", "_unperm", "out_tree")

    def __init__(self, jaxpr: Any, out_tree: Any, donate: tuple[tuple[int, int], ...]):
        flat_avals = [v.aval for v in jaxpr.jaxpr.invars]
        n_outs = len(jaxpr.jaxpr.outvars)
        paired = [o for _, o in donate]
        perm = paired + [o for o in range(n_outs) if o not in set(paired)]
        self._unperm = [perm.index(o) for o in range(n_outs)]
        program = jax_core.jaxpr_as_fun(jaxpr)

        def fn(*flat):
            outs = program(*flat)
            return [outs[o] for o in perm]

        with warnings.catch_warnings():
            # an input XLA could not write into (a view of it was alive) is reported on
            # every call: an optimisation not taken, nothing to tell the user
            warnings.filterwarnings("ignore", message=".*donated buffers were not usable.*")
            donated = tuple(i for i, _ in donate)
            self._executable = jax.jit(fn, donate_argnums=donated, keep_unused=True).lower(*flat_avals).compile()
        self.out_tree = out_tree
        # (outputs, input updates, captured updates): lists, in this order
        sizes = [len(part) for part in jax.tree_util.tree_unflatten(out_tree, [None] * n_outs)]
        self._split = (sizes[0], sizes[0] + sizes[1])

    def __call__(self, cvals, seed, dyn):
        outs = self._executable(*cvals, seed, *dyn)
        flat = [outs[k] for k in self._unperm]
        a, b = self._split
        return flat[:a], flat[a:b], flat[b:]

    def memory_analysis(self) -> Any:
        return self._executable.memory_analysis()


class OutputStructure:
    """How the program's output arrays become the call's result."""

    __slots__ = ("numpy_out", "spec", "static")

    def __init__(self, spec: Any, static: dict[int, Any]):
        self.spec = spec
        self.static = static
        # whether every output is a CPU array of a dtype NumPy holds: such outputs cross to
        # torch as NumPy views without further checks (None until the first run tells)
        self.numpy_out: bool | None = None

    def numpy_views_ok(self, out_arrays: list) -> bool:
        """Whether the outputs cross to torch as NumPy views (learnt from the first call's)."""
        if self.numpy_out is None:
            self.numpy_out = all(type(a) is ARRAY_TYPE and numpy_view_ok(a) for a in out_arrays)
        return self.numpy_out

    def to_torch(self, out_arrays: list) -> list[torch.Tensor]:
        numpy_out = self.numpy_out
        if numpy_out is None:
            numpy_out = self.numpy_views_ok(out_arrays)
        if numpy_out:
            return [numpy_view_to_torch(a) for a in out_arrays]
        return [array_to_torch(a) for a in out_arrays]

    def build(self, values: list) -> Any:
        """The output values put back into the traced output structure."""
        static = self.static
        if not static and self.spec.is_leaf():
            return values[0]
        it = iter(values)
        leaves = [static[i] if i in static else next(it) for i in range(len(values) + len(static))]
        return pytree.tree_unflatten(leaves, self.spec)


_NUMPY_LEAF_TYPES = (torch.Tensor, torch.nn.Parameter)


def to_jax_leaf(x) -> Any:
    """A call's array leaf as an input of the executable: a plain CPU tensor as a NumPy
    view of its buffer, which XLA's CPU client takes without a copy (a few us, against
    ~30 us for a DLPack import); other tensors through the crossing cache."""
    t = type(x)
    if t in _NUMPY_LEAF_TYPES and x.is_cpu and x.dtype in NUMPY_DTYPES and not (x.is_conj() or x.is_neg()):
        return (x.detach() if x.requires_grad else x).numpy()
    if isinstance(x, torch.Tensor):
        return crossing_cache.get(x) if x.is_leaf or not x.requires_grad else tensor_to_jax(x)
    return x


class InputCrossing:
    """Remembers the previous call's tensor inputs (weakly), to spot a tensor passed again."""

    __slots__ = ("last",)

    def __init__(self):
        self.last: list = []

    def values(self, leaves: list, dyn_pos: list[int]) -> list:
        """The call's tensors as executable inputs.

        A tensor passed at the same position on the previous call too (the same object:
        fixed inputs, weights passed as arguments) goes through the crossing cache, so
        while unchanged it is not crossed again; a tensor met once (a new batch) enters
        as a NumPy view, which costs less than making a cache entry for it.
        """
        last = self.last
        if len(last) != len(dyn_pos):
            last[:] = [None] * len(dyn_pos)
        vals = []
        for j, i in enumerate(dyn_pos):
            x = leaves[i]
            ref = last[j]
            if ref is not None and ref() is x and (x.is_leaf or not x.requires_grad):
                vals.append(crossing_cache.get(x))
                continue
            vals.append(to_jax_leaf(x))
            last[j] = weakref.ref(x) if isinstance(x, torch.Tensor) else None
        return vals


class Entry:
    """One compiled signature: its program, what its trace told (``info``), how its
    outputs leave and its inputs enter, and its kept output buffers (``reuse``, None when
    no output is worth keeping or reuse was turned off)."""

    __slots__ = ("info", "inputs", "outputs", "program", "reuse")

    def __init__(self, program: Program, info: TraceInfo, reuse: OutputReuse | None = None):
        self.program = program
        self.info = info
        self.outputs = OutputStructure(info.out_spec, info.out_static)
        self.inputs = InputCrossing()
        self.reuse = reuse

    def result(self, out_arrays: list, to_torch: bool) -> Any:
        """The call's result: the output arrays (as torch tensors if ``to_torch``) put back
        into the traced output structure."""
        outputs, reuse = self.outputs, self.reuse
        if reuse is not None:
            if to_torch and outputs.numpy_views_ok(out_arrays) and SETTINGS.output_reuse_budget > 0:
                return outputs.build(reuse.views(out_arrays))
            self.drop_reuse()  # JAX arrays go to the caller as they are: nothing to keep
        if to_torch:  # OutputStructure.to_torch, inlined: this runs on every call
            if outputs.numpy_out or (outputs.numpy_out is None and outputs.numpy_views_ok(out_arrays)):
                out_arrays = [numpy_view_to_torch(a) for a in out_arrays]
            else:
                out_arrays = [array_to_torch(a) for a in out_arrays]
        return outputs.build(out_arrays)

    def donating(self, args: tuple, name: str) -> Any:
        """The donating variant of the program (compiled on first use), or None if it has
        none: reuse is then turned off."""
        reuse = self.reuse
        if reuse is None:
            return None
        executable = reuse.donating
        if executable is None:
            executable = reuse.compile_donating(args, name)
        if executable is None:
            self.drop_reuse()
        return executable

    def drop_reuse(self) -> None:
        """Turn reuse off for this program: nothing kept, no donating variant."""
        reuse, self.reuse = self.reuse, None
        if reuse is not None:
            reuse.release()
