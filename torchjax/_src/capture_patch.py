"""An attribute of torch replaced while some thread captures, and put back after.

torch calls a few things before any dispatch mode can see them (``Function.apply``,
checkpoint's generator). torchjax replaces such an attribute only while at least one
thread runs a capture (counted across threads), and the replacement sends calls from
threads that are not capturing to the original (:attr:`CapturePatch.capturing` tells).
Importing torchjax changes nothing.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

_ABSENT = object()


class CapturePatch:
    """``owner.name = replacement`` while any thread is inside :meth:`held`."""

    def __init__(self, owner: Any, name: str, replacement: Any):
        self.owner, self.name, self.replacement = owner, name, replacement
        self.original = vars(owner).get(name, _ABSENT)  # _ABSENT: inherited, deleted again after
        self._lock = threading.Lock()
        self._users = 0
        self._local = threading.local()

    @property
    def capturing(self) -> bool:
        """Whether this thread is inside :meth:`held`."""
        return getattr(self._local, "depth", 0) > 0

    @contextlib.contextmanager
    def held(self):
        with self._lock:
            if self._users == 0:
                setattr(self.owner, self.name, self.replacement)
            self._users += 1
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            yield
        finally:
            self._local.depth -= 1
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    if self.original is _ABSENT:
                        delattr(self.owner, self.name)
                    else:
                        setattr(self.owner, self.name, self.original)
