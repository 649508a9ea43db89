"""Writes through views, under torchjax.jit, against torch eager.

torchjax gives every view the storage of its base; a write through a view must
change the base (and other views of it), and a write to an input must reach the
caller's tensor, as in torch.
"""

from __future__ import annotations

import pytest
import torch

import torchjax
from torchjax import TracingError


def _view_add(x):
    y = x.view(2, 6)
    y.add_(1)
    return x


def _slice_assign(x):
    x[1:3] = 0
    return x


def _transpose_select_mul(x):
    x.transpose(0, 1)[0].mul_(2)
    return x


def _select_assign(x):
    x[:, 0] = 5
    return x


def _stepped_slice_of_view(x):
    x.view(12)[::2].zero_()
    return x


def _diagonal_add(x):
    x.diagonal().add_(10)
    return x


def _split_mul(x):
    a, _ = x.split(2)
    a.mul_(3)
    return x


def _unbind_fill(x):
    x.unbind(1)[2].fill_(-1)
    return x


def _view_sees_base_write(x):
    row = x[0]
    x.add_(1)
    return row


def _narrow_copy_(x):
    x.narrow(1, 1, 2).copy_(torch.ones(3, 2))
    return x


def _squeeze_unsqueeze_sub(x):
    x.unsqueeze(0).squeeze(0)[1].sub_(1)
    return x


def _permute_zero(x):
    x.reshape(3, 2, 2).permute(2, 0, 1)[0].zero_()
    return x


def _as_strided_fill(x):
    x.as_strided((2, 2), (1, 4)).fill_(7)
    return x


def _mask_assign(x):
    x[x > 0] = 0
    return x


def _mask_assign_scalar_tensor(x):
    x[x < 0] = torch.tensor(3.0)
    return x


def _mask_accumulate(x):
    x.index_put_((x > 0,), torch.tensor(1.0), accumulate=True)
    return x


def _row_mask_assign(x):
    x[torch.tensor([True, False, True])] = torch.arange(8.0).view(2, 4)
    return x


def _index_add_inplace(x):
    x[torch.tensor([0, 2])] += 1
    return x


def _chained_views(x):
    x.t()[1:3].unsqueeze(0)[0, 1, ::2] = 42
    return x


CASES = [
    _view_add,
    _slice_assign,
    _transpose_select_mul,
    _select_assign,
    _stepped_slice_of_view,
    _diagonal_add,
    _split_mul,
    _unbind_fill,
    _view_sees_base_write,
    _narrow_copy_,
    _squeeze_unsqueeze_sub,
    _permute_zero,
    _as_strided_fill,
    _mask_assign,
    _mask_assign_scalar_tensor,
    _mask_accumulate,
    _row_mask_assign,
    _index_add_inplace,
    _chained_views,
]


@pytest.mark.parametrize("fn", CASES, ids=lambda f: f.__name__.lstrip("_"))
def test_write_through_view(fn):
    x = torch.randn(3, 4)
    expected_in = x.clone()
    expected = fn(expected_in)
    actual_in = x.clone()
    actual = torchjax.jit(fn)(actual_in)
    torch.testing.assert_close(actual, expected)
    # the caller's tensor sees the writes too
    torch.testing.assert_close(actual_in, expected_in)


def test_view_of_input_is_written_back():
    base = torch.zeros(4, 4)
    view = base[1:3]
    torchjax.jit(lambda v: v.add_(1))(view)
    expected = torch.zeros(4, 4)
    expected[1:3] = 1
    torch.testing.assert_close(base, expected)


@pytest.mark.parametrize(
    "fn",
    [lambda x: x[x > 0], lambda x: torch.nonzero(x), lambda x: x.masked_select(x > 0)],
    ids=["mask_getitem", "nonzero", "masked_select"],
)
def test_data_dependent_shape_is_a_clear_error(fn):
    with pytest.raises(TracingError, match="data-dependent output shape"):
        torchjax.jit(fn)(torch.randn(3, 4))


def test_nonzero_static_traces():
    x = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    out = torchjax.jit(lambda x: torch.nonzero_static(x, size=3))(x)
    torch.testing.assert_close(out, torch.nonzero_static(x, size=3))
