"""torchjax.from_jax: a JAX function as a torch callable, checked against the same function in torch."""

import jax
import jax.numpy as jnp
import pytest
import torch
from torch.func import grad, hessian, jacfwd, jacrev, jvp, vmap

import torchjax
from torchjax._src import from_jax as from_jax_module


def jax_layer(x, w, b):
    return jnp.tanh(x @ w + b)


def torch_layer(x, w, b):
    return torch.tanh(x @ w + b)


layer = torchjax.from_jax(jax_layer)


def _inputs(dtype=torch.float64, requires_grad=False):
    x = torch.randn(5, 4, dtype=dtype, requires_grad=requires_grad)
    w = torch.randn(4, 3, dtype=dtype, requires_grad=requires_grad)
    b = torch.randn(3, dtype=dtype, requires_grad=requires_grad)
    return x, w, b


# --------------------------------------------------------------------------- values and dtypes


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_and_dtypes(dtype):
    x, w, b = _inputs(dtype)
    out = layer(x, w, b)
    assert type(out) is torch.Tensor and out.dtype == dtype
    torch.testing.assert_close(out, torch_layer(x, w, b))
    assert not jax.config.jax_enable_x64  # x64 was scoped to the call


def test_int64_stays_int64():
    f = torchjax.from_jax(lambda i: i * 3_000_000_000)
    i = torch.arange(4, dtype=torch.int64)
    out = f(i)
    assert out.dtype == torch.int64
    assert torch.equal(out, i * 3_000_000_000)


def test_compiled_once_per_signature():
    traces = []

    def counted(x, w, b):
        traces.append(1)
        return jax_layer(x, w, b)

    f = torchjax.from_jax(counted)
    x, w, b = _inputs(requires_grad=True)
    for _ in range(3):
        f(x, w, b).sum().backward()
    with torch.no_grad():
        f(x, w, b)
    assert len(traces) == 2  # the output structure (shared with the forward's jit) and jax.vjp
    f(x[:2], w, b)
    assert len(traces) == 4  # a new shape is a new signature, traced anew


# --------------------------------------------------------------------------- torch autograd


def test_backward_matches_torch():
    x, w, b = _inputs(torch.float32, requires_grad=True)
    layer(x, w, b).pow(2).sum().backward()
    got = [t.grad for t in (x, w, b)]
    for t in (x, w, b):
        t.grad = None
    torch_layer(x, w, b).pow(2).sum().backward()
    for g, t in zip(got, (x, w, b)):
        torch.testing.assert_close(g, t.grad)


def test_gradcheck_and_gradgradcheck():
    x, w, b = _inputs(requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x, w, b))
    assert torch.autograd.gradgradcheck(layer, (x, w, b))


def test_complex_gradcheck():
    f = torchjax.from_jax(lambda z: (jnp.abs(z * z + 1j) + z * jnp.exp(z), jnp.real(z).sum()))
    z = torch.randn(3, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(f, (z,))
    assert torch.autograd.gradgradcheck(f, (z,))


def test_create_graph_double_backward_matches_torch():
    f = torchjax.from_jax(lambda x: jnp.sin(x) ** 3)
    x = torch.randn(4, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(f(x).sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.pow(2).sum(), x)
    (g_ref,) = torch.autograd.grad((torch.sin(x) ** 3).sum(), x, create_graph=True)
    (gg_ref,) = torch.autograd.grad(g_ref.pow(2).sum(), x)
    torch.testing.assert_close(g, g_ref)
    torch.testing.assert_close(gg, gg_ref)


def jax_tree_fn(inputs):
    x, s, n = inputs["x"], inputs["scale"], inputs["n"]
    return jnp.sin(x) * s, {"total": (x * n).sum(), "doubled": n * 2}


def torch_tree_fn(inputs):
    x, s, n = inputs["x"], inputs["scale"], inputs["n"]
    return torch.sin(x) * s, {"total": (x * n).sum(), "doubled": n * 2}


def test_pytree_inputs_and_outputs():
    f = torchjax.from_jax(jax_tree_fn)
    inputs = {
        "x": torch.randn(3, dtype=torch.float64, requires_grad=True),
        "scale": torch.randn(3, dtype=torch.float64, requires_grad=True),
        "n": torch.arange(3),
    }
    out = f(inputs)
    ref = torch_tree_fn(inputs)
    assert isinstance(out, tuple) and set(out[1]) == {"total", "doubled"}
    torch.testing.assert_close(out, ref)
    assert out[1]["doubled"].dtype == torch.int64 and not out[1]["doubled"].requires_grad

    float_leaves = [inputs["x"], inputs["scale"]]
    got = torch.autograd.grad(out[0].sum() + out[1]["total"], float_leaves, retain_graph=True)
    want = torch.autograd.grad(ref[0].sum() + ref[1]["total"], float_leaves)
    torch.testing.assert_close(got, want)

    # the backward itself, on cotangents of the outputs in JAX's flat order (dict keys sorted:
    # "doubled" before "total"): the int leaf's gradient is None
    one = torch.ones((), dtype=torch.float64)
    cotangents = (torch.ones(3, dtype=torch.float64), torch.zeros(3, dtype=torch.int64), one)
    _, _, gx, gscale, gn = out[0].grad_fn.apply(*cotangents)
    torch.testing.assert_close((gx, gscale), want)
    assert gn is None


def test_python_scalar_arguments_are_constants():
    f = torchjax.from_jax(lambda x, k: x * k)
    x = torch.ones(2)
    assert torch.equal(f(x, 3.0), torch.full((2,), 3.0))
    assert torch.equal(f(x, 2), torch.full((2,), 2.0))


# --------------------------------------------------------------------------- torch.func


def _loss(fn):
    return lambda x, w, b: fn(x, w, b).pow(2).sum()


def test_torch_func_vmap():
    x, w, b = _inputs()
    xs = torch.randn(6, 5, 4, dtype=torch.float64)
    torch.testing.assert_close(vmap(layer, (0, None, None))(xs, w, b), vmap(torch_layer, (0, None, None))(xs, w, b))
    # a batch dimension that is not the first, and nested vmaps
    xt = xs.permute(1, 2, 0)
    torch.testing.assert_close(
        vmap(vmap(layer, (0, None, None)), (2, None, None))(xt, w, b),
        vmap(vmap(torch_layer, (0, None, None)), (2, None, None))(xt, w, b),
    )
    # the int output and the pytree go through the batching rule too
    f = torchjax.from_jax(jax_tree_fn)
    n = torch.arange(3)
    got = vmap(lambda x: f({"x": x, "scale": x, "n": n}))(torch.randn(4, 3))
    assert got[1]["doubled"].shape == (4, 3) and got[1]["doubled"].dtype == torch.int64


def test_torch_func_grad():
    x, w, b = _inputs()
    torch.testing.assert_close(
        grad(_loss(layer), argnums=(0, 1, 2))(x, w, b), grad(_loss(torch_layer), argnums=(0, 1, 2))(x, w, b)
    )
    # per-example gradients: vmap over grad
    xs = torch.randn(3, 5, 4, dtype=torch.float64)
    torch.testing.assert_close(
        vmap(grad(_loss(layer), argnums=1), (0, None, None))(xs, w, b),
        vmap(grad(_loss(torch_layer), argnums=1), (0, None, None))(xs, w, b),
    )


def test_torch_func_jvp():
    x, w, b = _inputs()
    tangents = (torch.randn_like(x), torch.randn_like(w), torch.randn_like(b))
    torch.testing.assert_close(jvp(layer, (x, w, b), tangents), jvp(torch_layer, (x, w, b), tangents))
    # only one argument carries a tangent
    torch.testing.assert_close(
        jvp(lambda x: layer(x, w, b), (x,), (tangents[0],)), jvp(lambda x: torch_layer(x, w, b), (x,), (tangents[0],))
    )


def test_torch_func_jacrev_jacfwd():
    x, w, b = _inputs()
    torch.testing.assert_close(jacrev(layer, argnums=(0, 1))(x, w, b), jacrev(torch_layer, argnums=(0, 1))(x, w, b))
    torch.testing.assert_close(jacfwd(layer, argnums=(1, 2))(x, w, b), jacfwd(torch_layer, argnums=(1, 2))(x, w, b))


def test_torch_func_hessian():
    x, w, b = _inputs()
    torch.testing.assert_close(
        hessian(_loss(layer), argnums=2)(x, w, b), hessian(_loss(torch_layer), argnums=2)(x, w, b)
    )


def test_forward_mode_autograd():
    import torch.autograd.forward_ad as fwAD

    x, w, b = _inputs()
    t = torch.randn_like(w)
    with fwAD.dual_level():
        got = fwAD.unpack_dual(layer(x, fwAD.make_dual(w, t), b)).tangent
    torch.testing.assert_close(got, jvp(lambda w: torch_layer(x, w, b), (w,), (t,))[1])


# --------------------------------------------------------------------------- inside torchjax captures


@pytest.fixture
def no_crossing(monkeypatch):
    """Fails the test if from_jax crosses tensors (it must not, inside a capture)."""

    def crossed(*args):
        raise AssertionError("from_jax crossed to torch autograd inside a capture")

    monkeypatch.setattr(from_jax_module._KernelCall, "apply", crossed)


def test_torchjax_func_grad(no_crossing):
    x, w, b = _inputs()
    got = torchjax.func.grad(_loss(layer), argnums=(0, 1))(x, w, b)
    torch.testing.assert_close(got, grad(_loss(torch_layer), argnums=(0, 1))(x, w, b))


def test_torchjax_func_vmap(no_crossing):
    x, w, b = _inputs()
    xs = torch.randn(6, 5, 4, dtype=torch.float64)
    got = torchjax.func.vmap(lambda x: layer(x, w, b) * 2)(xs)
    torch.testing.assert_close(got, vmap(lambda x: torch_layer(x, w, b) * 2)(xs))


def test_torchjax_jit(no_crossing):
    x, w, b = _inputs(torch.float32)

    def torch_fn(x):
        return torch.relu(layer(x, w, b)).sum(-1)

    got = torchjax.jit(torch_fn)(x)
    torch.testing.assert_close(got, torch.relu(torch_layer(x, w, b)).sum(-1))


# --------------------------------------------------------------------------- memory layouts


def test_non_contiguous_inputs():
    f = torchjax.from_jax(lambda a, b: a * b + jnp.cos(a))
    a = torch.randn(4, 3, dtype=torch.float64).t().requires_grad_()  # transposed
    base = torch.randn(1, 4, dtype=torch.float64, requires_grad=True)
    b = base.expand(3, 4)  # stride 0
    assert not a.is_contiguous() and b.stride(0) == 0
    out = f(a, b)
    torch.testing.assert_close(out, a * b + torch.cos(a))
    out.sum().backward()  # the cotangent of .sum() is expanded too
    got = (a.grad, base.grad)
    a.grad = base.grad = None
    (a * b + torch.cos(a)).sum().backward()
    torch.testing.assert_close(got, (a.grad, base.grad))


# --------------------------------------------------------------------------- training


class JaxMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w1 = torch.nn.Parameter(torch.randn(4, 8) * 0.5)
        self.b1 = torch.nn.Parameter(torch.zeros(8))
        self.w2 = torch.nn.Parameter(torch.randn(8, 1) * 0.5)
        self.layer = torchjax.from_jax(lambda x, w, b: jax.nn.gelu(x @ w + b, approximate=False))

    def forward(self, x):
        return self.layer(x, self.w1, self.b1) @ self.w2


class TorchMLP(JaxMLP):
    def forward(self, x):
        return torch.nn.functional.gelu(x @ self.w1 + self.b1) @ self.w2


def test_training_matches_torch():
    jax_model = JaxMLP()
    torch_model = TorchMLP()
    torch_model.load_state_dict(jax_model.state_dict())
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    losses = {}
    for name, model in (("jax", jax_model), ("torch", torch_model)):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        losses[name] = []
        for _ in range(5):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            losses[name].append(loss.item())
    assert losses["jax"][-1] < losses["jax"][0]
    torch.testing.assert_close(losses["jax"], losses["torch"])
    for (name, p), q in zip(jax_model.named_parameters(), torch_model.parameters()):
        torch.testing.assert_close(p, q, msg=name)


# --------------------------------------------------------------------------- errors


def test_not_callable():
    with pytest.raises(TypeError, match=r"from_jax: expected a callable JAX function, got int"):
        torchjax.from_jax(3)


def test_non_array_output():
    f = torchjax.from_jax(lambda x: (x, "done"))
    with pytest.raises(TypeError, match=r"from_jax\(.*<lambda>\).*leaf of type str"):
        f(torch.ones(2))


def test_legacy_vmap_is_refused_clearly():
    f = torchjax.from_jax(lambda x: jnp.sin(x) ** 2)
    with pytest.raises(NotImplementedError, match="legacy vmap"):
        torch.autograd.functional.jacobian(f, torch.randn(3), vectorize=True)
    # the non-vectorized jacobian works
    x = torch.randn(3, dtype=torch.float64)
    torch.testing.assert_close(
        torch.autograd.functional.jacobian(f, x), torch.autograd.functional.jacobian(lambda x: torch.sin(x) ** 2, x)
    )
