"""Factorizations in LAPACK's formats: LU, QR reflectors, Bunch-Kaufman LDL, eig, lstsq.

torch returns LAPACK's raw outputs (1-based ``ipiv`` pivots, Householder reflectors with
their ``tau``, ``sytrf``'s packed ``LD``), and later ops (``lu_solve``, ``ormqr``,
``ldl_solve``) read them back, so these rules produce and consume the same formats.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from ..registry import aten, register
from .linalg import _HIGHEST, _is_vector_rhs


def _mT(x):
    return jnp.swapaxes(x, -1, -2)


def _mH(x):
    return jnp.conj(_mT(x))


def _broadcast_batch(*arrays_and_core_ndims):
    """Broadcast the batch dims of (array, number of core dims) pairs against each other."""
    batch = jnp.broadcast_shapes(*(x.shape[: x.ndim - k] for x, k in arrays_and_core_ndims))
    return [jnp.broadcast_to(x, batch + x.shape[x.ndim - k :]) for x, k in arrays_and_core_ndims]


def _real_dtype(dtype):
    return jnp.finfo(dtype).dtype


# --------------------------------------------------------------------------- eig


def _eig(A, vectors):
    ctype = jnp.result_type(A.dtype, jnp.complex64)
    if A.shape[-1] == 0:
        return jnp.zeros(A.shape[:-1], ctype), jnp.zeros(A.shape, ctype)
    # torch differentiates eigenvectors under the same assumption JAX asks us to opt in to
    # (the loss must not depend on their phase; torch checks it, JAX cannot).
    out = lax.linalg.eig(
        A, compute_left_eigenvectors=False, compute_right_eigenvectors=vectors, enable_eigvec_derivs=True
    )
    # geev normalises each eigenvector to unit norm with its largest component real, as torch.
    return tuple(x.astype(ctype) for x in out)


@register(*aten("linalg_eig"))
def linalg_eig(A):
    return _eig(A, vectors=True)


@register(*aten("_linalg_eigvals"))
def _linalg_eigvals(A):
    return _eig(A, vectors=False)[0]


# --------------------------------------------------------------------------- LU


def _permutation(pivots, size):
    """LAPACK's 1-based row swaps -> the permutation ``perm`` with ``A[perm] = L @ U``."""
    return lax.linalg.lu_pivots_to_permutation(pivots.astype(jnp.int32) - 1, size)


def _permutation_matrix(perm, dtype):
    # P with A = P @ L @ U, i.e. P.T = eye[perm]
    return _mT(jax.nn.one_hot(perm, perm.shape[-1], dtype=dtype))


def _unpack_lu(lu):
    m, n = lu.shape[-2:]
    k = min(m, n)
    L = jnp.tril(lu[..., :, :k], -1) + jnp.eye(m, k, dtype=lu.dtype)
    U = jnp.triu(lu[..., :k, :])
    return L, U


@register(*aten("linalg_lu"))
def linalg_lu(A, *, pivot=True):
    if not pivot:
        raise RuntimeError("linalg.lu_factor: LU without pivoting is not implemented on the CPU")
    lu, _, perm = lax.linalg.lu(A)
    L, U = _unpack_lu(lu)
    return _permutation_matrix(perm, A.dtype), L, U


@register(*aten("lu_unpack"))
def lu_unpack(LU_data, LU_pivots, unpack_data=True, unpack_pivots=True):
    empty = jnp.zeros((0,), LU_data.dtype)
    L, U = _unpack_lu(LU_data) if unpack_data else (empty, empty)
    if not unpack_pivots:
        return empty, L, U
    m = LU_data.shape[-2]
    perm = _permutation(LU_pivots, m)
    return _permutation_matrix(perm, LU_data.dtype), L, U


def _rows(B, perm):
    return jnp.take_along_axis(B, perm[..., :, None], axis=-2)


def _cols(B, perm):
    return jnp.take_along_axis(B, perm[..., None, :], axis=-1)


@register(*aten("linalg_lu_solve"))
def linalg_lu_solve(LU, pivots, B, *, left=True, adjoint=False):
    LU, pivots, B = _broadcast_batch((LU, 2), (pivots, 1), (B, 2))
    perm = _permutation(pivots, LU.shape[-1])
    inv = jnp.argsort(perm, axis=-1)

    def tri(b, *, lower, side_left, adj):
        return lax.linalg.triangular_solve(
            LU, b, left_side=side_left, lower=lower, transpose_a=adj, conjugate_a=adj, unit_diagonal=lower
        )

    # A = P L U with P.T B = B[perm] and P B = B[inv].
    if left and not adjoint:  # X = U^-1 L^-1 P^T B
        y = tri(_rows(B, perm), lower=True, side_left=True, adj=False)
        return tri(y, lower=False, side_left=True, adj=False)
    if left:  # A^H X = B: X = P L^-H U^-H B
        y = tri(B, lower=False, side_left=True, adj=True)
        return _rows(tri(y, lower=True, side_left=True, adj=True), inv)
    if not adjoint:  # X A = B: X = B U^-1 L^-1 P^T
        y = tri(B, lower=False, side_left=False, adj=False)
        return _cols(tri(y, lower=True, side_left=False, adj=False), inv)
    # X A^H = B: X = B P L^-H U^-H
    y = tri(_cols(B, perm), lower=True, side_left=False, adj=True)
    return tri(y, lower=False, side_left=False, adj=True)


# --------------------------------------------------------------------------- QR reflectors


def _geqr2_step(A, i):
    """Reflector i of LAPACK's geqr2: larfg on column i, then H_i^H on the columns right of it."""
    r = jnp.arange(A.shape[-2])
    col = jnp.take(A, i, axis=-1)
    alpha = col[..., i]
    xnorm = jnp.linalg.norm(jnp.where(r > i, col, 0), axis=-1)
    # larfg: beta = -sign(Re alpha) * ||(alpha, x)||, tau = (beta - alpha) / beta, v = x / (alpha - beta)
    norm = jnp.sqrt(jnp.abs(alpha) ** 2 + xnorm**2)
    beta = jnp.where(jnp.real(alpha) >= 0, -norm, norm)
    identity = (xnorm == 0) & (jnp.imag(alpha) == 0)
    beta = jnp.where(identity, alpha, beta).astype(A.dtype)
    safe = jnp.where(identity, 1, beta)
    tau = jnp.where(identity, 0, (beta - alpha) / safe)
    scale = 1 / jnp.where(identity, 1, alpha - beta)
    v = jnp.where(r > i, col * scale[..., None], (r == i).astype(A.dtype))
    w = jnp.matmul(jnp.conj(v)[..., None, :], A, precision=_HIGHEST)  # v^H A
    right = jnp.arange(A.shape[-1]) > i
    A = A - jnp.where(right, jnp.conj(tau)[..., None, None] * v[..., :, None] * w, 0)
    new_col = jnp.where(r == i, beta[..., None], jnp.where(r > i, v, col))
    return A.at[..., i].set(new_col), tau


@register(*aten("geqrf"))
def geqrf(A):
    k = min(A.shape[-2:])
    A, taus = lax.scan(_geqr2_step, A, jnp.arange(k))
    return A, jnp.moveaxis(taus, 0, -1)


def _apply_reflectors(V, tau, C, *, left, adjoint):
    """Multiply ``C`` by Q = H_0 H_1 ... H_{k-1}, H_i = I - tau_i v_i v_i^H (LAPACK's ormqr).

    v_i is column i of ``V`` below the diagonal with an implicit 1 on it. Written as a
    scan of rank-1 updates so that JAX differentiates it (``lax.linalg``'s
    householder_product has no derivative rule).
    """
    k = tau.shape[-1]
    rows = jnp.arange(V.shape[-2])
    # Q C and C Q^H apply H_{k-1} first; Q^H C and C Q apply H_0 first.
    order = jnp.arange(k)[::-1] if left != adjoint else jnp.arange(k)

    def step(C, i):
        col = jnp.take(V, i, axis=-1)
        v = jnp.where(rows > i, col, (rows == i).astype(V.dtype))
        t = jnp.take(tau, i, axis=-1)[..., None, None]
        if adjoint:
            t = jnp.conj(t)
        if left:  # C - t v (v^H C)
            w = jnp.matmul(jnp.conj(v)[..., None, :], C, precision=_HIGHEST)
            return C - t * (v[..., :, None] * w), None
        w = jnp.matmul(C, v[..., :, None], precision=_HIGHEST)  # C - t (C v) v^H
        return C - t * (w * jnp.conj(v)[..., None, :]), None

    out, _ = lax.scan(step, C, order)
    return out


@register(*aten("linalg_householder_product"))
def linalg_householder_product(A, tau):
    m, n = A.shape[-2:]
    A, tau = _broadcast_batch((A, 2), (tau, 1))
    eye = jnp.broadcast_to(jnp.eye(m, n, dtype=A.dtype), A.shape)
    return _apply_reflectors(A, tau, eye, left=True, adjoint=False)


@register(*aten("ormqr"))
def ormqr(A, tau, C, left=True, transpose=False):
    A, tau, C = _broadcast_batch((A, 2), (tau, 1), (C, 2))
    return _apply_reflectors(A, tau, C, left=left, adjoint=transpose)


# --------------------------------------------------------------------------- lstsq


def _lstsq_qr(A, B):
    """gels: QR for tall A, the minimum-norm solution through the QR of A^H for wide A."""
    m, n = A.shape[-2:]
    if m >= n:
        Q, R = jnp.linalg.qr(A)
        rhs = jnp.matmul(_mH(Q), B, precision=_HIGHEST)
        return lax.linalg.triangular_solve(R, rhs, left_side=True, lower=False)
    Q, R = jnp.linalg.qr(_mH(A))
    y = lax.linalg.triangular_solve(R, B, left_side=True, lower=False, transpose_a=True, conjugate_a=True)
    return jnp.matmul(Q, y, precision=_HIGHEST)


@register(*aten("linalg_lstsq"))
def linalg_lstsq(A, B, rcond=None, *, driver=None):
    driver = driver or "gelsy"
    vector = _is_vector_rhs(A, B)
    rhs = B[..., None] if vector else B
    A, rhs = _broadcast_batch((A, 2), (rhs, 2))
    m, n = A.shape[-2:]
    real = _real_dtype(A.dtype)
    batch = A.shape[:-2]
    if rcond is None or rcond < 0:
        rcond = float(jnp.finfo(A.dtype).eps) * max(m, n)
    empty = jnp.zeros((0,), real)
    rank = jnp.zeros((0,), jnp.int64)
    singular_values = empty
    if driver == "gels":
        x = _lstsq_qr(A, rhs)
    else:
        # gelsy (column-pivoted QR), gelsd and gelss (SVD) all give the minimum-norm
        # solution of the numerically rank-truncated problem; the SVD gives it for all three.
        U, s, Vh = jnp.linalg.svd(A, full_matrices=False)
        keep = s > rcond * jnp.max(s, axis=-1, keepdims=True, initial=0)
        s_inv = jnp.where(keep, 1 / jnp.where(keep, s, 1), 0).astype(A.dtype)
        x = jnp.matmul(_mH(Vh), s_inv[..., :, None] * jnp.matmul(_mH(U), rhs, precision=_HIGHEST), precision=_HIGHEST)
        rank = jnp.sum(keep, axis=-1).astype(jnp.int64).reshape(batch)
        if driver in ("gelsd", "gelss"):
            singular_values = s
    # torch reads the residuals from LAPACK's workspace: only tall problems, never gelsy,
    # and for gelsd/gelss only when A has full rank (data-dependent; assumed here).
    if m > n and driver != "gelsy":
        r = jnp.matmul(A, x, precision=_HIGHEST) - rhs
        residuals = jnp.sum(jnp.abs(r) ** 2, axis=-2).astype(real)  # (*, 1) even for a vector b
    else:
        residuals = empty
    if vector:
        x = x[..., 0]
    return x, residuals, rank, singular_values


# --------------------------------------------------------------------------- LDL (Bunch-Kaufman)

_BK_ALPHA = (1 + math.sqrt(17)) / 8


def _sytf2_lower(A):
    """LAPACK's unblocked ``sytf2`` (uplo='L') on one matrix: packed LD, 1-based ipiv, info.

    ``W`` holds the working matrix in its lower triangle; interchanges touch only the
    trailing block, leaving finished columns of L in place, as LAPACK's format requires.
    """
    n = A.shape[-1]
    r = jnp.arange(n)
    lower = r[:, None] >= r[None, :]

    def body(state):
        W, ipiv, k, info = state
        S = jnp.where(lower, W, _mT(W))  # the symmetric matrix the lower triangle stands for
        absakk = jnp.abs(S[k, k])
        below = jnp.where(r > k, jnp.abs(S[:, k]), -1)
        imax = jnp.argmax(below)
        colmax = jnp.maximum(below[imax], 0)
        rowmax = jnp.max(jnp.where((r >= k) & (r != imax), jnp.abs(S[imax, :]), 0))
        singular = jnp.maximum(absakk, colmax) == 0
        keep_k = singular | (absakk >= _BK_ALPHA * colmax)
        keep_k = keep_k | (absakk >= _BK_ALPHA * colmax * (colmax / rowmax))
        one_by_one = keep_k | (jnp.abs(S[imax, imax]) >= _BK_ALPHA * rowmax)
        kp = jnp.where(keep_k, k, imax)
        kstep = jnp.where(one_by_one, 1, 2)
        kk = k + kstep - 1

        swap = r.at[kk].set(kp).at[kp].set(kk)
        trailing = (r[:, None] >= k) & (r[None, :] >= k)
        S = jnp.where(trailing, S[swap][:, swap], S)

        # 1x1 pivot: rank-1 update with d11 = 1 / A[k, k], as dsyr does.
        x = jnp.where(r > k, S[:, k], 0)
        d11 = 1 / S[k, k]
        S1 = S - jnp.where((r[:, None] > k) & (r[None, :] > k), d11 * x[:, None] * x[None, :], 0)
        S1 = S1.at[:, k].set(jnp.where(r > k, x * d11, S[:, k]))

        # 2x2 pivot: LAPACK's scaled inverse of the block [[a, b], [b, c]].
        k1 = jnp.minimum(k + 1, n - 1)
        d21 = S[k1, k]
        d11b = S[k1, k1] / d21
        d22 = S[k, k] / d21
        d21 = (1 / (d11b * d22 - 1)) / d21
        x0 = jnp.where(r > k1, S[:, k], 0)
        x1 = jnp.where(r > k1, S[:, k1], 0)
        wk = d21 * (d11b * x0 - x1)
        wkp1 = d21 * (d22 * x1 - x0)
        upd = x0[:, None] * wk[None, :] + x1[:, None] * wkp1[None, :]
        S2 = S - jnp.where((r[:, None] > k1) & (r[None, :] > k1), upd, 0)
        S2 = S2.at[:, k].set(jnp.where(r > k1, wk, S[:, k]))
        S2 = S2.at[:, k1].set(jnp.where(r > k1, wkp1, S[:, k1]))

        S = jnp.where(singular, S, jnp.where(kstep == 1, S1, S2))
        W = jnp.where(lower, S, 0)
        p = (kp + 1).astype(jnp.int32)
        ipiv = jnp.where(kstep == 1, ipiv.at[k].set(p), ipiv.at[k].set(-p).at[k1].set(-p))
        info = jnp.where((info == 0) & singular, k + 1, info).astype(jnp.int32)
        return W, ipiv, k + kstep, info

    init = (jnp.tril(A), jnp.zeros((n,), jnp.int32), jnp.asarray(0), jnp.asarray(0, jnp.int32))
    W, ipiv, _, info = lax.while_loop(lambda s: s[2] < n, body, init)
    return W, ipiv, info


@register(*aten("linalg_ldl_factor_ex"))
def linalg_ldl_factor_ex(A, *, hermitian=False, check_errors=False):
    if hermitian and jnp.iscomplexobj(A):
        raise NotImplementedError("torchjax: linalg.ldl_factor(hermitian=True) supports real inputs only")
    return jnp.vectorize(_sytf2_lower, signature="(n,n)->(n,n),(n),()")(A)


def _sytrs_lower(LD, ipiv, B):
    """LAPACK's ``sytrs`` (uplo='L'): solve A X = B from sytf2's LD and ipiv."""
    n = LD.shape[-1]
    r = jnp.arange(n)

    def swap_rows(B, i, j):
        perm = r.at[i].set(j).at[j].set(i)
        return B[perm]

    def forward(state):  # L D Y = P B
        B, k = state
        two = ipiv[k] < 0
        k1 = jnp.minimum(k + 1, n - 1)
        kp = jnp.abs(ipiv[k]) - 1
        B = swap_rows(B, jnp.where(two, k1, k), kp)
        # 1x1
        l0 = jnp.where(r > k, LD[:, k], 0)
        B1 = B - l0[:, None] * B[k][None, :]
        B1 = B1.at[k].set(B1[k] / LD[k, k])
        # 2x2
        l0 = jnp.where(r > k1, LD[:, k], 0)
        l1 = jnp.where(r > k1, LD[:, k1], 0)
        B2 = B - l0[:, None] * B[k][None, :] - l1[:, None] * B[k1][None, :]
        akm1k = LD[k1, k]
        akm1 = LD[k, k] / akm1k
        ak = LD[k1, k1] / akm1k
        denom = akm1 * ak - 1
        bkm1 = B2[k] / akm1k
        bk = B2[k1] / akm1k
        B2 = B2.at[k].set((ak * bkm1 - bk) / denom).at[k1].set((akm1 * bk - bkm1) / denom)
        return jnp.where(two, B2, B1), k + jnp.where(two, 2, 1)

    def backward(state):  # L^T X = Y, undoing the interchanges
        B, k = state
        two = ipiv[k] < 0
        kp = jnp.abs(ipiv[k]) - 1
        below = r > k
        lk = jnp.where(below, LD[:, k], 0)
        B = B.at[k].add(-jnp.matmul(lk, B, precision=_HIGHEST))
        km1 = jnp.maximum(k - 1, 0)
        lkm1 = jnp.where(below & two, LD[:, km1], 0)
        B = B.at[km1].add(-jnp.matmul(lkm1, B, precision=_HIGHEST))
        B = swap_rows(B, k, kp)
        return B, k - jnp.where(two, 2, 1)

    B, _ = lax.while_loop(lambda s: s[1] < n, forward, (B, jnp.asarray(0)))
    B, _ = lax.while_loop(lambda s: s[1] >= 0, backward, (B, jnp.asarray(n - 1)))
    return B


@register(*aten("linalg_ldl_solve"))
def linalg_ldl_solve(LD, pivots, B, *, hermitian=False):
    if hermitian and jnp.iscomplexobj(LD):
        raise NotImplementedError("torchjax: linalg.ldl_solve(hermitian=True) supports real inputs only")
    return jnp.vectorize(_sytrs_lower, signature="(n,n),(n),(n,k)->(n,k)")(LD, pivots, B)
