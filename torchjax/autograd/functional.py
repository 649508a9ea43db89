"""``torch.autograd.functional`` (vjp, jvp, jacobian, hessian, hvp, vhp), executed by JAX.

Same signatures and return structures as torch's. ``create_graph`` and ``strict`` are
accepted for compatibility: results are plain tensors (JAX computed them), so
``create_graph=True`` gives no autograd graph; differentiate again with torchjax.func
instead (``hessian``, ``jacfwd(jacrev(...))``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .. import func as _func

__all__ = ["hessian", "hvp", "jacobian", "jvp", "vhp", "vjp"]


class InvalidStrategyError(ValueError, AssertionError):
    """A bad ``strategy``: torch raises AssertionError here, so this is both."""


def _as_tuple(x) -> tuple[bool, tuple]:
    if isinstance(x, tuple):
        return True, x
    if isinstance(x, list):
        return True, tuple(x)
    return False, (x,)


def _check_tensors(api: str, name: str, xs: tuple) -> None:
    for i, x in enumerate(xs):
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"The {name} given to {api} must be either a Tensor or a tuple of Tensors but the "
                f"value at index {i} has type {type(x)}."
            )


def _restore(is_tuple: bool, xs: tuple):
    return xs if is_tuple else xs[0]


def vjp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False):
    """``torch.autograd.functional.vjp`` -> ``(func_output, vjp)``.

    Example:
        >>> import torch
        >>> from torchjax.autograd.functional import vjp
        >>> vjp(lambda x: (x ** 2).sum(), torch.tensor([1.0, 2.0]))
        (tensor(5.), tensor([2., 4.]))
    """
    is_tuple, xs = _as_tuple(inputs)
    _check_tensors("vjp", "inputs", xs)
    out, fn = _func.vjp(func, *xs)
    out_is_tuple, outs = _as_tuple(out)
    if v is None:
        if len(outs) != 1 or outs[0].numel() != 1:
            raise RuntimeError(
                "The vector v can only be None if the user-provided function returns a single Tensor with a single element."
            )
        vs = (torch.ones_like(outs[0]),)
    else:
        _, vs = _as_tuple(v)
        _check_tensors("vjp", "v", vs)
        if len(vs) != len(outs):
            raise RuntimeError(f"v has {len(vs)} elements but the function returned {len(outs)} outputs")
    grads = fn(_restore(out_is_tuple, vs))
    return out, _restore(is_tuple, tuple(grads))


def jvp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False):
    """``torch.autograd.functional.jvp`` -> ``(func_output, jvp)``.

    Example:
        >>> import torch
        >>> from torchjax.autograd.functional import jvp
        >>> jvp(lambda x: x ** 2, torch.tensor([1.0, 2.0]), torch.ones(2))
        (tensor([1., 4.]), tensor([2., 4.]))
    """
    is_tuple, xs = _as_tuple(inputs)
    _check_tensors("jvp", "inputs", xs)
    if v is None:
        if len(xs) != 1 or xs[0].numel() != 1:
            raise RuntimeError(
                "The vector v can only be None if the input to the user-provided function is a single Tensor with a single element."
            )
        vs = (torch.ones_like(xs[0]),)
    else:
        _, vs = _as_tuple(v)
        _check_tensors("jvp", "v", vs)
    return _func.jvp(func, xs, vs)


def jacobian(func: Callable, inputs: Any, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode"):  # fmt: skip
    """``torch.autograd.functional.jacobian`` with torch's nesting of tuples.

    Example:
        >>> import torch
        >>> from torchjax.autograd.functional import jacobian
        >>> jacobian(lambda x: x ** 2, torch.tensor([1.0, 2.0]))
        tensor([[2., 0.],
                [0., 4.]])
    """
    if strategy not in ("forward-mode", "reverse-mode"):
        raise InvalidStrategyError('Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your '
                         'function has more outputs than inputs, "forward-mode" tends to be more performant. '
                         'Otherwise, prefer to use "reverse-mode".')  # fmt: skip
    if strategy == "forward-mode" and not vectorize:
        raise NotImplementedError(
            'torch.autograd.functional.jacobian: `strategy="forward-mode"` is only implemented together with `vectorize=True`.'
        )
    is_tuple, xs = _as_tuple(inputs)
    _check_tensors("jacobian", "inputs", xs)
    transform = _func.jacfwd if strategy == "forward-mode" else _func.jacrev
    argnums = tuple(range(len(xs))) if is_tuple else 0
    jac = transform(lambda *a: _tuple_out(func(*a)), argnums=argnums)(*xs)
    if strategy == "forward-mode" and is_tuple:
        # torch's forward-mode path returns lists where reverse mode returns tuples
        jac = [list(j) for j in jac] if isinstance(jac, tuple) and jac and isinstance(jac[0], tuple) else list(jac)
    return jac


def _tuple_out(out):
    return tuple(out) if isinstance(out, list) else out


def hessian(func: Callable, inputs: Any, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode"):  # fmt: skip
    """``torch.autograd.functional.hessian``.

    Example:
        >>> import torch
        >>> from torchjax.autograd.functional import hessian
        >>> hessian(lambda x: (x ** 3).sum(), torch.tensor([1.0, 2.0]))
        tensor([[ 6.,  0.],
                [ 0., 12.]])
    """
    is_tuple, xs = _as_tuple(inputs)
    _check_tensors("hessian", "inputs", xs)
    argnums = tuple(range(len(xs))) if is_tuple else 0

    def scalar(*a):
        out = func(*a)
        if not isinstance(out, torch.Tensor) or out.numel() != 1:
            raise RuntimeError("The function given to hessian should return a single Tensor with a single element")
        return out.reshape(())

    return _func.hessian(scalar, argnums=argnums)(*xs)


def _check_scalar(api: str, out) -> None:
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        raise RuntimeError(f"The function given to {api} should return a single Tensor with a single element")


def hvp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False):
    """``torch.autograd.functional.hvp`` -> ``(func_output, hvp)``: forward-over-reverse.

    Example:
        >>> import torch
        >>> from torchjax.autograd.functional import hvp
        >>> hvp(lambda x: (x ** 3).sum(), torch.tensor([1.0, 2.0]), torch.ones(2))
        (tensor(9.), tensor([ 6., 12.]))
    """
    is_tuple, xs = _as_tuple(inputs)
    _check_tensors("hvp", "inputs", xs)
    _, vs = _as_tuple(v) if v is not None else (False, tuple(torch.ones_like(x) for x in xs))
    argnums = tuple(range(len(xs)))

    def grad_fn(*a):
        return _func.grad(lambda *b: func(*b).reshape(()), argnums=argnums)(*a)

    out = func(*xs)
    _check_scalar("hvp", out)
    _, tangent = _func.jvp(grad_fn, xs, vs)
    return out, _restore(is_tuple, tuple(tangent))


def vhp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False):
    """``torch.autograd.functional.vhp`` -> ``(func_output, vhp)``: reverse-over-reverse.

    Example:
        >>> import torch
        >>> from torchjax.autograd.functional import vhp
        >>> vhp(lambda x: (x ** 3).sum(), torch.tensor([1.0, 2.0]), torch.ones(2))
        (tensor(9.), tensor([ 6., 12.]))
    """
    is_tuple, xs = _as_tuple(inputs)
    _check_tensors("vhp", "inputs", xs)
    _, vs = _as_tuple(v) if v is not None else (False, tuple(torch.ones_like(x) for x in xs))
    argnums = tuple(range(len(xs)))

    def grad_fn(*a):
        return _func.grad(lambda *b: func(*b).reshape(()), argnums=argnums)(*a)

    out = func(*xs)
    _check_scalar("vhp", out)
    _, pullback = _func.vjp(grad_fn, *xs)
    return out, _restore(is_tuple, tuple(pullback(tuple(vs))))
