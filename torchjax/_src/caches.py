"""The one registry of torchjax's caches: ``torchjax.clear_cache()`` empties every one.

A module-level cache registers a function that empties it (:func:`register`); an object
that owns caches of its own (a ``torchjax.jit`` function, a ``from_jax`` function)
registers itself with :func:`register_owner` and is held weakly, so registering keeps
nothing alive. Nothing else may keep state that outlives a call.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

_lock = threading.Lock()
_CLEARERS: dict[str, Callable[[], None]] = {}
_OWNERS: weakref.WeakSet = weakref.WeakSet()


def register(name: str, clear: Callable[[], None]) -> None:
    """Register the module-level cache ``name``; ``clear()`` empties it. Names are unique."""
    with _lock:
        if name in _CLEARERS:
            raise ValueError(f"caches.register: a cache named {name!r} is already registered")
        _CLEARERS[name] = clear


def register_owner(owner: object) -> None:
    """Register an object whose ``clear_cache()`` empties the caches it owns (held weakly)."""
    with _lock:
        _OWNERS.add(owner)


def names() -> list[str]:
    """The registered module-level caches."""
    return sorted(_CLEARERS)


def clear_all() -> None:
    with _lock:
        clearers = list(_CLEARERS.values())
        owners = list(_OWNERS)
    for clear in clearers:
        clear()
    for owner in owners:
        owner.clear_cache()
