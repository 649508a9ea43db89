"""vmap, executed by ``jax.vmap``, with torch.func's in_dims/out_dims/randomness semantics."""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from torch.utils import _pytree as pytree

from .._compat import (
    broadcast_to_and_flatten,
    check_out_dims_is_int_or_int_pytree,
    check_randomness_arg,
    process_batched_inputs,
    trace_of,
)
from ..capture import TraceResult
from .base import Settings, Transform, fn_name, prefix_error
from .body import Body, Traced

RANDOM_ERROR = (
    "vmap: called random operation while in randomness error mode. Please either use the "
    "'same' or 'different' randomness flags on vmap or perform the randomness operation out of vmap"
)

_axis_names = (f"torchjax_vmap_{i}" for i in itertools.count())


@dataclasses.dataclass(frozen=True, eq=False)
class VmapSettings(Settings):
    in_dims: Any = 0
    out_dims: Any = 0
    randomness: str = "error"
    chunk_size: int | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class _Batched:
    """Which outputs and writes of one traced run vary per sample (are batched by this vmap)."""

    out: tuple[bool, ...]
    args: tuple[bool, ...]
    lifted: tuple[bool, ...]

    @staticmethod
    def of(level: Any, outs: list, traced: Traced) -> _Batched:
        """``level`` is this vmap's trace: a value is batched if it is one of its tracers."""

        def batched(values):
            return tuple(level is not None and trace_of(x) is level for x in values)

        return _Batched(batched(outs), batched(traced.side.arg_values), batched(traced.side.lifted_values))


# all static: it leaves jax.vmap in the output's tree structure
jax.tree_util.register_dataclass(_Batched, data_fields=[], meta_fields=["out", "args", "lifted"])


@dataclasses.dataclass(frozen=True)
class _Mapped:
    """One ``jax.vmap`` of the function: its outputs (batch axis first) and what its run left."""

    outs: list
    traced: Traced
    batched: _Batched


class Vmap(Transform):
    api = "vmap"
    settings: VmapSettings

    def __init__(self, fn: Callable, settings: VmapSettings):
        super().__init__(fn, settings)
        check_randomness_arg(settings.randomness)
        chunk_size = settings.chunk_size
        if not (chunk_size is None or chunk_size > 0):
            raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")
        check_out_dims_is_int_or_int_pytree(settings.out_dims, fn)

    def call_repr(self):
        return f"vmap({fn_name(self.fn)}, in_dims={self.settings.in_dims}, ...)(<inputs>)"

    def plan(self, args, kwargs):
        batch_size, flat_in_dims, flat_args, _ = process_batched_inputs(self.settings.in_dims, args, self.fn)
        dims = tuple(None if d is None else d % max(a.dim(), 1) for d, a in zip(flat_in_dims, flat_args))
        return batch_size, dims

    def impl(self, ctx, plan, args, kwargs):
        batch_size, flat_in = plan
        flat_args, spec = pytree.tree_flatten(args)
        mapped = [i for i, d in enumerate(flat_in) if d is not None]
        # One key for the whole batch: sample i draws from fold_in(key, i) whichever chunk
        # it falls in, so chunks draw differently under 'different' and alike under 'same'.
        base_key = ctx.derive_key() if self.settings.randomness != "error" else None
        once = functools.partial(self._vmap_once, ctx, spec, flat_in, mapped, kwargs, base_key)
        chunk = self.settings.chunk_size or batch_size
        if chunk >= batch_size:
            run = once(flat_args, batch_size)
        else:
            run = _vmap_chunked(once, flat_args, flat_in, mapped, batch_size, chunk)
        out = _place_outputs(self.fn, self.settings.out_dims, run)
        unbatched = _unbatched_writes(run, flat_in)
        if unbatched:
            raise self._unbatched_write_error(once, flat_args, batch_size, flat_in, unbatched, run)
        return TraceResult(out, _place_side(ctx, run, flat_in))

    def _vmap_once(self, ctx, spec, flat_in, mapped, kwargs, base_key, flat_args, batch_size, offset=0, randomness=""):
        """``jax.vmap`` of the function over ``batch_size`` samples, the first being sample ``offset``."""
        name = next(_axis_names)
        randomness = randomness or self.settings.randomness

        def args_of(vals) -> tuple:
            full = list(flat_args)
            for i, v in zip(mapped, vals):
                full[i] = v
            return pytree.tree_unflatten(full, spec)

        def key():
            if randomness == "different":
                return jax.random.fold_in(base_key, offset + jax.lax.axis_index(name))
            return base_key if randomness == "same" else None

        rng_error = f"{self.call_repr()}: {RANDOM_ERROR}" if randomness == "error" else None
        body = Body(self.fn, ctx, args_of, kwargs, call=self.call_repr(), key=key, rng_error=rng_error)

        def per_sample(*vals):
            outs, traced = body(*vals)
            return outs, (traced, _Batched.of(trace_of(vals[0]) if vals else None, outs, traced))

        in_axes = [flat_in[i] for i in mapped]
        outs, (traced, batched) = jax.vmap(
            per_sample, in_axes=in_axes, out_axes=0, axis_name=name, axis_size=batch_size
        )(*[flat_args[i] for i in mapped])
        return _Mapped(outs, traced, batched)

    def _unbatched_write_error(self, once, flat_args, batch_size, flat_in, unbatched, run: _Mapped) -> RuntimeError:
        """Which error a per-sample write into an unvmapped tensor gets, as torch.func tells them apart.

        Under randomness='different' the write may come from an in-place random op
        (``y.normal_()``): the function is traced once more with one key for all samples,
        and a write that is no longer per-sample was made of draws only. Only on this
        error path, so the normal call never pays for it.
        """
        if self.settings.randomness == "different" and run.traced.used_random:
            same = once(flat_args, batch_size, randomness="same")
            if set(unbatched) - set(_unbatched_writes(same, flat_in)):
                return prefix_error(RuntimeError(_RANDOM_INPLACE), self.call_repr())
        return _inplace_error(self)


def _unbatched_writes(run: _Mapped, flat_in) -> list:
    """The tensors not vmapped over (unbatched inputs, captured tensors) that got a per-sample value."""
    side = run.traced.side
    bad: list = []
    for slot, batched in zip(side.arg_slots, run.batched.args):
        if batched and (slot >= len(flat_in) or flat_in[slot] is None):
            bad.append(("input", slot))
    for t, batched in zip(side.lifted, run.batched.lifted):
        if batched:
            bad.append(("captured", id(t)))
    return bad


_RANDOM_INPLACE = (
    "Cannot ask for different inplace randomness on an unbatched tensor. This will appear "
    "like same randomness. Draw into a tensor that is vmapped over instead (y = torch.randn_like(x) "
    "for a vmapped x), or pass randomness='same' if every sample should see the same draw."
)


def _inplace_error(t: Vmap) -> RuntimeError:
    return prefix_error(
        RuntimeError(
            "vmap: inplace arithmetic(self, *extra_args) is not possible because a tensor that is "
            "not being vmapped over (an unbatched input or a tensor captured from outside) would "
            "receive a per-sample value. Write the result out-of-place instead (y = x + other), "
            "or vmap over that tensor as well."
        ),
        t.call_repr(),
    )


def vmap(func: Callable, in_dims: Any = 0, out_dims: Any = 0, randomness: str = "error", *,
         chunk_size: int | None = None) -> Callable:  # fmt: skip
    """``torch.func.vmap``, executed by ``jax.vmap``.

    Example:
        >>> import torch, torchjax.func as func
        >>> func.vmap(torch.dot)(torch.ones(3, 2), torch.ones(3, 2))
        tensor([2., 2., 2.])
    """
    return Vmap(func, VmapSettings(in_dims, out_dims, randomness, chunk_size))


def _vmap_chunked(once, flat_args, flat_in, mapped, batch_size, chunk) -> _Mapped:
    runs = []
    for start in range(0, batch_size, chunk):
        stop = min(start + chunk, batch_size)
        part = list(flat_args)
        for i in mapped:
            part[i] = jax.lax.slice_in_dim(flat_args[i], start, stop, axis=flat_in[i])
        runs.append(once(part, stop - start, offset=start))
    outs = [jnp.concatenate(parts, axis=0) for parts in zip(*(r.outs for r in runs))]
    side = jax.tree_util.tree_map(lambda *p: jnp.concatenate(p, axis=0), *(r.traced.side for r in runs))
    last = runs[-1]
    return _Mapped(outs, dataclasses.replace(last.traced, side=side), last.batched)


def _place_outputs(fn, out_dims, run: _Mapped):
    """The outputs with their batch axes where ``out_dims`` puts them, as torch.func checks them."""
    out_pack = run.traced.out_pack
    out_spec, static = out_pack.spec, out_pack.static
    flat_out_dims = broadcast_to_and_flatten(out_dims, out_spec)
    if flat_out_dims is None:
        raise ValueError(
            f"vmap({fn_name(fn)}, ..., out_dims={out_dims})(<inputs>): out_dims is not "
            f"compatible with the structure of `outputs`. out_dims has structure "
            f"{pytree.tree_flatten(out_dims)[1]} but outputs has structure {out_spec}."
        )
    name = fn_name(fn)
    arrays = iter(zip(run.outs, run.batched.out))
    leaves = []
    for i, d in enumerate(flat_out_dims):
        if i in static:
            if d is not None:
                raise ValueError(
                    f"vmap({name}, ...): `{name}` must only return Tensors, got type "
                    f"{type(static[i])}. Did you mean to set out_dims= to None for output?"
                )
            leaves.append(static[i])
            continue
        value, batched = next(arrays)
        if d is None:
            if batched:
                raise ValueError(f"vmap({name}, ...): `{name}` can not return a BatchedTensor when out_dim is None")
            leaves.append(value[0])
        else:
            leaves.append(jnp.moveaxis(value, 0, d % value.ndim))
    return pytree.tree_unflatten(leaves, out_spec)


def _place_side(ctx, run: _Mapped, flat_in) -> dict[int, Any]:
    """Writes to the inputs and captured tensors, one level up (none is per-sample into an unvmapped tensor)."""
    side = run.traced.side
    placed_args = []
    for slot, value in zip(side.arg_slots, side.arg_values):
        d = flat_in[slot] if slot < len(flat_in) else None
        placed_args.append(value[0] if d is None else jnp.moveaxis(value, 0, d))
    placed_lifted = [value[0] for value in side.lifted_values]
    return dataclasses.replace(side, arg_values=placed_args, lifted_values=placed_lifted).apply(ctx)
