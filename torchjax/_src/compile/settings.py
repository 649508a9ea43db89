"""What the environment sets for compiling, read once at import, and ``disable_jit``.

``TORCHJAX_DISABLE_JIT=1`` runs every call eagerly; ``TORCHJAX_OUTPUT_REUSE_MB`` caps the
bytes of output buffers kept for reuse (0 turns reuse off). Tests change a setting for a
block with :meth:`Settings.override`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Iterator, Mapping


@dataclasses.dataclass
class Settings:
    """How torchjax compiles, as the environment set it at import."""

    # every call runs op by op, as under ``disable_jit()`` (TORCHJAX_DISABLE_JIT)
    disable_jit: bool = False
    # bytes of output buffers all programs together may keep for reuse (TORCHJAX_OUTPUT_REUSE_MB)
    output_reuse_budget: int = 1 << 30
    # outputs at least this large are worth a kept buffer
    output_reuse_min_bytes: int = 16 << 20

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            disable_jit=environ.get("TORCHJAX_DISABLE_JIT", "") not in ("", "0"),
            output_reuse_budget=_reuse_budget(environ.get("TORCHJAX_OUTPUT_REUSE_MB")),
        )

    @contextlib.contextmanager
    def override(self, **changes) -> Iterator[Settings]:
        """These settings changed for the block, restored after it (for tests)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(f"Settings.override: no setting named {unknown[0]!r}")
        before = {name: getattr(self, name) for name in changes}
        for name, value in changes.items():
            setattr(self, name, value)
        try:
            yield self
        finally:
            for name, value in before.items():
                setattr(self, name, value)


def _reuse_budget(megabytes: str | None) -> int:
    """The output-reuse budget: ``megabytes`` if set, else an eighth of physical memory."""
    if megabytes is not None:
        try:
            return int(float(megabytes) * (1 << 20))
        except ValueError:
            raise ValueError(f"TORCHJAX_OUTPUT_REUSE_MB must be a number of megabytes, got {megabytes!r}") from None
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 8
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not a POSIX system
        return 1 << 30


SETTINGS = Settings.from_environment()


class _Local(threading.local):
    disabled = 0  # a class default: found without a failed lookup in every thread


_local = _Local()


def jit_disabled() -> bool:
    return SETTINGS.disable_jit or _local.disabled > 0


@contextlib.contextmanager
def disable_jit() -> Iterator[None]:
    """Run torchjax calls op by op, without ``jax.jit``, for debugging.

    Inside this block (or with the environment variable ``TORCHJAX_DISABLE_JIT=1``)
    each torchjax call runs JAX eagerly on concrete values: ``print`` works inside the
    converted code, and Python control flow on tensor values (``if x.sum() > 0``) works
    outside ``vmap``. The block applies to the thread that enters it.

    Example:
        >>> import torch, torchjax
        >>> with torchjax.disable_jit():
        ...     torchjax.func.grad(lambda x: x.sin().sum() if x.sum() > 0 else x.sum())(torch.ones(2))
        tensor([0.5403, 0.5403])
    """
    _local.disabled += 1
    try:
        yield
    finally:
        _local.disabled -= 1
