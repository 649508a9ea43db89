"""The torch <-> JAX dtype table."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import torch

_TORCH_TO_JAX: dict[torch.dtype, np.dtype] = {
    torch.bool: jnp.dtype(jnp.bool_),
    torch.uint8: jnp.dtype(jnp.uint8),
    torch.uint16: jnp.dtype(jnp.uint16),
    torch.uint32: jnp.dtype(jnp.uint32),
    torch.uint64: jnp.dtype(jnp.uint64),
    torch.int8: jnp.dtype(jnp.int8),
    torch.int16: jnp.dtype(jnp.int16),
    torch.int32: jnp.dtype(jnp.int32),
    torch.int64: jnp.dtype(jnp.int64),
    torch.float16: jnp.dtype(jnp.float16),
    torch.bfloat16: jnp.dtype(jnp.bfloat16),
    torch.float32: jnp.dtype(jnp.float32),
    torch.float64: jnp.dtype(jnp.float64),
    torch.complex64: jnp.dtype(jnp.complex64),
    torch.complex128: jnp.dtype(jnp.complex128),
    torch.float8_e4m3fn: jnp.dtype(jnp.float8_e4m3fn),
    torch.float8_e5m2: jnp.dtype(jnp.float8_e5m2),
}
_JAX_TO_TORCH: dict[np.dtype, torch.dtype] = {v: k for k, v in _TORCH_TO_JAX.items()}


def to_jax_dtype(dtype: torch.dtype | None) -> np.dtype | None:
    """The JAX dtype for a torch dtype (``None`` stays ``None``)."""
    if dtype is None:
        return None
    try:
        return _TORCH_TO_JAX[dtype]
    except KeyError:
        raise TypeError(f"torchjax: torch dtype {dtype} has no JAX counterpart") from None


def to_torch_dtype(dtype) -> torch.dtype:
    """The torch dtype for a JAX/NumPy dtype."""
    try:
        return _JAX_TO_TORCH[jnp.dtype(dtype)]
    except KeyError:
        raise TypeError(f"torchjax: JAX dtype {dtype} has no torch counterpart") from None


def is_floating(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.floating)


def is_complex(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.complexfloating)


def is_integral(dtype, include_bool: bool = True) -> bool:
    if jnp.dtype(dtype) == jnp.bool_:
        return include_bool
    return jnp.issubdtype(dtype, jnp.integer)


def default_float() -> np.dtype:
    """torch's current default floating dtype, as a JAX dtype."""
    return _TORCH_TO_JAX[torch.get_default_dtype()]


def default_complex() -> np.dtype:
    return jnp.dtype(jnp.complex128) if torch.get_default_dtype() == torch.float64 else jnp.dtype(jnp.complex64)
