"""The translation table's rules, one module per op family; importing registers them."""

from . import (  # noqa: F401
    bessel,
    conv,
    creation,
    fft,
    indexing,
    linalg,
    nn_misc,
    norm,
    pointwise,
    pooling,
    random,
    reduction,
    shape,
    special,
)
