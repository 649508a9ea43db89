"""``torch.special`` functions: gamma family, error functions, Bessel functions and the
orthogonal polynomials, following the special cases of torch's ``ATen/native/Math.h``."""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import jax.scipy.special as jss
import torch
from jax import lax

from ..registry import aten, register
from ._common import Kind, pointwise, promote, register_pointwise

prims = torch.ops.prims

# --------------------------------------------------------------------------- unary, from jax.scipy.special


def _opmath(dtype):
    """torch evaluates half-precision special functions in float32."""
    return jnp.float32 if dtype in (jnp.bfloat16, jnp.float16) else dtype


def _spherical_bessel_j0(x):
    x2 = x * x
    series = 1.0 + x2 * (
        -1 / 6 + x2 * (1 / 120 + x2 * (-1 / 5040 + x2 * (1 / 362880 + x2 * (-1 / 39916800 + x2 / 6227020800))))
    )
    small = jnp.abs(x) < 0.5
    out = jnp.where(small, series, jnp.sin(x) / jnp.where(small, 1.0, x))
    return jnp.where(jnp.isinf(x), jnp.zeros_like(x), out)


_UNARY = {
    "special_erfcx": jss.erfcx,
    "special_ndtri": jss.ndtri,
    "special_ndtr": jss.ndtr,
    "special_log_ndtr": jss.log_ndtr,
    "special_i0e": jss.i0e,
    "special_i1": jss.i1,
    "special_i1e": jss.i1e,
    "special_spherical_bessel_j0": _spherical_bessel_j0,
    "special_entr": jss.entr,
}
for _name, _fn in _UNARY.items():
    register_pointwise(aten(_name), _fn, Kind.INT_TO_FLOAT)

# Decompositions of other ops land on these prims.
for _prim, _fn in {
    "erfcx": jss.erfcx,
    "ndtri": jss.ndtri,
    "bessel_i0e": jss.i0e,
    "bessel_i1": jss.i1,
    "bessel_i1e": jss.i1e,
    "spherical_bessel_j0": _spherical_bessel_j0,
}.items():
    register(getattr(prims, _prim).default)(_fn)


def _hurwitz_zeta(x, q):
    """Cephes' zeta(x, q) as torch has it: poles, domain errors, and negative q (integral x).

    torch accumulates in double (CPU ``acc_type``): the shift below sums terms of alternating
    sign for negative q, which cancel badly in float32."""
    dtype = x.dtype
    x, q = x.astype(jnp.float64), q.astype(jnp.float64)
    # jax's zeta needs q > 0; torch recurses zeta(x, q) = zeta(x, q + k) + sum_j<k (q + j)^-x.
    # (integral q <= 0, -inf among them, are poles: no shift, or the loop would not end)
    k = jnp.where((q < 1) & (q != jnp.floor(q)), jnp.ceil(1 - q), 0).astype(jnp.int64)

    def body(state):
        j, acc = state
        term = jnp.where(j < k, (q + j.astype(q.dtype)) ** -x, 0)
        return j + 1, acc + term

    _, acc = lax.while_loop(
        lambda s: s[0] < jnp.max(k, initial=0), body, (jnp.asarray(0, jnp.int64), jnp.zeros_like(q))
    )
    out = jss.zeta(x, q + k.astype(q.dtype)) + acc
    int_q = q == jnp.floor(q)
    out = jnp.where((q < 0) & (x != jnp.floor(x)), jnp.nan, out)
    out = jnp.where((q <= 0) & int_q, jnp.inf, out)
    return jnp.where(x == 1, jnp.inf, jnp.where(x < 1, jnp.nan, out)).astype(dtype)


def _zeta(x, q):
    x, q = jnp.broadcast_arrays(x, q)
    return _hurwitz_zeta(x, q)


register(prims.zeta.default)(_zeta)
register(prims.igamma.default)(jss.gammainc)
register(prims.igammac.default)(jss.gammaincc)


# --------------------------------------------------------------------------- binary


register_pointwise(aten("special_zeta", "default", "self_scalar", "other_scalar"), _zeta, Kind.INT_TO_FLOAT)
register_pointwise(aten("special_xlog1py", "default", "self_scalar", "other_scalar"), jss.xlog1py, Kind.INT_TO_FLOAT)
register_pointwise(aten("igamma"), jss.gammainc, Kind.INT_TO_FLOAT)
register_pointwise(aten("igammac"), jss.gammaincc, Kind.INT_TO_FLOAT)


# Coefficients of torch's asymptotic digamma series (Cephes psi), highest degree first.
_DIGAMMA_ASYMPTOTIC = (
    8.33333333333333333333e-2, -2.10927960927960927961e-2, 7.57575757575757575758e-3, -4.16666666666666666667e-3,
    3.96825396825396825397e-3, -8.33333333333333333333e-3, 8.33333333333333333333e-2,
)  # fmt: skip
_PSI_10 = 2.25175258906672110764


def _digamma(x):
    """torch's calc_digamma: reflection below 0, the recurrence up to 10, then the asymptotic series."""
    negative = x < 0
    # tan(pi * frac(x)) is more exact than tan(pi * x); torch takes it in float64 for float32 too
    frac = (x - jnp.trunc(x)).astype(jnp.float64)
    pi_over_tan = (math.pi / jnp.tan(math.pi * frac)).astype(x.dtype)
    y = jnp.where(negative, 1 - x, x)
    acc = jnp.zeros_like(y)
    for _ in range(10):  # y > 0 reaches 10 in at most 10 steps
        below = y < 10
        acc = jnp.where(below, acc - 1 / y, acc)
        y = jnp.where(below, y + 1, y)
    z = 1 / (y * y)
    series = jnp.zeros_like(z)
    for c in _DIGAMMA_ASYMPTOTIC:
        series = series * z + c
    series = jnp.where(y < 1e17, z * series, 0.0)
    out = jnp.where(y == 10, acc + _PSI_10, acc + jnp.log(y) - 0.5 / y - series)
    out = jnp.where(negative, out - pi_over_tan, out)
    out = jnp.where(negative & (x == jnp.trunc(x)), jnp.nan, out)
    return jnp.where(x == 0, jnp.copysign(jnp.inf, -x), out)


def _trigamma(x):
    """torch's trigamma: reflection below 1/2, six recurrence steps, then the asymptotic series."""
    pi = jnp.asarray(math.pi, x.dtype)
    reflect = x < 0.5
    sin_pi_x = jnp.sin(pi * x)
    acc = jnp.where(reflect, -(pi * pi) / (sin_pi_x * sin_pi_x), 0.0)
    y = jnp.where(reflect, 1 - x, x)
    for _ in range(6):
        acc = acc + 1 / (y * y)
        y = y + 1
    ixx = 1 / (y * y)
    acc = acc + (1 + 1 / (2 * y) + ixx * (1 / 6 - ixx * (1 / 30 - ixx * (1 / 42)))) / y
    return jnp.where(reflect, -acc, acc)


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _polygamma(n: int, x):
    """torch's polygamma: its own digamma and trigamma, then (-1)^(n+1) n! zeta(n + 1, x)."""
    if n == 0:
        return _digamma(x)
    if n == 1:
        return _trigamma(x)
    sign = 1.0 if n % 2 else -1.0
    return sign * math.factorial(n) * _hurwitz_zeta(jnp.full_like(x, n + 1), x)


@_polygamma.defjvp
def _polygamma_jvp(n, primals, tangents):
    # the recurrences loop (zeta's shift is a while_loop), and d/dx psi_n = psi_(n+1) anyway
    (x,), (t,) = primals, tangents
    return _polygamma(n, x), _polygamma(n + 1, x) * t


def digamma(x):
    """torch's digamma of a floating array, differentiable to any order (trigamma, ...)."""
    return _polygamma(0, x)


@register(*aten("polygamma"))
def polygamma(n, x):
    _, result = promote(x, kind=Kind.INT_TO_FLOAT)
    return _polygamma(n, x.astype(_opmath(result))).astype(result)


@register(*aten("mvlgamma"))
def mvlgamma(x, p):
    _, result = promote(x, kind=Kind.INT_TO_FLOAT)
    return jss.multigammaln(x.astype(result), p).astype(result)


# --------------------------------------------------------------------------- orthogonal polynomials


def _recurrence(x, n, p0, q0, step):
    """q_n of the three-term recurrence ``q_{j+1} = step(j, p=q_{j-1}, q=q_j)`` for j = 1..n-1, per element."""
    n_max = jnp.max(n, initial=0)

    def body(state):
        j, p, q = state
        active = j < n
        r = step(j.astype(x.dtype), p, q)
        return j + 1, jnp.where(active, q, p), jnp.where(active, r, q)

    _, _, q = lax.while_loop(lambda s: s[0] < n_max, body, (jnp.asarray(1, n.dtype), p0, q0))
    return jnp.where(n == 0, jnp.ones_like(x), q)


def _chebyshev(kind: str, trig_from: int):
    """Chebyshev T/U/V/W: special values at |y| = 1, a closed form above degree ``trig_from``."""

    def poly(y, n):
        nf = n.astype(y.dtype)
        one = jnp.ones_like(y)
        first = {"t": y, "u": y + y, "v": y + y - 1, "w": y + y + 1}[kind]
        out = _recurrence(y, n, one, first, lambda j, p, q: (y + y) * q - p)
        odd = (n % 2) == 1
        sgn = jnp.where(odd, -1.0, 1.0).astype(y.dtype)
        at_one = {"t": one, "u": nf + 1, "v": one, "w": nf + nf + 1}[kind]
        at_minus_one = {"t": sgn, "u": sgn * (nf + 1), "v": sgn * (nf + nf + 1), "w": sgn}[kind]
        theta = jnp.arccos(jnp.clip(y, -1, 1))
        if kind == "t":
            trig = jnp.cos(nf * theta)
        elif kind == "u":
            s = jnp.sin(theta)
            trig = jnp.where(s != 0, jnp.sin((nf + 1) * theta) / s, (nf + 1) * jnp.cos((nf + 1) * theta) / y)
        elif kind == "v":
            trig = jnp.where(
                jnp.sin(theta / 2) != 1, jnp.cos((nf + 0.5) * theta) / jnp.cos(theta / 2), sgn * (nf + nf + 1)
            )
        else:
            w_edge = jnp.where(y > 0, nf + nf + 1, sgn)
            trig = jnp.where(jnp.cos(theta / 2) != 1, jnp.sin((nf + 0.5) * theta) / jnp.sin(theta / 2), w_edge)
        out = jnp.where((n > trig_from) & (jnp.abs(y) < 1), trig, out)
        out = jnp.where(y == 1, at_one, jnp.where(y == -1, at_minus_one, out))
        return jnp.where(n < 0, jnp.zeros_like(y), out)

    return poly


def _hermite_limit(dtype) -> int:
    return 128 if dtype == jnp.float32 else 512


def _hermite_h(x, n):
    out = _recurrence(x, n, jnp.ones_like(x), x + x, lambda j, p, q: (x + x) * q - (j + j) * p)
    out = jnp.where(n > _hermite_limit(x.dtype), jnp.nan, out)
    return jnp.where(n < 0, 0.0, out)


def _hermite_he(x, n):
    out = _recurrence(x, n, jnp.ones_like(x), x, lambda j, p, q: x * q - j * p)
    out = jnp.where(n > _hermite_limit(x.dtype), jnp.nan, out)
    return jnp.where(n < 0, 0.0, out)


def _laguerre_l(x, n):
    out = _recurrence(x, n, jnp.ones_like(x), 1 - x, lambda j, p, q: ((j + j + (1 - x)) * q - j * p) / (j + 1))
    out = jnp.where(x == 0, 1.0, out)
    return jnp.where(n < 0, 0.0, out)


def _legendre_p(x, n):
    out = _recurrence(x, n, jnp.ones_like(x), x, lambda j, p, q: ((j + j + 1) * x * q - j * p) / (j + 1))
    sgn = jnp.where(n % 2 == 1, -1.0, 1.0)
    out = jnp.where(x == 1, 1.0, jnp.where(x == -1, sgn, out))
    return jnp.where(n < 0, 0.0, out)


def _shifted(poly):
    return lambda x, n: poly(x + x - 1, n)


_POLYNOMIALS = {
    "chebyshev_polynomial_t": _chebyshev("t", 6),
    "chebyshev_polynomial_u": _chebyshev("u", 8),
    "chebyshev_polynomial_v": _chebyshev("v", 8),
    "chebyshev_polynomial_w": _chebyshev("w", 8),
    "shifted_chebyshev_polynomial_t": _shifted(_chebyshev("t", 6)),
    "shifted_chebyshev_polynomial_u": _shifted(_chebyshev("u", 6)),
    "shifted_chebyshev_polynomial_v": _shifted(_chebyshev("v", 6)),
    "shifted_chebyshev_polynomial_w": _shifted(_chebyshev("w", 4)),
    "hermite_polynomial_h": _hermite_h,
    "hermite_polynomial_he": _hermite_he,
    "laguerre_polynomial_l": _laguerre_l,
    "legendre_polynomial_p": _legendre_p,
}


def _polynomial_rule(poly):
    # torch truncates the degree n to int64 (static_cast) before the recurrence.
    def rule(x, n):
        x, n = jnp.broadcast_arrays(x, n)
        return poly(x, n.astype(jnp.int64)).astype(x.dtype)

    return pointwise(rule, Kind.INT_TO_FLOAT)


for _name, _poly in _POLYNOMIALS.items():
    register(*aten(f"special_{_name}", "default", "x_scalar", "n_scalar"))(_polynomial_rule(_poly))
