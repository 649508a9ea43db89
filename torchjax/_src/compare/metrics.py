"""How far two tensors are apart, and whether torchjax's distance is its own fault.

Every entry of a report compares three tensors: torch's (float32, eager), torchjax's
(the compiled program) and, with ``reference="float64"``, torch's run of the same code
in float64. :func:`measure` computes the columns of one entry.

Why ``FACTOR`` and ``FLOOR_ULPS``: torchjax is flagged when its error against float64
exceeds ``max(FACTOR * torch's error, FLOOR_ULPS ULPs of max|float64|)``. Two correct
float32 implementations that differ only in summation order or fusion have errors of
the same size, because both round the same operations in different orders; a wrong
rule (a constant off by 1e-3, a missing term) puts torchjax's error orders of magnitude
above torch's. A factor of 8 leaves room for the spread between two independent
rounding processes on a small tensor, whose largest error is noisy, while a 1e-3
relative error still scores in the hundreds. The floor covers entries where torch's
own error is zero or tiny (relu, an embedding lookup, a reduction of a few elements),
where any reordering at all would exceed ``FACTOR * 0``; 32 ULPs of the largest value
is below any error that matters and above what reassociating a short sum can cause.
"""

from __future__ import annotations

import dataclasses
import math

import torch

FACTOR = 8.0  # torchjax may be this many times further from float64 than torch is
FLOOR_ULPS = 32.0  # ...and always this many ULPs of the entry's largest value


@dataclasses.dataclass
class Entry:
    """One compared tensor: a module output, a gradient, an op's output, a transform's result.

    ``torch_err`` and ``torchjax_err`` are the max abs errors against the float64 run
    (None without a reference); ``allowed`` is the error torchjax may have; ``score`` is
    ``torchjax_err / allowed`` (or, without a reference, the largest
    ``|a - e| / (atol + rtol * |e|)``): above 1 the entry fails.
    """

    transform: str
    name: str
    kind: str
    op: str
    shape: tuple[int, ...]
    dtype: str
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ulp: float = 0.0
    cosine: float = 1.0
    torch_err: float | None = None
    torchjax_err: float | None = None
    allowed: float | None = None
    score: float = 0.0
    ok: bool = True
    note: str = ""


def _finfo(dtype: torch.dtype):
    return torch.finfo(dtype if dtype.is_floating_point else torch.float32)


def ulp_distance(a: torch.Tensor, e: torch.Tensor) -> float:
    """The largest number of representable values of ``e.dtype`` between ``a`` and ``e``.

    Floats are mapped to integers that are ordered like the floats (the bit pattern,
    with the sign-magnitude of negatives turned into two's complement), so the
    distance counts the floats in between and crosses zero correctly.
    """
    if not e.dtype.is_floating_point or e.numel() == 0:
        return 0.0
    ints = {
        torch.float64: torch.int64,
        torch.float32: torch.int32,
        torch.float16: torch.int16,
        torch.bfloat16: torch.int16,
    }
    if e.dtype not in ints:
        return float("nan")
    bits = ints[e.dtype]
    width = torch.iinfo(bits).bits

    def ordered(x):
        i = x.contiguous().view(bits).to(torch.int64) if width < 64 else x.contiguous().view(bits)
        if width < 64:
            return torch.where(i < 0, -(1 << (width - 1)) - i, i).to(torch.float64)
        # int64 patterns: the same mapping computed in float64 (exact enough for a count)
        f = i.to(torch.float64)
        return torch.where(i < 0, -(2.0**63) - f, f)

    a, e = a.to(e.dtype), e
    nan_a, nan_e = torch.isnan(a), torch.isnan(e)
    if bool((nan_a != nan_e).any()):
        return math.inf
    keep = ~nan_e
    if not bool(keep.any()):
        return 0.0
    d = (ordered(a[keep]) - ordered(e[keep])).abs()
    return float(d.max())


def _max_abs(a: torch.Tensor, e: torch.Tensor) -> float:
    """The largest |a - e|, in float64; NaN against a number is inf, NaN against NaN 0."""
    if a.numel() == 0:
        return 0.0
    a64, e64 = a.to(torch.float64), e.to(torch.float64)
    nan_a, nan_e = torch.isnan(a64), torch.isnan(e64)
    if bool((nan_a != nan_e).any()):
        return math.inf
    same = (a64 == e64) | (nan_a & nan_e)  # equal infinities
    d = torch.where(same, torch.zeros_like(a64), (a64 - e64).abs())
    return float(d.max())


def _scale(e: torch.Tensor) -> float:
    if e.numel() == 0:
        return 0.0
    finite = e.to(torch.float64)
    finite = finite[torch.isfinite(finite)]
    return float(finite.abs().max()) if finite.numel() else 0.0


def measure(
    transform: str,
    name: str,
    kind: str,
    op: str,
    actual: torch.Tensor,
    expected: torch.Tensor,
    reference: torch.Tensor | None,
    *,
    rtol: float | None,
    atol: float | None,
) -> Entry:
    """The entry comparing torchjax's ``actual`` with torch's ``expected`` (and ``reference``).

    With a float64 ``reference`` the entry fails when torchjax's error against it
    exceeds ``max(FACTOR * torch's error, floor)``, the floor being ``atol + rtol *
    max|reference|`` when either is given, else ``FLOOR_ULPS`` units in the last place
    of ``max|reference|``. Without one, it fails where ``|a - e| > atol + rtol * |e|``
    (``torch.testing.assert_close``'s default tolerances for the dtype).
    """
    entry = Entry(transform, name, kind, op, tuple(expected.shape), str(expected.dtype).removeprefix("torch."))
    if tuple(actual.shape) != tuple(expected.shape):
        entry.ok, entry.score, entry.note = False, math.inf, f"torchjax's shape is {tuple(actual.shape)}"
        entry.max_abs = entry.max_rel = entry.max_ulp = math.inf
        entry.cosine = float("nan")
        return entry
    if actual.dtype != expected.dtype:
        entry.note = f"torchjax's dtype is {str(actual.dtype).removeprefix('torch.')}"
        entry.ok = False
    if expected.is_complex():
        actual, expected = torch.view_as_real(actual), torch.view_as_real(expected)
        reference = torch.view_as_real(reference) if reference is not None and reference.is_complex() else None
    a, e = actual.detach().cpu(), expected.detach().cpu()
    entry.max_abs = _max_abs(a, e)
    scale = _scale(e)
    if e.numel():
        e64 = e.to(torch.float64).abs()
        # relative to each element, but never to less than the dtype's resolution of the
        # tensor's largest value: an element that should be 0 and is 1e-9 is not "inf" off
        denom = torch.clamp(e64, min=max(_finfo(e.dtype).eps * scale, _finfo(e.dtype).tiny))
        diff = (a.to(torch.float64) - e.to(torch.float64)).abs()
        diff = torch.where(torch.isnan(diff), torch.zeros_like(diff), diff)
        entry.max_rel = math.inf if math.isinf(entry.max_abs) else float((diff / denom).max())
    entry.max_ulp = ulp_distance(a, e)
    entry.cosine = _cosine(a, e)
    if not e.dtype.is_floating_point and not e.is_complex():
        entry.ok = entry.ok and bool(torch.equal(a, e))
        entry.score = 0.0 if entry.ok else math.inf
        return entry
    if reference is not None and tuple(reference.shape) == tuple(e.shape):
        r = reference.detach().cpu()
        entry.torch_err = _max_abs(e, r)
        entry.torchjax_err = _max_abs(a, r)
        ref_scale = _scale(r)
        if atol is not None or rtol is not None:
            floor = (atol or 0.0) + (rtol or 0.0) * ref_scale
        else:
            floor = FLOOR_ULPS * _finfo(e.dtype).eps * ref_scale
        entry.allowed = max(FACTOR * entry.torch_err, floor, _finfo(e.dtype).tiny)
        entry.score = entry.torchjax_err / entry.allowed if math.isfinite(entry.torchjax_err) else math.inf
    else:
        default_rtol, default_atol = _default_tolerances(e.dtype)
        rt = default_rtol if rtol is None else rtol
        at = default_atol if atol is None else atol
        if math.isinf(entry.max_abs):
            entry.score = math.inf
        elif e.numel():
            diff = (a.to(torch.float64) - e.to(torch.float64)).abs()
            diff = torch.where(torch.isnan(diff), torch.zeros_like(diff), diff)
            entry.score = float((diff / (at + rt * e.to(torch.float64).abs().nan_to_num(0.0))).max())
    entry.ok = entry.ok and entry.score <= 1.0
    return entry


def _cosine(a: torch.Tensor, e: torch.Tensor) -> float:
    a64, e64 = a.reshape(-1).to(torch.float64), e.reshape(-1).to(torch.float64)
    na, ne = float(a64.norm()), float(e64.norm())
    if na == 0.0 and ne == 0.0:
        return 1.0
    if na == 0.0 or ne == 0.0 or not (math.isfinite(na) and math.isfinite(ne)):
        return 0.0 if math.isfinite(na) and math.isfinite(ne) else float("nan")
    return float(torch.dot(a64, e64) / (na * ne))


def _default_tolerances(dtype: torch.dtype) -> tuple[float, float]:
    """``torch.testing.assert_close``'s defaults."""
    return {
        torch.float16: (1e-3, 1e-5),
        torch.bfloat16: (1.6e-2, 1e-5),
        torch.float32: (1.3e-6, 1e-5),
        torch.float64: (1e-7, 1e-7),
        torch.complex64: (1.3e-6, 1e-5),
        torch.complex128: (1e-7, 1e-7),
    }.get(dtype, (0.0, 0.0))


def missing(transform: str, name: str, kind: str, op: str, expected: torch.Tensor, note: str) -> Entry:
    """An entry torchjax did not produce (or could not run): always a failure."""
    entry = Entry(transform, name, kind, op, tuple(expected.shape), str(expected.dtype).removeprefix("torch."))
    entry.ok, entry.score, entry.note = False, math.inf, note
    entry.max_abs = entry.max_rel = entry.max_ulp = math.inf
    entry.cosine = float("nan")
    return entry
