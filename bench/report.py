"""The results as a markdown table (``docs/benchmarks.md``) and a chart of the ratios."""

from __future__ import annotations

import math
from pathlib import Path

from bench.harness import CONTENDERS, JAX, TORCH_FUNC, TORCHJAX, Result


def ms(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.0f}" if x >= 1000 else f"{x:.3g}"


def spread(result: Result, name: str) -> str:
    t = result.timings.get(name)
    if t is None:
        return "—"
    if t.error is not None:
        return "**failed**"
    return f"{ms(t.median)} ({ms(min(t.times_ms))}-{ms(max(t.times_ms))})" if t.times_ms else "—"


def ratio(result: Result, name: str) -> float | None:
    """torch.func median over ``name``'s median: above 1 means ``name`` is faster."""
    ref, other = result.timings.get(TORCH_FUNC), result.timings.get(name)
    if ref is None or other is None or ref.median is None or other.median is None:
        return None
    return ref.median / other.median


def geomean(results: list[Result], name: str) -> tuple[float | None, int]:
    ratios = [r for r in (ratio(res, name) for res in results if res.case.in_geomean) if r is not None]
    return (math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else None), len(ratios)


def _pair(result: Result, attr: str, fmt) -> str:
    values = [getattr(result.timings[n], attr) if n in result.timings else None for n in (TORCHJAX, JAX)]
    return " / ".join("—" if v is None else fmt(v) for v in values)


def table(results: list[Result]) -> str:
    lines = [
        "| id | workload | torch.func ms | torchjax ms | jax ms | torch.func / torchjax | torch.func / jax "
        "| first call ms (torchjax / jax) | max abs diff (torchjax / jax) | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        ratios = [ratio(res, n) for n in (TORCHJAX, JAX)]
        cells = [
            res.case.id,
            res.case.title,
            *(spread(res, n) for n in CONTENDERS),
            *("—" if r is None else f"{r:.2f}x" for r in ratios),
            _pair(res, "first_ms", ms),
            _pair(res, "max_abs_diff", lambda d: f"{d:.1e}"),
            res.note,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def failures(results: list[Result]) -> list[str]:
    return [f"- {res.case.id} {name}: `{t.error}`" for res in results for name, t in res.timings.items() if t.error]


def markdown(results: list[Result], header: dict[str, str], settings: str) -> str:
    lines = ["# Benchmarks", "", "Written by `make bench` (`python -m bench.run`); do not edit by hand.", ""]
    lines += [f"- **{k}**: {v}" for k, v in header.items()]
    lines += [f"- **timing**: {settings}", "", table(results), ""]
    for name in (TORCHJAX, JAX):
        g, n = geomean(results, name)
        value = "—" if g is None else f"**{g:.2f}x**"
        lines.append(f"Geometric mean of torch.func / {name} over {n} cases of W1-W6: {value}")
        lines.append("")
    failed = failures(results)
    if failed:
        lines += ["## Failures", "", *failed, ""]
    lines += [
        "## How to read this",
        "",
        "- Times are medians over rounds in which the contenders ran interleaved, each once per "
        "round in a shuffled (seeded) order, after warm-up, with min-max in parentheses. The "
        "order changes because whoever runs right after torch.func pays page faults for the "
        "memory torch has just handed back to the OS. "
        "Calls shorter than 2 ms are timed in back-to-back batches (each call waited for) and a "
        "round's sample is the batch mean; longer calls are timed one by one.",
        "- A ratio above 1 means the contender is faster than torch.func in the same run.",
        "- torchjax is called with torch tensors, as a user calls it: crossing is part of its time. "
        "The hand-written JAX contender is called with `jax.Array`s under `jax.jit`.",
        "- First call = capture + trace + XLA compile + one run; it is not part of the medians.",
        "- Outputs of 16 MiB or more (W1's per-sample gradients, 302 MB) are written into a "
        "buffer the caller has dropped by torchjax, and into fresh memory, page faults included, "
        'by torch.func and by the hand-written JAX (README, "Large outputs reuse their buffers"). '
        "torchjax's extra compile for that happens during warm-up.",
        "- Max abs diff is against torch.func's result (W7: against the input tensor).",
        "- W7 has no torch.func contender; its `jax` column is the raw DLPack round trip.",
        "",
    ]
    return "\n".join(lines)


def chart(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [res for res in results if res.case.in_geomean]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.5))
    height = 0.38
    for offset, name in ((-height / 2, TORCHJAX), (height / 2, JAX)):
        values = [ratio(res, name) or 0.0 for res in rows]
        ax.barh([i + offset for i in range(len(rows))], values, height, label=f"torch.func / {name}")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)), [f"{res.case.id} {res.case.title}" for res in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("speed-up over torch.func (median time ratio, log scale; > 1 is faster)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
