"""The dispatcher's own behaviour: where errors point, its tables."""

from __future__ import annotations

import importlib.util
import textwrap

import pytest
import torch

import torchjax


def test_data_dependent_error_points_at_user_code_even_under_a_folder_named_jax(tmp_path):
    folder = tmp_path / "jax"
    folder.mkdir()
    source = folder / "user_model.py"
    source.write_text(
        textwrap.dedent(
            """
            def f(x):
                if x.sum() > 0:
                    return x
                return -x
            """
        )
    )
    spec = importlib.util.spec_from_file_location("user_model_under_jax", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(torchjax.TracingError) as info:
        torchjax.jit(module.f)(torch.ones(2))
    assert f'File "{source}", line 3, in f' in str(info.value)


def test_handler_and_rule_tables_refuse_duplicates_across_each_other():
    from torchjax._src import registry

    aten = torch.ops.aten
    with pytest.raises(ValueError, match="already has the rule"):
        registry.register_handler(aten.detach.default)(lambda func, args, kwargs: None)
    with pytest.raises(ValueError, match="already has the rule"):
        registry.register(aten.detach.default)(lambda x: x)
    assert registry.lookup_handler(aten.detach.default) is not None


def test_a_rule_registered_after_first_use_is_used():
    """Each overload's handler is chosen once and cached; a new registration resets the choice."""
    torch.library.define("tjdispatch::twice", "(Tensor x) -> Tensor")

    @torch.library.impl("tjdispatch::twice", "CompositeExplicitAutograd")
    def _(x):
        return 2 * x

    op = torch.ops.tjdispatch.twice.default
    f = torchjax.jit(lambda x: op(x))
    with pytest.raises(torchjax.UnsupportedOpError, match=r"tjdispatch\.twice"):
        f(torch.ones(2))

    @torchjax.register_op(op)
    def twice(x):
        return 3 * x  # not torch's value: shows the rule is the one used

    torch.testing.assert_close(torchjax.jit(lambda x: op(x))(torch.ones(2)), torch.full((2,), 3.0))
