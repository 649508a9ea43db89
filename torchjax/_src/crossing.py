"""Crossing tensors between torch and JAX through DLPack.

Aligned dense CPU tensors cross zero-copy in both directions (the JAX array and the
torch tensor share one buffer). Every dtype crosses unchanged: the conversion runs
under a scoped ``jax.enable_x64(True)`` so int64/float64 are never narrowed, and the
user's global JAX config is left alone.
"""

from __future__ import annotations

import functools
import warnings
import weakref
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch.utils import _pytree as pytree

from . import caches, dtypes
from ._compat import (
    ShapedArray,
    batched_device_put,
    disable_current_modes,
    get_current_dispatch_mode,
    storage_use_count,
)

# XLA's CPU client takes foreign buffers without a copy only when they are aligned.
_ALIGNMENT = 16


def _is_jax_array(x) -> bool:
    return isinstance(x, jax.Array)


def _dlpack_ready(t: torch.Tensor) -> torch.Tensor:
    """``t`` in a form DLPack accepts: detached, dense, aligned. Copies only when it must."""
    t = t.detach()
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    if not t.is_contiguous() or (t.numel() > 0 and t.data_ptr() % _ALIGNMENT):
        t = t.clone(memory_format=torch.contiguous_format)
    return t


def tensor_to_jax(t: torch.Tensor) -> jax.Array:
    """One torch tensor -> ``jax.Array``, zero-copy where the buffer allows it."""
    carried = getattr(t, "jax", None)
    if carried is not None:  # a tensor that carries its JAX value (torchjax's JaxTensor)
        return carried()
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"to_jax_array: expected a torch.Tensor, got {type(t).__name__}")
    if t.device.type == "meta":
        raise ValueError("to_jax_array: a meta tensor has no data to cross")
    if get_current_dispatch_mode() is None:
        return _ready_to_jax(_dlpack_ready(t), t.dtype)
    with disable_current_modes():  # crossing may run while a capture's dispatch mode is on
        return _ready_to_jax(_dlpack_ready(t), t.dtype)


def _ready_to_jax(ready: torch.Tensor, dtype: torch.dtype) -> jax.Array:
    if ready.device.type == "cpu" and ready.numel() and ready.dtype in _NUMPY_NATIVE_TORCH:
        return _put_cpu(ready.numpy())
    # ensure_compile_time_eval: crossing may happen while JAX traces (a captured tensor
    # met for the first time); the result must be a concrete array, never a tracer.
    with jax.enable_x64(True), jax.ensure_compile_time_eval():
        if ready.numel() == 0 or ready.dtype not in _DLPACK_DTYPES:
            return jnp.asarray(_to_numpy(ready), dtype=dtypes.to_jax_dtype(dtype))
        if ready.device.type == "cpu":
            return jax.device_put(_to_numpy(ready))
        return jax.dlpack.from_dlpack(ready)


def _put_cpu(a: np.ndarray) -> jax.Array:
    """A NumPy view of a CPU tensor -> an *uncommitted* ``jax.Array`` on the CPU device.

    Zero-copy when the buffer is aligned (torch's are), like DLPack; uncommitted, as jit
    outputs and optax states are (mixing committed and uncommitted arrays makes
    ``jax.jit`` compile a second time). This is what ``jax.device_put(a)`` does for a
    NumPy array, called directly: ~4 us instead of ~28 us per tensor. Its dtype is
    ``a``'s exactly, whatever ``jax_enable_x64`` says.
    """
    device = _cpu_device()
    aval = ShapedArray(a.shape, a.dtype)
    return batched_device_put(aval, _cpu_sharding(device), [a], [device], False, enable_x64=True)


@functools.cache
def _cpu_device():
    return jax.devices("cpu")[0]


@functools.cache
def _cpu_sharding(device):
    return jax.sharding.SingleDeviceSharding(device)


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).cpu().numpy().view(jnp.bfloat16)
    if t.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
        return t.view(torch.uint8).cpu().numpy().view(dtypes.to_jax_dtype(t.dtype))
    return t.cpu().numpy()


_DLPACK_DTYPES = {
    torch.bool,
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.complex64,
    torch.complex128,
}


ARRAY_TYPE = type(jnp.zeros(()))  # jax.Array is an ABC; this is its one concrete type
_FAST_DTYPES = {jnp.dtype(d) for d in ("bool", "uint8", "int8", "int16", "int32", "int64", "float16",
                                       "bfloat16", "float32", "float64", "complex64", "complex128")}  # fmt: skip


_NUMPY_NATIVE = _FAST_DTYPES - {jnp.dtype("bfloat16")}
_NUMPY_NATIVE_TORCH = _DLPACK_DTYPES - {torch.bfloat16}
_TORCH_OF = {dtypes.to_jax_dtype(t): t for t in _NUMPY_NATIVE_TORCH}
_CPU_DEVICES: set = set()


def _is_cpu(a: jax.Array) -> bool:
    devs = a.devices()
    if len(devs) != 1:
        return False
    (dev,) = devs
    if dev in _CPU_DEVICES:
        return True
    if dev.platform == "cpu":
        _CPU_DEVICES.add(dev)
        return True
    return False


def numpy_view_ok(a: jax.Array) -> bool:
    """Whether ``a`` can cross to torch as NumPy's view of its buffer: one CPU buffer of a
    dtype NumPy holds."""
    return a.dtype in _NUMPY_NATIVE and _is_cpu(a)


_readonly_warning_taken = False


def numpy_view_to_torch(a: jax.Array) -> torch.Tensor:
    return numpy_to_torch(np.asarray(a))


def numpy_to_torch(view: np.ndarray) -> torch.Tensor:
    """A torch tensor sharing the buffer of ``view`` (NumPy's read-only view of a JAX
    buffer); the tensor's storage holds ``view`` alive."""
    # torch warns once per process that a read-only NumPy array backs a tensor. The
    # buffer is shared with the JAX array exactly as a DLPack import would share it
    # (zero-copy crossing); take that one warning quietly.
    global _readonly_warning_taken
    if not _readonly_warning_taken:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = torch.from_numpy(view)
        _readonly_warning_taken = True
        return out
    return torch.from_numpy(view)


def array_to_torch(a: Any) -> torch.Tensor:
    """One ``jax.Array`` -> torch tensor, zero-copy through DLPack."""
    if isinstance(a, torch.Tensor):
        return a
    if type(a) is ARRAY_TYPE and a.dtype in _FAST_DTYPES:
        try:  # the common case: one dense buffer on one device
            if numpy_view_ok(a):
                # NumPy's view of a CPU buffer: zero-copy, ~1 us against ~5 us for DLPack
                return numpy_view_to_torch(a)
            if a.size:
                return torch.from_dlpack(a)
        except (RuntimeError, TypeError, BufferError, ValueError):
            pass
    if not isinstance(a, jax.Array):
        a = jnp.asarray(a)
    if getattr(a, "is_fully_addressable", True) is False:
        raise ValueError(
            "to_torch: the array is sharded across processes; gather it first "
            "(jax.experimental.multihost_utils.process_allgather)"
        )
    if len(a.sharding.device_set) > 1:
        a = jax.device_put(a, next(iter(a.sharding.device_set)))
    tdtype = dtypes.to_torch_dtype(a.dtype)
    if a.size == 0 or tdtype not in _DLPACK_DTYPES:
        return torch.from_numpy(np.asarray(a).copy()).view(tdtype) if a.size else torch.empty(a.shape, dtype=tdtype)
    return torch.from_dlpack(a)


def to_jax_array(tree: Any) -> Any:
    """Torch tensors (in any pytree) -> ``jax.Array``s; other leaves unchanged.

    Aligned dense CPU tensors cross without a copy: the result shares the buffer, and
    crossing the same unchanged tensor again returns the same array without new work.
    ``requires_grad`` tensors cross detached. dtypes are kept exactly (int64 stays
    int64, float64 stays float64), whatever the global ``jax_enable_x64`` says.

    Example:
        >>> import torch, torchjax
        >>> t = torch.arange(4, dtype=torch.int64)
        >>> a = torchjax.to_jax_array(t)
        >>> a.dtype, a.unsafe_buffer_pointer() == t.data_ptr()
        (dtype('int64'), True)
    """
    return pytree.tree_map(_cached_to_jax, tree)


def _cached_to_jax(x: Any) -> Any:
    if not isinstance(x, torch.Tensor):
        return x
    # A tensor crossed before and unchanged since (same version counter, buffer, shape,
    # strides, dtype) is not crossed again: a model's parameters cost a lookup per call.
    return crossing_cache.get(x) if x.is_leaf or not x.requires_grad else tensor_to_jax(x)


def to_torch(tree: Any) -> Any:
    """``jax.Array``s (in any pytree) -> torch tensors, zero-copy; other leaves unchanged.

    Example:
        >>> import jax.numpy as jnp, torchjax
        >>> torchjax.to_torch({"w": jnp.ones((2, 3))})["w"].shape
        torch.Size([2, 3])
    """
    return pytree.tree_map(lambda x: array_to_torch(x) if _is_jax_array(x) else x, tree)


class CrossingCache:
    """Remembers the JAX array made for a torch tensor until the tensor changes.

    A tensor is unchanged while its ``_version`` (bumped by every in-place op), data
    pointer, shape, strides and dtype are the same; parameters of a model that nothing
    touched therefore cross once, not on every call.
    """

    def __init__(self):
        self._entries: dict[int, tuple] = {}

    def clear(self) -> None:
        self._entries.clear()

    def get(self, t: torch.Tensor) -> jax.Array:
        key = id(t)
        sig = (t._version, t.data_ptr() if t.numel() else 0, t.shape, t.stride(), t.dtype)
        hit = self._entries.get(key)
        if hit is not None and hit[0]() is t and hit[1] == sig and not hit[2].is_deleted():
            return hit[2]  # (an array the user donated to a jit or deleted is crossed anew)
        arr = tensor_to_jax(t)
        if t.numel() == 0 or _buffer_pointer(arr) != t.data_ptr():
            # a copy: caching it could serve a stale value after a write through `.data`
            return arr
        try:
            ref = weakref.ref(t, lambda _r, k=key: self._entries.pop(k, None))
        except TypeError:
            return arr
        self._entries[key] = (ref, sig, arr)
        return arr

    def put(self, t: torch.Tensor, arr: jax.Array) -> None:
        """Remember ``arr`` as ``t``'s JAX value (they hold the same values now)."""
        key = id(t)
        sig = (t._version, t.data_ptr() if t.numel() else 0, t.shape, t.stride(), t.dtype)
        hit = self._entries.get(key)
        if hit is not None and hit[0]() is t:  # its weak reference made once (a step's state)
            self._entries[key] = (hit[0], sig, arr)
            return
        try:
            ref = weakref.ref(t, lambda _r, k=key: self._entries.pop(k, None))
        except TypeError:
            return
        self._entries[key] = (ref, sig, arr)

    def forget(self, t: torch.Tensor) -> None:
        self._entries.pop(id(t), None)


_PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)


def write_into(t: torch.Tensor, value: jax.Array) -> None:
    """Give torch tensor ``t`` the values of ``value`` (an update computed by JAX); see
    :func:`write_all`."""
    write_all([(t, value)])


def release_all(pairs: list[tuple[torch.Tensor, Any]]) -> list[tuple[torch.Tensor, Any]]:
    """Let go of each tensor's storage where it is NumPy's view of its value's buffer and
    nothing else sees it, so that the value can be donated to XLA (which writes an update
    into a buffer only when no view of it exists). Returns the pairs let go of; each such
    tensor is empty until :func:`write_all` gives it its update (``released``), or
    :func:`restore`."""
    released = []
    with torch.no_grad():
        for t, value in pairs:
            if type(t) not in _PLAIN_TENSORS or type(value) is not ARRAY_TYPE or not t.numel():
                continue
            if t.data_ptr() != _buffer_pointer(value) or storage_use_count(t.untyped_storage()._cdata) > 2:
                continue
            empty = _EMPTY.get(t.dtype)
            if empty is None:
                empty = _EMPTY[t.dtype] = torch.empty(0, dtype=t.dtype)
            t.set_(empty)
            released.append((t, value))
    return released


_EMPTY: dict[torch.dtype, torch.Tensor] = {}  # what a let-go tensor views meanwhile


def restore(t: torch.Tensor, value: Any) -> None:
    """Undo :func:`release` (the call failed): ``t`` views ``value`` again."""
    if value.is_deleted():
        raise RuntimeError(
            f"torchjax: a tensor of shape {tuple(value.shape)} was given to XLA to update in place and the "
            "program failed after taking it; its value is lost"
        )
    with torch.no_grad():
        t.set_(numpy_to_torch(np.asarray(value)))
    crossing_cache.put(t, value)


def write_all(updates: list[tuple[torch.Tensor, Any]], released: frozenset[int] | set[int] = frozenset()) -> None:
    """Give each torch tensor the values of its update computed by JAX.

    Where nothing else can see a tensor's storage (no view, no export alive), the tensor
    takes the update's buffer over, zero-copy: its storage becomes NumPy's view of that
    buffer, as an output's does, and the update is remembered as the tensor's JAX value,
    so that the next call reads it without crossing (a training step's parameters and
    optimizer state live so between calls). Otherwise the update is copied into the
    tensor's storage, in place, and remembered all the same. A tensor in ``released``
    (ids; see :func:`release`) takes its update's buffer over.
    """
    cache = crossing_cache
    with torch.no_grad():
        for t, value in updates:
            if id(t) in released or _can_take_over(t, value):
                t.set_(numpy_to_torch(np.asarray(value)))
            else:
                t.copy_(array_to_torch(value))
            if type(value) is ARRAY_TYPE:
                cache.put(t, value)


def _can_take_over(t: torch.Tensor, value: Any) -> bool:
    if type(t) not in _PLAIN_TENSORS or type(value) is not ARRAY_TYPE or value.dtype not in _NUMPY_NATIVE:
        return False
    if t.shape != value.shape or t._base is not None or t.storage_offset() or not t.is_contiguous():
        return False
    if (
        not t.is_cpu
        or t.dtype not in _NUMPY_NATIVE_TORCH
        or t.dtype != _TORCH_OF.get(value.dtype)
        or not _is_cpu(value)
    ):
        return False
    if t.is_conj() or t.is_neg():
        return False
    storage = t.untyped_storage()
    if storage.nbytes() != t.numel() * t.element_size():
        return False
    crossing_cache.forget(t)  # its array of the old buffer (if any) is what would keep it seen
    return storage_use_count(storage._cdata) <= 2  # ``t`` and ``storage`` here


def _buffer_pointer(a: jax.Array) -> int | None:
    try:
        return a.unsafe_buffer_pointer()
    except jax.errors.JaxRuntimeError:  # a sharded (or deleted) array has no single pointer
        return None


crossing_cache = CrossingCache()
caches.register("crossing.arrays", crossing_cache.clear)
