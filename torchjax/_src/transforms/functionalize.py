"""functionalize: torchjax programs are functional already (JAX arrays are immutable).

Mutations inside ``func`` become functional updates in the traced program; writes to
the inputs are applied to them after the call, as ``torch.func.functionalize`` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ..capture import Context, TraceResult, run_traced
from .base import Settings, Transform, fn_name


@dataclasses.dataclass(frozen=True, eq=False)
class FunctionalizeSettings(Settings):
    remove: str = "mutations"


class Functionalize(Transform):
    api = "functionalize"

    def __init__(self, fn: Callable, settings: FunctionalizeSettings):
        super().__init__(fn, settings)
        if settings.remove not in ("mutations", "mutations_and_views"):
            raise RuntimeError(
                f"functionalize(f, remove='mutations'): Expected remove to be one of 'mutations' or "
                f"'mutations_and_views', got {settings.remove!r}"
            )

    def call_repr(self):
        return f"functionalize({fn_name(self.fn)})(<inputs>)"

    def impl(self, ctx, plan, args, kwargs) -> TraceResult:
        child = Context(None, parent=ctx)
        res = run_traced(self.fn, args, kwargs, child)
        for t, value, _ in res.lifted_updates:
            ctx.lift(t).set_value(value)
        return TraceResult(res.out, res.arg_updates)


def functionalize(func: Callable, *, remove: str = "mutations") -> Callable:
    """``torch.func.functionalize``: run ``func`` as a pure function; input writes are applied after.

    Example:
        >>> import torch, torchjax.func as func
        >>> def f(x):
        ...     y = x.clone()
        ...     y.add_(1)
        ...     return y
        >>> func.functionalize(f)(torch.zeros(2))
        tensor([1., 1.])
    """
    return Functionalize(func, FunctionalizeSettings(remove))
