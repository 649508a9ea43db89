"""Exceptions raised by torchjax."""

from __future__ import annotations


class UnsupportedOpError(NotImplementedError):
    """An ATen operator reached torchjax with no translation rule and no decomposition.

    The message names the exact overload (``aten::foo.bar``) and shows how to register a
    rule with :func:`torchjax.register_op`.
    """


class TracingError(RuntimeError):
    """Torch code did something JAX cannot trace, such as Python control flow on a value."""
