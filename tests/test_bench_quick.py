"""The benchmark harness runs end to end on tiny sizes (``python -m bench.run --quick``).

Timings are never asserted: this only checks that every workload produces a row of
finite numbers (every training step a row per contender), a chart, that the reference
contenders never fail, and that every failure and every contender not run is reported.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ["W1", "W2", "W3a", "W3b", "W3c", "W4a", "W4b", "W5a", "W5b", "W6", "W7a", "W7b", "W7c", "W7d"]
TRAINING = ["W8a", "W8b", "W8c"]
# bench.harness's contender names, spelled out: the test must not pass because the harness renamed one.
TRANSFORM_CONTENDERS = ["torch.func", "torchjax", "torch.compile", "jax"]
TRAINING_CONTENDERS = [
    "eager",
    "torch.compile",
    "torch.compile step",
    "torchjax.jit(model)",
    "torchjax.jit(step)",
    "optax",
]
REFERENCES = {"torch.func", "jax", "eager", "optax"}  # never fail
# Their failures are findings to report, not bugs of the benchmark: torch.compile may not
# compile a workload (or find no C++ compiler).
MAY_FAIL = {"torch.compile", "torch.compile step"}
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*(?:e[-+]?\d+)?|nan|inf)", re.IGNORECASE)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp("bench") / "benchmarks.md"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out.read_text(), out


def table(markdown: str, first_column: str) -> list[dict[str, str]]:
    """The rows of the table whose header starts ``| id | workload | <first_column>``, by column name."""
    lines = iter(markdown.splitlines())
    for line in lines:
        if line.startswith(f"| id | workload | {first_column}"):
            header = [c.strip() for c in line.strip("|").split(" | ")]
            next(lines)  # |---|
            body = itertools.takewhile(lambda row: row.startswith("| W"), lines)
            return [dict(zip(header, (c.strip() for c in row.strip("|").split(" | ")))) for row in body]
    return []


def section(markdown: str, title: str) -> list[str]:
    text = markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0] if f"## {title}\n" in markdown else ""
    return [line for line in text.splitlines() if line.startswith("- W")]


def listed(lines: list[str]) -> dict[tuple[str, str], str]:
    """``- W8a torch.compile step: why`` lines as {(id, contender): why}."""
    entries = (re.match(r"- (W\w+) (.+?): (.*)", line) for line in lines)
    return {(m[1], m[2]): m[3] for m in entries if m}


def transform_rows(markdown: str) -> dict[str, dict[str, str]]:
    return {row["id"]: row for row in table(markdown, "torch.func ms")}


def training_rows(markdown: str) -> dict[tuple[str, str], dict[str, str]]:
    return {(row["id"], row["contender"]): row for row in table(markdown, "contender")}


def numbers(cells) -> list[float]:
    return [float(n) for cell in cells for n in NUMBER.findall(cell)]


def test_every_workload_has_a_row_of_finite_numbers(quick_run):
    markdown, _ = quick_run
    rows = transform_rows(markdown)
    assert sorted(rows) == sorted(WORKLOADS)
    for workload, row in rows.items():
        measured = [v for k, v in row.items() if k not in ("id", "workload", "note")]
        assert numbers(measured), workload
        assert all(math.isfinite(n) for n in numbers(measured)), (workload, row)


def test_every_training_step_has_a_row_per_contender(quick_run):
    markdown, _ = quick_run
    rows = training_rows(markdown)
    assert sorted(rows) == sorted((w, c) for w in TRAINING for c in TRAINING_CONTENDERS)
    for key, row in rows.items():
        measured = [v for k, v in row.items() if k not in ("id", "workload", "contender", "note")]
        assert all(math.isfinite(n) for n in numbers(measured)), (key, row)
        if key[1] in REFERENCES:
            assert numbers([row["ms"], row["first call ms"], row["loss max abs diff vs eager"]]), (key, row)
            assert row["step peak RSS MB"] != "—", (key, row)
        if key[1] == "optax":
            assert row["XLA memory_analysis MB"].startswith("temp "), row


def test_reference_contenders_never_fail(quick_run):
    markdown, _ = quick_run
    failures = listed(section(markdown, "Failures"))
    assert not [key for key in failures if key[1] in REFERENCES], failures
    # torchjax may still lack an op (the op tests track those); anything else is a bug
    bugs = {key: why for key, why in failures.items() if key[1] not in MAY_FAIL and "UnsupportedOpError" not in why}
    assert not bugs, bugs


def test_failures_and_contenders_not_run_are_reported(quick_run):
    markdown, _ = quick_run
    failures, not_run = listed(section(markdown, "Failures")), listed(section(markdown, "Not run"))
    cells = {(w, c): row[f"{c} ms"] for w, row in transform_rows(markdown).items() for c in TRANSFORM_CONTENDERS}
    cells.update({key: row["ms"] for key, row in training_rows(markdown).items()})
    assert {key for key, cell in cells.items() if cell == "**failed**"} == set(failures)
    assert {key for key, cell in cells.items() if cell == "not run"} == set(not_run)
    # torch.compile runs in quick mode on W6 and W8 (elsewhere its compile takes too long)
    assert ("W6", "torch.compile") not in not_run
    assert not [key for key in not_run if key[0] in TRAINING], not_run


def test_header_and_chart(quick_run):
    markdown, out = quick_run
    for field in ("machine", "torch threads", "XLA_FLAGS", "versions", "torch.compile caches", "Geometric mean"):
        assert field in markdown
    assert out.with_suffix(".png").stat().st_size > 1000
