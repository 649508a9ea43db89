"""The translation table: ATen overload -> JAX rule.

A rule is a plain function over JAX arrays. Tensor arguments arrive as ``jax.Array``
(or tracers), lists of tensors as lists of arrays, everything else as torch passed it
(Python scalars, ``torch.dtype``, ``torch.device``, ...). A rule returns an array, or a
tuple/list of arrays matching the overload's schema.

Rules cover functional overloads; in-place (``add_``) and ``out=`` overloads, and
views, are derived by the dispatcher from the functional rule and the schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch._ops import OpOverload, OpOverloadPacket
from torch.torch_version import TorchVersion

Rule = Callable[..., Any]
F = TypeVar("F", bound=Rule)

_RULES: dict[OpOverload, Rule] = {}
_HANDLERS: dict[OpOverload, Rule] = {}
_version = [0]  # bumped by every registration: the dispatcher's choices depend on the tables


def _as_overloads(ops) -> list[OpOverload]:
    out: list[OpOverload] = []
    for op in ops:
        if isinstance(op, OpOverloadPacket):
            raise TypeError(
                f"register: got the packet {op}; name the overloads it covers, "
                f"e.g. {op}.default or {op}.Tensor (available: {op.overloads()})"
            )
        if not isinstance(op, OpOverload):
            raise TypeError(f"register: expected torch.ops.<ns>.<op>.<overload>, got {op!r}")
        out.append(op)
    return out


def _claim(table: dict, ops: tuple, fn: Rule, override: bool) -> None:
    """Put ``fn`` in ``table`` for each overload; an overload already in either table raises."""
    overloads = _as_overloads(ops)
    for op in overloads:
        prior = _RULES.get(op) or _HANDLERS.get(op)
        if prior is not None and not override:
            raise ValueError(
                f"register: {op} already has the rule {prior.__module__}.{prior.__qualname__}; "
                "pass override=True to replace it"
            )
    for op in overloads:
        _RULES.pop(op, None)
        _HANDLERS.pop(op, None)
        table[op] = fn
    _version[0] += 1


def rules_version() -> int:
    """A number that changes whenever a rule or handler is registered."""
    return _version[0]


def register(*ops: OpOverload, override: bool = False) -> Callable[[F], F]:
    """Register ``fn`` as the rule for each overload in ``ops``.

    A second registration of the same overload raises ``ValueError`` unless
    ``override=True``: silently replacing a rule is how a table rots.
    """
    _as_overloads(ops)

    def deco(fn: F) -> F:
        _claim(_RULES, ops, fn, override)
        return fn

    return deco


def register_handler(*ops: OpOverload) -> Callable[[F], F]:
    """Register a torch-level handler ``fn(func, args, kwargs)`` for ops whose meaning is
    about tensors rather than values (``detach``, ``set_``, ``.item()``): the dispatcher
    calls it with the torch arguments instead of a rule over arrays. Same duplicate
    check as :func:`register`, across both tables."""
    _as_overloads(ops)

    def deco(fn: F) -> F:
        _claim(_HANDLERS, ops, fn, False)
        return fn

    return deco


def lookup_handler(op: OpOverload) -> Rule | None:
    return _HANDLERS.get(op)


def register_op(*ops: OpOverload, override: bool = False) -> Callable[[F], F]:
    """Register a JAX rule for ATen (or custom) operator overloads.

    The rule receives ``jax.Array``s where the op takes tensors and returns arrays in
    the op's output structure.

    Example:
        >>> import torch, jax.numpy as jnp, torchjax
        >>> torch.library.define("demo::twice", "(Tensor x) -> Tensor")
        >>> @torch.library.impl("demo::twice", "CompositeExplicitAutograd")
        ... def _(x):
        ...     return 2 * x
        >>> @torchjax.register_op(torch.ops.demo.twice.default)
        ... def twice(x):
        ...     return 2 * x
        >>> float(torchjax.to_jax(torch.ops.demo.twice)(jnp.ones(()))[()])
        2.0
    """
    return register(*ops, override=override)


def lookup(op: OpOverload) -> Rule | None:
    return _RULES.get(op)


def registered_ops() -> list[OpOverload]:
    """Every overload that has a direct rule."""
    return list(_RULES)


def overloads(packet: OpOverloadPacket, *names: str) -> list[OpOverload]:
    """The named overloads of ``packet``; a name the packet lacks raises ``ValueError``.

    A misspelt overload must not register nothing in silence. An overload that only some
    torch releases have goes through ``aten_optional``, which says from which release.
    """
    available = packet.overloads()
    missing = [n for n in names if n not in available]
    if missing:
        raise ValueError(
            f"aten: {packet} has no overload {', '.join(map(repr, missing))} in torch {torch.__version__}; "
            f"it has {', '.join(map(repr, sorted(available)))}. An overload that only newer torch releases "
            "have is registered with aten_optional(..., since=...)"
        )
    return [getattr(packet, n) for n in names]


def aten(name: str, *overload_names: str) -> list[OpOverload]:
    """``aten("add", "Tensor", "Scalar")`` -> ``[aten.add.Tensor, aten.add.Scalar]``.

    No names means ``default``. A name the packet lacks raises ``ValueError``.
    """
    packet = getattr(torch.ops.aten, name)
    return overloads(packet, *(overload_names or ("default",)))


def aten_optional(name: str, *overload_names: str, since: str) -> list[OpOverload]:
    """Like ``aten``, for overloads that torch added in release ``since``.

    An older torch leaves them out (torchjax supports releases from before they
    existed); from ``since`` on, a missing name raises as in ``aten``, so a typo is still
    caught.
    """
    if TorchVersion(torch.__version__) >= since:
        return aten(name, *overload_names)
    packet = getattr(torch.ops.aten, name)
    return [getattr(packet, n) for n in overload_names if n in packet.overloads()]
