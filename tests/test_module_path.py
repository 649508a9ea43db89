"""The module path in error messages (``module_path``) is per thread."""

from __future__ import annotations

import threading

import torch

import torchjax

torch.library.define("tjtest_threads::odd", "(Tensor x) -> Tensor")


@torch.library.impl("tjtest_threads::odd", "CompositeExplicitAutograd")
def _odd(x):
    return x


def test_threads_capturing_at_once_report_their_own_module_path():
    both_inside = threading.Barrier(2, timeout=60)
    messages: dict[str, str] = {}

    class Odd(torch.nn.Module):
        def __init__(self, tag: str):
            super().__init__()
            self.tag = tag

        def forward(self, x):
            both_inside.wait()  # each thread is inside its own model
            try:
                torch.ops.tjtest_threads.odd(x)
            except torchjax.UnsupportedOpError as exc:
                messages[self.tag] = str(exc)
            both_inside.wait()  # neither capture ends before both errors are made
            return x

    # no parameters: each model is traced once (a captured tensor would make a second trace)
    models = {
        "a": torch.nn.Sequential(torch.nn.Sequential(Odd("a"))),
        "b": torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Sequential(torch.nn.Identity(), Odd("b"))),
    }
    errors = []

    def work(tag):
        try:
            torchjax.jit(models[tag])(torch.ones(2))
        except Exception as exc:  # reported below, with the thread's tag
            errors.append((tag, exc))

    threads = [threading.Thread(target=work, args=(tag,)) for tag in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert "called in module: 0.0 (Odd)" in messages["a"]
    assert "called in module: 1.1 (Odd)" in messages["b"]
    assert not torch.nn.modules.module._global_forward_pre_hooks  # the hooks left with the captures
