"""Every misuse torch.func rejects is rejected with the same class, the call named first."""

from __future__ import annotations

import pytest
import torch
import torch.func as tf

import torchjax.func as jf

x = torch.randn(3)
X = torch.randn(2, 3)

CASES = {
    "grad non-scalar": lambda api: api.grad(lambda x: x)(x),
    "grad integer input": lambda api: api.grad(lambda x: x.sum())(torch.arange(3)),
    "grad argnums out of range": lambda api: api.grad(lambda x: x.sum(), argnums=2)(x),
    "grad argnums duplicated": lambda api: api.grad(lambda x, y: x.sum(), argnums=(0, 0))(x, x),
    "grad argnums empty": lambda api: api.grad(lambda x, y: x.sum(), argnums=())(x, x),
    "grad argnums not int": lambda api: api.grad(lambda x: x.sum(), argnums=1.5)(x),
    "grad has_aux wrong structure": lambda api: api.grad(lambda x: x.sum(), has_aux=True)(x),
    "vjp cotangent structure": lambda api: api.vjp(lambda x: (x, x), x)[1]((x,)),
    "vjp cotangent shape": lambda api: api.vjp(lambda x: x * 2, x)[1](torch.ones(4)),
    "jvp primals not tuple": lambda api: api.jvp(lambda x: x, x, x),
    "jvp tangents not tuple": lambda api: api.jvp(lambda x: x, (x,), x),
    "vmap bad randomness": lambda api: api.vmap(lambda x: x, randomness="bad")(x),
    "vmap chunk_size 0": lambda api: api.vmap(lambda x: x, chunk_size=0)(x),
    "vmap mismatched batch": lambda api: api.vmap(torch.add)(torch.ones(2, 3), torch.ones(3, 3)),
    "vmap in_dims wrong type": lambda api: api.vmap(torch.sin, in_dims="0")(x),
    "vmap in_dims wrong structure": lambda api: api.vmap(torch.add, in_dims=(0, 0, 0))(X, X),
    "vmap in_dim on non-tensor": lambda api: api.vmap(lambda x, n: x * n, in_dims=(0, 0))(X, 2.0),
    "vmap in_dim out of range": lambda api: api.vmap(torch.sin, in_dims=2)(X),
    "vmap no inputs": lambda api: api.vmap(lambda: torch.ones(2))(),
    "vmap random in error mode": lambda api: api.vmap(lambda x: x + torch.rand(3))(X),
    "vmap returns non-tensor": lambda api: api.vmap(lambda x: 3)(X),
    "vmap out_dims bad structure": lambda api: api.vmap(lambda x: (x, x), out_dims=(0, 0, 0))(X),
    "jacrev argnums out of range": lambda api: api.jacrev(torch.sin, argnums=5)(x),
    "jacrev chunk_size 0": lambda api: api.jacrev(torch.sin, chunk_size=0)(x),
    "jacfwd random in error mode": lambda api: api.jacfwd(lambda x: x * torch.rand(3))(x),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_exception_class_as_torch_func(case):
    make = CASES[case]
    with pytest.raises(Exception) as expected:
        make(tf)
    with pytest.raises(type(expected.value)) as actual:
        make(jf)
    assert type(actual.value) is type(expected.value)
    msg = str(actual.value)
    api = case.split()[0]
    assert msg.startswith(api) or msg.startswith("Only allowed values"), msg
