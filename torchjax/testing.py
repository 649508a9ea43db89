"""Compare torch eager / torch.func against torchjax on the same function.

:func:`compare` reports where the two part ways, by module or by ATen op
(``docs/compare.md``); :func:`assert_matches_torch` is one pass/fail on the result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils import _pytree as pytree

from ._src.compare import Entry as Entry
from ._src.compare import Report as Report
from ._src.compare import compare as compare
from ._src.convert import jit

__all__ = ["Entry", "Report", "assert_close_tree", "assert_matches_torch", "compare"]


def assert_close_tree(actual: Any, expected: Any, *, rtol: float | None = None, atol: float | None = None) -> None:
    """``torch.testing.assert_close`` over two pytrees; dtypes must match exactly."""
    a_leaves, a_spec = pytree.tree_flatten(actual)
    e_leaves, e_spec = pytree.tree_flatten(expected)
    if a_spec != e_spec:
        raise AssertionError(f"structure differs:\n  torchjax: {a_spec}\n  torch:    {e_spec}")
    for i, (a, e) in enumerate(zip(a_leaves, e_leaves)):
        if isinstance(e, torch.Tensor):
            if not isinstance(a, torch.Tensor):
                raise AssertionError(f"leaf {i}: expected a tensor, got {type(a).__name__}")
            torch.testing.assert_close(a, e, rtol=rtol, atol=atol, equal_nan=True, check_stride=False,
                                       msg=lambda m, i=i: f"leaf {i}: {m}")  # fmt: skip
        elif a != e:
            raise AssertionError(f"leaf {i}: {a!r} != {e!r}")


def assert_matches_torch(
    fn: Callable, *args: Any, rtol: float | None = None, atol: float | None = None, **kwargs: Any
) -> Any:
    """Run ``fn`` in torch eager and through :func:`torchjax.jit`; assert equal results.

    Returns the torchjax result.

    Example:
        >>> import torch, torchjax.testing
        >>> _ = torchjax.testing.assert_matches_torch(torch.softmax, torch.randn(3, 4), 1)
    """
    expected = fn(*args, **kwargs)
    actual = jit(fn)(*args, **kwargs)
    assert_close_tree(actual, expected, rtol=rtol, atol=atol)
    return actual
