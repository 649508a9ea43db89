"""Compile-and-cache for captured torch code.

A call is compiled once per *signature*: the input tree structure, the shape and dtype
of every array leaf, the value of every non-array leaf (those are static), and what
the transform itself fixes (argnums, in_dims, ...). Captured tensors are inputs of the
executable, read through the crossing cache on every call. On CPU, large outputs the
caller has dropped are written over by the next call instead of fresh buffers being
faulted in (``_Entry.pool``).
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.extend.core as jax_core
import numpy as np
import torch
from torch.utils import _pytree as pytree

from .capture import Capture, Context, TraceResult, is_size, seed_from_torch, write_back
from .crossing import (
    ARRAY_TYPE,
    array_to_torch,
    crossing_cache,
    numpy_to_torch,
    numpy_view_ok,
    numpy_view_to_torch,
    tensor_to_jax,
)
from .torch_autograd import AutogradProgram

Body = Callable[[Context, tuple, dict], TraceResult]


class _Local(threading.local):
    disabled = 0  # a class default: found without a failed lookup in every thread


_local = _Local()
_STORM_THRESHOLD = 8


_ENV_DISABLED = os.environ.get("TORCHJAX_DISABLE_JIT", "") not in ("", "0")  # read once, at import


def jit_disabled() -> bool:
    return _ENV_DISABLED or _local.disabled > 0


@contextlib.contextmanager
def disable_jit():
    """Run torchjax calls op by op, without ``jax.jit``, for debugging.

    Inside this block (or with the environment variable ``TORCHJAX_DISABLE_JIT=1``)
    each torchjax call runs JAX eagerly on concrete values: ``print`` works inside the
    converted code, and Python control flow on tensor values (``if x.sum() > 0``) works
    outside ``vmap``.

    Example:
        >>> import torch, torchjax
        >>> with torchjax.disable_jit():
        ...     torchjax.func.grad(lambda x: x.sin().sum() if x.sum() > 0 else x.sum())(torch.ones(2))
        tensor([0.5403, 0.5403])
    """
    _local.disabled += 1
    try:
        yield
    finally:
        _local.disabled -= 1


_NO_SEED = np.zeros(2, np.uint32)
_NOT_DIFFERENTIABLE = object()  # a call torch autograd need not record: run it as any other

# Output buffers at least this large are reused from call to call (see _Entry.pool).
REUSE_MIN_BYTES = 16 << 20
_REUSE_KEPT = 2  # buffers kept per output: the caller still holds the previous result
_POOL_LOCK = threading.Lock()
_POOLING: weakref.WeakSet = weakref.WeakSet()  # entries whose pools hold buffers


def _reuse_budget() -> int:
    """How many bytes of output buffers all pools together may keep: the environment's
    ``TORCHJAX_OUTPUT_REUSE_MB`` (0 turns reuse off), else an eighth of physical memory."""
    env = os.environ.get("TORCHJAX_OUTPUT_REUSE_MB")
    if env is not None:
        try:
            return int(float(env) * (1 << 20))
        except ValueError:
            raise ValueError(f"TORCHJAX_OUTPUT_REUSE_MB must be a number of megabytes, got {env!r}") from None
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 8
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not a POSIX system
        return 1 << 30


REUSE_BUDGET = _reuse_budget()  # read once, at import
_PLAIN = (torch.Tensor, torch.nn.Parameter)
_STATIC_TYPES = {int, float, bool, complex, str, type(None), torch.dtype}


class _Slow(Exception):
    """A container the fast flattener does not know: use torch's pytree."""


def _structure(x, leaves: list, dyn: list):
    """A hashable description of ``x``'s tree (its static leaves' values included),
    appending its leaves to ``leaves`` and the positions of its arrays to ``dyn``.

    Covers what calls are made of (tensors, tuples, lists, dicts, Python scalars) in a
    fraction of torch pytree's time; anything else raises :class:`_Slow`. The order of
    leaves is torch pytree's: dicts in insertion order.
    """
    t = type(x)
    if t in _PLAIN or t is ARRAY_TYPE or t is np.ndarray:
        dyn.append(len(leaves))
        leaves.append(x)
        return (x.shape, x.dtype)
    if t is tuple or t is list:
        return (t, *[_structure(e, leaves, dyn) for e in x])
    if t is dict:
        return (dict, tuple(x), *[_structure(e, leaves, dyn) for e in x.values()])
    if t in _STATIC_TYPES:
        leaves.append(x)
        return (t, x)  # the type too: f(x, 1) and f(x, True) must not share a program
    raise _Slow


_SPECS: dict[Any, Any] = {}  # structure -> torch TreeSpec


def _static_key(x):
    if type(x) is slice:  # unhashable before Python 3.12
        return ("slice", x.start, x.stop, x.step)
    return (type(x), x)


def _is_dynamic(x) -> bool:
    return isinstance(x, (torch.Tensor, jax.Array, np.ndarray))


def _leaf_signature(x):
    if isinstance(x, torch.Tensor):
        return ("t", tuple(x.shape), x.dtype)
    return ("a", tuple(x.shape), str(x.dtype))


# dtypes NumPy holds natively: such CPU tensors enter an executable as NumPy views of
# their buffer, which XLA's CPU client takes without a copy (~6 us, against ~30 us
# for a DLPack import).
_NUMPY_DTYPES = {
    torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
    torch.float16, torch.float32, torch.float64, torch.complex64, torch.complex128,
}  # fmt: skip


def _to_jax_leaf(x):
    t = type(x)
    if (t is torch.Tensor or t is torch.nn.Parameter) and x.is_cpu and x.dtype in _NUMPY_DTYPES:
        if not (x.is_conj() or x.is_neg()):
            return (x.detach() if x.requires_grad else x).numpy()
    if isinstance(x, torch.Tensor):
        return crossing_cache.get(x) if x.is_leaf or not x.requires_grad else tensor_to_jax(x)
    return x


class Prepared:
    """A call flattened once: its leaves, where the tensors are, and its signature.

    The torch pytree spec is only needed to trace; it is looked up when first asked for.
    """

    __slots__ = ("_spec", "args", "dyn_pos", "kwargs", "leaves", "sig")

    def __init__(self, leaves: list, spec: Any, dyn_pos: list[int], sig: Any, args=None, kwargs=None):
        self.leaves, self._spec, self.dyn_pos, self.sig = leaves, spec, dyn_pos, sig
        self.args, self.kwargs = args, kwargs

    @property
    def spec(self) -> Any:
        if self._spec is None:
            structure = self.sig[0]
            spec = _SPECS.get(structure)
            if spec is None:
                if len(_SPECS) > 4096:
                    _SPECS.clear()
                spec = _SPECS[structure] = pytree.tree_flatten((self.args, self.kwargs))[1]
            self._spec = spec
        return self._spec

    def static(self) -> tuple:
        return tuple((i, _static_key(x)) for i, x in enumerate(self.leaves) if not _is_dynamic(x))

    def shape_signature(self) -> tuple:
        return (self.spec, tuple(_leaf_signature(self.leaves[i]) for i in self.dyn_pos))


@dataclass(eq=False)  # compared and hashed by identity (kept in _POOLING)
class _Entry:
    executable: Any
    n_captured: int
    used_random: bool
    out_spec: Any
    out_static: dict[int, Any]
    arg_update_slots: list[int]
    captured_update_slots: list[int]
    # whether an input is 64-bit: the executable is then called with jax_enable_x64 on,
    # so that NumPy inputs keep their dtype (float32 programs skip that context)
    x64: bool = True
    # whether every output is a CPU array of a dtype NumPy holds: such outputs cross to
    # torch as NumPy views without further checks (None until the first run tells)
    numpy_out: bool | None = None
    # the previous call's tensor inputs (weak references), to spot a tensor passed again
    last: list = field(default_factory=list)
    # Output buffer reuse. A large output handed to torch is kept (with a weak reference
    # to the NumPy view the torch tensor holds); once the caller has dropped every tensor
    # and view of it, the next call donates it to XLA, which writes that call's output
    # into it. A fresh buffer of hundreds of MB costs more in page faults than the
    # computation writing it. ``reusable``: outputs of at least REUSE_MIN_BYTES the
    # program computes (an input or constant passed through is never kept).
    reusable: tuple[int, ...] = ()
    jaxpr: Any = None  # the traced program, to compile the donating variant from
    out_tree: Any = None
    pool: dict = field(default_factory=dict)  # output position -> [(array, ref to its view)]
    pooled_bytes: int = 0
    reuse_executable: Any = None
    # The trace, compiled into ``executable`` by the first call that does not need
    # gradients (a training loop never does), and its program, which torch autograd
    # differentiates (``autograd``) when a call does.
    traced: Any = None
    program: Any = None
    autograd: AutogradProgram | None = None

    def inputs(self, leaves: list, dyn_pos: list[int]) -> list:
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
            vals.append(_to_jax_leaf(x))
            last[j] = weakref.ref(x) if isinstance(x, torch.Tensor) else None
        return vals

    def outputs(self, out_arrays: list, to_torch: bool) -> Any:
        """The call's result: the output arrays put back into the traced output structure."""
        if to_torch:
            if self.numpy_out is None:
                self.numpy_out = all(type(a) is ARRAY_TYPE and numpy_view_ok(a) for a in out_arrays)
                if not self.numpy_out or REUSE_BUDGET <= 0:
                    self.drop_reuse()
            if self.reusable:
                out_arrays = self._kept_views(out_arrays)
            elif self.numpy_out:
                out_arrays = [numpy_view_to_torch(a) for a in out_arrays]
            else:
                out_arrays = [array_to_torch(a) for a in out_arrays]
        elif self.jaxpr is not None:  # JAX arrays go to the caller as they are: nothing to keep
            self.drop_reuse()
        return self.structure(out_arrays)

    def structure(self, out_values: list) -> Any:
        """The output values put back into the traced output structure."""
        if not self.out_static and self.out_spec.is_leaf():
            return out_values[0]
        out_leaves = []
        it = iter(out_values)
        for i in range(len(out_values) + len(self.out_static)):
            out_leaves.append(self.out_static[i] if i in self.out_static else next(it))
        return pytree.tree_unflatten(out_leaves, self.out_spec)

    def _kept_views(self, out_arrays: list) -> list[torch.Tensor]:
        """The outputs as torch views of their buffers, the reusable ones kept in the pool
        (unless that would take the pools over REUSE_BUDGET)."""
        views = [np.asarray(a) for a in out_arrays]
        with _POOL_LOCK:
            pool = {
                i: [*self.pool.get(i, ()), (out_arrays[i], weakref.ref(views[i]))][-_REUSE_KEPT:] for i in self.reusable
            }
            size = sum(a.nbytes for kept in pool.values() for a, _ in kept)
            if size + sum(e.pooled_bytes for e in _POOLING if e is not self) <= REUSE_BUDGET:
                self.pool, self.pooled_bytes = pool, size
                _POOLING.add(self)
        return [numpy_to_torch(v) for v in views]

    def take_buffers(self) -> list | None:
        """A free kept buffer for every reusable output (taken out of the pool), or None.

        A buffer is free once its NumPy view is gone: the torch tensor made from it holds
        the view, and so do all of that tensor's views, its storage and its exports.
        """
        with _POOL_LOCK:
            chosen = []
            for i in self.reusable:
                kept = self.pool.get(i, ())
                k = next((k for k, (_, ref) in enumerate(kept) if ref() is None), None)
                if k is None:
                    return None
                chosen.append(k)
            buffers = [self.pool[i].pop(k)[0] for i, k in zip(self.reusable, chosen)]
            self.pooled_bytes -= sum(b.nbytes for b in buffers)
            return buffers

    def drop_reuse(self) -> None:
        """Turn reuse off for this program: nothing kept, no donating variant."""
        with _POOL_LOCK:
            self.reusable, self.jaxpr, self.pool, self.pooled_bytes = (), None, {}, 0


class Compiled:
    """The compiled executables of one captured callable, one per signature."""

    def __init__(self, capture: Capture, name: str, held: Any = ()):
        self.capture = capture
        self.name = name
        self.held = held  # objects the cache key names by id, kept alive with it
        self._cache: dict[Any, _Entry] = {}
        # A transform's plan (validation + what it derives from the call) is a function of
        # the call's signature: computed once per signature, then looked up.
        self.plans: dict[Any, Any] = {}
        # signature -> (plan, entry): a repeated call finds both with one lookup
        self.hot: dict[Any, tuple] = {}
        self._static_variants: dict[Any, set] = {}
        self._warned = False

    def prepare(self, args: tuple, kwargs: dict, transform_key: Any = ()) -> Prepared:
        """Flatten a call and compute its signature (``sig`` is None if a static leaf is unhashable)."""
        leaves: list = []
        dyn_pos: list[int] = []
        try:
            structure = tuple([_structure(a, leaves, dyn_pos) for a in args])
            if kwargs:  # tagged: a positional structure never starts with a bare type
                kw = tuple([_structure(v, leaves, dyn_pos) for v in kwargs.values()])
                structure = (dict, structure, tuple(kwargs), kw)
        except _Slow:
            pass
        else:
            return Prepared(leaves, None, dyn_pos, (structure, transform_key), args, kwargs)
        leaves, spec = pytree.tree_flatten((args, kwargs))
        dyn_pos = [i for i, x in enumerate(leaves) if _is_dynamic(x)]
        static = tuple((i, _static_key(x)) for i, x in enumerate(leaves) if not _is_dynamic(x))
        sig = (spec, tuple(_leaf_signature(leaves[i]) for i in dyn_pos), static, transform_key)
        try:
            hash(sig)
        except TypeError:
            sig = None
        return Prepared(leaves, spec, dyn_pos, sig)

    def call(self, body: Body, args: tuple, kwargs: dict, *, transform_key: Any = (), to_torch: bool = True):
        prepared = self.prepare(args, kwargs, transform_key)
        return self.run(body, prepared, plan_key=(), to_torch=to_torch)

    def run(self, body: Body, call: Prepared, *, plan_key: Any = (), to_torch: bool = True):
        """Run a prepared call: compile its signature once (with ``plan_key``, what the
        transform derived from it), then execute."""
        if call.sig is None:
            bad = next(x for x in call.leaves if not _is_dynamic(x) and not _hashable(_static_key(x)))
            raise TypeError(
                f"{self.name}: an argument of type {type(bad).__name__} is neither a tensor nor "
                "hashable; torchjax compiles non-tensor arguments in as constants, so they must be hashable"
            )
        key = (call.sig, plan_key)
        eager = jit_disabled()
        entry = None if eager else self._cache.get(key)
        if entry is None:
            leaves, dyn_pos = call.leaves, call.dyn_pos
            dyn_vals = [_to_jax_leaf(leaves[i]) for i in dyn_pos]
            with jax.enable_x64(True):
                entry, result = self._trace(body, leaves, call.spec, dyn_pos, dyn_vals, eager=eager)
            if eager:
                self._write_back(entry, call, result[1], result[2])
                return entry.outputs(result[0], to_torch)
            self._cache[key] = entry
            self._note_variant((call.shape_signature(), plan_key), call.static())
        return self.execute(entry, call, to_torch)

    def entry(self, sig: Any, plan_key: Any) -> _Entry | None:
        """The compiled entry of a signature, if there is one."""
        return self._cache.get((sig, plan_key))

    def execute(self, entry: _Entry, call: Prepared, to_torch: bool = True):
        """One call of a compiled entry: inputs in, writes to inputs and captured tensors
        applied, outputs out."""
        dyn_vals = entry.inputs(call.leaves, call.dyn_pos)
        cvals = self.capture.captured_values(entry.n_captured)
        seed = seed_from_torch() if entry.used_random else _NO_SEED
        if to_torch and torch.is_grad_enabled():
            wrt = self._requiring_grad(entry, call)
            if wrt:
                out = self._execute_differentiable(entry, call, wrt, [*cvals, seed, *dyn_vals])
                if out is not _NOT_DIFFERENTIABLE:
                    return out
        args: tuple = (cvals, seed, dyn_vals)
        executable = entry.executable
        if executable is None:
            executable = self._compile_plain(entry)
        buffers = entry.take_buffers() if entry.pool else None
        if buffers is not None:
            args = (*args, buffers)
            reuse = entry.reuse_executable or self._compile_reuse(entry, args)
            if reuse is None:
                args = args[:3]
            else:
                executable = reuse
        if entry.x64:
            with jax.enable_x64(True):
                out_arrays, arg_updates, cap_updates = executable(*args)
        else:
            out_arrays, arg_updates, cap_updates = executable(*args)
        if arg_updates or cap_updates:
            self._write_back(entry, call, arg_updates, cap_updates)
        return entry.outputs(out_arrays, to_torch)

    def _compile_plain(self, entry: _Entry):
        with jax.enable_x64(True):
            entry.executable = entry.traced.lower().compile()
        entry.traced = None
        return entry.executable

    def _requiring_grad(self, entry: _Entry, call: Prepared) -> tuple[int, ...]:
        """Positions, among the program's inputs (captured tensors, seed, call tensors),
        of the tensors that require grad (only floating and complex tensors can)."""
        n = entry.n_captured
        captured = self.capture.captured
        wrt = [i for i in range(n) if captured[i].requires_grad]
        leaves = call.leaves
        for j, i in enumerate(call.dyn_pos):
            x = leaves[i]
            if isinstance(x, torch.Tensor) and x.requires_grad:
                wrt.append(n + 1 + j)
        return tuple(wrt)

    def _execute_differentiable(self, entry: _Entry, call: Prepared, wrt: tuple[int, ...], values: list):
        """A call torch autograd records: its outputs' backward is the compiled pullback of
        the program (see ``torch_autograd``). Writes to buffers are applied once, here."""
        program = entry.autograd
        if program is None:
            n_out = len(entry.program.jaxpr.outvars) - len(entry.arg_update_slots) - len(entry.captured_update_slots)
            program = entry.autograd = AutogradProgram(entry.program, n_out, self.name)
        leaves = call.leaves
        sources = [
            *self.capture.captured[: entry.n_captured],
            None,  # the PRNG seed
            *[leaves[i] if isinstance(leaves[i], torch.Tensor) else None for i in call.dyn_pos],
        ]
        result = program.run(wrt, values, sources)
        if result is None:
            return _NOT_DIFFERENTIABLE
        outs, updates = result
        if updates:
            k = len(entry.arg_update_slots)
            self._write_back(entry, call, updates[:k], updates[k:])
        return entry.structure(outs)

    def _compile_reuse(self, entry: _Entry, args: tuple):
        """The entry's program with one more argument, the buffers to write the reusable
        outputs into (donated). None, and reuse turned off for the entry, if XLA cannot
        use them or the program does not compile so (the call then runs as before)."""
        jaxpr, out_tree = entry.jaxpr, entry.out_tree

        def into(cvals, seed, dyn, buffers):
            del buffers  # unused by the math: XLA aliases them to the outputs
            flat = jax.tree_util.tree_leaves((cvals, seed, dyn))
            return jax.tree_util.tree_unflatten(out_tree, jax_core.jaxpr_as_fun(jaxpr)(*flat))

        try:
            with warnings.catch_warnings(record=True) as caught, jax.enable_x64(True):
                warnings.simplefilter("always")
                executable = jax.jit(into, donate_argnums=3, keep_unused=True).trace(*args).lower().compile()
        except Exception as exc:  # an optimisation failing must not fail the call
            entry.drop_reuse()
            warnings.warn(
                f"{self.name}: large outputs will not reuse their buffers: the program did not compile "
                f"with donated output buffers ({type(exc).__name__}: {exc})",
                RuntimeWarning,
                stacklevel=4,
            )
            return None
        unusable = [w for w in caught if "donated buffers were not usable" in str(w.message)]
        for w in caught:
            if w not in unusable:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if unusable:
            entry.drop_reuse()
            return None
        entry.reuse_executable = executable
        return executable

    def _write_back(self, entry: _Entry, call: Prepared, arg_updates: list, cap_updates: list) -> None:
        for slot, value in zip(entry.arg_update_slots, arg_updates):
            target = call.leaves[call.dyn_pos[slot]]
            if isinstance(target, torch.Tensor):
                write_back(target, value)
        for slot, value in zip(entry.captured_update_slots, cap_updates):
            write_back(self.capture.captured[slot], value)

    def _trace(self, body, leaves, spec, dyn_pos, dyn_vals, *, eager: bool):
        meta: dict[str, Any] = {}

        def pure(cvals, seed, dyn):
            full = list(leaves)
            for i, v in zip(dyn_pos, dyn):
                full[i] = v
            a, k = pytree.tree_unflatten(full, spec)
            ctx = Context(self.capture, cvals, key=jax.numpy.asarray(seed))
            res = body(ctx, a, k)
            out_leaves, out_spec = pytree.tree_flatten(res.out, is_leaf=is_size)
            arrays = [x for x in out_leaves if isinstance(x, (jax.Array, jax.core.Tracer))]
            meta["out_spec"] = out_spec
            meta["out_static"] = {
                i: x for i, x in enumerate(out_leaves) if not isinstance(x, (jax.Array, jax.core.Tracer))
            }
            meta["discovered"] = ctx.discovered
            meta["used_random"] = ctx.used_random
            arg_slots = sorted(res.arg_updates)
            meta["arg_update_slots"] = [dyn_pos.index(i) for i in arg_slots]
            cap = [(slot, jt.value) for _, jt, slot in ctx.mutated_lifted()]
            meta["captured_update_slots"] = [s for s, _ in cap]
            return arrays, [res.arg_updates[i] for i in arg_slots], [v for _, v in cap]

        seed = seed_from_torch() if eager else np.zeros(2, np.uint32)  # eager: a debug path
        for _ in range(3):
            cvals = self.capture.captured_values()
            if eager:
                result = pure(cvals, seed, [jax.numpy.asarray(v) if isinstance(v, np.ndarray) else v for v in dyn_vals])
                break
            traced = jax.jit(pure).trace(cvals, seed, dyn_vals)
            if not meta["discovered"]:
                break
        else:  # pragma: no cover - a function that meets new tensors on every trace
            raise RuntimeError(f"{self.name}: the captured tensors kept changing between traces")
        reusable = () if eager else _reusable(traced.jaxpr.jaxpr, traced.out_info[0])
        entry = _Entry(
            reusable=reusable,
            jaxpr=traced.jaxpr if reusable else None,
            out_tree=jax.tree_util.tree_structure(traced.out_info) if reusable else None,
            x64=any(_is_64_bit(v.dtype) for v in (*cvals, *dyn_vals)),
            executable=None,
            traced=None if eager else traced,
            program=None if eager else traced.jaxpr,
            n_captured=len(cvals),
            used_random=meta["used_random"],
            out_spec=meta["out_spec"],
            out_static=meta["out_static"],
            arg_update_slots=meta["arg_update_slots"],
            captured_update_slots=meta["captured_update_slots"],
        )
        return entry, (result if eager else None)

    def _note_variant(self, shape_sig, static) -> None:
        variants = self._static_variants.setdefault(shape_sig, set())
        variants.add(static)
        if len(variants) >= _STORM_THRESHOLD and not self._warned:
            self._warned = True
            changing = _changing_positions(variants)
            warnings.warn(
                f"{self.name}: compiled {len(variants)} times for inputs of the same shapes because "
                f"non-tensor arguments changed value (leaf positions {changing}). Each new Python "
                "number is compiled in as a constant; pass values that change as tensors "
                "(torch.tensor(x)) to compile once.",
                RuntimeWarning,
                stacklevel=4,
            )

    def cache_size(self) -> int:
        return len(self._cache)


def _reusable(jaxpr, outputs: list) -> tuple[int, ...]:
    """Positions of the outputs worth a kept buffer: at least REUSE_MIN_BYTES, and
    computed by the program rather than an input or a constant passed through (a kept
    buffer is written over by the next call)."""
    passed = {id(v) for v in (*jaxpr.invars, *jaxpr.constvars)}
    return tuple(
        i
        for i, (var, out) in enumerate(zip(jaxpr.outvars, outputs))
        if not isinstance(var, jax_core.Literal)
        and id(var) not in passed
        and out.size * out.dtype.itemsize >= REUSE_MIN_BYTES
    )


_64_BIT = {np.dtype(d) for d in ("float64", "int64", "uint64", "complex128")}


def _is_64_bit(dtype) -> bool:
    return np.dtype(dtype) in _64_BIT


def _hashable(x) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


def _changing_positions(variants) -> list[int]:
    dicts = [dict(v) for v in variants]
    keys = set().union(*dicts)
    return sorted(k for k in keys if len({repr(d.get(k)) for d in dicts}) > 1)
