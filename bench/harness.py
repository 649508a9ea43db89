"""Timing: first call apart, warm-up, then contenders interleaved round by round.

Interleaving (A B C, C A B, B C A, ...: every contender once per round, in a shuffled
order) spreads any drift of the machine (other processes, frequency changes) and what
one contender leaves behind for the next (caches, freed memory) over all contenders
alike, so ratios within one run stay fair even when absolute times are noisy.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np
import torch

TORCH_FUNC = "torch.func"
TORCHJAX = "torchjax"
JAX = "jax"
CONTENDERS = (TORCH_FUNC, TORCHJAX, JAX)


@dataclass
class Case:
    """One measured call: each contender is a zero-argument callable returning its result.

    ``expected`` gives the reference result when there is no torch.func contender (W7).
    ``note`` turns the contenders' results into a remark for the table (e.g. zero-copy).
    """

    id: str
    title: str
    contenders: dict[str, Callable[[], Any]]
    in_geomean: bool = True
    expected: Callable[[], Any] | None = None
    note: Callable[[dict[str, Any]], str] | None = None


@dataclass
class Timing:
    first_ms: float | None = None
    times_ms: list[float] = field(default_factory=list)
    max_abs_diff: float | None = None
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.times_ms) if self.times_ms else None


@dataclass
class Result:
    case: Case
    timings: dict[str, Timing]
    note: str = ""


def block(out: Any) -> Any:
    """Wait for JAX's asynchronous dispatch; torch results are ready when returned."""
    for leaf in jax.tree_util.tree_leaves(out):
        if isinstance(leaf, jax.Array):
            leaf.block_until_ready()
    return out


def flatten(out: Any) -> list[np.ndarray]:
    """Results as a flat list of numpy arrays; dict entries in key order so that a torch
    dict and a JAX dict of the same names line up."""
    if isinstance(out, dict):
        return [a for k in sorted(out) for a in flatten(out[k])]
    if isinstance(out, (list, tuple)):
        return [a for x in out for a in flatten(x)]
    if isinstance(out, torch.Tensor):
        return [out.detach().cpu().numpy()]
    return [np.asarray(out)]


def max_abs_diff(out: Any, ref: Any) -> float:
    got, want = flatten(out), flatten(ref)
    if len(got) != len(want) or any(g.shape != w.shape for g, w in zip(got, want)):
        shapes = [g.shape for g in got], [w.shape for w in want]
        raise ValueError(f"result structure differs from the reference: {shapes[0]} vs {shapes[1]}")
    return max((float(np.max(np.abs(g.astype(np.float64) - w))) for g, w in zip(got, want) if g.size), default=0.0)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = block(fn())
    return (time.perf_counter() - start) * 1e3, out


# A sample is at least this long: calls shorter than it are timed in a batch of back-to-back
# calls (each one still waited for) and the sample is the batch's mean. One 10 us call timed
# alone measures the timer and whatever the previous contender left in the caches.
MIN_SAMPLE_MS = 2.0


def _batch_size(fn: Callable[[], Any]) -> int:
    one = min(_timed(fn)[0] for _ in range(3))
    return max(1, min(1000, int(MIN_SAMPLE_MS / max(one, 1e-4))))


def _timed_batch(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        block(fn())
    return (time.perf_counter() - start) * 1e3 / n


def _error(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:]
    where = f" (at {last[0].filename.split('/')[-1]}:{last[0].lineno})" if last else ""
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first_line}{where}"


def measure(case: Case, *, warmup: int, min_repeats: int, max_repeats: int, budget_s: float) -> Result:
    """First call, ``warmup`` calls, then rounds of interleaved samples until ``budget_s``
    is spent (at least ``min_repeats`` rounds, at most ``max_repeats``). A sample is one
    call, or the mean of a batch of calls for calls under :data:`MIN_SAMPLE_MS`."""
    timings = {name: Timing() for name in case.contenders}
    outputs: dict[str, Any] = {}
    for name, fn in case.contenders.items():
        try:
            timings[name].first_ms, outputs[name] = _timed(fn)
        except Exception as exc:  # one broken contender must not stop the others
            timings[name].error = _error(exc)
    _compare(case, timings, outputs)
    live = [name for name in case.contenders if timings[name].error is None]
    for name in live:
        for _ in range(warmup):
            case.contenders[name]()
    batch = {name: _batch_size(case.contenders[name]) for name in live}
    gc.collect()  # garbage left by earlier cases is not this case's cost
    start = time.perf_counter()
    order = random.Random(0)  # seeded: the same orders on every run
    for rounds in range(max_repeats):
        if rounds >= min_repeats and time.perf_counter() - start > budget_s:
            break
        # A new order each round: whoever runs right after torch.func finds the memory it
        # freed handed back to the OS and pays the page faults of getting it again, so no
        # contender may always be the one that follows it.
        for name in order.sample(live, len(live)):
            timings[name].times_ms.append(_timed_batch(case.contenders[name], batch[name]))
    note = case.note(outputs) if case.note and outputs else ""
    return Result(case, timings, note)


def build_failure(id_: str, title: str, exc: BaseException) -> Result:
    """The result of a workload whose setup raised: every contender failed with that error."""
    error = _error(exc)
    return Result(Case(id_, title, {}), {name: Timing(error=error) for name in CONTENDERS})


def _compare(case: Case, timings: dict[str, Timing], outputs: dict[str, Any]) -> None:
    if case.expected is not None:
        ref = case.expected()
    elif TORCH_FUNC in outputs:
        ref = outputs[TORCH_FUNC]
    else:
        return
    for name, out in outputs.items():
        try:
            timings[name].max_abs_diff = max_abs_diff(out, ref)
        except ValueError as exc:
            timings[name].error = str(exc)
