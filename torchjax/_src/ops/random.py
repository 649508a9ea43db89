"""Random ops: every draw takes a fresh key from the capture (:func:`current_key`).

The key is derived from torch's default generator on each call of a converted
function, so ``torch.manual_seed`` reproduces a run and two calls draw differently.
An explicit ``generator=`` argument is accepted and ignored: the stream is the
capture's key, never a torch generator's state (which JAX cannot advance).

In-place forms (``uniform_``, ``exponential_``, ``bernoulli_.Tensor``, ``random_``)
are derived by the dispatcher from the functional overload of the same name.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import torch
from jax import lax

from .. import dtypes
from ..registry import aten, aten_optional, register
from ..tensor import current_key
from ._common import jdtype
from .creation import _float_dtype, _like_dtype


def _int_dtype(dtype):
    # randint/randperm's schema default is int64, which may arrive as None
    return jnp.dtype(jnp.int64) if dtype is None else jdtype(dtype)


def _compute_dtype(dtype):
    """The dtype a continuous draw for a ``dtype`` result is made in.

    Half-precision results are drawn in float32 and rounded once, as torch's CPU
    kernels do; integer results (``geometric`` of an int64 tensor) in float64.
    """
    if dtype in (jnp.bfloat16, jnp.float16):
        return jnp.dtype(jnp.float32)
    if dtypes.is_floating(dtype) or dtypes.is_complex(dtype):
        return jnp.dtype(dtype)
    return jnp.dtype(jnp.float64)


def _uniform(shape, dtype, low=0.0, high=1.0):
    """Uniform draws in ``[low, high)``; a complex dtype draws its two parts independently."""
    shape = tuple(shape)
    if dtypes.is_complex(dtype):
        part = jnp.finfo(dtype).dtype
        re, im = jax.random.uniform(current_key(), (2, *shape), part, low, high)
        return lax.complex(re, im)
    compute = _compute_dtype(dtype)
    return jax.random.uniform(current_key(), shape, compute, low, high).astype(dtype)


def _normal(shape, dtype):
    # jax.random.normal of a complex dtype gives each part variance 1/2, like torch.randn
    compute = _compute_dtype(dtype)
    return jax.random.normal(current_key(), tuple(shape), compute)


def _randint(shape, low, high, dtype):
    # drawn in int64 and cast, so float, bool and narrow integer results see the
    # same [low, high) range torch draws from
    draws = jax.random.randint(current_key(), tuple(shape), low, high, jnp.int64)
    return draws.astype(dtype)


# --------------------------------------------------------------------------- factories


@register(*aten("rand", "default", "generator"))
def rand(size, *, generator=None, dtype=None, layout=None, device=None, pin_memory=None):
    return _uniform(size, _float_dtype(dtype))


@register(*aten("randn", "default", "generator"))
def randn(size, *, generator=None, dtype=None, layout=None, device=None, pin_memory=None):
    out = _float_dtype(dtype)
    return _normal(size, out).astype(out)


@register(*aten("rand_like"), *aten_optional("rand_like", "generator", since="2.10"))
def rand_like(self, *, generator=None, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return _uniform(self.shape, _like_dtype(self, dtype))


@register(*aten("randn_like"), *aten_optional("randn_like", "generator", since="2.10"))
def randn_like(self, *, generator=None, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    out = _like_dtype(self, dtype)
    return _normal(self.shape, out).astype(out)


@register(*aten("randint", "default", "generator", "low", "low_generator"))
def randint(*args, generator=None, dtype=None, layout=None, device=None, pin_memory=None):
    low, high, size = (0, *args) if len(args) == 2 else args
    return _randint(size, low, high, _int_dtype(dtype))


@register(
    *aten("randint_like"),
    *aten_optional("randint_like", "Tensor", since="2.9"),
    *aten_optional("randint_like", "generator", "Tensor_generator", since="2.10"),
)
def randint_like(
    self, high, *, generator=None, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None
):
    return _randint(self.shape, 0, high, _like_dtype(self, dtype))


@register(*aten("randint_like", "low_dtype"), *aten_optional("randint_like", "low_generator_dtype", since="2.10"))
def randint_like_low(
    self, low, high, *, generator=None, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None
):
    return _randint(self.shape, low, high, _like_dtype(self, dtype))


@register(*aten("randperm", "default", "generator"))
def randperm(n, *, generator=None, dtype=None, layout=None, device=None, pin_memory=None):
    return jax.random.permutation(current_key(), n).astype(_int_dtype(dtype))


# --------------------------------------------------------------------------- distributions over a tensor's shape


@register(*aten("uniform"))
def uniform(self, from_=0.0, to=1.0, *, generator=None):
    return _uniform(self.shape, self.dtype, from_, to)


@register(*aten("normal_functional"))
def normal_functional(self, mean=0.0, std=1.0, *, generator=None):
    return (mean + std * _normal(self.shape, self.dtype)).astype(self.dtype)


@register(*aten("normal", "Tensor_float", "float_Tensor", "Tensor_Tensor"))
def normal(mean, std=1.0, *, generator=None):
    out = jnp.result_type(*(x for x in (mean, std) if hasattr(x, "dtype")))
    shape = jnp.broadcast_shapes(jnp.shape(mean), jnp.shape(std))
    return (mean + std * _normal(shape, out)).astype(out)


@register(*aten("normal", "float_float"))
def normal_float_float(mean, std, size, *, generator=None, dtype=None, layout=None, device=None, pin_memory=None):
    out = _float_dtype(dtype)
    return (mean + std * _normal(size, out)).astype(out)


# torch's decompositions draw through prims (``normal_`` becomes ``prims.normal``)


@register(torch.ops.prims.normal.default)
def prims_normal(shape, *, mean, std, dtype, device=None, requires_grad=False, generator=None):
    out = jdtype(dtype)
    return (mean + std * _normal(shape, out)).astype(out)


@register(torch.ops.prims.uniform.default)
def prims_uniform(shape, *, low, high, dtype, device=None, stride=None, generator=None):
    return _uniform(shape, jdtype(dtype), low, high)


@register(*aten("log_normal"))
def log_normal(self, mean=1.0, std=2.0, *, generator=None):
    return jnp.exp(mean + std * _normal(self.shape, self.dtype)).astype(self.dtype)


@register(*aten("exponential"))
def exponential(self, lambd=1.0, *, generator=None):
    draws = jax.random.exponential(current_key(), self.shape, _compute_dtype(self.dtype))
    return (draws / lambd).astype(self.dtype)


@register(*aten("cauchy"))
def cauchy(self, median=0.0, sigma=1.0, *, generator=None):
    draws = jax.random.cauchy(current_key(), self.shape, _compute_dtype(self.dtype))
    return (median + sigma * draws).astype(self.dtype)


@register(*aten("geometric"))
def geometric(self, p, *, generator=None):
    # trials up to and including the first success: support {1, 2, ...}
    u = jax.random.uniform(current_key(), self.shape, jnp.float64, minval=jnp.finfo(jnp.float64).tiny)
    return jnp.ceil(jnp.log(u) / jnp.log1p(-p)).clip(1).astype(self.dtype)


@register(*aten("bernoulli"))
def bernoulli(self, *, generator=None):
    # u < p with u in [0, 1): p == 0 never fires and p == 1 always does
    return (_uniform(self.shape, _compute_dtype(self.dtype)) < self).astype(self.dtype)


@register(*aten("bernoulli", "p", "Tensor"))
def bernoulli_p(self, p=0.5, *, generator=None):
    # the default is bernoulli_.float's: torch drops an argument equal to it
    compute = jnp.result_type(_compute_dtype(self.dtype), getattr(p, "dtype", jnp.float32))
    return (_uniform(self.shape, compute) < p).astype(self.dtype)


@register(*aten("random", "default", "to", "from"))
def random(self, *args, generator=None):
    """Integers in ``[from, to)``; the bounds default to the dtype's exactly representable range."""
    low, high = (0, None) if not args else (0, args[0]) if len(args) == 1 else args
    if high is None:
        high = _random_limit(self.dtype)
    return _randint(self.shape, low, high, self.dtype)


def _random_limit(dtype) -> int:
    """One past the largest value ``random_`` draws for ``dtype`` (torch: 2**digits for floats)."""
    if dtype == jnp.bool_:
        return 2
    if dtypes.is_floating(dtype):
        return 2 ** (jnp.finfo(dtype).nmant + 1) + 1
    # int64's limit is one past what int64 holds: draw up to its max instead
    return min(int(jnp.iinfo(dtype).max) + 1, int(jnp.iinfo(jnp.int64).max))


@register(*aten("multinomial"))
def multinomial(self, num_samples, replacement=False, *, generator=None):
    logits = jnp.log(self.astype(_compute_dtype(self.dtype)))
    if replacement:
        batch = logits.shape[:-1]
        draws = jax.random.categorical(current_key(), logits, axis=-1, shape=(num_samples, *batch))
        return jnp.moveaxis(draws, 0, -1).astype(jnp.int64)
    # Gumbel top-k: the k largest perturbed logits are a draw without replacement
    perturbed = logits + jax.random.gumbel(current_key(), logits.shape, logits.dtype)
    return lax.top_k(perturbed, num_samples)[1].astype(jnp.int64)


@register(*aten("poisson"))
def poisson(self, generator=None):
    rate = self.astype(_compute_dtype(self.dtype))
    return jax.random.poisson(current_key(), rate, self.shape, jnp.int64).astype(self.dtype)


@register(*aten("_standard_gamma"))
def _standard_gamma(self, generator=None):
    alpha = self.astype(_compute_dtype(self.dtype))
    return jax.random.gamma(current_key(), alpha, self.shape, alpha.dtype).astype(self.dtype)


@register(*aten("binomial"))
def binomial(count, prob, generator=None):
    compute = _compute_dtype(count.dtype)
    draws = jax.random.binomial(current_key(), count.astype(compute), prob.astype(compute), dtype=compute)
    return draws.astype(count.dtype)
