"""Matrix products and ``torch.linalg`` factorizations.

``matmul``, ``einsum``, ``linear``, ``outer`` and ``tensordot`` are CompositeImplicit in
torch: they reach the dispatcher already lowered to ``mm``/``bmm``/``addmm``/``dot``, so
those are the rules that matter here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ..registry import aten, register
from ._common import canonical_dim, jdtype

_HIGHEST = lax.Precision.HIGHEST


def _acc_dtype(dtype):
    """torch accumulates bfloat16/float16 products in float32 on CPU."""
    return jnp.float32 if dtype in (jnp.bfloat16, jnp.float16) else None


def _matmul(a, b, out_dtype=None):
    # HIGHEST: XLA's default float32 dot may use bf16 passes (TPU/GPU TF32), torch does not.
    dtype = out_dtype or a.dtype
    acc = _acc_dtype(a.dtype)
    if a.dtype == jnp.bool_:
        return jnp.matmul(a.astype(jnp.int32), b.astype(jnp.int32)).astype(jnp.bool_)
    out = jnp.matmul(a, b, precision=_HIGHEST, preferred_element_type=acc)
    return out.astype(dtype)


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


@register(*aten("mm", "dtype"), *aten("bmm", "dtype"))
def mm_dtype(self, mat2, out_dtype):
    return _matmul(self, mat2, jdtype(out_dtype))


@register(*aten("dot"), *aten("vdot"))
def dot(self, other):
    # vdot conjugates its first argument; for real dtypes it is dot.
    if jnp.iscomplexobj(self):
        self = jnp.conj(self)
    return _matmul(self, other)


@register(*aten("addmm", "default"), *aten("addmv", "default"), *aten("baddbmm", "default"))
def addmm(self, mat1, mat2, *, beta=1, alpha=1):
    return _scaled_sum(self, _matmul(mat1, mat2), beta, alpha)


@register(*aten("addmm", "dtype"), *aten("baddbmm", "dtype"))
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


@register(*aten("_linalg_eigh"))
def _linalg_eigh(A, UPLO="L", compute_v=True):
    w, v = jnp.linalg.eigh(A, UPLO=UPLO, symmetrize_input=False)
    return w, (v if compute_v else jnp.zeros((0,), A.dtype))


@register(*aten("_linalg_svd"))
def _linalg_svd(A, full_matrices=False, compute_uv=True, *, driver=None):
    if not compute_uv:
        empty = jnp.zeros((0,), A.dtype)
        return empty, jnp.linalg.svd(A, compute_uv=False), empty
    return jnp.linalg.svd(A, full_matrices=full_matrices)


def _pinv(A, atol, rtol, hermitian):
    if hermitian:
        s, u = jnp.linalg.eigh(A, UPLO="L", symmetrize_input=False)  # torch reads the lower triangle
        vh = jnp.conj(jnp.swapaxes(u, -1, -2))
        abs_s = jnp.abs(s)
    else:
        u, s, vh = jnp.linalg.svd(A, full_matrices=False)
        abs_s = s
    smax = jnp.max(abs_s, axis=-1, keepdims=True, initial=0)
    if rtol is None:
        # torch: rtol defaults to eps * max(m, n) unless a positive atol is given
        given_atol = atol is not None and not (isinstance(atol, (int, float)) and atol <= 0)
        rtol = 0.0 if given_atol else jnp.finfo(A.dtype).eps * max(A.shape[-2:])
    atol = 0.0 if atol is None else atol
    atol = jnp.asarray(atol, abs_s.dtype)
    rtol = jnp.asarray(rtol, abs_s.dtype)
    if atol.ndim:
        atol = atol[..., None]
    if rtol.ndim:
        rtol = rtol[..., None]
    cutoff = jnp.maximum(atol, rtol * smax)
    keep = abs_s > cutoff
    s_inv = jnp.where(keep, 1 / jnp.where(keep, s, 1), 0).astype(A.dtype)
    v = jnp.conj(jnp.swapaxes(vh, -1, -2))
    uh = jnp.conj(jnp.swapaxes(u, -1, -2))
    return jnp.matmul(v * s_inv[..., None, :], uh, precision=_HIGHEST)


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


@register(*aten("linalg_matrix_exp"))
def linalg_matrix_exp(A):
    acc = _acc_dtype(A.dtype) or A.dtype  # XLA's expm has no bfloat16 kernel
    return jax.scipy.linalg.expm(A.astype(acc)).astype(A.dtype)


@register(*aten("linalg_lu_factor_ex"))
def linalg_lu_factor_ex(A, *, pivot=True, check_errors=False):
    lu, piv = _lu(A)
    return lu, piv, _info(A)
