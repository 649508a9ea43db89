"""The user's function one transform level down, as the JAX transform sees it.

Every transform hands JAX a function of flat lists of arrays. :class:`Body` is that
function: it rebuilds the torch arguments, runs the user's function at a child capture
level, splits off aux, lets the transform check the output, and returns the output
arrays with a :class:`Traced`: the aux arrays, the side effects, and the structures that
rebuild the torch pytrees. ``Traced`` is a JAX pytree whose structures ride in its
treedef, so it leaves ``jax.grad``/``vjp``/``jvp``/``jacrev``/``vmap`` as their aux output
and nothing has to be stashed from inside the traced call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import torch
from torch.utils import _pytree as pytree

from ..capture import Context, is_array, run_traced


class Packed:
    """A torch pytree split into its array leaves (for JAX) and everything else.

    JAX transforms see only flat lists of arrays: JAX would otherwise rebuild dicts
    with sorted keys and could not flatten containers that only torch's pytree knows
    (HF ``ModelOutput``). :meth:`unpack` rebuilds the torch structure exactly.
    """

    __slots__ = ("positions", "spec", "static")

    def __init__(self, tree):
        leaves, self.spec = pytree.tree_flatten(tree)
        self.positions = [i for i, x in enumerate(leaves) if is_array(x)]
        self.static = {i: x for i, x in enumerate(leaves) if not is_array(x)}

    @staticmethod
    def arrays(tree) -> list:
        return [x for x in pytree.tree_leaves(tree) if is_array(x)]

    def unpack(self, arrays):
        n = len(self.positions) + len(self.static)
        it = iter(arrays)
        leaves = [self.static[i] if i in self.static else next(it) for i in range(n)]
        return pytree.tree_unflatten(leaves, self.spec)


@dataclasses.dataclass(frozen=True, eq=False)
class Side:
    """The writes a function made that cannot leave a JAX transform as effects.

    Writes to the transform's inputs (by flat input slot) and to tensors captured from
    outside leave as extra outputs; :meth:`apply` makes them one level up.
    """

    arg_values: list
    lifted_values: list
    arg_slots: tuple[int, ...]
    lifted: tuple[torch.Tensor, ...]

    def apply(self, ctx: Context) -> dict[int, Any]:
        """Write the captured tensors' new values at ``ctx``; return the input writes by flat slot."""
        for t, v in zip(self.lifted, self.lifted_values):
            ctx.lift(t).set_value(v)
        return dict(zip(self.arg_slots, self.arg_values))


jax.tree_util.register_dataclass(Side, data_fields=["arg_values", "lifted_values"], meta_fields=["arg_slots", "lifted"])


@dataclasses.dataclass(frozen=True, eq=False)
class Traced:
    """What one traced run of the user's function leaves besides its output arrays."""

    aux: list  # the aux output's arrays
    side: Side
    out_pack: Packed  # rebuilds the output from the arrays the transform returns for it
    aux_pack: Packed
    used_random: bool  # whether the function drew random numbers

    def output(self, arrays):
        return self.out_pack.unpack(arrays)

    def aux_tree(self):
        return self.aux_pack.unpack(self.aux)


jax.tree_util.register_dataclass(
    Traced, data_fields=["aux", "side"], meta_fields=["out_pack", "aux_pack", "used_random"]
)


def split_aux(out, has_aux: bool, call: str):
    """``(output, aux)`` of a has_aux function, checked as torch.func checks it."""
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise RuntimeError(f"{call}: output of function f should be a tuple: (output, aux) if has_aux is True")
    return out


def check_aux(call: str, aux, has_aux: bool) -> None:
    if not has_aux:
        return
    for leaf in pytree.tree_leaves(aux):
        if not is_array(leaf):
            raise RuntimeError(
                f"{call}: Expected tensors, got unsupported type {type(leaf)} in aux. With "
                "has_aux=True every leaf of aux must be a Tensor; return other values some other way."
            )


class Args:
    """The positional arguments with those at ``argnums`` taken from flat array lists."""

    def __init__(self, args: tuple, argnums: tuple[int, ...]):
        self.args = args
        self.argnums = argnums
        self.packs = [Packed(args[i]) for i in argnums]

    def flat(self) -> list[list]:
        """The arrays of the arguments at ``argnums``, one list per argument."""
        return [Packed.arrays(self.args[i]) for i in self.argnums]

    def __call__(self, flat) -> tuple:
        args = list(self.args)
        for i, pack, arrays in zip(self.argnums, self.packs, flat):
            args[i] = pack.unpack(arrays)
        return tuple(args)

    def unpack(self, per_arg) -> tuple:
        """One flat list (or tuple) of arrays per argument -> the arguments' torch structures."""
        return tuple(pack.unpack(list(arrays)) for pack, arrays in zip(self.packs, per_arg))


class Body:
    """The user's function over flat array inputs, run one capture level below ``ctx``.

    ``args_of`` turns the flat inputs into the positional arguments; ``check(out, aux)``
    validates the output as the transform requires (torch.func's checks and their order);
    ``key()`` gives the PRNG key of the run (vmap's per-sample key) and ``rng_error``
    makes a random op raise. Calling it returns ``(output arrays, Traced)``, JAX's
    ``has_aux`` convention.
    """

    def __init__(
        self,
        fn: Callable,
        ctx: Context,
        args_of: Callable[[Any], tuple],
        kwargs: dict,
        *,
        call: str,
        has_aux: bool = False,
        check: Callable[[Any, Any], None] | None = None,
        key: Callable[[], Any] | None = None,
        rng_error: str | None = None,
    ):
        self.fn = fn
        self.ctx = ctx
        self.args_of = args_of
        self.kwargs = kwargs
        self.call = call
        self.has_aux = has_aux
        self.check = check
        self.key = key
        self.rng_error = rng_error

    def __call__(self, *flat) -> tuple[list, Traced]:
        level = Context(None, parent=self.ctx, rng_error=self.rng_error, key=self.key() if self.key else None)
        level.torch_func = True  # the function runs under a torchjax.func transform
        res = run_traced(self.fn, self.args_of(flat), self.kwargs, level)
        out, aux = split_aux(res.out, self.has_aux, self.call)
        if self.check is not None:
            self.check(out, aux)
        slots = tuple(sorted(res.arg_updates))
        side = Side(
            [res.arg_updates[i] for i in slots],
            [v for _, v, _ in res.lifted_updates],
            slots,
            tuple(t for t, _, _ in res.lifted_updates),
        )
        traced = Traced(Packed.arrays(aux), side, Packed(out), Packed(aux), level.used_random)
        return Packed.arrays(out), traced
