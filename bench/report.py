"""The results as markdown tables (``docs/benchmarks.md``) and a chart of the ratios.

The transform workloads (W1-W7) get one row per case and a column per contender; the
training steps (W8) have more contenders and more to say about each (memory, graphs),
so they get one row per case and contender.
"""

from __future__ import annotations

import math
from pathlib import Path

from bench.harness import (
    CONTENDERS,
    EAGER,
    JAX,
    OPTAX,
    TORCH_COMPILE,
    TORCH_FUNC,
    TORCHJAX,
    TORCHJAX_JIT_MODEL,
    TORCHJAX_JIT_STEP,
    Result,
    Timing,
)

# (numerator, denominator): the ratios quoted, each with its geometric mean.
TRANSFORM_RATIOS = ((TORCH_FUNC, TORCHJAX), (TORCH_COMPILE, TORCHJAX), (TORCH_FUNC, JAX))
TRAINING_RATIOS = (
    (EAGER, TORCHJAX_JIT_STEP),
    (TORCH_COMPILE, TORCHJAX_JIT_STEP),
    (OPTAX, TORCHJAX_JIT_STEP),
    (EAGER, TORCHJAX_JIT_MODEL),
)
# The contenders whose first call, agreement and memory are shown beside each other (W1-W7).
PAIRED = (TORCHJAX, TORCH_COMPILE, JAX)


def ms(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.0f}" if x >= 1000 else f"{x:.3g}"


def _state(t: Timing | None) -> str | None:
    """What stands in a cell instead of a number: not run, failed, or nothing measured."""
    if t is None:
        return "—"
    if t.skipped is not None:
        return "not run"
    if t.error is not None:
        return "**failed**"
    return None


def spread(result: Result, name: str) -> str:
    t = result.timings.get(name)
    state = _state(t)
    if state is not None:
        return state
    return f"{ms(t.median)} ({ms(min(t.times_ms))}-{ms(max(t.times_ms))})" if t.times_ms else "—"


def ratio(result: Result, num: str, den: str) -> float | None:
    """``num``'s median over ``den``'s: above 1 means ``den`` is faster."""
    a, b = result.timings.get(num), result.timings.get(den)
    if a is None or b is None or a.median is None or b.median is None:
        return None
    return a.median / b.median


def _ratio_text(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}x"


def geomean(results: list[Result], num: str, den: str) -> tuple[float | None, int]:
    ratios = [r for r in (ratio(res, num, den) for res in results if res.case.in_geomean) if r is not None]
    return (math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else None), len(ratios)


def _diff(d: float) -> str:
    return f"{d:.1e}"


def _pair(result: Result, attr: str, fmt) -> str:
    cells = []
    for name in PAIRED:
        t = result.timings.get(name)
        value = None if t is None else getattr(t, attr)
        cells.append(fmt(value) if value is not None else (_state(t) or "—"))
    return " / ".join(cells)


def _transform_note(result: Result) -> str:
    t = result.timings.get(TORCH_COMPILE)
    breaks = f"torch.compile: {t.graph_breaks} graph break(s)" if t is not None and t.graph_breaks else ""
    return "; ".join(n for n in (result.note, breaks) if n)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def transform_table(results: list[Result]) -> str:
    paired = " / ".join(PAIRED)
    lines = [
        "| id | workload | "
        + " | ".join(f"{n} ms" for n in CONTENDERS)
        + " | "
        + " | ".join(f"{a} / {b}" for a, b in TRANSFORM_RATIOS)
        + f" | first call ms ({paired}) | max abs diff ({paired}) | note |",
        "|---" * (2 + len(CONTENDERS) + len(TRANSFORM_RATIOS) + 3) + "|",
    ]
    for res in results:
        cells = [
            res.case.id,
            res.case.title,
            *(spread(res, n) for n in CONTENDERS),
            *(_ratio_text(ratio(res, a, b)) for a, b in TRANSFORM_RATIOS),
            _pair(res, "first_ms", ms),
            _pair(res, "max_abs_diff", _diff),
            _transform_note(res),
        ]
        lines.append(_row(cells))
    return "\n".join(lines)


TRAINING_COLUMNS = (
    "id",
    "workload",
    "contender",
    "ms",
    f"{EAGER} / this",
    f"{TORCH_COMPILE} / this",
    "first call ms",
    f"loss max abs diff vs {EAGER}",
    "step peak RSS MB",
    "XLA memory_analysis MB",
    "note",
)


# Three float32 AdamW steps agree with eager's to ~1e-5 (float64 eager agrees to 1e-7); a
# larger gap means the contender computes something else, and its time is not comparable.
LOSS_TOLERANCE = 1e-3


def _training_note(t: Timing) -> str:
    if t.skipped is not None:
        return t.skipped
    if t.error is not None:
        return f"`{t.error}`"
    notes = []
    if t.max_abs_diff is not None and t.max_abs_diff > LOSS_TOLERANCE:
        notes.append(f"**losses disagree with {EAGER}'s (> {LOSS_TOLERANCE:g})**")
    if t.graphs is not None:
        notes.append(f"{t.graphs} graph(s), {t.graph_breaks} graph break(s)")
    return "; ".join(notes)


def training_rows(result: Result) -> list[str]:
    lines = []
    for name, t in result.timings.items():
        cells = [
            result.case.id,
            result.case.title,
            name,
            spread(result, name),
            _ratio_text(ratio(result, EAGER, name)),
            _ratio_text(ratio(result, TORCH_COMPILE, name)),
            ms(t.first_ms),
            "—" if t.max_abs_diff is None else _diff(t.max_abs_diff),
            "—" if t.peak_rss_mb is None else f"{t.peak_rss_mb:.3g}",
            t.xla_memory or "—",
            _training_note(t),
        ]
        lines.append(_row(cells))
    return lines


def training_table(results: list[Result]) -> str:
    lines = ["| " + " | ".join(TRAINING_COLUMNS) + " |", "|---" * len(TRAINING_COLUMNS) + "|"]
    for res in results:
        lines += training_rows(res)
    return "\n".join(lines)


def rows(result: Result) -> list[str]:
    """The table rows of one result (printed as each case finishes)."""
    if result.case.training:
        return training_rows(result)
    return transform_table([result]).splitlines()[2:]


def failures(results: list[Result]) -> list[str]:
    return [f"- {res.case.id} {name}: `{t.error}`" for res in results for name, t in res.timings.items() if t.error]


def not_run(results: list[Result]) -> list[str]:
    return [f"- {res.case.id} {name}: {t.skipped}" for res in results for name, t in res.timings.items() if t.skipped]


def _geomean_lines(results: list[Result], pairs, where: str) -> list[str]:
    lines = []
    for num, den in pairs:
        g, n = geomean(results, num, den)
        value = "—" if g is None else f"**{g:.2f}x**"
        lines += [f"Geometric mean of {num} / {den} over {n} cases of {where}: {value}", ""]
    return lines


def markdown(results: list[Result], header: dict[str, str], settings: str) -> str:
    transform = [res for res in results if not res.case.training]
    training = [res for res in results if res.case.training]
    lines = ["# Benchmarks", "", "Written by `make bench` (`python -m bench.run`); do not edit by hand.", ""]
    lines += [f"- **{k}**: {v}" for k, v in header.items()]
    lines += [f"- **timing**: {settings}", ""]
    if transform:
        lines += [transform_table(transform), ""]
        lines += _geomean_lines(transform, TRANSFORM_RATIOS, "W1-W6")
    if training:
        lines += ["## Training steps", "", training_table(training), ""]
        lines += _geomean_lines(training, TRAINING_RATIOS, "W8")
    failed, skipped = failures(results), not_run(results)
    if failed:
        lines += ["## Failures", "", *failed, ""]
    if skipped:
        lines += ["## Not run", "", *skipped, ""]
    lines += [
        "## How to read this",
        "",
        "- Times are medians over rounds in which the contenders ran interleaved, each once per "
        "round in a shuffled (seeded) order, after warm-up, with min-max in parentheses. The "
        "order changes because whoever runs right after torch.func pays page faults for the "
        "memory torch has just handed back to the OS. "
        "Calls shorter than 2 ms are timed in back-to-back batches (each call waited for) and a "
        "round's sample is the batch mean; longer calls are timed one by one.",
        "- A ratio `a / b` is a's median over b's, both from the same run: above 1 means b is faster.",
        "- torchjax is called with torch tensors, as a user calls it: crossing is part of its time. "
        "The hand-written JAX contender is called with `jax.Array`s under `jax.jit`.",
        "- torch.compile is the default mode (inductor) applied to the same torch.func call "
        "(`torch.compile(torch.func.vmap(torch.func.grad(loss)))`); a graph break, where it "
        "met one, is noted: the code around it runs eagerly.",
        "- First call = capture + trace + compile (XLA, or dynamo + inductor) + one run; it is not "
        "part of the medians. The header says whether torch.compile's on-disk caches were fresh.",
        "- Outputs of 16 MiB or more (W1's per-sample gradients, 302 MB) are written into a "
        "buffer the caller has dropped by torchjax, and into fresh memory, page faults included, "
        'by torch.func and by the hand-written JAX (README, "Large outputs reuse their buffers"). '
        "torchjax's extra compile for that happens during warm-up.",
        "- Max abs diff is against torch.func's result (W7: against the input tensor).",
        "- W7 has no torch.func contender; its `jax` column is the raw DLPack round trip.",
        "- W8 (training steps, AdamW lr 1e-3): every contender trains its own copy of the model "
        "from the same initial weights, on the same batches. `torch.compile` is "
        "`torch.compile(model)` with eager backward and optimizer; `torch.compile step` compiles "
        "the whole step; `torchjax.jit(model)` is back-propagated by torch autograd and stepped "
        "by `torch.optim`; `optax` is the step written by hand with `to_jax` + `optax.adamw` "
        "under `jax.jit` with the parameters and optimizer state donated.",
        "- W8 loss max abs diff: the losses of the first 3 steps (3 fixed batches, the first step "
        "being the first call) against eager's. The steps timed afterwards cycle through the same "
        f"3 batches. A gap above {LOSS_TOLERANCE:g} is flagged in the note: that contender "
        "computes something else, and its time does not compare.",
        "- W8 step peak RSS: the most resident memory one steady-state step adds while it runs "
        "(VmHWM, reset before the step, minus VmRSS before it), over 3 steps after timing. "
        "Memory an allocator kept from earlier steps and reuses does not show.",
        "- W8 XLA memory_analysis: XLA's sizes of the compiled step's temporaries, arguments, "
        "outputs and outputs aliased to (donated) arguments; `no accessor` where torchjax does "
        "not give access to the compiled executable.",
        "",
    ]
    return "\n".join(lines)


def chart(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ([res for res in results if res.case.in_geomean and not res.case.training], TRANSFORM_RATIOS),
        ([res for res in results if res.case.in_geomean and res.case.training], TRAINING_RATIOS),
    ]
    panels = [(rows_, pairs) for rows_, pairs in panels if rows_]
    heights = [0.3 * len(rows_) * len(pairs) + 1.2 for rows_, pairs in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, sum(heights)), height_ratios=heights, squeeze=False)
    for ax, (rows_, pairs) in zip(axes[:, 0], panels):
        height = 0.8 / len(pairs)
        for k, (num, den) in enumerate(pairs):
            values = [ratio(res, num, den) or 0.0 for res in rows_]
            offset = (k - (len(pairs) - 1) / 2) * height
            ax.barh([i + offset for i in range(len(rows_))], values, height, label=f"{num} / {den}")
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_yticks(range(len(rows_)), [f"{res.case.id} {res.case.title}" for res in rows_], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("median time ratio a / b, log scale (> 1: b is faster; 0: not measured)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
