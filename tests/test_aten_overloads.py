"""``aten(...)``, the rule modules' way to name overloads, refuses names torch does not have."""

from __future__ import annotations

import pytest
import torch

from torchjax._src.registry import aten, aten_optional


def test_aten_names_the_overloads():
    assert aten("add", "Tensor", "Scalar") == [torch.ops.aten.add.Tensor, torch.ops.aten.add.Scalar]
    assert aten("relu") == [torch.ops.aten.relu.default]


def test_unknown_overload_raises_naming_packet_missing_and_existing():
    with pytest.raises(ValueError) as info:
        aten("add", "Tensor", "Tensr")
    message = str(info.value)
    assert "aten.add" in message and "'Tensr'" in message
    assert "'Tensor'" in message and "'Scalar'" in message  # the ones that exist
    assert "aten_optional" in message  # what to do for an overload of newer torch releases


def test_optional_overload_of_this_release_is_checked_like_aten():
    assert aten_optional("mm", "dtype", since="2.8") == [torch.ops.aten.mm.dtype]
    with pytest.raises(ValueError, match="'dtyp'"):
        aten_optional("mm", "dtyp", since="2.0")


def test_optional_overload_of_a_later_release_is_left_out():
    # as on a torch older than ``since``: what this build lacks is dropped, what it has kept
    assert aten_optional("mm", "dtype", "from_the_future", since="99.0") == [torch.ops.aten.mm.dtype]
