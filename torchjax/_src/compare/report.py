"""``Report``: the entries of one comparison, in execution order, and their views."""

from __future__ import annotations

import dataclasses
import json
import math
import os

from .metrics import FACTOR, Entry

_COLUMNS = [
    ("", "ok"),
    ("transform", "transform"),
    ("name", "name"),
    ("op", "op"),
    ("shape", "shape"),
    ("dtype", "dtype"),
    ("max abs", "max_abs"),
    ("max rel", "max_rel"),
    ("ULP", "max_ulp"),
    ("cosine", "cosine"),
    ("torch err", "torch_err"),
    ("torchjax err", "torchjax_err"),
    ("score", "score"),
]


def _num(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "-"
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}e}"


def _cell(entry: Entry, field: str) -> str:
    value = getattr(entry, field)
    if field == "ok":
        return "ok" if value else "FAIL"
    if field == "shape":
        return "(" + ",".join(map(str, value)) + ")"
    if field == "max_ulp":
        return (
            "-" if value is None else ("inf" if math.isinf(value) else "nan" if math.isnan(value) else f"{value:.0f}")
        )
    if field == "cosine":
        return "nan" if math.isnan(value) else f"{value:.9f}"
    if field == "name":
        return value + (f" {entry.kind}" if entry.kind not in ("output", "op") else "")
    if isinstance(value, float) or value is None:
        return _num(value)
    return str(value)


def _json_value(x):
    """Floats with a fixed number of significant digits, so the same run writes the same file."""
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return float(f"{x:.6e}")
    if isinstance(x, tuple):
        return list(x)
    return x


@dataclasses.dataclass
class Report:
    """What :func:`torchjax.testing.compare` found.

    ``entries`` are in execution order (transform by transform, as given); within a
    gradient transform the forward values come first, then the gradients in the order
    the backward pass computes them. ``reference`` says what the errors are measured
    against ("float64" or None).
    """

    entries: list[Entry]
    reference: str | None = None
    granularity: str = "module"
    transforms: tuple[str, ...] = ("forward",)

    @property
    def ok(self) -> bool:
        """True when no entry failed."""
        return all(e.ok for e in self.entries)

    @property
    def failures(self) -> list[Entry]:
        """The failed entries, in execution order."""
        return [e for e in self.entries if not e.ok]

    @property
    def first_divergence(self) -> Entry | None:
        """The first failed entry in execution order (None when all agree): where to look."""
        return next((e for e in self.entries if not e.ok), None)

    def worst_first(self) -> list[Entry]:
        """The entries sorted by score, highest (worst) first; ties keep execution order."""
        order = {id(e): i for i, e in enumerate(self.entries)}
        return sorted(self.entries, key=lambda e: (e.ok, -_finite(e.score), order[id(e)]))

    def table(self, limit: int | None = None) -> str:
        """The entries as aligned text, worst first, with a summary line.

        ``score`` is torchjax's error over the error it is allowed (``> 1`` fails); with
        ``reference="float64"`` that allowance is ``FACTOR`` times torch's own error
        against float64 (see ``torchjax._src.compare.metrics``).
        """
        rows = self.worst_first()
        shown = rows if limit is None else rows[:limit]
        cells = [[h for h, _ in _COLUMNS]] + [[_cell(e, f) for _, f in _COLUMNS] for e in shown]
        widths = [max(len(r[i]) for r in cells) for i in range(len(_COLUMNS))]
        right = {f for _, f in _COLUMNS if f not in ("ok", "transform", "name", "op", "shape", "dtype")}

        def line(row):
            parts = [c.rjust(w) if f in right else c.ljust(w) for c, w, (_, f) in zip(row, widths, _COLUMNS)]
            return "  ".join(parts).rstrip()

        out = [line(cells[0]), "  ".join("-" * w for w in widths)]
        out += [line(r) for r in cells[1:]]
        if len(shown) < len(rows):
            out.append(f"... {len(rows) - len(shown)} more entries")
        out.append(self.summary())
        return "\n".join(out)

    def summary(self) -> str:
        """One line: how many entries, how many failed, and the first divergence."""
        against = (
            f"flagged where torchjax's error vs float64 > {FACTOR:g}x torch's"
            if self.reference
            else "torch.testing tolerances"
        )
        first = self.first_divergence
        where = f"; first divergence: {first.transform} {first.name} ({first.op})" if first else ""
        notes = [e for e in self.entries if e.note and e.ok]
        extra = f"; {len(notes)} with notes" if notes else ""
        return (
            f"{len(self.entries)} entries, {len(self.failures)} diverge ({self.granularity} granularity, "
            f"{against}){where}{extra}"
        )

    def to_dict(self) -> dict:
        """The report as plain data (what :meth:`to_json` writes)."""
        first = self.first_divergence
        return {
            "reference": self.reference,
            "granularity": self.granularity,
            "transforms": list(self.transforms),
            "ok": self.ok,
            "first_divergence": None
            if first is None
            else {"transform": first.transform, "name": first.name, "kind": first.kind},
            "entries": [{k: _json_value(v) for k, v in dataclasses.asdict(e).items()} for e in self.entries],
        }

    def to_json(self, path: str | os.PathLike) -> None:
        """Write the report as JSON: sorted keys, fixed float precision, no timestamps,
        so the same run writes the same bytes."""
        with open(path, "w") as fh:
            json.dump(self.to_dict(), fh, sort_keys=True, indent=1)
            fh.write("\n")

    def assert_ok(self) -> None:
        """Raise ``AssertionError`` with the table when any entry diverges."""
        if not self.ok:
            raise AssertionError("torch and torchjax diverge:\n" + self.table())

    def __str__(self) -> str:
        return self.table()


def _finite(x: float) -> float:
    return 1e308 if math.isinf(x) or math.isnan(x) else x
