"""Matrix products and ``torch.linalg`` factorizations.

``matmul``, ``einsum``, ``linear``, ``outer`` and ``tensordot`` are CompositeImplicit in
torch: they reach the dispatcher already lowered to ``mm``/``bmm``/``addmm``/``dot``, so
those are the rules that matter here.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_batching import custom_vmap
from jax.custom_derivatives import SymbolicZero

from ..registry import aten, aten_optional, register
from . import platform_cpu
from ._common import canonical_dim, jdtype

_HIGHEST = lax.Precision.HIGHEST


def _acc_dtype(dtype):
    """torch accumulates bfloat16/float16 products in float32 on CPU."""
    return jnp.float32 if dtype in (jnp.bfloat16, jnp.float16) else None


def _plain_matmul(a, b, acc):
    # HIGHEST: XLA's default float32 dot may use bf16 passes (TPU/GPU TF32), torch does not.
    return jnp.matmul(a, b, precision=_HIGHEST, preferred_element_type=acc)


def _matmul(a, b, out_dtype=None):
    dtype = out_dtype or a.dtype
    acc = _acc_dtype(a.dtype)
    if a.dtype == jnp.bool_:
        return jnp.matmul(a.astype(jnp.int32), b.astype(jnp.int32)).astype(jnp.bool_)
    if a.ndim == 2 and b.ndim == 2 and jnp.issubdtype(a.dtype, jnp.inexact):
        out = _MATMUL_2D[acc](a, b)
    else:
        out = _plain_matmul(a, b, acc)
    return out.astype(dtype)


def _matmul_2d(acc):
    """``a @ b`` of two matrices, whose ``vmap`` over ``b`` alone is tuned for CPU.

    ``custom_vmap`` tells the rule which operands ``vmap`` batches (an ensemble's stacked
    weights, W2 of bench/) without looking at tracers. Its derivative would be another
    ``custom_vmap``, which JAX cannot transpose: the ``custom_jvp`` around it gives the
    plain products as tangents instead, so reverse mode works and the primal keeps the
    rule at every level of differentiation.
    """
    plain = functools.partial(_plain_matmul, acc=acc)

    @custom_vmap
    def product(a, b):
        return plain(a, b)

    @product.def_vmap
    def _vmap_rule(axis_size, in_batched, a, b):
        a_batched, b_batched = in_batched
        if b_batched and not a_batched:
            tuned = functools.partial(platform_cpu.weight_major_matmul, acc=acc)
            out = lax.platform_dependent(a, b, cpu=tuned, default=jax.vmap(plain, in_axes=(None, 0)))
        else:
            out = jax.vmap(plain, in_axes=(0 if a_batched else None, 0 if b_batched else None))(a, b)
        return out, True

    @jax.custom_jvp
    def matmul(a, b):
        return product(a, b)

    @functools.partial(matmul.defjvp, symbolic_zeros=True)
    def _jvp(primals, tangents):
        (a, b), (da, db) = primals, tangents
        out = matmul(a, b)
        terms = [] if isinstance(da, SymbolicZero) else [plain(da, b)]
        if not isinstance(db, SymbolicZero):
            terms.append(plain(a, db))
        return out, sum(terms[1:], terms[0]) if terms else jnp.zeros_like(out)

    return matmul


_MATMUL_2D = {acc: _matmul_2d(acc) for acc in (None, jnp.float32)}  # by _acc_dtype


def _scaled_sum(self, product, beta, alpha):
    """``beta * self + alpha * product``; torch ignores ``self`` (even NaN) when beta == 0."""
    if alpha != 1:
        product = product * jnp.asarray(alpha, product.dtype)
    if beta == 0:
        return jnp.broadcast_to(product, product.shape)
    scaled = self if beta == 1 else self * jnp.asarray(beta, self.dtype)
    return (scaled.astype(product.dtype) + product).astype(product.dtype)


@register(*aten("mm", "default"), *aten("bmm", "default"), *aten("mv", "default"))
def mm(self, mat2):
    return _matmul(self, mat2)


@register(*aten_optional("mm", "dtype", since="2.8"), *aten_optional("bmm", "dtype", since="2.8"))
def mm_dtype(self, mat2, out_dtype):
    return _matmul(self, mat2, jdtype(out_dtype))


@register(*aten("dot"))
def dot(self, other):
    return _matmul(self, other)


@register(*aten("vdot"))
def vdot(self, other):
    # vdot conjugates its first argument; dot does not
    return _matmul(jnp.conj(self) if jnp.iscomplexobj(self) else self, other)


@register(*aten("addmm", "default"), *aten("addmv", "default"), *aten("baddbmm", "default"))
def addmm(self, mat1, mat2, *, beta=1, alpha=1):
    return _scaled_sum(self, _matmul(mat1, mat2), beta, alpha)


@register(*aten_optional("addmm", "dtype", since="2.8"), *aten_optional("baddbmm", "dtype", since="2.8"))
def addmm_dtype(self, mat1, mat2, out_dtype, *, beta=1, alpha=1):
    return _scaled_sum(self, _matmul(mat1, mat2, jdtype(out_dtype)), beta, alpha)


@register(*aten("addbmm"))
def addbmm(self, batch1, batch2, *, beta=1, alpha=1):
    acc = _acc_dtype(batch1.dtype)
    total = jnp.einsum("bij,bjk->ik", batch1, batch2, precision=_HIGHEST, preferred_element_type=acc)
    return _scaled_sum(self, total.astype(batch1.dtype), beta, alpha)


@register(*aten("_trilinear"))
def _trilinear(i1, i2, i3, expand1, expand2, expand3, sumdim, unroll_dim=1):
    # F.bilinear: each input is unsqueezed at its expand dims, multiplied, summed over sumdim.
    def expand(x, dims):
        for d in sorted(dims):
            x = jnp.expand_dims(x, d)
        return x

    prod = expand(i1, expand1) * expand(i2, expand2) * expand(i3, expand3)
    return jnp.sum(prod, axis=tuple(sumdim)) if sumdim else prod


# --------------------------------------------------------------------------- distances


def _pnorm(diff, p):
    diff = jnp.abs(diff)
    if p == 0:
        return jnp.sum(diff != 0, axis=-1).astype(diff.dtype)
    if p == 1:
        return jnp.sum(diff, axis=-1)
    if p == 2:
        return jnp.sqrt(jnp.sum(diff * diff, axis=-1))
    if p == float("inf"):
        return jnp.max(diff, axis=-1, initial=0)
    return jnp.sum(diff**p, axis=-1) ** (1.0 / p)


@register(*aten("_cdist_forward"))
def _cdist_forward(x1, x2, p, compute_mode=None):
    # Direct differences rather than torch's matmul trick: exact, and the tests' reference.
    batch = jnp.broadcast_shapes(x1.shape[:-2], x2.shape[:-2])
    x1 = jnp.broadcast_to(x1, batch + x1.shape[-2:])
    x2 = jnp.broadcast_to(x2, batch + x2.shape[-2:])
    return _pnorm(x1[..., :, None, :] - x2[..., None, :, :], p)


@register(*aten("_pdist_forward"))
def _pdist_forward(self, p=2):
    n = self.shape[0]
    i, j = jnp.triu_indices(n, k=1)
    return _pnorm(self[i] - self[j], p)


# --------------------------------------------------------------------------- linalg


def _lu(a):
    lu, pivots, _ = lax.linalg.lu(a)
    return lu, (pivots + 1).astype(jnp.int32)  # LAPACK's 1-based pivots, as torch returns


def _info(a):
    return jnp.zeros(a.shape[:-2], jnp.int32)


@register(*aten("_linalg_check_errors"))
def _linalg_check_errors(info, api_name, *, is_matrix):
    # Errors are data-dependent; under tracing the NaNs of the result stand for them.
    return None


@register(*aten("linalg_inv_ex"))
def linalg_inv_ex(A, *, check_errors=False):
    return jnp.linalg.inv(A), _info(A)


@register(*aten("_linalg_det"))
def _linalg_det(A):
    if A.shape[-1] == 0:  # jnp's det derivative indexes the (absent) diagonal
        return jnp.ones(A.shape[:-2], A.dtype), A, jnp.zeros(A.shape[:-1], jnp.int32)
    lu, piv = _lu(A)
    return jnp.linalg.det(A), lu, piv


@register(*aten("_linalg_slogdet"))
def _linalg_slogdet(A):
    sign, logabsdet = jnp.linalg.slogdet(A)
    lu, piv = _lu(A)
    return sign, logabsdet, lu, piv


def _is_vector_rhs(A, B):
    return B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape == A.shape[:-1])


@register(*aten("_linalg_solve_ex"))
def _linalg_solve_ex(A, B, *, left=True, check_errors=False):
    vector = _is_vector_rhs(A, B)
    rhs = B[..., None] if vector else B
    if not left:
        A, rhs = jnp.swapaxes(A, -1, -2), jnp.swapaxes(rhs, -1, -2)
    batch = jnp.broadcast_shapes(A.shape[:-2], rhs.shape[:-2])
    A = jnp.broadcast_to(A, batch + A.shape[-2:])
    rhs = jnp.broadcast_to(rhs, batch + rhs.shape[-2:])
    x = jnp.linalg.solve(A, rhs)
    if not left:
        x = jnp.swapaxes(x, -1, -2)
    if vector:
        x = x[..., 0]
    lu, piv = _lu(A)
    return x, lu, piv, _info(A)


@register(*aten("linalg_cholesky_ex"))
def linalg_cholesky_ex(A, *, upper=False, check_errors=False):
    L = jnp.linalg.cholesky(A)
    return (jnp.conj(jnp.swapaxes(L, -1, -2)) if upper else L), _info(A)


@register(*aten("cholesky"))
def cholesky(A, upper=False):
    return linalg_cholesky_ex(A, upper=upper)[0]


def _cho_solve(B, L, upper):
    batch = jnp.broadcast_shapes(B.shape[:-2], L.shape[:-2])
    B = jnp.broadcast_to(B, batch + B.shape[-2:])
    L = jnp.broadcast_to(L, batch + L.shape[-2:])
    return jax.scipy.linalg.cho_solve((L, not upper), B)


@register(*aten("cholesky_solve"))
def cholesky_solve(B, L, upper=False):
    return _cho_solve(B, L, upper)


@register(*aten("cholesky_inverse"))
def cholesky_inverse(L, upper=False):
    eye = jnp.broadcast_to(jnp.eye(L.shape[-1], dtype=L.dtype), L.shape)
    return _cho_solve(eye, L, upper)


@register(*aten("linalg_qr"))
def linalg_qr(A, mode="reduced"):
    if mode == "r":
        return jnp.zeros((0,), A.dtype), jnp.linalg.qr(A, mode="r")
    return jnp.linalg.qr(A, mode=mode)


def _hermitian_from(A, lower):
    """The Hermitian matrix that one triangle of ``A`` stands for, as LAPACK reads it.

    Its cotangent passes to ``A`` unchanged: torch's eigh backward returns the full
    ``V (...) V^H`` for every entry of A, not only those of the triangle read.
    """
    tri = jnp.tril(A) if lower else jnp.triu(A)
    strict = jnp.tril(A, -1) if lower else jnp.triu(A, 1)
    diag = jnp.real(jnp.diagonal(A, axis1=-2, axis2=-1)).astype(A.dtype)
    H = tri - jnp.tril(jnp.triu(A)) + diag[..., None] * jnp.eye(A.shape[-1], dtype=A.dtype)
    H = H + jnp.conj(jnp.swapaxes(strict, -1, -2))
    return A + lax.stop_gradient(H - A)


def _eigh(A, UPLO):
    # lax's eigh JVP re-evaluates on (A + A^H) / 2, which differs from the triangle LAPACK
    # reads: hand it the Hermitian matrix already.
    return jnp.linalg.eigh(_hermitian_from(A, UPLO == "L"), UPLO=UPLO, symmetrize_input=False)


@register(*aten("_linalg_eigh"))
def _linalg_eigh(A, UPLO="L", compute_v=True):
    w, v = _eigh(A, UPLO)
    return w, (v if compute_v else jnp.zeros((0,), A.dtype))


@register(*aten("_linalg_svd"))
def _linalg_svd(A, full_matrices=False, compute_uv=True, *, driver=None):
    if not compute_uv:
        empty = jnp.zeros((0,), A.dtype)
        return empty, jnp.linalg.svd(A, compute_uv=False), empty
    return jnp.linalg.svd(A, full_matrices=full_matrices)


def _mH(x):
    return jnp.conj(jnp.swapaxes(x, -1, -2))


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _pinv_core(A, atol, rtol, hermitian):
    if hermitian:
        s, u = _eigh(A, "L")  # torch reads the lower triangle
        vh = _mH(u)
        abs_s = jnp.abs(s)
    else:
        u, s, vh = jnp.linalg.svd(A, full_matrices=False)
        abs_s = s
    smax = jnp.max(abs_s, axis=-1, keepdims=True, initial=0)
    keep = abs_s > jnp.maximum(atol, rtol * smax)
    s_inv = jnp.where(keep, 1 / jnp.where(keep, s, 1), 0).astype(A.dtype)
    return jnp.matmul(_mH(vh) * s_inv[..., None, :], _mH(u), precision=_HIGHEST)


@_pinv_core.defjvp
def _pinv_core_jvp(hermitian, primals, tangents):
    # torch's pinv_jvp, written in A^+ alone: for hermitian=True torch still differentiates
    # as if every entry of A were free, so the eigh route's own derivative would differ.
    A, atol, rtol = primals
    dA = tangents[0]
    P = _pinv_core(A, atol, rtol, hermitian)
    mm = functools.partial(jnp.matmul, precision=_HIGHEST)
    dAh, Ph = _mH(dA), _mH(P)
    if A.shape[-2] <= A.shape[-1]:
        K = mm(Ph, dAh)
        dP = mm(P, K - _mH(K) - mm(K, mm(A, P))) + mm(dAh - mm(P, mm(A, dAh)), mm(Ph, P))
    else:
        K = mm(P, dAh)
        Kh = _mH(K)
        dP = mm(Kh - K - mm(mm(P, A), Kh), P) + mm(mm(P, Ph), dAh - mm(mm(dAh, A), P))
    return P, dP


def _pinv(A, atol, rtol, hermitian):
    real = jnp.finfo(A.dtype).dtype
    if rtol is None:
        # torch: rtol defaults to eps * max(m, n) unless a positive atol is given
        given_atol = atol is not None and not (isinstance(atol, (int, float)) and atol <= 0)
        rtol = 0.0 if given_atol else jnp.finfo(A.dtype).eps * max(A.shape[-2:])
    atol = jnp.asarray(0.0 if atol is None else atol, real)
    rtol = jnp.asarray(rtol, real)
    return _pinv_core(A, atol[..., None] if atol.ndim else atol, rtol[..., None] if rtol.ndim else rtol, hermitian)


@register(*aten("linalg_pinv", "atol_rtol_tensor", "atol_rtol_float"))
def linalg_pinv(A, atol=None, rtol=None, hermitian=False):
    return _pinv(A, atol, rtol, hermitian)


@register(*aten("linalg_pinv", "default", "rcond_tensor"))
def linalg_pinv_rcond(A, rcond, hermitian=False):
    return _pinv(A, 0.0, rcond, hermitian)


@register(*aten("linalg_cross"))
def linalg_cross(self, other, *, dim=-1):
    shape = jnp.broadcast_shapes(self.shape, other.shape)
    d = canonical_dim(dim, len(shape))
    return jnp.cross(jnp.broadcast_to(self, shape), jnp.broadcast_to(other, shape), axis=d)


def _triangular(A, B, *, upper, left, unitriangular, transpose=False):
    batch = jnp.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    A = jnp.broadcast_to(A, batch + A.shape[-2:])
    B = jnp.broadcast_to(B, batch + B.shape[-2:])
    return lax.linalg.triangular_solve(
        A, B, left_side=left, lower=not upper, transpose_a=transpose, unit_diagonal=unitriangular
    )


@register(*aten("linalg_solve_triangular"))
def linalg_solve_triangular(A, B, *, upper, left=True, unitriangular=False):
    return _triangular(A, B, upper=upper, left=left, unitriangular=unitriangular)


@register(*aten("triangular_solve"))
def triangular_solve(B, A, upper=True, transpose=False, unitriangular=False):
    x = _triangular(A, B, upper=upper, left=True, unitriangular=unitriangular, transpose=transpose)
    batch = x.shape[:-2]
    return x, jnp.broadcast_to(A, batch + A.shape[-2:])


# --------------------------------------------------------------------------- matrix_exp
# torch's algorithm (Bader, Blanes & Casas 2019: optimized Taylor polynomials of degree 1,
# 2, 4, 8, 12, 18 chosen by the 1-norm, degree 18 with scaling and squaring) rather than
# XLA's Pade expm: in float32 the two round differently by more than the test tolerance.

_MEXP_THETAS = {
    "float32": (1.192092800768788e-07, 5.978858893805233e-04, 5.116619363445086e-02,
                5.800524627688768e-01, 1.461661507209034e00, 3.010066362817634e00),
    "float64": (2.220446049250313e-16, 2.580956802971767e-08, 3.397168839976962e-04,
                4.991228871115323e-02, 2.996158913811580e-01, 1.090863719290036e00),
}  # fmt: skip
_MEXP_T12 = (
    (9.0198e-16, 0.46932117595418237389, -0.20099424927047284052, -0.04623946134063071740),
    (5.31597895759871264183, 1.19926790417132231573, 0.01179296240992997031, 0.01108844528519167989),
    (0.18188869982170434744, 0.05502798439925399070, 0.09351590770535414968, 0.00610700528898058230),
    (-2.0861320e-13, -0.13181061013830184015, -0.02027855540589259079, -0.00675951846863086359),
)
_MEXP_T18 = (
    (0.0, -1.00365581030144618291e-01, -8.02924648241156932449e-03, -8.92138498045729985177e-04, 0.0),
    (0.0, 3.97849749499645077844e-01, 1.36783778460411720168e00, 4.98289622525382669416e-01,
     -6.37898194594723280150e-04),
    (-1.09676396052962061844e01, 1.68015813878906206114e00, 5.71779846478865511061e-02,
     -6.98210122488052056106e-03, 3.34975017086070470649e-05),
    (-9.04316832390810593223e-02, -6.76404519071381882256e-02, 6.75961301770459654925e-02,
     2.95552570429315521194e-02, -1.39180257516060693404e-05),
    (0.0, 0.0, -9.23364619367118555360e-02, -1.69364939002081722752e-02, -1.40086798182036094347e-05),
)  # fmt: skip
# Like jax.scipy.linalg.expm, a static bound keeps the squarings reverse-differentiable;
# beyond it (1-norm > 2**24 * theta_18) the result is NaN.
_MEXP_MAX_SQUARINGS = 24


def _lincomb(mats, coeffs):
    out = jnp.zeros_like(mats[0])
    for m, c in zip(mats, coeffs):
        if c:
            out = out + jnp.asarray(c, m.dtype) * m
    return out


def _mexp_powers(A, count):
    mm = functools.partial(jnp.matmul, precision=_HIGHEST)
    pows = [jnp.eye(A.shape[-1], dtype=A.dtype), A]
    if count > 2:
        pows.append(mm(A, A))
    if count > 3:
        pows.append(mm(A, pows[2]))
    if count > 4:
        pows.append(mm(pows[3], pows[3]))
    return pows, mm


def _mexp_t1(A):
    I, A = _mexp_powers(A, 2)[0]
    return I + A


def _mexp_t2(A):
    (I, A, A2), _ = _mexp_powers(A, 3)
    return I + A + A2 / 2


def _mexp_t4(A):
    (I, A, A2), mm = _mexp_powers(A, 3)
    X = mm(A2, _lincomb([I, A, A2], [1 / 2, 1 / 6, 1 / 24]))
    return _lincomb([I, A, A2, X], [1, 1, 0, 1])


def _mexp_t8(A):
    sqrt_177 = 0.1330413469565007072504e2
    x3 = 2 / 3
    x1 = x3 * ((1 + sqrt_177) / 88)
    x2 = x3 * ((1 + sqrt_177) / 352)
    x4 = (-271 + 29 * sqrt_177) / (315 * x3)
    x5 = (-11 + 11 * sqrt_177) / (1260 * x3)
    x6 = (-99 + 11 * sqrt_177) / (5040 * x3)
    x7 = (89 - sqrt_177) / (5040 * x3)
    y2 = (857 - 58 * sqrt_177) / 630
    (I, A, A2), mm = _mexp_powers(A, 3)
    A4 = mm(A2, _lincomb([A, A2], [x1, x2]))
    A8 = mm(_lincomb([A2, A4], [x3, 1]), _lincomb([I, A, A2, A4], [x4, x5, x6, x7]))
    return _lincomb([I, A, A2, A4, A8], [1, 1, y2, 0, 1])


def _mexp_t12(A):
    pows, mm = _mexp_powers(A, 4)
    B = [_lincomb(pows, row) for row in _MEXP_T12]
    B2 = B[2] + mm(B[3], B[3])
    return B[0] + mm(B[1] + B2, B2)


def _mexp_t18(A):
    pows, mm = _mexp_powers(A, 5)
    B = [_lincomb(pows, row) for row in _MEXP_T18]
    B3 = B[3] + mm(B[0], B[4])
    return B[1] + mm(B[2] + B3, B3)


def _mexp(A, norm, thetas):
    """One matrix: torch picks the degree from the 1-norm; degree 18 scales and squares."""
    s = jnp.maximum(0, jnp.ceil(jnp.log2(norm / thetas[5])))

    def t18_scaled(A):
        R = _mexp_t18(A / jnp.exp2(s).astype(A.dtype))

        def square(R, i):
            return lax.cond(i < s, lambda R: jnp.matmul(R, R, precision=_HIGHEST), lambda R: R, R), None

        R, _ = lax.scan(square, R, jnp.arange(_MEXP_MAX_SQUARINGS))
        return jnp.where(s > _MEXP_MAX_SQUARINGS, jnp.nan, R)

    degree = jnp.searchsorted(jnp.asarray(thetas[:4], norm.dtype), norm, side="left")
    degree = jnp.where(norm >= thetas[4], 5, degree)
    return lax.switch(degree, [_mexp_t1, _mexp_t2, _mexp_t4, _mexp_t8, _mexp_t12, t18_scaled], A)


@register(*aten("linalg_matrix_exp"))
def linalg_matrix_exp(A):
    n = A.shape[-1]
    if n == 0:
        return A
    if n == 1:
        return jnp.exp(A)
    compute = _acc_dtype(A.dtype) or A.dtype  # float32 stands in for bfloat16/float16
    thetas = _MEXP_THETAS[jnp.finfo(compute).dtype.name]
    X = A.astype(compute)
    norm = jnp.max(jnp.sum(jnp.abs(X), axis=-2), axis=-1)
    out = jnp.vectorize(lambda a, nrm: _mexp(a, nrm, thetas), signature="(n,n),()->(n,n)")(X, norm)
    return out.astype(A.dtype)


@register(*aten("linalg_lu_factor_ex"))
def linalg_lu_factor_ex(A, *, pivot=True, check_errors=False):
    lu, piv = _lu(A)
    return lu, piv, _info(A)
