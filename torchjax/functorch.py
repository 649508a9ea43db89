"""The deprecated ``functorch`` API, for old code: ``import torchjax.functorch as functorch``.

``make_functional``, ``make_functional_with_buffers`` and ``combine_state_for_ensemble``
are built on ``functional_call`` (as the torch.func migration guide shows); the
transforms are torchjax.func's.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from .func import functional_call
from .func import grad as grad
from .func import grad_and_value as grad_and_value
from .func import hessian as hessian
from .func import jacfwd as jacfwd
from .func import jacrev as jacrev
from .func import jvp as jvp
from .func import vjp as vjp
from .func import vmap as vmap

__all__ = [
    "FunctionalModule",
    "FunctionalModuleWithBuffers",
    "combine_state_for_ensemble",
    "grad",
    "grad_and_value",
    "hessian",
    "jacfwd",
    "jacrev",
    "jvp",
    "make_functional",
    "make_functional_with_buffers",
    "vjp",
    "vmap",
]


def _stateless_copy(model: torch.nn.Module) -> torch.nn.Module:
    # The functional module holds no parameter memory of its own: one copy of the
    # parameters lives in the returned tuple, as the migration guide advises.
    return copy.deepcopy(model).to("meta")


class FunctionalModule(torch.nn.Module):
    """``fmodel(params, *args, **kwargs)``: a module called with explicit parameters."""

    def __init__(self, stateless: torch.nn.Module, param_names: Sequence[str], buffers: dict):
        super().__init__()
        self.stateless = stateless
        self.param_names = tuple(param_names)
        self._buffers_dict = buffers

    def forward(self, params, *args, **kwargs):
        if len(params) != len(self.param_names):
            raise ValueError(
                f"FunctionalModule: expected {len(self.param_names)} parameters "
                f"({', '.join(self.param_names)}), got {len(params)}"
            )
        state = {**self._buffers_dict, **dict(zip(self.param_names, params))}
        return functional_call(self.stateless, state, args, kwargs)


class FunctionalModuleWithBuffers(torch.nn.Module):
    """``fmodel(params, buffers, *args, **kwargs)``."""

    def __init__(self, stateless: torch.nn.Module, param_names: Sequence[str], buffer_names: Sequence[str]):
        super().__init__()
        self.stateless = stateless
        self.param_names = tuple(param_names)
        self.buffer_names = tuple(buffer_names)

    def forward(self, params, buffers, *args, **kwargs):
        if len(params) != len(self.param_names) or len(buffers) != len(self.buffer_names):
            raise ValueError(
                f"FunctionalModuleWithBuffers: expected {len(self.param_names)} parameters and "
                f"{len(self.buffer_names)} buffers, got {len(params)} and {len(buffers)}"
            )
        state = {**dict(zip(self.param_names, params)), **dict(zip(self.buffer_names, buffers))}
        return functional_call(self.stateless, state, args, kwargs)


def make_functional(model: torch.nn.Module, disable_autograd_tracking: bool = False):
    """``functorch.make_functional``: ``fmodel, params = make_functional(model)``.

    Example:
        >>> import torch, torchjax.functorch as functorch
        >>> fmodel, params = functorch.make_functional(torch.nn.Linear(3, 2))
        >>> fmodel(params, torch.ones(1, 3)).shape
        torch.Size([1, 2])
    """
    if any(True for _ in model.buffers()):
        raise RuntimeError(
            "make_functional(model): model has buffers. Please use make_functional_with_buffers(model) instead."
        )
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach() if disable_autograd_tracking else p for _, p in model.named_parameters())
    return FunctionalModule(_stateless_copy(model), names, {}), params


def make_functional_with_buffers(model: torch.nn.Module, disable_autograd_tracking: bool = False):
    """``functorch.make_functional_with_buffers``: ``fmodel, params, buffers = ...``.

    Example:
        >>> import torch, torchjax.functorch as functorch
        >>> fmodel, params, buffers = functorch.make_functional_with_buffers(torch.nn.BatchNorm1d(3))
        >>> len(params), len(buffers)
        (2, 3)
    """
    names = [n for n, _ in model.named_parameters()]
    bnames = [n for n, _ in model.named_buffers()]
    params = tuple(p.detach() if disable_autograd_tracking else p for _, p in model.named_parameters())
    buffers = tuple(b for _, b in model.named_buffers())
    return FunctionalModuleWithBuffers(_stateless_copy(model), names, bnames), params, buffers


def combine_state_for_ensemble(models: Sequence[torch.nn.Module]):
    """``functorch.combine_state_for_ensemble``: stacked ``(fmodel, params, buffers)``.

    Example:
        >>> import torch, torchjax.functorch as functorch
        >>> fmodel, params, buffers = functorch.combine_state_for_ensemble([torch.nn.Linear(3, 2) for _ in range(4)])
        >>> functorch.vmap(fmodel, in_dims=(0, 0, None))(params, buffers, torch.ones(5, 3)).shape
        torch.Size([4, 5, 2])
    """
    if len(models) == 0:
        raise RuntimeError("combine_state_for_ensemble: Expected at least one model, got 0.")
    if not (all(m.training for m in models) or all(not m.training for m in models)):
        raise RuntimeError("combine_state_for_ensemble: Expected all models to have the same training/eval mode.")
    first = type(models[0])
    if not all(type(m) is first for m in models):
        raise RuntimeError("combine_state_for_ensemble: Expected all models to be of the same class.")
    fmodel, _, _ = make_functional_with_buffers(models[0])
    params = tuple(torch.stack([dict(m.named_parameters())[n].detach() for m in models]) for n in fmodel.param_names)
    buffers = tuple(torch.stack([dict(m.named_buffers())[n] for m in models]) for n in fmodel.buffer_names)
    return fmodel, params, buffers
