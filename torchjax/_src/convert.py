"""``to_jax``: a torch function or ``nn.Module`` as a pure JAX function."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import torch
from torch.utils import _pytree as pytree

from . import caches
from .capture import Capture, Context, any_tracer, bridge_pytree_types, run_traced, seed_from_torch, write_back
from .compile import Compiled, TraceAgain, jit_disabled
from .crossing import to_jax_array
from .training import StepState, step_body


class JaxFunction:
    """A torch callable seen from JAX: call it with ``jax.Array``s, get ``jax.Array``s.

    Called with concrete arrays, it runs a cached XLA executable; the tensors the torch
    code captures (closures, module attributes) are inputs of that executable, read at
    every call. Called under a JAX transform (``jax.jit``, ``jax.grad``, ``jax.vmap``)
    it traces the torch code into the caller's program; there the captured tensors are
    read once, when JAX traces, as for any Python value a jitted JAX function closes
    over. Random ops draw from ``rng_key`` (a JAX PRNG key) when given, else from a key
    derived from torch's generator.
    """

    def __init__(self, fn: Callable, name: str | None = None, *, warn_input_mutation: bool = True):
        self.fn = fn
        self.name = name or f"to_jax({getattr(fn, '__qualname__', type(fn).__name__)})"
        self.capture = Capture(fn)
        self.compiled = Compiled(self.capture, self.name)
        self._warn_input_mutation = warn_input_mutation
        self._warned_x32 = False
        caches.register_owner(self)

    def __call__(self, *args, rng_key: jax.Array | None = None, **kwargs):
        leaves = pytree.tree_leaves((args, kwargs))
        if rng_key is None and not any_tracer(leaves) and not jit_disabled():
            out = self.compiled.call(_plain_body(self.fn, self), args, kwargs, to_torch=False)
        else:
            out = self._inline(args, kwargs, rng_key)
        bridge_pytree_types(out)
        return out

    def _inline(self, args, kwargs, rng_key):
        ctx = Context(self.capture, self.capture.captured_values(), key=rng_key, key_factory=seed_from_torch)
        if jax.config.jax_enable_x64:
            res = run_traced(self.fn, args, kwargs, ctx)
        else:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = run_traced(self.fn, args, kwargs, ctx)
            self._report_x32(caught)
        self._report_input_mutation(res.arg_updates)
        for t, value, _slot in res.lifted_updates:
            if isinstance(value, jax.core.Tracer):
                warnings.warn(
                    f"{self.name}: the torch code wrote in place to a captured tensor of shape "
                    f"{tuple(t.shape)} under a JAX transform; JAX cannot write back to torch from "
                    "inside a trace, so the write is dropped. Pass the tensor as an argument and "
                    "return its new value (to_jax(module) does this for buffers).",
                    RuntimeWarning,
                    stacklevel=3,
                )
            else:
                write_back(t, value)
        return res.out

    def _report_x32(self, caught) -> None:
        narrowed = [w for w in caught if "is not available, and will be truncated" in str(w.message)]
        for w in caught:
            if w not in narrowed:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if narrowed and not self._warned_x32:
            self._warned_x32 = True
            warnings.warn(
                f"{self.name} was traced by JAX with jax_enable_x64 off, so the torch code's 64-bit "
                "values (int64 indices, float64) are computed in 32 bits. To keep torch's dtypes, "
                "run under `with jax.enable_x64(True):` (or set jax_enable_x64).",
                UserWarning,
                stacklevel=4,
            )

    def _report_input_mutation(self, arg_updates):
        if arg_updates and self._warn_input_mutation:
            warnings.warn(
                f"{self.name}: the torch code wrote in place to its input(s) at flat position(s) "
                f"{sorted(arg_updates)}; JAX arrays are immutable, so the caller does not see the "
                "write. Return the updated value instead.",
                RuntimeWarning,
                stacklevel=4,
            )

    def clear_cache(self) -> None:
        """Drop this function's compiled programs (they are rebuilt on the next call)."""
        self.compiled.clear_cache()

    def __repr__(self) -> str:
        return f"<JaxFunction {self.name}>"


def _plain_body(fn, owner: JaxFunction):
    def body(ctx, args, kwargs):
        res = run_traced(fn, args, kwargs, ctx)
        owner._report_input_mutation(res.arg_updates)
        res.arg_updates = {}
        return res

    return body


class JaxModule(NamedTuple):
    """What ``to_jax(module)`` returns: ``params, buffers, apply = to_jax(module)``."""

    params: dict[str, jax.Array]
    buffers: dict[str, jax.Array]
    apply: JaxFunction


def _module_apply(module: torch.nn.Module) -> JaxFunction:
    def apply(params, buffers, *args, **kwargs):
        state = {**params, **buffers}
        out = torch.func.functional_call(module, state, args, kwargs, tie_weights=True, strict=False)
        return out, dict(buffers)

    apply.__qualname__ = f"{type(module).__name__}.apply"
    return JaxFunction(apply, f"to_jax({type(module).__name__})", warn_input_mutation=False)


def to_jax(fn_or_module: Callable | torch.nn.Module) -> Any:
    """Convert a torch function or ``nn.Module`` into a pure JAX function.

    For a function, returns a :class:`JaxFunction` with ``fn``'s positional signature
    over ``jax.Array``s (and pytrees of them). For a module, returns
    ``JaxModule(params, buffers, apply)``: the module's parameters and buffers as
    dicts of ``jax.Array``s, and ``apply(params, buffers, *args, **kwargs) ->
    (output, new_buffers)``, where ``new_buffers`` holds running statistics updated in
    training mode. Both compose with ``jax.jit``, ``jax.grad`` and ``jax.vmap``.

    The module's Python state (``module.training``, attributes that are not tensors)
    is read when JAX traces ``apply``; ``jax.jit`` caches that trace. After
    ``module.train()``/``module.eval()``, call ``to_jax(module)`` again.

    Example:
        >>> import jax, jax.numpy as jnp, torch, torchjax
        >>> lin = torch.nn.Linear(3, 2)
        >>> params, buffers, apply = torchjax.to_jax(lin)
        >>> y, _ = jax.jit(apply)(params, buffers, jnp.ones((4, 3)))
        >>> y.shape
        (4, 2)
        >>> f = torchjax.to_jax(lambda x: torch.sin(x) * 2)
        >>> float(jax.grad(lambda x: f(x).sum())(jnp.zeros(3))[0])
        2.0
    """
    if isinstance(fn_or_module, torch.nn.Module):
        module = fn_or_module
        params = to_jax_array(dict(module.named_parameters()))
        buffers = to_jax_array(dict(module.named_buffers()))
        return JaxModule(params, buffers, _module_apply(module))
    if not callable(fn_or_module):
        raise TypeError(f"to_jax: expected a callable or torch.nn.Module, got {type(fn_or_module).__name__}")
    return JaxFunction(fn_or_module)


class TorchFunction:
    """A torch callable compiled by XLA: torch tensors in, torch tensors out.

    A training step (``backward()``, ``optimizer.step()``, ``zero_grad()`` inside) is one
    program; the training state it reads and leaves (``.grad``, optimizer state, learning
    rates) is gathered and applied around every call (``training.StepState``).
    """

    def __init__(self, fn: Callable, name: str | None = None):
        self.fn = fn
        self.name = name or f"jit({getattr(fn, '__qualname__', type(fn).__name__)})"
        self.capture = Capture(fn)
        self.compiled = Compiled(self.capture, self.name)
        self.state = StepState(list(fn.modules()) if isinstance(fn, torch.nn.Module) else [])
        self._step = step_body(fn, self.state)
        self._eager_calls = 0
        self._settled = False
        self.__wrapped__ = fn
        caches.register_owner(self)

    def __call__(self, *args, **kwargs):
        for _ in range(_MAX_RETRACES):
            try:
                out, actions = self.compiled.call(self._body, (args, kwargs, self.state.gather()), {}, to_torch=True)
            except TraceAgain:
                _, created = self.state.outcome
                if created:  # an optimizer's first step: its state is made eagerly
                    return self._eagerly(args, kwargs)
                continue  # the trace met training state that was not an input yet
            self._eager_calls = 0
            if actions:
                self.state.apply(actions)
            if self.state.trains and not self._settled:
                # Once, after the first compiled step: the crossings of its tensors' first
                # buffers sit in reference cycles until a collection, and while they do,
                # the tensors cannot take the program's output buffers over (crossing.py)
                self._settled = True
                gc.collect()
            return out
        raise RuntimeError(f"{self.name}: the training state kept changing between traces")

    def _body(self, ctx, a, k):
        res = run_traced(self._step, a, k, ctx)
        res.trains = self.state.trains
        res.again = any(self.state.outcome)
        return res

    def _eagerly(self, args, kwargs):
        """A call that creates optimizer state runs as plain torch; the next one compiles."""
        self._eager_calls += 1
        if self._eager_calls > _MAX_EAGER_CALLS:
            raise RuntimeError(
                f"{self.name}: an optimizer created new state on {self._eager_calls} calls in a row; "
                "torchjax compiles a step for the optimizer state it finds, so state created on "
                "every call cannot be compiled"
            )
        return _detached(self.fn(*args, **kwargs))

    def clear_cache(self) -> None:
        """Drop this function's compiled programs (they are rebuilt on the next call)."""
        self.compiled.clear_cache()

    def memory_analysis(self) -> Any:
        """XLA's ``memory_analysis()`` of the program the last call ran (argument, output,
        temporary and generated-code sizes in bytes); None before a compiled call."""
        return self.compiled.last_memory_analysis()

    def __repr__(self) -> str:
        return f"<TorchFunction {self.name}>"


def _detached(out):
    """A step's outputs as a compiled step returns them: it ran backward itself, so they
    are plain values."""
    return pytree.tree_map(lambda t: t.detach() if isinstance(t, torch.Tensor) else t, out)


_MAX_RETRACES = 4
_MAX_EAGER_CALLS = 3


def jit(fn: Callable) -> TorchFunction:
    """Compile a torch function or module with XLA; call it with torch tensors.

    Tensors it captures (parameters, buffers, closures) are read at every call, and
    in-place writes to inputs or captured tensors (BatchNorm running statistics, an
    ``add_`` on an argument) are applied to the torch tensors afterwards.

    The outputs join torch autograd when grad mode is on and an input or a captured
    tensor requires grad: their ``grad_fn`` runs the compiled ``jax.vjp`` of the
    program, on residuals the forward kept as JAX buffers, and ``backward()`` fills the
    ``.grad`` of those tensors (a module's parameters too). ``create_graph=True``
    works. Under ``torch.no_grad()``, or when nothing requires grad, nothing is kept.

    Example:
        >>> import torch, torchjax
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU())
        >>> fast = torchjax.jit(model)
        >>> torch.allclose(fast(torch.ones(2, 4)), model(torch.ones(2, 4)), atol=1e-6)
        True
        >>> fast(torch.ones(2, 4)).sum().backward()
        >>> model[0].weight.grad.shape
        torch.Size([8, 4])
    """
    if not callable(fn):
        raise TypeError(f"jit: expected a callable or torch.nn.Module, got {type(fn).__name__}")
    return TorchFunction(fn)
