"""torchjax.testing.compare and `python -m torchjax compare` (issue 16)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys

import jax
import pytest
import torch

import torchjax
from torchjax._src import registry
from torchjax._src.compare.cli import main, parse_input
from torchjax.testing import compare

transformers = pytest.importorskip("transformers")
gelu = torch.ops.aten.gelu.default


def tiny_gpt2():
    """Two blocks; `activation_function="gelu"` runs aten.gelu (GPT-2's default is Python code)."""
    transformers.logging.set_verbosity_error()
    cfg = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=32,
                                  activation_function="gelu", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                  use_cache=False, bos_token_id=0, eos_token_id=0)  # fmt: skip
    return transformers.GPT2LMHeadModel(cfg).eval()


def tiny_cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(inplace=True),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 16, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(16, 10),
    ).eval()  # fmt: skip


@contextlib.contextmanager
def rule(op, fn):
    """``fn`` as torchjax's rule for ``op`` inside the block; the original rule afterwards."""
    original = registry.lookup(op)
    torchjax.register_op(op, override=True)(fn)
    try:
        yield
    finally:
        torchjax.register_op(op, override=True)(original)


def gelu_off_by_1e3(x, approximate="none"):
    return jax.nn.gelu(x, approximate=approximate == "tanh") * (1 + 1e-3)


@jax.custom_jvp
def _gelu_bad_derivative(x):
    return jax.nn.gelu(x, approximate=False)


@_gelu_bad_derivative.defjvp
def _gelu_bad_derivative_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    y, dy = jax.jvp(lambda v: jax.nn.gelu(v, approximate=False), (x,), (t,))
    return y, dy * (1 + 1e-3)


def gelu_bad_derivative(x, approximate="none"):
    return _gelu_bad_derivative(x)


@pytest.fixture(scope="module")
def gpt2():
    torch.manual_seed(0)
    return tiny_gpt2(), torch.randint(0, 100, (2, 8))


# --- the wrong rule is found ------------------------------------------------------------


@pytest.mark.parametrize("transforms", [("forward",), ("grad",)])
def test_module_granularity_names_the_module_with_the_wrong_rule(gpt2, transforms):
    model, ids = gpt2
    with rule(gelu, gelu_off_by_1e3):
        report = compare(model, ids, transforms=transforms)
    first = report.first_divergence
    assert (first.transform, first.name, first.op) == (transforms[0], "transformer.h.0.mlp.act", "GELUActivation")
    assert first.kind == "output" and first.score > 10
    # everything before it agrees: the divergence starts there
    assert all(e.ok for e in report.entries[: report.entries.index(first)])
    with pytest.raises(AssertionError, match=r"transformer\.h\.0\.mlp\.act"):
        report.assert_ok()


@pytest.mark.parametrize("transforms", [("forward",), ("grad",)])
def test_op_granularity_names_the_op_and_where_it_ran(gpt2, transforms):
    model, ids = gpt2
    with rule(gelu, gelu_off_by_1e3):
        report = compare(model, ids, transforms=transforms, granularity="op")
    first = report.first_divergence
    assert first.op == "aten.gelu.default"
    # forward runs h.0 first; the backward meets h.1 first
    block = "0" if transforms == ("forward",) else "1"
    assert first.name == f"transformer.h.{block}.mlp.act::gelu"
    # each op is fed torch's inputs: only the gelu entries fail
    assert {e.op for e in report.failures} == {"aten.gelu.default"}


def test_a_wrong_derivative_shows_as_the_gradient_of_that_modules_input(gpt2):
    model, ids = gpt2
    with rule(gelu, gelu_bad_derivative):
        report = compare(model, ids, transforms=("forward", "grad"))
    first = report.first_divergence
    assert all(e.ok for e in report.entries if e.kind == "output")  # forward values are right
    assert (first.transform, first.name, first.kind) == ("grad", "transformer.h.1.mlp.act", "grad_input")


def test_isolate_feeds_each_module_torchs_inputs(gpt2):
    model, ids = gpt2
    with rule(gelu, gelu_off_by_1e3):
        report = compare(model, ids, isolate=True)
    assert report.first_divergence.name == "transformer.h.0.mlp.act"
    failed = {e.name for e in report.failures}
    # only the GELUs and the modules containing them; the projections after them are fed torch's values
    assert "transformer.h.0.mlp.c_proj" not in failed and "transformer.h.1.attn" not in failed
    assert {"transformer.h.0.mlp.act", "transformer.h.1.mlp.act"} <= failed


def test_the_original_rule_is_back(gpt2):
    model, ids = gpt2
    compare(model, ids, granularity="op").assert_ok()


# --- clean models are not flagged -------------------------------------------------------


def test_clean_gpt2_reports_no_divergence(gpt2):
    model, ids = gpt2
    report = compare(model, ids, transforms=("forward", "grad"))
    report.assert_ok()
    names = [e.name for e in report.entries if e.transform == "forward"]
    assert names[0] == "transformer.wte" and names[-1] == "<root>"
    assert {"transformer.wte.weight", "transformer.h.1.mlp.c_fc.bias"} <= {
        e.name for e in report.entries if e.kind == "grad"
    }
    assert all(e.torch_err is not None and e.torchjax_err is not None for e in report.entries if e.dtype == "float32")


def test_clean_cnn_reports_no_divergence_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model, x = tiny_cnn(), torch.randn(2, 3, 12, 12)
    compare(model, x, transforms=("forward", "grad")).assert_ok()
    compare(model, x, granularity="op", transforms=("forward", "grad")).assert_ok()
    model.train()
    stats = model[1].running_mean.clone()
    compare(model, x, isolate=True).assert_ok()
    assert torch.equal(model[1].running_mean, stats)


def test_summation_order_alone_is_not_flagged():
    torch.manual_seed(0)
    x = torch.randn(256, 4096) + 0.1
    f = lambda x: x.sum(1)
    assert not torch.equal(f(x), torchjax.jit(f)(x))  # they do differ, by summation order
    assert not compare(f, x, reference=None, rtol=0.0, atol=0.0).ok  # a bitwise check would flag it
    report = compare(f, x)
    report.assert_ok()
    (entry,) = report.entries
    assert entry.max_ulp > 0 and entry.torch_err > 0


def test_function_transforms_against_torch_func():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    report = compare(model, torch.randn(5, 4), transforms=("vjp", "jvp", "jacrev", "jacfwd", "hessian", "vmap(grad)"))
    report.assert_ok()
    by = {e.transform: e for e in report.entries}
    assert by["jacrev"].shape == (5, 3, 5, 4) and by["hessian"].shape == (5, 4, 5, 4)
    assert {e.shape for e in report.entries if e.transform == "vmap(grad)"} == {(5, 8, 4), (5, 8), (5, 3, 8), (5, 3)}
    with rule(torch.ops.aten.tanh.default, lambda x: jax.numpy.tanh(x) * (1 + 1e-3)):
        bad = compare(model, torch.randn(5, 4), transforms=("jacrev", "vmap(grad)"))
    assert {e.transform for e in bad.failures} == {"jacrev", "vmap(grad)"}


# --- the report ---------------------------------------------------------------------------


def test_entry_columns_table_and_json_are_stable(tmp_path, gpt2):
    model, ids = gpt2
    with rule(gelu, gelu_off_by_1e3):
        reports = [compare(model, ids) for _ in range(2)]
    reports[0].to_json(tmp_path / "a.json")
    reports[1].to_json(tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["first_divergence"] == {"transform": "forward", "name": "transformer.h.0.mlp.act", "kind": "output"}
    entry = data["entries"][0]
    assert {
        "name",
        "op",
        "shape",
        "dtype",
        "max_abs",
        "max_rel",
        "max_ulp",
        "cosine",
        "torch_err",
        "torchjax_err",
        "ok",
    } <= set(entry)
    table = reports[0].table()
    lines = table.splitlines()
    assert lines[2].startswith("FAIL") and len({len(line) for line in lines[:2]}) == 1  # worst first, aligned
    assert "first divergence: forward transformer.h.0.mlp.act (GELUActivation)" in lines[-1]


def test_ulp_and_cosine_columns():
    from torchjax._src.compare.metrics import measure, ulp_distance

    one = torch.tensor([1.0, -1.0, 0.0])
    nxt = torch.nextafter(one, torch.tensor(2.0))
    assert ulp_distance(nxt, one) == 1
    assert ulp_distance(torch.tensor([-0.0]), torch.tensor([0.0])) == 0
    assert ulp_distance(torch.tensor([-1e-45]), torch.tensor([1e-45])) == 2  # across zero
    e = measure("forward", "x", "output", "op", -one, one, None, rtol=None, atol=None)
    assert e.cosine == pytest.approx(-1.0) and not e.ok


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown transform 'gradd'"):
        compare(torch.sin, torch.ones(2), transforms="gradd")
    with pytest.raises(ValueError, match="granularity"):
        compare(torch.sin, torch.ones(2), granularity="layer")


# --- the command line ---------------------------------------------------------------------


def test_parse_input_is_not_eval():
    assert parse_input("randn(8,3,4,4)").shape == (8, 3, 4, 4)
    assert parse_input("randint(0,100,(2,16))").dtype == torch.int64
    for text in ["__import__('os').system('true')", "randn(n)", "randn(2, dtype=1)", "torch.randn(2)", "randn(2"]:
        with pytest.raises(ValueError, match="--input"):
            parse_input(text)


def test_cli_exit_code_and_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    args = ["compare", "tests.test_compare:tiny_gpt2", "--input", "randint(0,100,(2,8))", "--json", str(out)]
    assert main([*args, "--transform", "forward", "--transform", "grad"]) == 0
    assert "0 diverge" in capsys.readouterr().out
    with rule(gelu, gelu_off_by_1e3):
        assert main([*args, "--granularity", "op", "--limit", "3"]) == 1
    printed = capsys.readouterr().out
    assert "FAIL" in printed and "first divergence: forward transformer.h.0.mlp.act::gelu" in printed
    assert json.loads(out.read_text())["ok"] is False


def test_python_dash_m_torchjax_compare():
    run = subprocess.run(
        [sys.executable, "-m", "torchjax", "compare", "tests.test_compare:tiny_cnn", "--input", "randn(2,3,12,12)"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 diverge" in run.stdout


# --- functions ------------------------------------------------------------------------------

_mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh())
_weight = torch.randn(4, 3)


def _loss(x, t, scale=2.0):
    return ((_mlp(x) - t) ** 2).mean() * scale


def test_a_function_and_the_modules_it_reads_by_name():
    x, t = torch.randn(3, 4), torch.randn(3, 8)
    report = compare(_loss, x, t, transforms=("forward", "grad"), scale=3.0)
    report.assert_ok()
    names = {(e.transform, e.name, e.kind) for e in report.entries}
    assert {("forward", "_mlp.0", "output"), ("forward", "_loss", "output")} <= names
    assert {("grad", "_mlp.0.weight", "grad"), ("grad", "_loss[in0]", "grad_input")} <= names
    compare(_loss, x, t, transforms=("forward", "grad"), granularity="op", progress=True).assert_ok()


def test_without_a_float64_run_it_warns_and_uses_tolerances():
    f = lambda x: x @ _weight  # a float32 tensor the float64 run cannot convert
    with pytest.warns(RuntimeWarning, match="float64 reference run failed"):
        report = compare(f, torch.randn(5, 4))
    report.assert_ok()
    assert report.entries[0].torch_err is None
