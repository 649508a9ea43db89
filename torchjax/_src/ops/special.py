"""``torch.special`` functions: gamma family, error functions, Bessel functions and the
orthogonal polynomials, following the special cases of torch's ``ATen/native/Math.h``."""

from __future__ import annotations

import math

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
    "special_modified_bessel_i0": jss.i0,
    "special_modified_bessel_i1": jss.i1,
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
    """Cephes' zeta(x, q) as torch has it: poles, domain errors, and negative q (integral x)."""
    # jax's zeta needs q > 0; torch recurses zeta(x, q) = zeta(x, q + k) + sum_j<k (q + j)^-x.
    k = jnp.where(q < 1, jnp.ceil(1 - q), 0).astype(jnp.int64)

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
    return jnp.where(x == 1, jnp.inf, jnp.where(x < 1, jnp.nan, out))


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


@register(*aten("polygamma"))
def polygamma(n, x):
    _, result = promote(x, kind=Kind.INT_TO_FLOAT)
    x = x.astype(_opmath(result))
    if n == 0:
        # digamma: torch gives -inf at 0 (jax gives nan)
        return jnp.where(x == 0, jnp.copysign(jnp.inf, -x), jss.digamma(x)).astype(result)
    # torch: (-1)^(n+1) n! zeta(n + 1, x), with its zeta (valid for negative x too)
    sign = 1.0 if n % 2 else -1.0
    return (sign * math.factorial(n) * _hurwitz_zeta(jnp.full_like(x, n + 1), x)).astype(result)


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
