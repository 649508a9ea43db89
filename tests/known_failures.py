"""Known failures of the OpInfo suite: (op id, transform, dtype or None) -> reason.

Each entry is a strict xfail: an entry that starts passing fails the run until it is
removed. Regenerate with tools/update_known_failures.py after a recorded run.
"""

from __future__ import annotations

import torch

KNOWN: dict[tuple[str, str, torch.dtype | None], str] = {
    (
        "_segment_reduce.lengths",
        "forward",
        torch.bfloat16,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::segment_reduce.default and torch has no decomposition for it.",
    (
        "_segment_reduce.lengths",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::segment_reduce.default and torch has no decomposition for it.",
    (
        "_segment_reduce.lengths",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::segment_reduce.default and torch has no decomposition for it.",
    (
        "_segment_reduce.lengths",
        "grad",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::segment_reduce.default and torch has no decomposition for it.",
    (
        "_segment_reduce.lengths",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::segment_reduce.default and torch has no decomposition for it.",
    (
        "_segment_reduce.offsets",
        "forward",
        torch.bfloat16,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::segment_reduce.default and torch has no decomposition for it.",
    (
        "_segment_reduce.offsets",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::segment_reduce.default and torch has no decomposition for it.",
    (
        "_segment_reduce.offsets",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::segment_reduce.default and torch has no decomposition for it.",
    (
        "_segment_reduce.offsets",
        "grad",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::segment_reduce.default and torch has no decomposition for it.",
    (
        "_segment_reduce.offsets",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::segment_reduce.default and torch has no decomposition for it.",
    (
        "_upsample_bilinear2d_aa",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_upsample_bilinear2d_aa.default and torch has no decomposition for it.",
    (
        "_upsample_bilinear2d_aa",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_upsample_bilinear2d_aa.default and torch has no decomposition for it.",
    (
        "_upsample_bilinear2d_aa",
        "grad",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_upsample_bilinear2d_aa.default and torch has no decomposition for it.",
    (
        "_upsample_bilinear2d_aa",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_upsample_bilinear2d_aa.default and torch has no decomposition for it.",
    ("addbmm", "forward", torch.bfloat16): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("addbmm", "vmap", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "allclose",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.TracingError: torchjax: torch.allclose returns a Python bool, which JAX cannot know while it traces; write torch.isclose(a, b).al…",
    ("argsort", "forward", torch.bfloat16): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("argsort", "forward", torch.bool): "AssertionError: leaf 0: Tensor-likes are not equal!",
    (
        "argwhere",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.TracingError: torchjax: torch.nonzero (and argwhere) has a data-dependent output shape (it depends on the values of a tensor), wh…",
    (
        "argwhere",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.TracingError: torchjax: torch.nonzero (and argwhere) has a data-dependent output shape (it depends on the values of a tensor), wh…",
    ("as_strided.partial_views", "forward", torch.bfloat16): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("as_strided.partial_views", "forward", torch.bool): "AssertionError: leaf 0: Tensor-likes are not equal!",
    ("as_strided.partial_views", "forward", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("as_strided.partial_views", "forward", torch.float64): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("as_strided.partial_views", "forward", torch.int64): "AssertionError: leaf 0: Tensor-likes are not equal!",
    ("as_strided.partial_views", "grad", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("as_strided_scatter", "grad", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("baddbmm", "forward", torch.bfloat16): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "bincount",
        "forward",
        torch.int64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::bincount.default and torch has no decomposition for it.",
    ("broadcast_shapes", "forward", torch.float32): "AssertionError: structure differs:",
    ("chalf", "forward", torch.bfloat16): "TypeError: torchjax: torch dtype torch.complex32 has no JAX counterpart",
    ("chalf", "forward", torch.bool): "TypeError: torchjax: torch dtype torch.complex32 has no JAX counterpart",
    ("chalf", "forward", torch.float32): "TypeError: torchjax: torch dtype torch.complex32 has no JAX counterpart",
    ("chalf", "forward", torch.float64): "TypeError: torchjax: torch dtype torch.complex32 has no JAX counterpart",
    ("chalf", "forward", torch.int64): "TypeError: torchjax: torch dtype torch.complex32 has no JAX counterpart",
    ("chalf", "grad", torch.float32): "TypeError: torchjax: torch dtype torch.complex32 has no JAX counterpart",
    ("chalf", "vmap", torch.float32): "TypeError: torchjax: torch dtype torch.complex32 has no JAX counterpart",
    (
        "combinations",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.TracingError: torchjax: torch.masked_select has a data-dependent output shape (it depends on the values of a tensor), which XLA c…",
    (
        "combinations",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.TracingError: torchjax: torch.masked_select has a data-dependent output shape (it depends on the values of a tensor), which XLA c…",
    (
        "corrcoef",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.TracingError: torchjax: torch.equal returns a Python bool, which JAX cannot know while it traces; write (a == b).all() to keep th…",
    (
        "corrcoef",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.TracingError: torchjax: torch.equal returns a Python bool, which JAX cannot know while it traces; write (a == b).all() to keep th…",
    (
        "cov",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.TracingError: torchjax: torch.equal returns a Python bool, which JAX cannot know while it traces; write (a == b).all() to keep th…",
    (
        "cov",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.TracingError: torchjax: torch.equal returns a Python bool, which JAX cannot know while it traces; write (a == b).all() to keep th…",
    ("digamma", "grad", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "equal",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.TracingError: torchjax: torch.equal returns a Python bool, which JAX cannot know while it traces; write (a == b).all() to keep th…",
    (
        "geqrf",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::geqrf.default and torch has no decomposition for it.",
    (
        "geqrf",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::geqrf.default and torch has no decomposition for it.",
    (
        "geqrf",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::geqrf.default and torch has no decomposition for it.",
    ("grid_sampler_2d", "forward", torch.bfloat16): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "grid_sampler_3d",
        "forward",
        torch.bfloat16,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::grid_sampler_3d.default and torch has no decomposition for it.",
    (
        "grid_sampler_3d",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::grid_sampler_3d.default and torch has no decomposition for it.",
    (
        "grid_sampler_3d",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::grid_sampler_3d.default and torch has no decomposition for it.",
    (
        "grid_sampler_3d",
        "grad",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::grid_sampler_3d.default and torch has no decomposition for it.",
    (
        "grid_sampler_3d",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::grid_sampler_3d.default and torch has no decomposition for it.",
    (
        "hash_tensor",
        "forward",
        torch.bfloat16,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::hash_tensor.default and torch has no decomposition for it.",
    (
        "hash_tensor",
        "forward",
        torch.bool,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::hash_tensor.default and torch has no decomposition for it.",
    (
        "hash_tensor",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::hash_tensor.default and torch has no decomposition for it.",
    (
        "hash_tensor",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::hash_tensor.default and torch has no decomposition for it.",
    (
        "hash_tensor",
        "forward",
        torch.int64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::hash_tensor.default and torch has no decomposition for it.",
    (
        "hash_tensor",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::hash_tensor.default and torch has no decomposition for it.",
    (
        "histc",
        "forward",
        torch.bfloat16,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::histc.default and torch has no decomposition for it.",
    (
        "histc",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::histc.default and torch has no decomposition for it.",
    (
        "histc",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::histc.default and torch has no decomposition for it.",
    (
        "histc",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::histc.default and torch has no decomposition for it.",
    (
        "histogram",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::histogram.bin_ct and torch has no decomposition for it.",
    (
        "histogram",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::histogram.bin_ct and torch has no decomposition for it.",
    (
        "histogram",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::histogram.bin_ct and torch has no decomposition for it.",
    (
        "histogramdd",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_histogramdd_bin_edges.default and torch has no decomposition for it.",
    (
        "histogramdd",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_histogramdd_bin_edges.default and torch has no decomposition for it.",
    (
        "item",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.TracingError: torchjax: the traced code needs a tensor's value as a Python number (aten._local_scalar_dense.default), which JAX c…",
    (
        "jiterator_2inputs_2outputs",
        "forward",
        torch.bfloat16,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_2inputs_2outputs",
        "forward",
        torch.bool,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_2inputs_2outputs",
        "forward",
        torch.float32,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_2inputs_2outputs",
        "forward",
        torch.float64,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_2inputs_2outputs",
        "forward",
        torch.int64,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_4inputs_with_extra_args",
        "forward",
        torch.bfloat16,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_4inputs_with_extra_args",
        "forward",
        torch.bool,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_4inputs_with_extra_args",
        "forward",
        torch.float32,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_4inputs_with_extra_args",
        "forward",
        torch.float64,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_4inputs_with_extra_args",
        "forward",
        torch.int64,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_binary",
        "forward",
        torch.bfloat16,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_binary",
        "forward",
        torch.bool,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_binary",
        "forward",
        torch.float32,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_binary",
        "forward",
        torch.float64,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_binary",
        "forward",
        torch.int64,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_binary_return_by_ref",
        "forward",
        torch.bfloat16,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_binary_return_by_ref",
        "forward",
        torch.bool,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_binary_return_by_ref",
        "forward",
        torch.float32,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_binary_return_by_ref",
        "forward",
        torch.float64,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_binary_return_by_ref",
        "forward",
        torch.int64,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_unary",
        "forward",
        torch.bfloat16,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_unary",
        "forward",
        torch.bool,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_unary",
        "forward",
        torch.float32,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_unary",
        "forward",
        torch.float64,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    (
        "jiterator_unary",
        "forward",
        torch.int64,
    ): "AssertionError: Jiterator is only supported on CUDA and ROCm GPUs, none are available.",
    ("kthvalue", "forward", torch.int64): "AssertionError: leaf 1: Tensor-likes are not equal!",
    (
        "linalg.det",
        "grad",
        torch.float32,
    ): "jax._src.source_info_util.JaxStackTraceBeforeTransformation: IndexError: index is out of bounds for axis 0 with size 0",
    (
        "linalg.eig",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_eig.default and torch has no decomposition for it.",
    (
        "linalg.eig",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_eig.default and torch has no decomposition for it.",
    (
        "linalg.eig",
        "grad",
        torch.float32,
    ): "RuntimeError: linalg_eig_backward: The eigenvectors in the complex case are specified up to multiplication by e^{i phi}. The specified loss function d…",
    (
        "linalg.eig",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_eig.default and torch has no decomposition for it.",
    ("linalg.eigh", "forward", torch.float32): "AssertionError: leaf 1: Tensor-likes are not close!",
    ("linalg.eigh", "forward", torch.float64): "AssertionError: leaf 1: Tensor-likes are not close!",
    ("linalg.eigh", "grad", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("linalg.eigh", "vmap", torch.float32): "AssertionError: leaf 1: Tensor-likes are not close!",
    (
        "linalg.eigvals",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_eig.default and torch has no decomposition for it.",
    (
        "linalg.eigvals",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_eig.default and torch has no decomposition for it.",
    (
        "linalg.eigvals",
        "grad",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_eig.default and torch has no decomposition for it.",
    (
        "linalg.eigvals",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_eig.default and torch has no decomposition for it.",
    ("linalg.eigvalsh", "grad", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "linalg.householder_product",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_householder_product.default and torch has no decomposition for it.",
    (
        "linalg.householder_product",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_householder_product.default and torch has no decomposition for it.",
    (
        "linalg.householder_product",
        "grad",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_householder_product.default and torch has no decomposition for it.",
    (
        "linalg.householder_product",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_householder_product.default and torch has no decomposition for it.",
    (
        "linalg.ldl_factor",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_ldl_factor_ex.default and torch has no decomposition for it.",
    (
        "linalg.ldl_factor",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_ldl_factor_ex.default and torch has no decomposition for it.",
    (
        "linalg.ldl_factor",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_ldl_factor_ex.default and torch has no decomposition for it.",
    (
        "linalg.ldl_factor_ex",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_ldl_factor_ex.default and torch has no decomposition for it.",
    (
        "linalg.ldl_factor_ex",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_ldl_factor_ex.default and torch has no decomposition for it.",
    (
        "linalg.ldl_factor_ex",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_ldl_factor_ex.default and torch has no decomposition for it.",
    (
        "linalg.ldl_solve",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_ldl_solve.default and torch has no decomposition for it.",
    (
        "linalg.ldl_solve",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_ldl_solve.default and torch has no decomposition for it.",
    (
        "linalg.ldl_solve",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_ldl_solve.default and torch has no decomposition for it.",
    (
        "linalg.lstsq",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lstsq.default and torch has no decomposition for it.",
    (
        "linalg.lstsq",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lstsq.default and torch has no decomposition for it.",
    (
        "linalg.lstsq",
        "grad",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lstsq.default and torch has no decomposition for it.",
    (
        "linalg.lstsq",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lstsq.default and torch has no decomposition for it.",
    (
        "linalg.lstsq.grad_oriented",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lstsq.default and torch has no decomposition for it.",
    (
        "linalg.lstsq.grad_oriented",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lstsq.default and torch has no decomposition for it.",
    (
        "linalg.lstsq.grad_oriented",
        "grad",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lstsq.default and torch has no decomposition for it.",
    (
        "linalg.lstsq.grad_oriented",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lstsq.default and torch has no decomposition for it.",
    (
        "linalg.lu",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lu.default and torch has no decomposition for it.",
    (
        "linalg.lu",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lu.default and torch has no decomposition for it.",
    (
        "linalg.lu",
        "grad",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lu.default and torch has no decomposition for it.",
    (
        "linalg.lu",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lu.default and torch has no decomposition for it.",
    (
        "linalg.lu_solve",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lu_solve.default and torch has no decomposition for it.",
    (
        "linalg.lu_solve",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lu_solve.default and torch has no decomposition for it.",
    (
        "linalg.lu_solve",
        "grad",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lu_solve.default and torch has no decomposition for it.",
    (
        "linalg.lu_solve",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lu_solve.default and torch has no decomposition for it.",
    ("linalg.norm.subgradients_at_zero", "grad", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("linalg.pinv.hermitian", "grad", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("logcumsumexp", "grad", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "lu_solve",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lu_solve.default and torch has no decomposition for it.",
    (
        "lu_solve",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lu_solve.default and torch has no decomposition for it.",
    (
        "lu_solve",
        "grad",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lu_solve.default and torch has no decomposition for it.",
    (
        "lu_solve",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::linalg_lu_solve.default and torch has no decomposition for it.",
    (
        "lu_unpack",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::lu_unpack.default and torch has no decomposition for it.",
    (
        "lu_unpack",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::lu_unpack.default and torch has no decomposition for it.",
    (
        "lu_unpack",
        "grad",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::lu_unpack.default and torch has no decomposition for it.",
    (
        "lu_unpack",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::lu_unpack.default and torch has no decomposition for it.",
    (
        "masked_select",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.TracingError: torchjax: torch.masked_select has a data-dependent output shape (it depends on the values of a tensor), which XLA c…",
    (
        "masked_select",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.TracingError: torchjax: torch.masked_select has a data-dependent output shape (it depends on the values of a tensor), which XLA c…",
    ("matrix_exp", "forward", torch.bfloat16): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("matrix_exp", "forward", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("matrix_exp", "grad", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("matrix_exp", "vmap", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("native_layer_norm", "grad", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "nextafter",
        "grad",
        torch.float32,
    ): "jax._src.source_info_util.JaxStackTraceBeforeTransformation: NotImplementedError: Differentiation rule for 'nextafter' not implemented",
    (
        "nn.functional.adaptive_avg_pool3d",
        "forward",
        torch.bfloat16,
    ): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "nn.functional.ctc_loss",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_ctc_loss.default and torch has no decomposition for it.",
    (
        "nn.functional.ctc_loss",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_ctc_loss.default and torch has no decomposition for it.",
    (
        "nn.functional.ctc_loss",
        "grad",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_ctc_loss.default and torch has no decomposition for it.",
    (
        "nn.functional.ctc_loss",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_ctc_loss.default and torch has no decomposition for it.",
    ("nn.functional.embedding_bag", "forward", torch.bfloat16): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "nn.functional.fractional_max_pool2d",
        "forward",
        torch.bfloat16,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::fractional_max_pool2d.default and torch has no decomposition for it.",
    (
        "nn.functional.fractional_max_pool2d",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::fractional_max_pool2d.default and torch has no decomposition for it.",
    (
        "nn.functional.fractional_max_pool2d",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::fractional_max_pool2d.default and torch has no decomposition for it.",
    (
        "nn.functional.fractional_max_pool2d",
        "grad",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::fractional_max_pool2d.default and torch has no decomposition for it.",
    (
        "nn.functional.fractional_max_pool3d",
        "forward",
        torch.bfloat16,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::fractional_max_pool3d.default and torch has no decomposition for it.",
    (
        "nn.functional.fractional_max_pool3d",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::fractional_max_pool3d.default and torch has no decomposition for it.",
    (
        "nn.functional.fractional_max_pool3d",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::fractional_max_pool3d.default and torch has no decomposition for it.",
    (
        "nn.functional.fractional_max_pool3d",
        "grad",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::fractional_max_pool3d.default and torch has no decomposition for it.",
    (
        "nn.functional.gaussian_nll_loss",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.TracingError: torchjax: the traced code needs a tensor's value as a Python number (aten._local_scalar_dense.default), which JAX c…",
    (
        "nn.functional.gaussian_nll_loss",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.TracingError: torchjax: the traced code needs a tensor's value as a Python number (aten._local_scalar_dense.default), which JAX c…",
    ("nn.functional.grid_sample", "forward", torch.bfloat16): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "nn.functional.linear_cross_entropy.chunked",
        "forward",
        torch.bfloat16,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for torch_nn::_linear_cross_entropy_batch_chunked.default and torch has no decomposition…",
    (
        "nn.functional.linear_cross_entropy.chunked",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for torch_nn::_linear_cross_entropy_batch_chunked.default and torch has no decomposition…",
    (
        "nn.functional.linear_cross_entropy.chunked",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for torch_nn::_linear_cross_entropy_batch_chunked.default and torch has no decomposition…",
    (
        "nn.functional.linear_cross_entropy.chunked",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for torch_nn::_linear_cross_entropy_batch_chunked.default and torch has no decomposition…",
    (
        "nn.functional.linear_cross_entropy.chunked_none",
        "forward",
        torch.bfloat16,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for torch_nn::_linear_cross_entropy_batch_chunked_no_reduction.default and torch has no …",
    (
        "nn.functional.linear_cross_entropy.chunked_none",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for torch_nn::_linear_cross_entropy_batch_chunked_no_reduction.default and torch has no …",
    (
        "nn.functional.linear_cross_entropy.chunked_none",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for torch_nn::_linear_cross_entropy_batch_chunked_no_reduction.default and torch has no …",
    (
        "nn.functional.linear_cross_entropy.chunked_none",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for torch_nn::_linear_cross_entropy_batch_chunked_no_reduction.default and torch has no …",
    ("nn.functional.max_unpool1d", "grad", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("nn.functional.max_unpool2d", "grad", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("nn.functional.max_unpool3d", "grad", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "nn.functional.multi_head_attention_forward",
        "forward",
        torch.bfloat16,
    ): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "nn.functional.multi_head_attention_forward",
        "forward",
        torch.float64,
    ): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "nn.functional.multi_head_attention_forward",
        "grad",
        torch.float32,
    ): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "nn.functional.rrelu",
        "forward",
        torch.bfloat16,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::rrelu_with_noise.default and torch has no decomposition for it.",
    (
        "nn.functional.rrelu",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::rrelu_with_noise.default and torch has no decomposition for it.",
    (
        "nn.functional.rrelu",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::rrelu_with_noise.default and torch has no decomposition for it.",
    (
        "nn.functional.rrelu",
        "grad",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::rrelu_with_noise.default and torch has no decomposition for it.",
    (
        "nonzero",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.TracingError: torchjax: torch.nonzero (and argwhere) has a data-dependent output shape (it depends on the values of a tensor), wh…",
    (
        "ormqr",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::ormqr.default and torch has no decomposition for it.",
    (
        "ormqr",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::ormqr.default and torch has no decomposition for it.",
    (
        "ormqr",
        "grad",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::ormqr.default and torch has no decomposition for it.",
    (
        "ormqr",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::ormqr.default and torch has no decomposition for it.",
    ("pca_lowrank", "forward", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("pca_lowrank", "forward", torch.float64): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("pca_lowrank", "grad", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("polygamma.polygamma_n_0", "forward", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "polygamma.polygamma_n_0",
        "grad",
        torch.float32,
    ): "jax._src.source_info_util.JaxStackTraceBeforeTransformation: ValueError: Reverse-mode differentiation does not work for lax.while_loop or lax.fori_loo…",
    ("polygamma.polygamma_n_0", "vmap", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("polygamma.polygamma_n_1", "forward", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "polygamma.polygamma_n_1",
        "grad",
        torch.float32,
    ): "jax._src.source_info_util.JaxStackTraceBeforeTransformation: ValueError: Reverse-mode differentiation does not work for lax.while_loop or lax.fori_loo…",
    ("polygamma.polygamma_n_1", "vmap", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("polygamma.polygamma_n_2", "forward", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "polygamma.polygamma_n_2",
        "grad",
        torch.float32,
    ): "jax._src.source_info_util.JaxStackTraceBeforeTransformation: ValueError: Reverse-mode differentiation does not work for lax.while_loop or lax.fori_loo…",
    ("polygamma.polygamma_n_2", "vmap", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("polygamma.polygamma_n_3", "forward", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "polygamma.polygamma_n_3",
        "grad",
        torch.float32,
    ): "jax._src.source_info_util.JaxStackTraceBeforeTransformation: ValueError: Reverse-mode differentiation does not work for lax.while_loop or lax.fori_loo…",
    ("polygamma.polygamma_n_3", "vmap", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("polygamma.polygamma_n_4", "forward", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "polygamma.polygamma_n_4",
        "grad",
        torch.float32,
    ): "jax._src.source_info_util.JaxStackTraceBeforeTransformation: ValueError: Reverse-mode differentiation does not work for lax.while_loop or lax.fori_loo…",
    ("polygamma.polygamma_n_4", "vmap", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "renorm",
        "forward",
        torch.bfloat16,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for prims::convert_element_type.default and torch has no decomposition for it.",
    (
        "resize_",
        "forward",
        torch.bfloat16,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax: Tensor.resize_ from (5, 5, 5) to (25, 5) is not supported (JAX arrays have fixed shapes); create a …",
    (
        "resize_",
        "forward",
        torch.bool,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax: Tensor.resize_ from (5, 5, 5) to (25, 5) is not supported (JAX arrays have fixed shapes); create a …",
    (
        "resize_",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax: Tensor.resize_ from (5, 5, 5) to (25, 5) is not supported (JAX arrays have fixed shapes); create a …",
    (
        "resize_",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax: Tensor.resize_ from (5, 5, 5) to (25, 5) is not supported (JAX arrays have fixed shapes); create a …",
    (
        "resize_",
        "forward",
        torch.int64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax: Tensor.resize_ from (5, 5, 5) to (25, 5) is not supported (JAX arrays have fixed shapes); create a …",
    (
        "resize_",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax: Tensor.resize_ from (5, 5, 5) to (25, 5) is not supported (JAX arrays have fixed shapes); create a …",
    (
        "resize_as_",
        "forward",
        torch.bfloat16,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::resize.default and torch has no decomposition for it.",
    (
        "resize_as_",
        "forward",
        torch.bool,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::resize.default and torch has no decomposition for it.",
    (
        "resize_as_",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::resize.default and torch has no decomposition for it.",
    (
        "resize_as_",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::resize.default and torch has no decomposition for it.",
    (
        "resize_as_",
        "forward",
        torch.int64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::resize.default and torch has no decomposition for it.",
    (
        "resize_as_",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::resize.default and torch has no decomposition for it.",
    ("sort", "forward", torch.bfloat16): "AssertionError: leaf 1: Tensor-likes are not close!",
    ("sort", "forward", torch.bool): "AssertionError: leaf 1: Tensor-likes are not equal!",
    (
        "sparse.mm.reduce",
        "forward",
        torch.bfloat16,
    ): "RuntimeError: Cannot access data pointer of Tensor that doesn't have storage",
    (
        "sparse.mm.reduce",
        "forward",
        torch.float32,
    ): "TypeError: can't convert SparseCsr layout tensor to numpy. Use Tensor.to_dense() first.",
    (
        "sparse.mm.reduce",
        "forward",
        torch.float64,
    ): "TypeError: can't convert SparseCsr layout tensor to numpy. Use Tensor.to_dense() first.",
    (
        "sparse.mm.reduce",
        "vmap",
        torch.float32,
    ): "NotImplementedError: Could not run 'aten::flip' with arguments from the 'SparseCsrCPU' backend. This could be because the operator doesn't exist for t…",
    (
        "sparse.sampled_addmm",
        "forward",
        torch.float32,
    ): "TypeError: can't convert SparseCsr layout tensor to numpy. Use Tensor.to_dense() first.",
    (
        "sparse.sampled_addmm",
        "forward",
        torch.float64,
    ): "TypeError: can't convert SparseCsr layout tensor to numpy. Use Tensor.to_dense() first.",
    (
        "sparse.sampled_addmm",
        "vmap",
        torch.float32,
    ): "NotImplementedError: Could not run 'aten::flip' with arguments from the 'SparseCsrCPU' backend. This could be because the operator doesn't exist for t…",
    (
        "special.airy_ai",
        "forward",
        torch.bool,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_airy_ai.default and torch has no decomposition for it.",
    (
        "special.airy_ai",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_airy_ai.default and torch has no decomposition for it.",
    (
        "special.airy_ai",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_airy_ai.default and torch has no decomposition for it.",
    (
        "special.airy_ai",
        "forward",
        torch.int64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_airy_ai.default and torch has no decomposition for it.",
    (
        "special.airy_ai",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_airy_ai.default and torch has no decomposition for it.",
    (
        "special.modified_bessel_k0",
        "forward",
        torch.bool,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_modified_bessel_k0.default and torch has no decomposition for it.",
    (
        "special.modified_bessel_k0",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_modified_bessel_k0.default and torch has no decomposition for it.",
    (
        "special.modified_bessel_k0",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_modified_bessel_k0.default and torch has no decomposition for it.",
    (
        "special.modified_bessel_k0",
        "forward",
        torch.int64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_modified_bessel_k0.default and torch has no decomposition for it.",
    (
        "special.modified_bessel_k0",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_modified_bessel_k0.default and torch has no decomposition for it.",
    (
        "special.modified_bessel_k1",
        "forward",
        torch.bool,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_modified_bessel_k1.default and torch has no decomposition for it.",
    (
        "special.modified_bessel_k1",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_modified_bessel_k1.default and torch has no decomposition for it.",
    (
        "special.modified_bessel_k1",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_modified_bessel_k1.default and torch has no decomposition for it.",
    (
        "special.modified_bessel_k1",
        "forward",
        torch.int64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_modified_bessel_k1.default and torch has no decomposition for it.",
    (
        "special.modified_bessel_k1",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_modified_bessel_k1.default and torch has no decomposition for it.",
    (
        "special.polygamma.special_polygamma_n_0",
        "forward",
        torch.float32,
    ): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "special.polygamma.special_polygamma_n_0",
        "grad",
        torch.float32,
    ): "jax._src.source_info_util.JaxStackTraceBeforeTransformation: ValueError: Reverse-mode differentiation does not work for lax.while_loop or lax.fori_loo…",
    (
        "special.polygamma.special_polygamma_n_0",
        "vmap",
        torch.float32,
    ): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "special.scaled_modified_bessel_k0",
        "forward",
        torch.bool,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_scaled_modified_bessel_k0.default and torch has no decomposition for i…",
    (
        "special.scaled_modified_bessel_k0",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_scaled_modified_bessel_k0.default and torch has no decomposition for i…",
    (
        "special.scaled_modified_bessel_k0",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_scaled_modified_bessel_k0.default and torch has no decomposition for i…",
    (
        "special.scaled_modified_bessel_k0",
        "forward",
        torch.int64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_scaled_modified_bessel_k0.default and torch has no decomposition for i…",
    (
        "special.scaled_modified_bessel_k0",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_scaled_modified_bessel_k0.default and torch has no decomposition for i…",
    (
        "special.scaled_modified_bessel_k1",
        "forward",
        torch.bool,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_scaled_modified_bessel_k1.default and torch has no decomposition for i…",
    (
        "special.scaled_modified_bessel_k1",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_scaled_modified_bessel_k1.default and torch has no decomposition for i…",
    (
        "special.scaled_modified_bessel_k1",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_scaled_modified_bessel_k1.default and torch has no decomposition for i…",
    (
        "special.scaled_modified_bessel_k1",
        "forward",
        torch.int64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_scaled_modified_bessel_k1.default and torch has no decomposition for i…",
    (
        "special.scaled_modified_bessel_k1",
        "vmap",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::special_scaled_modified_bessel_k1.default and torch has no decomposition for i…",
    ("svd_lowrank", "forward", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("svd_lowrank", "forward", torch.float64): "AssertionError: leaf 0: Tensor-likes are not close!",
    ("svd_lowrank", "grad", torch.float32): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "tensor_split",
        "forward",
        torch.bfloat16,
    ): "RuntimeError: The tensor has a non-zero number of elements, but its data is not allocated yet.",
    (
        "tensor_split",
        "forward",
        torch.bool,
    ): "RuntimeError: The tensor has a non-zero number of elements, but its data is not allocated yet.",
    (
        "tensor_split",
        "forward",
        torch.float32,
    ): "RuntimeError: The tensor has a non-zero number of elements, but its data is not allocated yet.",
    (
        "tensor_split",
        "forward",
        torch.float64,
    ): "RuntimeError: The tensor has a non-zero number of elements, but its data is not allocated yet.",
    (
        "tensor_split",
        "forward",
        torch.int64,
    ): "RuntimeError: The tensor has a non-zero number of elements, but its data is not allocated yet.",
    (
        "to_sparse",
        "forward",
        torch.bfloat16,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_to_sparse.default and torch has no decomposition for it.",
    (
        "to_sparse",
        "forward",
        torch.bool,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_to_sparse.default and torch has no decomposition for it.",
    (
        "to_sparse",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_to_sparse.default and torch has no decomposition for it.",
    (
        "to_sparse",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_to_sparse.default and torch has no decomposition for it.",
    (
        "to_sparse",
        "forward",
        torch.int64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_to_sparse.default and torch has no decomposition for it.",
    ("topk", "forward", torch.bfloat16): "AssertionError: leaf 1: Tensor-likes are not close!",
    ("topk", "forward", torch.int64): "AssertionError: leaf 1: Tensor-likes are not equal!",
    (
        "torch.ops.aten._safe_softmax.default",
        "grad",
        torch.float32,
    ): "AssertionError: leaf 0: Tensor-likes are not close!",
    (
        "unique",
        "forward",
        torch.bfloat16,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_unique2.default and torch has no decomposition for it.",
    (
        "unique",
        "forward",
        torch.bool,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_unique2.default and torch has no decomposition for it.",
    (
        "unique",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_unique2.default and torch has no decomposition for it.",
    (
        "unique",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_unique2.default and torch has no decomposition for it.",
    (
        "unique",
        "forward",
        torch.int64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::_unique2.default and torch has no decomposition for it.",
    (
        "unique_consecutive",
        "forward",
        torch.bfloat16,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::unique_consecutive.default and torch has no decomposition for it.",
    (
        "unique_consecutive",
        "forward",
        torch.bool,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::unique_consecutive.default and torch has no decomposition for it.",
    (
        "unique_consecutive",
        "forward",
        torch.float32,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::unique_consecutive.default and torch has no decomposition for it.",
    (
        "unique_consecutive",
        "forward",
        torch.float64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::unique_consecutive.default and torch has no decomposition for it.",
    (
        "unique_consecutive",
        "forward",
        torch.int64,
    ): "torchjax._src.errors.UnsupportedOpError: torchjax has no rule for aten::unique_consecutive.default and torch has no decomposition for it.",
}


def known_failure(name: str, transform: str, dtype: torch.dtype) -> str | None:
    return KNOWN.get((name, transform, dtype)) or KNOWN.get((name, transform, None))
