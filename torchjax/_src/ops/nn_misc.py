"""nn_misc rules."""

from __future__ import annotations
