"""Output buffer reuse: a large output the caller has dropped is written over by the next call.

On CPU a fresh output buffer of hundreds of MB costs more in page faults than the
computation writing it. So a large output handed to torch is kept, with a weak
reference to the NumPy view the torch tensor holds; once the caller has dropped every
tensor and view of it, the next call donates it to XLA, which writes that call's output
into it. An output the caller can still reach, in any way, is never written.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from typing import Any

import jax
import jax.extend.core as jax_core
import numpy as np
import torch

from .. import caches
from ..crossing import numpy_to_torch
from .settings import SETTINGS

_KEPT_PER_OUTPUT = 2  # the caller still holds the previous result
_LOCK = threading.Lock()
_POOLING: weakref.WeakSet[OutputReuse] = weakref.WeakSet()  # those holding buffers


def _release_all() -> None:
    with _LOCK:
        for reuse in list(_POOLING):
            reuse.kept, reuse.kept_bytes = {}, 0
        _POOLING.clear()


caches.register("compile.output_buffers", _release_all)


def reusable_outputs(jaxpr, outputs: list) -> tuple[int, ...]:
    """Positions of the outputs worth a kept buffer: large enough, and computed by the
    program rather than an input or a constant passed through (a kept buffer is written
    over by the next call)."""
    passed = {id(v) for v in (*jaxpr.invars, *jaxpr.constvars)}
    min_bytes = SETTINGS.output_reuse_min_bytes
    return tuple(
        i
        for i, (var, out) in enumerate(zip(jaxpr.outvars, outputs))
        if not isinstance(var, jax_core.Literal)
        and id(var) not in passed
        and out.size * out.dtype.itemsize >= min_bytes
    )


class OutputReuse:
    """The kept buffers of one program's reusable outputs, and the program's donating variant.

    ``positions``: the reusable outputs; ``kept``: output position -> [(array, weak
    reference to its NumPy view)]; ``donating``: the program taking one more argument,
    the buffers to write those outputs into.
    """

    __slots__ = ("__weakref__", "donating", "jaxpr", "kept", "kept_bytes", "out_tree", "positions")

    def __init__(self, positions: tuple[int, ...], jaxpr: Any, out_tree: Any):
        self.positions = positions
        self.jaxpr = jaxpr  # the traced program (closed), to compile the donating variant from
        self.out_tree = out_tree
        self.kept: dict[int, list] = {}
        self.kept_bytes = 0
        self.donating: Any = None

    def views(self, out_arrays: list) -> list[torch.Tensor]:
        """The outputs as torch views of their buffers, the reusable ones kept (unless that
        would take all kept buffers together over the budget)."""
        views = [np.asarray(a) for a in out_arrays]
        with _LOCK:
            kept = {
                i: [*self.kept.get(i, ()), (out_arrays[i], weakref.ref(views[i]))][-_KEPT_PER_OUTPUT:]
                for i in self.positions
            }
            size = sum(a.nbytes for pairs in kept.values() for a, _ in pairs)
            if size + sum(r.kept_bytes for r in _POOLING if r is not self) <= SETTINGS.output_reuse_budget:
                self.kept, self.kept_bytes = kept, size
                _POOLING.add(self)
        return [numpy_to_torch(v) for v in views]

    def take_buffers(self) -> list | None:
        """A free kept buffer for every reusable output (taken out of the pool), or None.

        A buffer is free once its NumPy view is gone: the torch tensor made from it holds
        the view, and so do all of that tensor's views, its storage and its exports.
        """
        with _LOCK:
            chosen = []
            for i in self.positions:
                pairs = self.kept.get(i, ())
                k = next((k for k, (_, ref) in enumerate(pairs) if ref() is None), None)
                if k is None:
                    return None
                chosen.append(k)
            buffers = [self.kept[i].pop(k)[0] for i, k in zip(self.positions, chosen)]
            self.kept_bytes -= sum(b.nbytes for b in buffers)
            return buffers

    def release(self) -> None:
        """Let every kept buffer go."""
        with _LOCK:
            self.kept, self.kept_bytes = {}, 0
            _POOLING.discard(self)

    def compile_donating(self, args: tuple, name: str) -> Any:
        """The donating variant, compiled for ``args`` (the program's, then the buffers);
        None if XLA cannot use the buffers or the program does not compile so (the caller
        then turns reuse off: the call runs as it would without it)."""
        jaxpr, out_tree = self.jaxpr, self.out_tree

        def into(cvals, seed, dyn, buffers):
            del buffers  # unused by the math: XLA aliases them to the outputs
            flat = jax.tree_util.tree_leaves((cvals, seed, dyn))
            return jax.tree_util.tree_unflatten(out_tree, jax_core.jaxpr_as_fun(jaxpr)(*flat))

        try:
            with warnings.catch_warnings(record=True) as caught, jax.enable_x64(True):
                warnings.simplefilter("always")
                executable = jax.jit(into, donate_argnums=3, keep_unused=True).trace(*args).lower().compile()
        # An optimisation failing must not fail the call: XLA refusing the program
        # (JaxRuntimeError), or a lowering missing for this form of it (NotImplementedError).
        except (jax.errors.JaxRuntimeError, NotImplementedError) as exc:
            warnings.warn(
                f"{name}: large outputs will not reuse their buffers: the program did not compile "
                f"with donated output buffers ({type(exc).__name__}: {exc})",
                RuntimeWarning,
                stacklevel=5,
            )
            return None
        unusable = [w for w in caught if "donated buffers were not usable" in str(w.message)]
        for w in caught:
            if w not in unusable:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if unusable:
            return None
        self.donating = executable
        return executable
