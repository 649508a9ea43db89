"""torch.func's argument and output validation, and vmap of the functions vjp and linearize return.

Every error case runs torch.func and torchjax.func side by side: the same exception class,
torch.func's own wording in torchjax's message, and torchjax's message starting with the
call as the user wrote it.
"""

from __future__ import annotations

import collections
import re

import pytest
import torch
import torch.func as tf

import torchjax.func as jf
from torchjax._src.transforms import autodiff

x = torch.randn(3)
X = torch.randn(4, 3)
ints = torch.arange(3)
cplx = torch.randn(3, dtype=torch.complex64)

NT = collections.namedtuple("NT", "a b")

GRAD1 = "grad(<lambda>, argnums=1)(<inputs>): "
GRAD0 = "grad(<lambda>, argnums=0)(<inputs>): "
GV0 = "grad_and_value(<lambda>, argnums=0)(<inputs>): "
VJP = "vjp(<lambda>, *primals): "
JVP = "jvp(<lambda>, primals, tangents): "
JACREV0 = "jacrev(<lambda>, argnums=0)(<inputs>): "
JACFWD0 = "jacfwd(<lambda>, argnums=0)(<inputs>): "
LIN = "linearize(<lambda>, *primals)"
VMAP = "vmap(<lambda>, in_dims=0, ...)(<inputs>): "

NOT_TENSOR = "Thing passed to transform API must be Tensor, got <class '{}'>"
NOT_FLOAT = "only Tensors of floating point dtype can require gradients"
AUX_NOT_TENSOR = "Expected tensors, got unsupported type <class '{}'>"
OUT_NOT_TENSOR = "expected f(*primals) to return only tensors, got unsupported type <class '{}'>"
AUX_STRUCTURE = "output of function f should be a tuple: (output, aux) if has_aux is True"
INT_OUTPUT = "All outputs of f must be floating-point or complex Tensors, got Tensor with dtype torch.int64"
ARGNUMS_TYPE = "argnums must be int or Tuple[int, ...], got: <class '{}'>"
DIFFERENT_INPLACE = "Cannot ask for different inplace randomness on an unbatched tensor"


def _vmap_normal_into_captured(api):
    y = torch.zeros(3)
    return api.vmap(lambda v: v + y.normal_(), randomness="different")(X)


# name -> (call under api, torch.func's key phrase, torchjax's message prefix)
CASES = {
    # non-tensors where a transform differentiates
    "grad non-tensor at argnums": (
        lambda api: api.grad(lambda a, n: (a * n).sum(), argnums=1)(x, 2.0),
        NOT_TENSOR.format("float"),
        GRAD1,
    ),
    "grad None inside the differentiated pytree": (
        lambda api: api.grad(lambda d: d["a"].sum())({"a": x, "b": None}),
        NOT_TENSOR.format("NoneType"),
        GRAD0,
    ),
    "grad_and_value non-tensor in argnums tuple": (
        lambda api: api.grad_and_value(lambda a, n: (a * n).sum(), argnums=(0, 1))(x, 2.0),
        NOT_TENSOR.format("float"),
        "grad_and_value(<lambda>, argnums=(0, 1))(<inputs>): ",
    ),
    "jacrev non-tensor at argnums": (
        lambda api: api.jacrev(lambda a, n: a * n, argnums=1)(x, 2.0),
        NOT_TENSOR.format("float"),
        "jacrev(<lambda>, argnums=1)(<inputs>): ",
    ),
    "jacfwd non-tensor at argnums": (
        lambda api: api.jacfwd(lambda a, n: a * n, argnums=1)(x, 2.0),
        "'float' object has no attribute 'numel'",
        "jacfwd(<lambda>, argnums=1)(<inputs>): ",
    ),
    "jacfwd non-tensor inside the differentiated pytree": (
        lambda api: api.jacfwd(lambda d: d["a"] * 2)({"a": x, "b": 1.0}),
        "'float' object has no attribute 'numel'",
        JACFWD0,
    ),
    "hessian non-tensor at argnums": (
        lambda api: api.hessian(lambda a, n: (a * n).sum(), argnums=1)(x, 2.0),
        "'float' object has no attribute 'numel'",
        "jacfwd(<lambda>, argnums=1)(<inputs>): ",
    ),
    "vjp non-tensor primal": (lambda api: api.vjp(lambda a, n: a * n, x, 2.0), NOT_TENSOR.format("float"), VJP),
    "vjp None primal": (lambda api: api.vjp(lambda a, n: a, x, None), NOT_TENSOR.format("NoneType"), VJP),
    "vjp non-tensor inside a primal pytree": (
        lambda api: api.vjp(lambda d: d["a"] * 2, {"a": x, "b": 1}),
        NOT_TENSOR.format("int"),
        VJP,
    ),
    "jvp non-tensor primal": (
        lambda api: api.jvp(lambda a, n: a * n, (x, 2.0), (x, 1.0)),
        "Expected primals to only contain Tensors, got <class 'float'>",
        JVP,
    ),
    "jvp non-tensor tangent": (
        lambda api: api.jvp(lambda a: a * 2, (x,), (1.0,)),
        "Expected tangents to only contain Tensors, got <class 'float'>",
        JVP,
    ),
    "jvp no primals": (
        lambda api: api.jvp(lambda: torch.ones(2), (), ()),
        "Expected primals to contain at least one Tensor.",
        JVP,
    ),
    "jvp tangents not a tuple": (
        lambda api: api.jvp(lambda a: a, (x,), x),
        "Expected primals and tangents to have the same python structure",
        JVP,
    ),
    "jvp tangent of another shape": (
        lambda api: api.jvp(lambda a: a * 2, (x,), (torch.ones(4),)),
        "Trying to set a forward gradient that has a different size than that of the original Tensor",
        JVP,
    ),
    "linearize non-tensor primal": (
        lambda api: api.linearize(lambda a, n: a * n, x, 2.0),
        "'float' object has no attribute 'new_empty'",
        LIN + ": ",
    ),
    # argnums of a wrong type
    "grad argnums str": (lambda api: api.grad(lambda a: a.sum(), argnums="0")(x), ARGNUMS_TYPE.format("str"), GRAD0),
    "grad argnums list": (
        lambda api: api.grad(lambda a: a.sum(), argnums=[0])(x),
        ARGNUMS_TYPE.format("list"),
        "grad(<lambda>, argnums=[0])(<inputs>): ",
    ),
    "grad argnums tuple of floats": (
        lambda api: api.grad(lambda a: a.sum(), argnums=(0.0,))(x),
        "argnum must be int, got: <class 'float'>",
        "grad(<lambda>, argnums=(0.0,))(<inputs>): ",
    ),
    "jacrev argnums list": (
        lambda api: api.jacrev(lambda a: a, argnums=[0])(x),
        ARGNUMS_TYPE.format("list"),
        "jacrev(<lambda>, argnums=[0])(<inputs>): ",
    ),
    "jacfwd argnums str": (
        lambda api: api.jacfwd(lambda a: a, argnums="0")(x),
        ARGNUMS_TYPE.format("str"),
        JACFWD0,
    ),
    "hessian argnums list": (
        lambda api: api.hessian(lambda a: (a**3).sum(), argnums=[0])(x),
        ARGNUMS_TYPE.format("list"),
        "jacfwd(<lambda>, argnums=[0])(<inputs>): ",
    ),
    # integer primals and tangents
    "grad integer input": (lambda api: api.grad(lambda a: a.sum())(ints), NOT_FLOAT, GRAD0),
    "vjp integer primal": (lambda api: api.vjp(lambda a: a * 2, ints), NOT_FLOAT, VJP),
    "jacrev integer input": (lambda api: api.jacrev(lambda a: a * 2)(ints), NOT_FLOAT, JACREV0),
    "jacfwd integer input": (
        lambda api: api.jacfwd(lambda a: a * 2)(ints),
        "Expected primal to be floating point or complex, but got: torch.int64",
        JACFWD0,
    ),
    "hessian integer input": (
        lambda api: api.hessian(lambda a: (a * 2).sum())(ints),
        "Expected primal to be floating point or complex, but got: torch.int64",
        JACFWD0,
    ),
    "jvp integer primal": (
        lambda api: api.jvp(lambda a: a * 2, (ints,), (ints,)),
        "Expected primal to be floating point or complex, but got: torch.int64",
        JVP,
    ),
    "jvp integer tangent": (
        lambda api: api.jvp(lambda a: a * 2, (x,), (ints,)),
        "Expected tangent to be floating point or complex, but got: torch.int64",
        JVP,
    ),
    "linearize integer primal": (
        lambda api: api.linearize(lambda a: a * 2, ints),
        "Expected primal to be floating point or complex, but got: torch.int64",
        LIN + ": ",
    ),
    "linearize tangent of another dtype": (
        lambda api: api.linearize(lambda a: a * 2, x)[1](ints),
        "tangent:0 with dtype torch.int64 in flattened pytree doesn't match the dtype torch.float32",
        LIN + "(*tangents): ",
    ),
    # complex inputs and outputs of jacrev/jacfwd
    "jacrev complex input": (
        lambda api: api.jacrev(lambda a: a * 2)(cplx),
        "Expected all inputs to be real but received complex tensor at flattened input idx: 0",
        JACREV0,
    ),
    "jacfwd complex input not differentiated": (
        lambda api: api.jacfwd(lambda a, c: a * c.real)(x, cplx),
        "Expected all inputs to be real but received complex tensor at flattened input idx: 1",
        JACFWD0,
    ),
    "jacrev complex output": (
        lambda api: api.jacrev(lambda a: a * 1j)(x),
        "Expected all outputs to be real but received complex tensor at flattened input idx: 0",
        JACREV0,
    ),
    "jacfwd complex output": (
        lambda api: api.jacfwd(lambda a: a * 1j)(x),
        "Expected all outputs to be real but received complex tensor at flattened input idx: 0",
        JACFWD0,
    ),
    # non-tensor, empty and integer outputs
    "grad non-scalar output": (
        lambda api: api.grad(lambda a: a)(x),
        "Expected f(*args) to return a scalar Tensor, got tensor with 1 dims",
        GRAD0,
    ),
    "grad non-tensor output": (
        lambda api: api.grad(lambda a: 3.0)(x),
        "Expected f(*args) to return a Tensor, got <class 'float'>",
        GRAD0,
    ),
    "grad tuple output": (
        lambda api: api.grad(lambda a: (a.sum(), a.sum()))(x),
        "Expected f(*args) to return a Tensor, got <class 'tuple'>",
        GRAD0,
    ),
    "vjp non-tensor output": (lambda api: api.vjp(lambda a: 3.0, x), OUT_NOT_TENSOR.format("float"), VJP),
    "vjp output with a non-tensor": (lambda api: api.vjp(lambda a: (a, 3.0), x), OUT_NOT_TENSOR.format("float"), VJP),
    "vjp None output": (
        lambda api: api.vjp(lambda a: None, x),
        "Expected f to be a function that has non-empty output (got output = [None])",
        VJP,
    ),
    "vjp integer output": (lambda api: api.vjp(lambda a: (a > 0).long(), x), INT_OUTPUT, VJP),
    "jvp output with a non-tensor": (
        lambda api: api.jvp(lambda a: (a, 3.0), (x,), (x,)),
        OUT_NOT_TENSOR.format("float"),
        JVP,
    ),
    "jacrev non-tensor output": (lambda api: api.jacrev(lambda a: 3.0)(x), OUT_NOT_TENSOR.format("float"), JACREV0),
    "jacrev empty output": (
        lambda api: api.jacrev(lambda a: ())(x),
        "Expected f to be a function that has non-empty output (got output = [])",
        JACREV0,
    ),
    "jacrev integer output": (lambda api: api.jacrev(lambda a: (a > 0).long())(x), INT_OUTPUT, JACREV0),
    "jacfwd output with a non-tensor": (
        lambda api: api.jacfwd(lambda a: (a, 3.0))(x),
        OUT_NOT_TENSOR.format("float"),
        JACFWD0,
    ),
    # has_aux: the structure, and non-tensors in aux
    "grad has_aux not a pair": (
        lambda api: api.grad(lambda a: (a.sum(), a, a), has_aux=True)(x),
        AUX_STRUCTURE,
        GRAD0,
    ),
    "vjp has_aux not a tuple": (lambda api: api.vjp(lambda a: a, x, has_aux=True), AUX_STRUCTURE, VJP),
    "jvp has_aux not a tuple": (lambda api: api.jvp(lambda a: a, (x,), (x,), has_aux=True), AUX_STRUCTURE, JVP),
    "jacrev has_aux a list": (lambda api: api.jacrev(lambda a: [a, a], has_aux=True)(x), AUX_STRUCTURE, JACREV0),
    "jacfwd has_aux not a pair": (
        lambda api: api.jacfwd(lambda a: (a, a, a), has_aux=True)(x),
        AUX_STRUCTURE,
        JACFWD0,
    ),
    "grad aux holds an int": (
        lambda api: api.grad(lambda a: (a.sum(), 3), has_aux=True)(x),
        AUX_NOT_TENSOR.format("int"),
        GRAD0,
    ),
    "grad aux holds a shape": (
        lambda api: api.grad(lambda a: (a.sum(), a.shape), has_aux=True)(x),
        AUX_NOT_TENSOR.format("int"),
        GRAD0,
    ),
    "grad_and_value aux holds None": (
        lambda api: api.grad_and_value(lambda a: (a.sum(), {"t": a, "n": None}), has_aux=True)(x),
        AUX_NOT_TENSOR.format("NoneType"),
        GV0,
    ),
    "vjp aux holds a float": (
        lambda api: api.vjp(lambda a: (a, 3.0), x, has_aux=True),
        AUX_NOT_TENSOR.format("float"),
        VJP,
    ),
    "jvp aux holds a str": (
        lambda api: api.jvp(lambda a: (a, "s"), (x,), (x,), has_aux=True),
        AUX_NOT_TENSOR.format("str"),
        JVP,
    ),
    "jacrev aux holds a float": (
        lambda api: api.jacrev(lambda a: (a, 3.0), has_aux=True)(x),
        AUX_NOT_TENSOR.format("float"),
        JACREV0,
    ),
    "jacfwd aux holds an int": (
        lambda api: api.jacfwd(lambda a: (a, [a, 1]), has_aux=True)(x),
        AUX_NOT_TENSOR.format("int"),
        JACFWD0,
    ),
    # the cotangents given to vjp_fn
    "vjp_fn non-tensor cotangent": (
        lambda api: api.vjp(lambda a: a.sum(), x)[1](1.0),
        "gradients can be either Tensors or None, but got float",
        "vjp: ",
    ),
    "vjp_fn None for a non-scalar output": (
        lambda api: api.vjp(lambda a: a, x)[1](None),
        "grad can be implicitly created only for scalar outputs",
        "vjp: ",
    ),
    # in-place randomness on a tensor vmap does not batch
    "vmap different in-place draw into a captured tensor": (_vmap_normal_into_captured, DIFFERENT_INPLACE, VMAP),
    "vmap different in-place draw into an unbatched input": (
        lambda api: api.vmap(lambda v, y: v + y.uniform_(), in_dims=(0, None), randomness="different")(
            X, torch.zeros(3)
        ),
        DIFFERENT_INPLACE,
        "vmap(<lambda>, in_dims=(0, None), ...)(<inputs>): ",
    ),
    "vmap different in-place draw, chunked": (
        lambda api: (lambda y: api.vmap(lambda v: v * y.bernoulli_(), randomness="different", chunk_size=3)(X))(
            torch.full((3,), 0.5)
        ),
        DIFFERENT_INPLACE,
        VMAP,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_error_as_torch_func(case):
    make, phrase, prefix = CASES[case]
    with pytest.raises(Exception) as expected:
        make(tf)
    assert phrase in str(expected.value), f"torch.func's wording is now: {expected.value}"
    with pytest.raises(type(expected.value), match=re.escape(phrase)) as actual:
        make(jf)
    assert type(actual.value) is type(expected.value)
    assert str(actual.value).startswith(prefix), str(actual.value)


def test_in_place_arithmetic_on_an_unbatched_tensor_is_not_called_randomness():
    """A per-sample in-place add, in a function that also draws, is still the arithmetic error."""
    y = torch.zeros(3)
    with pytest.raises(RuntimeError) as info:
        jf.vmap(lambda v: y.add_(v) + torch.rand(3), randomness="different")(X)
    assert DIFFERENT_INPLACE not in str(info.value)
    assert str(info.value).startswith(VMAP)


def test_validation_runs_once_per_signature(monkeypatch):
    seen = []
    check = autodiff._check_diff_inputs
    monkeypatch.setattr(autodiff, "_check_diff_inputs", lambda *a, **k: seen.append(1) or check(*a, **k))
    jac = jf.jacrev(lambda a: a.sin())
    for _ in range(3):
        jac(x)
    assert len(seen) == 1


# --------------------------------------------------------------------------- what torch.func accepts


def _same(make):
    expected, actual = make(tf), make(jf)
    flat_e, spec_e = torch.utils._pytree.tree_flatten(expected)
    flat_a, spec_a = torch.utils._pytree.tree_flatten(actual)
    assert spec_a == spec_e
    for e, a in zip(flat_e, flat_a):
        if isinstance(e, torch.Tensor):
            torch.testing.assert_close(a.detach(), e.detach())
        else:
            assert a == e


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda api: api.grad(lambda a: a.sum().long())(x.double()), id="grad-integer-output"),
        pytest.param(lambda api: api.grad_and_value(lambda a: (a > 0).sum())(x), id="grad_and_value-integer-output"),
        pytest.param(lambda api: api.jvp(lambda a: (a > 0).long(), (x,), (x,)), id="jvp-integer-output"),
        pytest.param(lambda api: api.jacfwd(lambda a: (a > 0).long())(x), id="jacfwd-integer-output"),
        pytest.param(
            lambda api: api.grad(lambda a: (a.sum(), NT(a, a * 2)), has_aux=True)(x), id="grad-aux-namedtuple"
        ),
        pytest.param(lambda api: api.grad(lambda a: (a.sum(), ()), has_aux=True)(x), id="grad-aux-empty"),
        pytest.param(lambda api: api.grad(lambda a, n: (a * n).sum())(x, 2.0), id="grad-non-tensor-outside-argnums"),
        pytest.param(lambda api: api.vjp(lambda a: a.sin().sum(), x)[1](None), id="vjp_fn-None-for-a-scalar"),
        pytest.param(lambda api: api.linearize(lambda a: (a.sin(), 3.0), x)[1](x), id="linearize-non-tensor-output"),
    ],
)
def test_accepted_as_torch_func_accepts(make):
    _same(make)


@pytest.mark.parametrize("chunk_size", [1, 2, 4, None])
def test_vmap_randomness_across_chunks(chunk_size):
    """'different': every sample draws anew, whichever chunk it is in; 'same': one draw for all."""
    zeros = torch.zeros(6, 3)
    for api in (tf, jf):
        diff = api.vmap(lambda v: v + torch.rand(3), randomness="different", chunk_size=chunk_size)(zeros)
        same = api.vmap(lambda v: v + torch.rand(3), randomness="same", chunk_size=chunk_size)(zeros)
        assert len({tuple(r) for r in diff.tolist()}) == 6, api
        assert len({tuple(r) for r in same.tolist()}) == 1, api


def test_vmap_chunks_do_not_change_the_draws():
    torch.manual_seed(0)
    whole = jf.vmap(lambda v: v + torch.randn(3), randomness="different")(torch.zeros(6, 3))
    torch.manual_seed(0)
    chunked = jf.vmap(lambda v: v + torch.randn(3), randomness="different", chunk_size=4)(torch.zeros(6, 3))
    torch.testing.assert_close(chunked, whole)


# --------------------------------------------------------------------------- vmap of vjp_fn / jvp_fn

W = torch.randn(2, 3)
y3 = torch.randn(3)


def _jacobian_by_vjp(api, dtype):
    _, vjp_fn = api.vjp(lambda a: W.to(dtype) @ a.sin(), x.to(dtype))
    return api.vmap(vjp_fn)(torch.eye(2, dtype=dtype))


def _two_outputs_two_primals(api, dtype):
    _, vjp_fn = api.vjp(lambda a, b: (a * b, (a + b).exp().sum()), x.to(dtype), y3.to(dtype))
    return api.vmap(vjp_fn)((torch.eye(3, dtype=dtype), torch.arange(3, dtype=dtype)))


def _pytree_primal_and_aux(api, dtype):
    _, vjp_fn, aux = api.vjp(lambda d: (d["a"] * d["b"].exp(), d["a"].cos()), {"a": x.to(dtype), "b": y3.to(dtype)},
                             has_aux=True)  # fmt: skip
    return api.vmap(vjp_fn)(torch.eye(3, dtype=dtype)), aux


def _cotangents_on_dim_1_chunked(api, dtype):
    _, vjp_fn = api.vjp(torch.sin, x.to(dtype))
    return api.vmap(vjp_fn, in_dims=1, chunk_size=2)(torch.arange(9, dtype=dtype).reshape(3, 3))


def _vjp_inside_vmap(api, dtype):
    def per_sample(a):
        _, vjp_fn = api.vjp(torch.sin, a)
        return api.vmap(vjp_fn)(torch.eye(3, dtype=dtype))[0]

    return api.vmap(per_sample)(X.to(dtype))


def _grad_through_vjp_fn(api, dtype):
    _, vjp_fn = api.vjp(torch.sin, x.to(dtype))
    return api.grad(lambda c: vjp_fn(c)[0].pow(2).sum())(torch.ones(3, dtype=dtype))


def _module_jacobian(api, dtype):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh()).to(dtype)
    _, vjp_fn = api.vjp(model, x.to(dtype))
    return api.vmap(vjp_fn)(torch.eye(4, dtype=dtype))


def _linearize_jvp_fn(api, dtype):
    _, jvp_fn = api.linearize(lambda a, b: a.sin() * b, x.to(dtype), y3.to(dtype))
    return api.vmap(jvp_fn)(torch.eye(3, dtype=dtype), torch.ones(3, 3, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(
    "make",
    [
        _jacobian_by_vjp,
        _two_outputs_two_primals,
        _pytree_primal_and_aux,
        _cotangents_on_dim_1_chunked,
        _vjp_inside_vmap,
        _grad_through_vjp_fn,
        _module_jacobian,
        _linearize_jvp_fn,
    ],
)
def test_vmap_of_vjp_fn_and_jvp_fn_matches_torch_func(make, dtype):
    _same(lambda api: make(api, dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_jacobian_from_vmap_of_vjp_fn_equals_jacrev(dtype):
    """The torch.func tutorial's Jacobian: vmap(vjp_fn) over the rows of the identity."""
    a = torch.randn(5, dtype=dtype)
    _, vjp_fn = jf.vjp(torch.sin, a)
    (jac,) = jf.vmap(vjp_fn)(torch.eye(5, dtype=dtype))
    assert jac.dtype == dtype
    torch.testing.assert_close(jac, tf.jacrev(torch.sin)(a))
    torch.testing.assert_close(jac, torch.diag(a.cos()))


def test_linearized_jvp_fn_inside_vmap():
    """torch.func cannot vmap over linearize itself; torchjax can, and agrees with jacfwd."""

    def per_sample(a):
        _, jvp_fn = jf.linearize(torch.sin, a)
        return jf.vmap(jvp_fn)(torch.eye(3))

    torch.testing.assert_close(jf.vmap(per_sample)(X), tf.vmap(tf.jacfwd(torch.sin))(X))
