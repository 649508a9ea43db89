"""Run the benchmarks: ``python -m bench.run [--quick] [--only W1,W5] [--out docs/benchmarks.md]``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench import machine

FULL = dict(warmup=2, min_repeats=9, max_repeats=200, budget_s=3.0)
QUICK = dict(warmup=1, min_repeats=3, max_repeats=3, budget_s=0.0)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--quick", action="store_true", help="tiny sizes and few repeats: a smoke run")
    p.add_argument("--only", default="", help="comma-separated workload ids or prefixes (W1,W5)")
    p.add_argument("--threads", type=int, default=1, help="torch and XLA threads (default 1)")
    p.add_argument("--out", type=Path, help="markdown output; the chart goes beside it as .png "
                   "(default docs/benchmarks.md, none with --quick)")  # fmt: skip
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # Quick mode keeps torch.compile's default caches: a smoke run need not pay cold compiles.
    caches = "default cache directory (may be warm)" if args.quick else machine.fresh_compile_caches()
    machine.pin_threads(args.threads)  # before anything imports jax
    import torch

    from bench import harness, report
    from bench.workloads import ALL

    torch.manual_seed(0)
    header = {**machine.describe(), "torch.compile caches": caches}
    for k, v in header.items():
        print(f"{k}: {v}", flush=True)
    settings = QUICK if args.quick else FULL
    only = [w.strip() for w in args.only.split(",") if w.strip()]
    results = []
    for module in ALL:
        workload = module.__name__.rsplit(".", 1)[-1].split("_")[0].upper()  # w1_per_sample_grads -> W1
        if only and not any(w.startswith(workload) or workload.startswith(w) for w in only):
            continue
        try:
            cases = module.cases(args.quick)
        except Exception as exc:  # report the workload as failed and go on with the others
            title = module.__doc__.splitlines()[0]
            results.append(
                harness.build_failure(workload, title, exc, getattr(module, "CONTENDERS", harness.CONTENDERS))
            )
            continue
        for case in cases:
            if only and not any(case.id.startswith(w) for w in only):
                continue
            start = time.perf_counter()
            results.append(harness.measure(case, **settings))
            print(f"{case.id} done in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
            print("\n".join(report.rows(results[-1])), flush=True)
    described = f"{'quick' if args.quick else 'full'} mode, " + ", ".join(f"{k}={v}" for k, v in settings.items())
    text = report.markdown(results, header, described)
    print("\n" + text)
    out = args.out or (None if args.quick else Path("docs/benchmarks.md"))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        report.chart(results, out.with_suffix(".png"))
        print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
