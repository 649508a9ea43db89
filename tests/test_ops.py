"""Every OpInfo in torch's ``op_db``, forward, through torchjax.jit against torch eager."""

from __future__ import annotations

import pytest
import torch

import torchjax.testing  # noqa: F401
from tests.known_failures import known_failure
from tests.opinfo_util import OPS, check_forward

FORWARD_DTYPES = (torch.float32, torch.float64, torch.int64, torch.bool, torch.bfloat16)


def _params(transform):
    params = []
    for name, op in sorted(OPS.items()):
        supported = op.supported_dtypes("cpu")
        for dtype in FORWARD_DTYPES:
            if dtype not in supported:
                continue
            marks = []
            reason = known_failure(name, transform, dtype)
            if reason is not None:
                marks.append(pytest.mark.xfail(reason=reason, strict=True))
            params.append(pytest.param(name, dtype, id=f"{name}-{str(dtype)[6:]}", marks=marks))
    return params


@pytest.mark.parametrize(("name", "dtype"), _params("forward"))
def test_forward(name, dtype):
    op = OPS[name]
    checked = check_forward(op, dtype)
    assert checked >= 0
