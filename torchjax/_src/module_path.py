"""Which ``nn.Module`` a capture is running now, for error messages.

torch's global forward hooks push and pop module names while at least one thread
captures; each thread keeps its own path. Nothing outside a capture sees the hooks.
"""

from __future__ import annotations

import contextlib
import threading

import torch


class _ModulePath(threading.local):
    """The modules being run by this thread's capture, outermost first ('' for the root)."""

    def __init__(self):
        self.stack: list[str] = []
        self.names: dict[int, str] = {}  # id(module) -> its path in the captured root module
        self.met: dict[int, torch.nn.Module] = {}  # the modules run, in the order first run


_module_path = _ModulePath()


def _enter_module(module, args) -> None:
    if _module_path.stack:  # this thread is capturing
        _module_path.stack.append(_module_path.names.get(id(module), type(module).__name__))
        _module_path.met.setdefault(id(module), module)


def _exit_module(module, args, out) -> None:
    if len(_module_path.stack) > 1:
        _module_path.stack.pop()


class _ModuleHooks:
    """torch's global forward hooks, registered while at least one thread captures.

    One pair for all threads, so each module call pushes and pops once however many
    threads capture at the same time.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._users = 0
        self._handles: list = []

    @contextlib.contextmanager
    def held(self):
        with self._lock:
            if not self._users:
                self._handles = [
                    torch.nn.modules.module.register_module_forward_pre_hook(_enter_module),
                    torch.nn.modules.module.register_module_forward_hook(_exit_module),
                ]
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if not self._users:
                    for h in self._handles:
                        h.remove()
                    self._handles = []


_module_hooks = _ModuleHooks()


@contextlib.contextmanager
def module_path_tracking(fn):
    """Keep the path of the nn.Module being run, for error messages (see ``module_path``).

    The hooks are torch's global forward hooks, registered for the length of captures
    only and removed after them, so nothing outside a capture sees them. Each thread
    keeps its own path.
    """
    state = _module_path
    if state.stack:  # a nested capture: the outer one already tracks
        yield
        return
    fn = getattr(fn, "__wrapped__", fn)  # a wrapper's (a training step's) own function
    root = fn if isinstance(fn, torch.nn.Module) else getattr(fn, "__self__", None)
    if isinstance(root, torch.nn.Module):
        state.names.update(
            {id(m): f"{n} ({type(m).__name__})" if n else type(m).__name__ for n, m in root.named_modules()}
        )
    state.stack.append("")
    try:
        with _module_hooks.held():
            yield
    finally:
        state.stack.clear()
        state.names.clear()
        state.met.clear()


def modules_met() -> list[torch.nn.Module]:
    """The modules this thread's capture has run so far (their ``training`` flags are
    Python state the traced program depends on)."""
    return list(_module_path.met.values())


def module_path() -> str | None:
    """Where in the model this thread's capture is now: ``'transformer.h.0.attn (GPT2Attention)'``."""
    names = [n for n in _module_path.stack if n]
    return names[-1] if names else None
