"""The translation table's rules, one module per op family; importing registers them."""

from . import pointwise  # noqa: F401
