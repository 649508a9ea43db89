"""``torchjax.autograd``: the ``torch.autograd.functional`` API executed by JAX."""

from . import functional as functional

__all__ = ["functional"]
