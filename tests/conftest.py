import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


# TORCHJAX_RECORD=path: record each OpInfo test's outcome (and the first line of a
# failure) as JSON lines, for tools/update_known_failures.py and torchjax.coverage.
_RECORD = os.environ.get("TORCHJAX_RECORD")


def pytest_runtest_logreport(report):
    if not _RECORD or report.when != "call" or "test_op[" not in report.nodeid:
        return
    import json

    reason = ""
    if report.failed or hasattr(report, "wasxfail"):
        text = str(report.longrepr) if report.longrepr is not None else ""
        lines = [ln for ln in text.splitlines() if ln.startswith("E   ")]
        reason = lines[0][4:].strip() if lines else text.strip().splitlines()[-1] if text.strip() else ""
    status = "xfail" if hasattr(report, "wasxfail") else report.outcome
    if status == "failed" and "XPASS(strict)" in str(report.longrepr):
        status = "passed"  # listed as a known failure but passing: the table needs the entry removed
    with open(_RECORD, "a") as fh:
        fh.write(json.dumps({"id": report.nodeid.split("[", 1)[1][:-1], "status": status, "reason": reason}) + "\n")
