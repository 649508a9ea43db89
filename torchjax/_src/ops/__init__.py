"""The translation table's rules, one module per op family; importing registers them."""

from . import (  # noqa: F401
    bessel,
    conv,
    creation,
    fft,
    histogram,
    indexing,
    linalg,
    linalg_decomp,
    nn_misc,
    norm,
    pointwise,
    pooling,
    random,
    reduction,
    shape,
    special,
)
