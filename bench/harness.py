"""Timing: first call apart, warm-up, then contenders interleaved round by round.

Interleaving (A B C, C A B, B C A, ...: every contender once per round, in a shuffled
order) spreads any drift of the machine (other processes, frequency changes) and what
one contender leaves behind for the next (caches, freed memory) over all contenders
alike, so ratios within one run stay fair even when absolute times are noisy.
"""

from __future__ import annotations

import gc
import os
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
TORCH_COMPILE = "torch.compile"
JAX = "jax"
# The transform workloads (W1-W7); the first is the reference.
CONTENDERS = (TORCH_FUNC, TORCHJAX, TORCH_COMPILE, JAX)

# The training-step workloads (W8); the first is the reference. TORCH_COMPILE there is
# torch.compile(model) with eager backward and optimizer.
EAGER = "eager"
TORCH_COMPILE_STEP = "torch.compile step"
TORCHJAX_JIT_MODEL = "torchjax.jit(model)"
TORCHJAX_JIT_STEP = "torchjax.jit(step)"
OPTAX = "optax"
TRAINING_CONTENDERS = (EAGER, TORCH_COMPILE, TORCH_COMPILE_STEP, TORCHJAX_JIT_MODEL, TORCHJAX_JIT_STEP, OPTAX)

NOT_RUN_IN_QUICK_MODE = "not run in quick mode (its compile takes tens of seconds a case on this CPU)"


def torch_compile_not_run(quick: bool) -> dict[str, str]:
    """``Case.skipped`` for the transform workloads: torch.compile runs in full mode only."""
    return {TORCH_COMPILE: NOT_RUN_IN_QUICK_MODE} if quick else {}


@dataclass
class Case:
    """One measured call: each contender is a zero-argument callable returning its result.

    ``reference`` names the contender the others are compared with; ``expected`` gives
    the reference result instead when there is no such contender (W7). The first
    ``checked_calls`` calls of every contender are compared (a training step changes
    the weights, so W8 compares the losses of its first steps, each on its own fixed
    batch). ``skipped`` names contenders not run, with the reason; ``peak_rss`` samples
    the resident memory a call needs; ``xla_memory`` gives, per contender, a hook
    returning XLA's ``memory_analysis()`` of its compiled program (or None if it cannot
    be had). ``note`` turns the contenders' first results into a remark for the table.
    """

    id: str
    title: str
    contenders: dict[str, Callable[[], Any]]
    in_geomean: bool = True
    expected: Callable[[], Any] | None = None
    note: Callable[[dict[str, Any]], str] | None = None
    reference: str = TORCH_FUNC
    checked_calls: int = 1
    skipped: dict[str, str] = field(default_factory=dict)
    peak_rss: bool = False
    xla_memory: dict[str, Callable[[], Any]] = field(default_factory=dict)

    @property
    def training(self) -> bool:
        return self.reference == EAGER


@dataclass
class Timing:
    first_ms: float | None = None
    times_ms: list[float] = field(default_factory=list)
    max_abs_diff: float | None = None
    error: str | None = None
    skipped: str | None = None
    peak_rss_mb: float | None = None
    xla_memory: str | None = None
    graphs: int | None = None  # torch.compile: graphs compiled and graph breaks, before timing
    graph_breaks: int | None = None

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
    """First call, the other checked calls, ``warmup`` calls, then rounds of interleaved
    samples until ``budget_s`` is spent (at least ``min_repeats`` rounds, at most
    ``max_repeats``). A sample is one call, or the mean of a batch of calls for calls
    under :data:`MIN_SAMPLE_MS`. A contender that raises is reported as failed and
    dropped; the others go on."""
    timings = {name: Timing(skipped=case.skipped.get(name)) for name in {**case.contenders, **case.skipped}}
    live = [name for name in case.contenders if name not in case.skipped]
    outputs: dict[str, list[Any]] = {}
    for name in live:
        with _CompileCount(timings[name], enabled=name.startswith(TORCH_COMPILE)):
            outputs[name] = _first_calls(case, name, timings[name])
    _compare(case, timings, {name: out for name, out in outputs.items() if out is not None})
    live = [name for name in live if timings[name].error is None]
    for name in live:
        with _CompileCount(timings[name], enabled=name.startswith(TORCH_COMPILE)):
            _guarded(timings[name], lambda: [case.contenders[name]() for _ in range(warmup)])
    batch = {name: _guarded(timings[name], lambda: _batch_size(case.contenders[name])) for name in live}
    live = [name for name in live if timings[name].error is None]
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
            sample = _guarded(timings[name], lambda: _timed_batch(case.contenders[name], batch[name]))
            if sample is not None:
                timings[name].times_ms.append(sample)
        live = [name for name in live if timings[name].error is None]
    for name in live:
        if case.peak_rss:
            timings[name].peak_rss_mb = _guarded(timings[name], lambda: _peak_rss_mb(case.contenders[name]))
        if name in case.xla_memory:
            timings[name].xla_memory = _xla_memory_text(case.xla_memory[name])
    firsts = {name: out[0] for name, out in outputs.items() if out is not None}
    note = case.note(firsts) if case.note and firsts else ""
    return Result(case, timings, note)


def _first_calls(case: Case, name: str, timing: Timing) -> list[Any] | None:
    """The first call (timed: capture and compile included), then the rest of the checked calls."""
    fn = case.contenders[name]
    try:
        timing.first_ms, first = _timed(fn)
        return [first, *(block(fn()) for _ in range(case.checked_calls - 1))]
    except Exception as exc:  # one broken contender must not stop the others
        timing.error = _error(exc)
        return None


def _guarded(timing: Timing, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # e.g. a recompile that fails after the first call
        timing.error = _error(exc)
        return None


class _CompileCount:
    """Counts the graphs torch.compile (dynamo) compiles and the graph breaks it meets
    while the block runs, into ``timing``: a graph break means part of the call runs eagerly."""

    def __init__(self, timing: Timing, enabled: bool):
        self.timing, self.enabled = timing, enabled

    @staticmethod
    def _counts() -> tuple[int, int]:
        from torch._dynamo.utils import counters

        return counters["stats"]["unique_graphs"], sum(counters["graph_break"].values())

    def __enter__(self):
        if self.enabled:
            self.before = self._counts()

    def __exit__(self, *exc_info):
        if self.enabled:
            graphs, breaks = (after - before for after, before in zip(self._counts(), self.before))
            self.timing.graphs = (self.timing.graphs or 0) + graphs
            self.timing.graph_breaks = (self.timing.graph_breaks or 0) + breaks


def _status_kb(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field_name} in /proc/self/status")


def _reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of resident memory (VmHWM) to the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


PEAK_RSS_SAMPLES = 3


def _peak_rss_mb(fn: Callable[[], Any]) -> float | None:
    """The most resident memory one call adds while it runs, over a few calls: peak RSS
    during the call (VmHWM, reset before it) minus RSS before it. Where the peak cannot
    be reset, RSS after the call minus before. None without /proc (not Linux)."""
    if not os.path.exists("/proc/self/status"):
        return None
    deltas = []
    for _ in range(PEAK_RSS_SAMPLES):
        resettable = _reset_peak_rss()
        before = _status_kb("VmRSS")
        block(fn())
        deltas.append(_status_kb("VmHWM" if resettable else "VmRSS") - before)
    return max(deltas) / 1024


def _xla_memory_text(hook: Callable[[], Any]) -> str:
    """XLA's ``CompiledMemoryStats`` in MB, or why there is none (the step itself ran, so
    a hook that raises does not fail the contender)."""
    try:
        stats = hook()
    except Exception as exc:
        return f"failed: {_error(exc)}"
    if stats is None:
        return "no accessor"
    mb = lambda n: f"{n / 2**20:.3g}"
    return (
        f"temp {mb(stats.temp_size_in_bytes)}, args {mb(stats.argument_size_in_bytes)}, "
        f"out {mb(stats.output_size_in_bytes)}, aliased {mb(stats.alias_size_in_bytes)}"
    )


def build_failure(id_: str, title: str, exc: BaseException, contenders: tuple[str, ...] = CONTENDERS) -> Result:
    """The result of a workload whose setup raised: every contender failed with that error.
    ``contenders[0]`` is the workload's reference."""
    error = _error(exc)
    case = Case(id_, title, {}, reference=contenders[0])
    return Result(case, {name: Timing(error=error) for name in contenders})


def _compare(case: Case, timings: dict[str, Timing], outputs: dict[str, list[Any]]) -> None:
    if case.expected is not None:
        ref = [case.expected()] * case.checked_calls
    elif case.reference in outputs:
        ref = outputs[case.reference]
    else:
        return
    for name, out in outputs.items():
        try:
            timings[name].max_abs_diff = max_abs_diff(out, ref)
        except ValueError as exc:
            timings[name].error = str(exc)
