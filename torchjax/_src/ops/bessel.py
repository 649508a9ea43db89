"""Bessel functions of the first and second kind, orders 0 and 1: the Cephes rational
approximations torch uses (``ATen/native/Math.h``), so results match torch's bits."""

from __future__ import annotations

import jax.numpy as jnp
import torch

from ..registry import aten, register
from ._common import Kind, register_pointwise

# Coefficients copied from torch's Math.h (Cephes), highest degree first.
_BESSEL_J0 = {
    "PP": (
        0.0007969367292973471,
        0.08283523921074408,
        1.239533716464143,
        5.447250030587687,
        8.74716500199817,
        5.303240382353949,
        1.0,
    ),
    "PQ": (
        0.0009244088105588637,
        0.08562884743544745,
        1.2535274390105895,
        5.470977403304171,
        8.761908832370695,
        5.306052882353947,
        1.0,
    ),
    "QP": (
        -0.011366383889846916,
        -1.2825271867050931,
        -19.553954425773597,
        -93.20601521237683,
        -177.68116798048806,
        -147.07750515495118,
        -51.41053267665993,
        -6.050143506007285,
    ),
    "QQ": (
        64.3178256118178,
        856.4300259769806,
        3882.4018360540163,
        7240.467741956525,
        5930.727011873169,
        2062.0933166032783,
        242.0057402402914,
    ),
    "RP": (-4794432209.782018, 1956174919465.5657, -249248344360967.72, 9708622510473064.0),
    "RQ": (
        499.563147152651,
        173785.4016763747,
        48440965.83399621,
        11185553704.535683,
        2112775201154.892,
        310518229857422.56,
        3.1812195594320496e16,
        1.7108629408104315e18,
    ),
}
_BESSEL_J1 = {
    "PP": (
        0.0007621256162081731,
        0.07313970569409176,
        1.1271960812968493,
        5.112079511468076,
        8.424045901417724,
        5.214515986823615,
        1.0,
    ),
    "PQ": (
        0.0005713231280725487,
        0.06884559087544954,
        1.105142326340617,
        5.073863861286015,
        8.399855543276042,
        5.209828486823619,
        1.0,
    ),
    "QP": (
        0.05108625947501766,
        4.982138729512334,
        75.82382841325453,
        366.7796093601508,
        710.8563049989261,
        597.4896124006136,
        211.68875710057213,
        25.207020585802372,
    ),
    "QQ": (
        74.23732770356752,
        1056.4488603826283,
        4986.410583376536,
        9562.318924047562,
        7997.041604473507,
        2826.1927851763908,
        336.0936078106983,
    ),
    "RP": (-899971225.7055594, 452228297998.19403, -72749424522181.83, 3682957328638529.0),
    "RQ": (
        620.8364781180543,
        256987.25675774884,
        83514679.14319493,
        22151159547.97925,
        4749141220799.914,
        784369607876235.9,
        8.952223361846274e16,
        5.322786203326801e18,
    ),
}
_BESSEL_Y0 = {
    # the asymptotic tables (PP, PQ, QP, QQ) are _BESSEL_J0's
    **{k: _BESSEL_J0[k] for k in ("PP", "PQ", "QP", "QQ")},
    "YP": (
        15592.436785523574,
        -14663929.59039716,
        5435264770.518765,
        -982136065717.9115,
        87590639439536.7,
        -3466283033847297.0,
        4.4273326857256984e16,
        -1.8495080043698668e16,
    ),
    "YQ": (
        1041.2835366425984,
        626107.330137135,
        268919633.39381415,
        86400248710.3935,
        20297961275010.555,
        3171577528429750.5,
        2.5059625617265306e17,
    ),
}
_BESSEL_Y1 = {
    # the asymptotic tables (PP, PQ, QP, QQ) are _BESSEL_J1's
    **{k: _BESSEL_J1[k] for k in ("PP", "PQ", "QP", "QQ")},
    "YP": (
        1263204747.9017804,
        -647355876379.1603,
        114509511541823.73,
        -8127702555013251.0,
        2.024394757135949e17,
        -7.788771962659501e17,
    ),
    "YQ": (
        594.3015923461282,
        235564.09294306856,
        73481194.44597217,
        18760131610.870617,
        3882312774962.3857,
        620557727146953.8,
        6.871410873553005e16,
        3.9727060811656064e18,
    ),
}

_SQRT_2_OVER_PI = 0.797884560802865355879892119868763737
_TWO_OVER_PI = 0.636619772367581343075535053490057448


def _poly(coeffs, z):
    out = jnp.zeros_like(z)
    for c in coeffs:
        out = out * z + c
    return out


def _asymptotic(t, x, phase, sine: bool):
    """The large-|x| form shared by all four: P cos(x - phase) - 5/x Q sin(x - phase) (or the Y pair)."""
    safe = jnp.where(x > 5, x, 5.0)
    z = 25.0 / (safe * safe)
    p = _poly(t["PP"], z) / _poly(t["PQ"], z)
    q = 5.0 / safe * (_poly(t["QP"], z) / _poly(t["QQ"], z))
    a = safe - phase
    body = p * jnp.sin(a) + q * jnp.cos(a) if sine else p * jnp.cos(a) - q * jnp.sin(a)
    return body * _SQRT_2_OVER_PI / jnp.sqrt(safe)


def _opmath(x):
    return x.astype(jnp.float32) if x.dtype in (jnp.bfloat16, jnp.float16) else x


def bessel_j0(x):
    x = jnp.abs(_opmath(x))
    z = x * x
    t = _BESSEL_J0
    small = (z - 5.78318596294678452118e00) * (z - 3.04712623436620863991e01) * _poly(t["RP"], z) / _poly(t["RQ"], z)
    small = jnp.where(x < 1e-5, 1.0 - z / 4.0, small)
    return jnp.where(x <= 5, small, _asymptotic(t, x, 0.785398163397448309615660845819875721, sine=False))


def bessel_j1(x):
    x = _opmath(x)
    sign = jnp.where(x < 0, -1.0, 1.0).astype(x.dtype)
    x = jnp.abs(x)
    z = x * x
    t = _BESSEL_J1
    small = (
        _poly(t["RP"], z) / _poly(t["RQ"], z) * x * (z - 1.46819706421238932572e01) * (z - 4.92184563216946036703e01)
    )
    big = _asymptotic(t, x, 2.356194490192344928846982537459627163, sine=False)
    return sign * jnp.where(x <= 5, small, big)


def bessel_y0(x):
    x = _opmath(x)
    t = _BESSEL_Y0
    safe = jnp.where(x > 0, x, 1.0)
    z = safe * safe
    small = _poly(t["YP"], z) / _poly(t["YQ"], z) + _TWO_OVER_PI * jnp.log(safe) * bessel_j0(safe)
    small = jnp.where(x == 0, -jnp.inf, jnp.where(x < 0, jnp.nan, small))
    return jnp.where(x <= 5, small, _asymptotic(t, x, 0.785398163397448309615660845819875721, sine=True))


def bessel_y1(x):
    x = _opmath(x)
    t = _BESSEL_Y1
    safe = jnp.where(x > 0, x, 1.0)
    z = safe * safe
    small = safe * (_poly(t["YP"], z) / _poly(t["YQ"], z)) + _TWO_OVER_PI * (
        bessel_j1(safe) * jnp.log(safe) - 1.0 / safe
    )
    small = jnp.where(x == 0, -jnp.inf, jnp.where(x < 0, jnp.nan, small))
    return jnp.where(x <= 5, small, _asymptotic(t, x, 2.356194490192344928846982537459627163, sine=True))


for _name, _fn in {
    "bessel_j0": bessel_j0,
    "bessel_j1": bessel_j1,
    "bessel_y0": bessel_y0,
    "bessel_y1": bessel_y1,
}.items():
    register_pointwise(aten(f"special_{_name}"), _fn, Kind.INT_TO_FLOAT)
    if hasattr(torch.ops.prims, _name):
        register(getattr(torch.ops.prims, _name).default)(_fn)
