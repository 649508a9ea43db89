"""Elementwise math, comparisons, ``where``, ``clamp`` and casts."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import torch
from jax import lax

from ..errors import TracingError
from ..registry import aten, register
from ._common import Kind, as_array, jdtype, pointwise, promote, register_pointwise
from .special import digamma

# --------------------------------------------------------------------------- unary

_INT_TO_FLOAT = {
    "sin": jnp.sin,
    "cos": jnp.cos,
    "tan": jnp.tan,
    "asin": jnp.arcsin,
    "acos": jnp.arccos,
    "atan": jnp.arctan,
    "sinh": jnp.sinh,
    "cosh": jnp.cosh,
    "tanh": jnp.tanh,
    "asinh": jnp.arcsinh,
    "acosh": jnp.arccosh,
    "atanh": jnp.arctanh,
    "exp": jnp.exp,
    "exp2": jnp.exp2,
    "expm1": jnp.expm1,
    "log": jnp.log,
    "log2": jnp.log2,
    "log10": jnp.log10,
    "log1p": jnp.log1p,
    "sqrt": jnp.sqrt,
    "rsqrt": lax.rsqrt,
    "sigmoid": jax.nn.sigmoid,
    "erf": jax.scipy.special.erf,
    "erfc": jax.scipy.special.erfc,
    "erfinv": jax.scipy.special.erfinv,
    "lgamma": jax.scipy.special.gammaln,
    "digamma": digamma,  # torch's algorithm, with polygamma(1, x) as its derivative
    "i0": jnp.i0,
    "sinc": jnp.sinc,
    "deg2rad": jnp.deg2rad,
    "rad2deg": jnp.rad2deg,
    "reciprocal": jnp.reciprocal,
}
for _name, _fn in _INT_TO_FLOAT.items():
    register_pointwise(aten(_name), _fn, Kind.INT_TO_FLOAT)


def _sign(x):
    return x if x.dtype == jnp.bool_ else jnp.sign(x)


def _trunc_like(fn):
    def rule(x):
        return x if jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_ else fn(x)

    return rule


_DEFAULT_UNARY = {
    "neg": jnp.negative,
    "sign": _sign,
    "floor": _trunc_like(jnp.floor),
    "ceil": _trunc_like(jnp.ceil),
    "trunc": _trunc_like(jnp.trunc),
    "round": _trunc_like(jnp.round),
    "frac": lambda x: x - jnp.trunc(x),
    "bitwise_not": lambda x: jnp.logical_not(x) if x.dtype == jnp.bool_ else jnp.invert(x),
    "square": jnp.square,
    "relu": jax.nn.relu,
    "positive": lambda x: x,
}
for _name, _fn in _DEFAULT_UNARY.items():
    register_pointwise(aten(_name), _fn, Kind.DEFAULT)

register_pointwise(aten("abs"), jnp.abs, Kind.COMPLEX_TO_FLOAT)
register_pointwise(aten("angle"), jnp.angle, Kind.INT_TO_FLOAT)
register_pointwise(aten("sgn"), _sign, Kind.DEFAULT)
register_pointwise(aten("logical_not"), jnp.logical_not, Kind.ALWAYS_BOOL)
register_pointwise(aten("isnan"), jnp.isnan, Kind.ALWAYS_BOOL)
register_pointwise(aten("isinf"), jnp.isinf, Kind.ALWAYS_BOOL)
register_pointwise(aten("isfinite"), jnp.isfinite, Kind.ALWAYS_BOOL)
register_pointwise(aten("signbit"), jnp.signbit, Kind.ALWAYS_BOOL)
register_pointwise(aten("isposinf"), jnp.isposinf, Kind.ALWAYS_BOOL)
register_pointwise(aten("isneginf"), jnp.isneginf, Kind.ALWAYS_BOOL)
register_pointwise(aten("round", "decimals"), lambda x, *, decimals=0: jnp.round(x, decimals), n_tensors=1)


@register(
    *aten("conj_physical"),
    *aten("_conj_physical"),
    *aten("_conj"),
    *aten("conj"),
    *aten("resolve_conj"),
    *aten("resolve_neg"),
)
def conj(x):
    return jnp.conj(x) if jnp.iscomplexobj(x) else x


@register(*aten("real"))
def real(x):
    return jnp.real(x)


@register(*aten("imag"))
def imag(x):
    return jnp.imag(x)


# --------------------------------------------------------------------------- binary


_add = pointwise(lambda a, b: a + b)
_sub = pointwise(lambda a, b: a - b)


@register(*aten("add", "Tensor", "Scalar"))
def add(a, b, *, alpha=1):
    if alpha != 1:
        b = _mul(b, alpha)
    return _add(a, b)


@register(*aten("sub", "Tensor", "Scalar"), *aten("subtract", "Tensor", "Scalar"))
def sub(a, b, *, alpha=1):
    if alpha != 1:
        b = _mul(b, alpha)
    return _sub(a, b)


@register(*aten("rsub", "Tensor", "Scalar"))
def rsub(a, b, *, alpha=1):
    return sub(b, a, alpha=alpha)


_mul = pointwise(lambda a, b: jnp.logical_and(a, b) if a.dtype == jnp.bool_ else a * b)
register(*aten("mul", "Tensor", "Scalar"), *aten("multiply", "Tensor", "Scalar"))(_mul)

_true_div = pointwise(lambda a, b: a / b, Kind.INT_TO_FLOAT)


def _floor_divide(a, b):
    if jnp.issubdtype(a.dtype, jnp.integer):
        return jnp.floor_divide(a, b)
    return jnp.floor(a / b)


def _trunc_divide(a, b):
    if jnp.issubdtype(a.dtype, jnp.integer):
        return lax.div(*jnp.broadcast_arrays(a, b))
    return jnp.trunc(a / b)


_div_floor = pointwise(_floor_divide)
_div_trunc = pointwise(_trunc_divide)


@register(*aten("div", "Tensor", "Scalar"), *aten("true_divide", "Tensor", "Scalar"))
def div(a, b):
    return _true_div(a, b)


@register(*aten("div", "Tensor_mode", "Scalar_mode"))
def div_mode(a, b, *, rounding_mode=None):
    if rounding_mode is None:
        return _true_div(a, b)
    if rounding_mode == "floor":
        return _div_floor(a, b)
    if rounding_mode == "trunc":
        return _div_trunc(a, b)
    raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{rounding_mode}'")


register(*aten("floor_divide", "default", "Scalar"))(_div_floor)


def _torch_remainder(a, b):
    if jnp.issubdtype(a.dtype, jnp.integer):
        return jnp.remainder(a, b)
    return a - jnp.floor(a / b) * b


register_pointwise(aten("remainder", "Tensor", "Scalar", "Scalar_Tensor"), _torch_remainder)
register_pointwise(aten("fmod", "Tensor", "Scalar"), jnp.fmod)


def _pow(a, b):
    if not jnp.issubdtype(a.dtype, jnp.integer):
        return jnp.power(a, b)
    # Integer powers with a negative exponent truncate to 0, except for bases 1 and -1.
    r = jnp.power(a, jnp.maximum(b, 0))
    unit = jnp.where(a == 1, 1, jnp.where(a == -1, 1 - 2 * (b % 2), 0)).astype(a.dtype)
    return jnp.where(b < 0, unit, r)


register_pointwise(aten("pow", "Tensor_Tensor", "Tensor_Scalar", "Scalar"), _pow)
register_pointwise(aten("float_power", "Tensor_Tensor", "Tensor_Scalar", "Scalar"), jnp.power)
register_pointwise(aten("atan2"), jnp.arctan2, Kind.INT_TO_FLOAT)
register_pointwise(aten("arctan2"), jnp.arctan2, Kind.INT_TO_FLOAT)
register_pointwise(aten("hypot"), jnp.hypot)
register_pointwise(aten("copysign", "Tensor", "Scalar"), jnp.copysign, Kind.INT_TO_FLOAT)
register_pointwise(aten("nextafter"), jnp.nextafter)
register_pointwise(aten("maximum"), jnp.maximum)
register_pointwise(aten("minimum"), jnp.minimum)
register_pointwise(aten("fmax"), jnp.fmax)
register_pointwise(aten("fmin"), jnp.fmin)
register_pointwise(aten("xlogy", "Tensor", "Scalar_Self", "Scalar_Other"), jax.scipy.special.xlogy, Kind.INT_TO_FLOAT)
register_pointwise(aten("logaddexp"), jnp.logaddexp)
register_pointwise(aten("logaddexp2"), jnp.logaddexp2)
register_pointwise(aten("bitwise_and", "Tensor", "Scalar"), jnp.bitwise_and)
register_pointwise(aten("bitwise_or", "Tensor", "Scalar"), jnp.bitwise_or)
register_pointwise(aten("bitwise_xor", "Tensor", "Scalar"), jnp.bitwise_xor)
register_pointwise(aten("bitwise_left_shift", "Tensor", "Tensor_Scalar"), jnp.left_shift)
register_pointwise(aten("bitwise_right_shift", "Tensor", "Tensor_Scalar"), jnp.right_shift)
register_pointwise(aten("__lshift__", "Tensor", "Scalar"), jnp.left_shift)
register_pointwise(aten("__rshift__", "Tensor", "Scalar"), jnp.right_shift)
register_pointwise(aten("logical_and"), jnp.logical_and, Kind.ALWAYS_BOOL)
register_pointwise(aten("logical_or"), jnp.logical_or, Kind.ALWAYS_BOOL)
register_pointwise(aten("logical_xor"), jnp.logical_xor, Kind.ALWAYS_BOOL)
register_pointwise(aten("heaviside"), lambda x, v: jnp.where(x == 0, v, (x > 0).astype(x.dtype)))
register_pointwise(aten("ldexp", "Tensor"), lambda x, e: x * jnp.exp2(e), Kind.INT_TO_FLOAT)
register_pointwise(aten("gcd"), jnp.gcd)
register_pointwise(aten("lcm"), jnp.lcm)

for _name, _fn in {"eq": jnp.equal, "ne": jnp.not_equal, "lt": jnp.less, "le": jnp.less_equal,
                   "gt": jnp.greater, "ge": jnp.greater_equal}.items():  # fmt: skip
    register_pointwise(aten(_name, "Tensor", "Scalar"), _fn, Kind.ALWAYS_BOOL)


@register(*aten("frexp", "Tensor"), torch.ops.prims.frexp.default)
def frexp(x):
    mantissa, exponent = jnp.frexp(x)
    return mantissa, exponent.astype(jnp.int32)


def _python_bool(name: str, answer, instead: str) -> bool:
    """equal/allclose return a Python bool, which only exists for concrete values."""
    if isinstance(answer, jax.core.Tracer):
        raise TracingError(
            f"torchjax: torch.{name} returns a Python bool, which JAX cannot know while it traces; "
            f"write {instead} to keep the answer a tensor"
        )
    return bool(answer)


@register(*aten("equal"))
def equal(a, b):
    if a.shape != b.shape:
        return False
    return _python_bool("equal", jnp.all(a == b), "(a == b).all()")


@register(*aten("allclose"))
def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    close = jnp.isclose(a, b.astype(a.dtype), rtol=rtol, atol=atol, equal_nan=equal_nan)
    return _python_bool("allclose", jnp.all(close), "torch.isclose(a, b).all()")


# --------------------------------------------------------------------------- ternary


@register(*aten("where", "self", "ScalarSelf", "ScalarOther", "Scalar"))
def where(cond, a, b):
    _, result = promote(a, b)
    return jnp.where(as_array(cond).astype(bool), as_array(a, result), as_array(b, result))


def _clamp(x, lo=None, hi=None):
    _, result = promote(x, lo, hi)
    x = as_array(x, result)
    if lo is not None:
        x = jnp.maximum(x, as_array(lo, result))
    if hi is not None:
        x = jnp.minimum(x, as_array(hi, result))
    return x


@register(*aten("clamp", "default", "Tensor"), *aten("clip", "default", "Tensor"))
def clamp(x, min=None, max=None):
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    return _clamp(x, min, max)


@register(*aten("clamp_min", "default", "Tensor"))
def clamp_min(x, min):
    return _clamp(x, min, None)


@register(*aten("clamp_max", "default", "Tensor"))
def clamp_max(x, max):
    return _clamp(x, None, max)


@register(*aten("lerp", "Scalar", "Tensor"))
def lerp(start, end, weight):
    _, result = promote(start, end, weight)
    s, e, w = (as_array(v, result) for v in (start, end, weight))
    return s + w * (e - s)


@register(*aten("addcmul"))
def addcmul(x, t1, t2, *, value=1):
    _, result = promote(x, t1, t2)
    return as_array(x, result) + value * as_array(t1, result) * as_array(t2, result)


@register(*aten("addcdiv"))
def addcdiv(x, t1, t2, *, value=1):
    _, result = promote(x, t1, t2)
    return as_array(x, result) + value * as_array(t1, result) / as_array(t2, result)


@register(*aten("nan_to_num"))
def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        return x
    return jnp.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)


# --------------------------------------------------------------------------- casts and copies


@register(*aten("_to_copy"))
def _to_copy(x, *, dtype=None, layout=None, device=None, pin_memory=None, non_blocking=False, memory_format=None):
    target = jdtype(dtype)
    if target is None or target == x.dtype:
        return jnp.array(x, copy=True) if not isinstance(x, jax.core.Tracer) else x
    if jnp.iscomplexobj(x) and not jnp.issubdtype(target, jnp.complexfloating):
        x = jnp.real(x)
    return x.astype(target)


@register(*aten("clone"), *aten("contiguous"))
def clone(x, *, memory_format=None):
    return x


@register(*aten("copy"))
def copy(self, src, non_blocking=False):
    src = as_array(src)
    if jnp.iscomplexobj(src) and not jnp.iscomplexobj(self):
        src = jnp.real(src)
    return jnp.broadcast_to(src.astype(self.dtype), self.shape)


@register(*aten("fill", "Scalar", "Tensor"))
def fill(self, value):
    return jnp.full(self.shape, as_array(value).astype(self.dtype) if hasattr(value, "dtype") else value, self.dtype)


@register(*aten("zero"))
def zero(self):
    return jnp.zeros_like(self)
