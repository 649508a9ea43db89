"""vmap, executed by ``jax.vmap``, with torch.func's in_dims/out_dims/randomness semantics."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from torch.utils import _pytree as pytree

from ..capture import TraceResult, is_array
from .autodiff import _RANDOM_ERROR
from .base import Child, Transform, fn_name, prefix_error

_axis_names = (f"torchjax_vmap_{i}" for i in itertools.count())


def _batched(x, trace) -> bool:
    return trace is not None and getattr(x, "_trace", None) is trace


class Vmap(Transform):
    api = "vmap"

    def __init__(self, fn: Callable, in_dims=0, out_dims=0, randomness: str = "error", chunk_size=None):
        super().__init__(fn)
        from torch._functorch.vmap import _check_out_dims_is_int_or_int_pytree, _check_randomness_arg

        _check_randomness_arg(randomness)
        if not (chunk_size is None or chunk_size > 0):
            raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")
        _check_out_dims_is_int_or_int_pytree(out_dims, fn)
        self.in_dims = in_dims
        self.out_dims = out_dims
        self.randomness = randomness
        self.chunk_size = chunk_size
        self._config = None

    def config_key(self):
        if self._config is not None:
            return self._config
        key = (_freeze(self.in_dims), _freeze(self.out_dims), self.randomness, self.chunk_size)
        if not (_mutable(self.in_dims) or _mutable(self.out_dims)):
            self._config = key  # computed on every call only while a list or dict could change
        return key

    def call_repr(self):
        return f"vmap({fn_name(self.fn)}, in_dims={self.in_dims}, ...)(<inputs>)"

    def plan(self, args, kwargs):
        from torch._functorch.vmap import _process_batched_inputs

        batch_size, flat_in_dims, flat_args, _ = _process_batched_inputs(self.in_dims, args, self.fn)
        dims = tuple(None if d is None else d % max(a.dim(), 1) for d, a in zip(flat_in_dims, flat_args))
        return batch_size, dims

    def impl(self, ctx, plan, args, kwargs):
        batch_size, flat_in = plan
        flat_args, spec = pytree.tree_flatten(args)
        mapped = [i for i, d in enumerate(flat_in) if d is not None]
        # One key for the whole batch: sample i draws from fold_in(key, i) whichever chunk
        # it falls in, so chunks draw differently under 'different' and alike under 'same'.
        base_key = ctx.derive_key() if self.randomness != "error" else None
        once = functools.partial(self._vmap_once, ctx, spec, flat_in, mapped, kwargs, base_key)
        chunk = self.chunk_size or batch_size
        if chunk >= batch_size:
            outs, side, child, rec = once(flat_args, batch_size)
        else:
            outs, side, child, rec = self._vmap_chunked(once, flat_args, flat_in, mapped, batch_size, chunk)
        out = self._place_outputs(outs, rec)
        unbatched = _unbatched_writes(child, rec, flat_in)
        if unbatched:
            raise self._unbatched_write_error(once, flat_args, batch_size, flat_in, unbatched, rec)
        updates = self._place_side(side, child, flat_in)
        return TraceResult(out, updates)

    def _vmap_once(self, ctx, spec, flat_in, mapped, kwargs, base_key, flat_args, batch_size, offset=0, randomness=""):
        """``jax.vmap`` of the function over ``batch_size`` samples, the first being sample ``offset``."""
        name = next(_axis_names)
        randomness = randomness or self.randomness
        rng_error = f"{self.call_repr()}: {_RANDOM_ERROR}" if randomness == "error" else None
        child = Child(self.fn, ctx, rng_error=rng_error)
        rec: dict[str, Any] = {}

        def g(*vals):
            full = list(flat_args)
            for i, v in zip(mapped, vals):
                full[i] = v
            key = None
            if randomness == "different":
                key = jax.random.fold_in(base_key, offset + jax.lax.axis_index(name))
            elif randomness == "same":
                key = base_key
            out, (arg_vals, lifted_vals) = child.run(pytree.tree_unflatten(full, spec), kwargs, key=key)
            trace = getattr(vals[0], "_trace", None) if vals else None
            leaves, out_spec = pytree.tree_flatten(out)
            rec["out_spec"] = out_spec
            rec["static"] = {i: x for i, x in enumerate(leaves) if not is_array(x)}
            arrays = [x for x in leaves if is_array(x)]
            rec["batched"] = [_batched(x, trace) for x in arrays]
            rec["arg_batched"] = [_batched(x, trace) for x in arg_vals]
            rec["lifted_batched"] = [_batched(x, trace) for x in lifted_vals]
            rec["used_random"] = child.child.used_random
            return arrays, (arg_vals, lifted_vals)

        in_axes = [flat_in[i] for i in mapped]
        outs, side = jax.vmap(g, in_axes=in_axes, out_axes=0, axis_name=name, axis_size=batch_size)(
            *[flat_args[i] for i in mapped]
        )
        return outs, side, child, rec

    def _vmap_chunked(self, once, flat_args, flat_in, mapped, batch_size, chunk):
        results = []
        for start in range(0, batch_size, chunk):
            stop = min(start + chunk, batch_size)
            part = list(flat_args)
            for i in mapped:
                part[i] = jax.lax.slice_in_dim(flat_args[i], start, stop, axis=flat_in[i])
            results.append(once(part, stop - start, offset=start))
        outs = [jnp.concatenate(parts, axis=0) for parts in zip(*(r[0] for r in results))]
        side = jax.tree_util.tree_map(lambda *p: jnp.concatenate(p, axis=0), *(r[1] for r in results))
        return outs, side, results[-1][2], results[-1][3]

    def _unbatched_write_error(self, once, flat_args, batch_size, flat_in, unbatched, rec) -> RuntimeError:
        """Which error a per-sample write into an unvmapped tensor gets, as torch.func tells them apart.

        Under randomness='different' the write may come from an in-place random op
        (``y.normal_()``): the function is traced once more with one key for all samples,
        and a write that is no longer per-sample was made of draws only. Only on this
        error path, so the normal call never pays for it.
        """
        if self.randomness == "different" and rec.get("used_random"):
            _, _, child, same = once(flat_args, batch_size, randomness="same")
            if set(unbatched) - set(_unbatched_writes(child, same, flat_in)):
                return prefix_error(RuntimeError(_RANDOM_INPLACE), self.call_repr())
        return _inplace_error(self)

    def _place_outputs(self, outs, rec):
        from torch._functorch.vmap import _broadcast_to_and_flatten

        out_spec = rec["out_spec"]
        flat_out_dims = _broadcast_to_and_flatten(self.out_dims, out_spec)
        if flat_out_dims is None:
            raise ValueError(
                f"vmap({fn_name(self.fn)}, ..., out_dims={self.out_dims})(<inputs>): out_dims is not "
                f"compatible with the structure of `outputs`. out_dims has structure "
                f"{pytree.tree_flatten(self.out_dims)[1]} but outputs has structure {out_spec}."
            )
        name = fn_name(self.fn)
        arrays = iter(zip(outs, rec["batched"]))
        leaves = []
        for i, d in enumerate(flat_out_dims):
            if i in rec["static"]:
                if d is not None:
                    raise ValueError(
                        f"vmap({name}, ...): `{name}` must only return Tensors, got type "
                        f"{type(rec['static'][i])}. Did you mean to set out_dims= to None for output?"
                    )
                leaves.append(rec["static"][i])
                continue
            value, batched = next(arrays)
            if d is None:
                if batched:
                    raise ValueError(f"vmap({name}, ...): `{name}` can not return a BatchedTensor when out_dim is None")
                leaves.append(value[0])
            else:
                leaves.append(jnp.moveaxis(value, 0, d % value.ndim))
        return pytree.tree_unflatten(leaves, out_spec)

    def _place_side(self, side, child, flat_in):
        """Writes to the inputs and captured tensors, one level up (none is per-sample into an unvmapped tensor)."""
        arg_vals, lifted_vals = side
        placed_args = []
        for slot, value in zip(child.arg_slots, arg_vals):
            d = flat_in[slot] if slot < len(flat_in) else None
            placed_args.append(value[0] if d is None else jnp.moveaxis(value, 0, d))
        placed_lifted = [value[0] for value in lifted_vals]
        return child.apply_side((placed_args, placed_lifted))


def _unbatched_writes(child: Child, rec: dict, flat_in) -> list:
    """The tensors not vmapped over (unbatched inputs, captured tensors) that got a per-sample value."""
    bad: list = []
    for slot, batched in zip(child.arg_slots, rec["arg_batched"]):
        if batched and (slot >= len(flat_in) or flat_in[slot] is None):
            bad.append(("input", slot))
    for t, batched in zip(child.lifted, rec["lifted_batched"]):
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


def _mutable(x) -> bool:
    if isinstance(x, (list, dict)):
        return True
    return isinstance(x, tuple) and any(_mutable(v) for v in x)


def _freeze(x):
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, tuple(_freeze(v) for v in x))
    if isinstance(x, dict):
        return ("dict", tuple(sorted((k, _freeze(v)) for k, v in x.items())))
    return x


def vmap(func: Callable, in_dims: Any = 0, out_dims: Any = 0, randomness: str = "error", *,
         chunk_size: int | None = None) -> Callable:  # fmt: skip
    """``torch.func.vmap``, executed by ``jax.vmap``.

    Example:
        >>> import torch, torchjax.func as func
        >>> func.vmap(torch.dot)(torch.ones(3, 2), torch.ones(3, 2))
        tensor([2., 2., 2.])
    """
    return Vmap(func, in_dims, out_dims, randomness, chunk_size)
