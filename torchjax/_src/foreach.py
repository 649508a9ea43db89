"""``aten._foreach_*``: an op over lists of tensors, as the op on each element.

torch's multi-tensor optimizers (``foreach=True``), ``clip_grad_norm_`` and
``zero_grad`` call these; torch has no decomposition for most. Each element's call goes
back through the dispatcher (the op's own rule); XLA fuses the per-element programs as
it would a fused kernel. Their in-place forms (``_foreach_add_``) are derived from these
by the dispatcher, as for any in-place op.
"""

from __future__ import annotations

import torch

from .tensor import lift

aten = torch.ops.aten

_PREFIX = "_foreach_"


def is_foreach(func) -> bool:
    """Whether ``func`` is a functional foreach overload this module runs."""
    name = func._overloadpacket.__name__
    return name.startswith(_PREFIX) and not name.endswith("_") and not func._schema.is_mutable


def run_foreach(func, args, kwargs):
    """``func`` over lists, as the base op (``aten.add`` for ``_foreach_add``) per element."""
    schema = func._schema
    base = getattr(aten, func._overloadpacket.__name__[len(_PREFIX) :])
    # every tensor lifted: the dispatch mode is off while its handler runs, so an op on a
    # plain tensor here would run in torch
    bound = {
        a.name: _lifted(args[i] if i < len(args) else kwargs.get(a.name, a.default_value))
        for i, a in enumerate(schema.arguments)
    }
    lists = [a.name for a in schema.arguments if _is_list(a.type)]
    n = len(bound[lists[0]])
    if any(len(bound[k]) != n for k in lists):
        raise ValueError(f"{func}: the tensor lists have different lengths")
    # by name where the base op takes the argument by keyword only (addcmul's ``value``)
    base_keywords = {a.name for ov in base.overloads() for a in getattr(base, ov)._schema.arguments if a.kwarg_only}
    positional = [a for a in schema.arguments if not a.kwarg_only and a.name not in base_keywords]
    keyword = [a for a in schema.arguments if a.kwarg_only or a.name in base_keywords]
    scalars = _tensor_of_scalars(func, bound)
    out = []
    for i in range(n):

        def pick(a):
            v = bound[a.name]
            return v[i] if a.name in lists else v

        if scalars is not None:  # addcmul/addcdiv with a tensor of per-element values
            name, values = scalars
            self_, t1, t2 = (pick(a) for a in schema.arguments[:3])
            product = torch.mul(t1, t2) if name == "addcmul" else torch.div(t1, t2)
            out.append(torch.add(self_, torch.mul(values[i], product)))
            continue
        call_args = [pick(a) for a in positional]
        call_kwargs = {a.name: pick(a) for a in keyword}
        if base is aten.norm:  # _foreach_norm(self, ord, dtype): linalg's vector norm
            out.append(torch.linalg.vector_norm(*call_args[:2], dtype=call_args[2] if len(call_args) > 2 else None))
            continue
        out.append(base(*call_args, **call_kwargs))
    return out


def _lifted(x):
    if isinstance(x, torch.Tensor):
        return lift(x)
    if isinstance(x, (list, tuple)):
        return [lift(t) if isinstance(t, torch.Tensor) else t for t in x]
    return x


def _is_list(t) -> bool:
    return isinstance(t, torch.ListType)


def _tensor_of_scalars(func, bound):
    name = func._overloadpacket.__name__[len(_PREFIX) :]
    if name in ("addcmul", "addcdiv") and func._overloadname == "Tensor":
        return name, bound["scalars"]
    return None
