"""Every OpInfo in torch's ``op_db`` through torchjax against torch: forward, grad, vmap.

forward: ``torchjax.jit(op)`` vs torch eager in float32, float64 and, where the op
declares them, int64, bool, bfloat16 and complex64. grad: ``torchjax.func.vjp`` vs
``torch.func.vjp`` (float32, ops that support autograd). vmap: ``torchjax.func.vmap``
vs ``torch.func.vmap`` (float32). Known failures are strict xfails listed in
``tests/known_failures.py``.
"""

from __future__ import annotations

import pytest
import torch

import torchjax.testing  # noqa: F401
from tests.known_failures import known_failure
from tests.opinfo_util import OPS, check_forward, check_grad, check_vmap

FORWARD_DTYPES = (torch.float32, torch.float64, torch.int64, torch.bool, torch.bfloat16, torch.complex64)
CHECKS = {"forward": check_forward, "grad": check_grad, "vmap": check_vmap}


def _params():
    params = []
    for name, op in sorted(OPS.items()):
        supported = op.supported_dtypes("cpu")
        wanted = [("forward", d) for d in FORWARD_DTYPES if d in supported]
        if torch.float32 in supported:
            if op.supports_autograd and torch.float32 in op.supported_backward_dtypes("cpu"):
                wanted.append(("grad", torch.float32))
            wanted.append(("vmap", torch.float32))
        for transform, dtype in wanted:
            reason = known_failure(name, transform, dtype)
            marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
            params.append(pytest.param(name, transform, dtype, id=f"{transform}-{name}-{str(dtype)[6:]}", marks=marks))
    return params


@pytest.mark.parametrize(("name", "transform", "dtype"), _params())
def test_op(name, transform, dtype):
    CHECKS[transform](OPS[name], dtype)
