"""Rewrite tests/known_failures.py from a recorded OpInfo run.

    TORCHJAX_RECORD=/tmp/ops.jsonl python -m pytest tests/test_ops.py -n 2 -q
    python tools/update_known_failures.py /tmp/ops.jsonl [/tmp/rerun.jsonl ...]

Failing tests become entries (reason: the first line of the error); tests that were
xfail keep their existing reason; passing tests drop out of the table.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.known_failures import KNOWN

DTYPES = {"float32", "float64", "int64", "bool", "bfloat16", "complex64"}


def _parse(test_id: str) -> tuple[str, str, str]:
    transform, rest = test_id.split("-", 1)
    name, dtype = rest.rsplit("-", 1)
    return name, transform, dtype


def _clean(reason: str) -> str:
    reason = re.sub(r"0x[0-9a-f]+", "0x…", reason)
    reason = reason.replace('"', "'")
    return (reason[:150] + "…") if len(reason) > 150 else reason


def _records(paths: list[str]) -> dict[str, dict]:
    """Records by test id; a later file overrides an earlier one (a partial re-run)."""
    out: dict[str, dict] = {}
    for path in paths:
        for line in Path(path).read_text().splitlines():
            rec = json.loads(line)
            if rec["status"] == "failed" and "XPASS(strict)" in rec["reason"]:
                rec["status"] = "passed"
            out[rec["id"]] = rec
    return out


def main(paths: list[str]) -> None:
    existing = {(n, t, str(d)[6:] if d is not None else None): r for (n, t, d), r in KNOWN.items()}
    entries: dict[tuple[str, str, str], str] = {}
    for rec in _records(paths).values():
        name, transform, dtype = _parse(rec["id"])
        if rec["status"] == "failed":
            entries[(name, transform, dtype)] = _clean(rec["reason"]) or "fails"
        elif rec["status"] == "xfail":
            entries[(name, transform, dtype)] = existing.get((name, transform, dtype)) or existing.get(
                (name, transform, None), _clean(rec["reason"])
            )
    out = [
        '"""Known failures of the OpInfo suite: (op id, transform, dtype or None) -> reason.',
        "",
        "Each entry is a strict xfail: an entry that starts passing fails the run until it is",
        "removed. Regenerate with tools/update_known_failures.py after a recorded run.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import torch",
        "",
        "KNOWN: dict[tuple[str, str, torch.dtype | None], str] = {",
    ]
    for (name, transform, dtype), reason in sorted(entries.items()):
        out.append(f'    ("{name}", "{transform}", torch.{dtype}): "{reason}",')
    out += [
        "}",
        "",
        "",
        "def known_failure(name: str, transform: str, dtype: torch.dtype) -> str | None:",
        "    return KNOWN.get((name, transform, dtype)) or KNOWN.get((name, transform, None))",
        "",
    ]
    Path(__file__).resolve().parents[1].joinpath("tests", "known_failures.py").write_text("\n".join(out))
    print(f"{len(entries)} known failures written")


if __name__ == "__main__":
    main(sys.argv[1:])
