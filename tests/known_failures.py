"""Known failures of the OpInfo suite: (op id, transform, dtype or None) -> reason.

Each entry is a strict xfail: an entry that starts passing fails the run until it is
removed. ``dtype=None`` covers every dtype of that op and transform.
"""

from __future__ import annotations

import torch

KNOWN: dict[tuple[str, str, torch.dtype | None], str] = {}


def known_failure(name: str, transform: str, dtype: torch.dtype) -> str | None:
    return KNOWN.get((name, transform, dtype)) or KNOWN.get((name, transform, None))
