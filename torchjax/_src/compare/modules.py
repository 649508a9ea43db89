"""Module granularity: every submodule's output, and gradients by module.

torch runs eagerly with :class:`~.target.Recorder`'s hooks; torchjax runs the same
code, with the same hooks, as one compiled program (``jit`` for the forward,
``torchjax.func.grad_and_value`` for gradients) whose extra outputs are what the hooks
saw while torchjax traced, so the program compared is the one users run.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils import _pytree as pytree

from ..convert import jit
from ..transforms.grad import grad_and_value
from .metrics import Entry, measure, missing
from .target import Recorder, Target, is_float, leaf_names, tensor_leaves, to_double


def forward_torch(target: Target, args: tuple, kwargs: dict, *, state: dict | None = None, inputs: bool = False):
    """Run torch eagerly with the hooks; ``state`` replaces parameters and buffers."""
    rec = Recorder(target, inputs=inputs)
    with torch.no_grad(), rec:
        if state is None:
            out = target(*args, **kwargs)
        else:
            out = torch.func.functional_call(target, state, args, kwargs, strict=False)
    return out, rec


def forward_torchjax(target: Target, args: tuple, kwargs: dict):
    """One compiled program: the function's output and every hooked module's output."""

    def run(args, kwargs):
        rec = Recorder(target)
        with rec:
            out = target(*args, **kwargs)
        return out, rec.outputs

    with torch.no_grad():
        return jit(run)(args, kwargs)


def compare_outputs(transform, calls, expected, actual, reference, *, kind="output", rtol, atol) -> list[Entry]:
    """An entry per tensor leaf of each call's output, calls in the order they returned."""
    entries = []
    for call in sorted(calls.values(), key=lambda c: c.post):
        exp = expected.get(call.key, [])
        act = actual.get(call.key)
        ref = reference.get(call.key) if reference is not None else None
        for i, name in enumerate(leaf_names(call.key, len(exp))):
            if act is None or i >= len(act):
                entries.append(missing(transform, name, kind, call.op, exp[i], "torchjax did not produce it"))
                continue
            r = ref[i] if ref is not None and i < len(ref) else None
            entries.append(measure(transform, name, kind, call.op, act[i], exp[i], r, rtol=rtol, atol=atol))
    return entries


def state_of(target: Target, convert=None) -> dict[str, torch.Tensor]:
    """Parameters and buffers by their names in ``target`` (``convert``ed if given)."""
    state = {
        **dict(target.named_parameters(remove_duplicate=False)),
        **dict(target.named_buffers(remove_duplicate=False)),
    }
    done: dict[int, torch.Tensor] = {}  # a tied weight stays one tensor under every name
    for v in state.values():
        if id(v) not in done:
            done[id(v)] = convert(v) if convert else v.detach()
    return {k: done[id(v)] for k, v in state.items()}


def cotangents(out: Any, seed: int = 0) -> list[torch.Tensor]:
    """A fixed random cotangent for each floating output leaf: the gradient computed is
    that of ``sum(out * cotangent)``, which (unlike ``out.sum()``) reaches every output
    element with a different weight (softmax outputs sum to a constant)."""
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(t.shape, generator=g, dtype=torch.float64).to(t.dtype) for t in tensor_leaves(out) if is_float(t)
    ]


def scalarize(out: Any, cots: list[torch.Tensor]) -> torch.Tensor:
    leaves = [t for t in tensor_leaves(out) if is_float(t)]
    total = None
    for t, c in zip(leaves, cots):
        term = (t * c).sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("compare(transforms=('grad',)): the function has no floating-point output to differentiate")
    return total.real if total.is_complex() else total


def _grad_fn(target: Target):
    def f(params, eps, args, kwargs, buffers, cots):
        rec = Recorder(target, eps=eps)
        with rec:
            out = torch.func.functional_call(target, {**params, **buffers}, args, kwargs, strict=False)
        return scalarize(out, cots), rec.outputs

    return f


def eps_for(calls, dtype_of=None) -> dict[str, torch.Tensor]:
    """A zero for each floating input leaf of each call: its gradient is the input's."""
    return {
        f"{c.key}|{i}": torch.zeros(shape, dtype=dtype_of(dtype) if dtype_of else dtype)
        for c in calls.values()
        for i, shape, dtype in c.float_inputs
    }


def _f64(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype.is_floating_point else torch.complex128 if dtype.is_complex else dtype


def grad_entries(target: Target, args, kwargs, calls, out, *, reference: bool, rtol, atol) -> list[Entry]:
    """The ``grad`` transform at module granularity.

    Entries, in the order the computation produces them: each module's output during
    the gradient program's forward pass, then, backward (latest module first), the
    gradient of each module's own parameters and of its floating inputs. A wrong
    forward rule shows first as a forward value; a wrong derivative first as the
    gradient of the inputs of the module whose backward it is.
    """
    params = {k: v.detach() for k, v in target.named_parameters() if v.requires_grad and is_float(v)}
    cots = cotangents(out)
    eps = eps_for(calls)
    f = _grad_fn(target)

    def buffers():  # inputs, not captured: torch.func refuses a write to a captured tensor (train-mode BatchNorm)
        return {k: v.detach().clone() for k, v in target.named_buffers()}

    (tg_p, tg_e), (_, t_out) = torch.func.grad_and_value(f, argnums=(0, 1), has_aux=True)(
        params, eps, args, kwargs, buffers(), cots
    )
    (jg_p, jg_e), (_, j_out) = grad_and_value(f, argnums=(0, 1), has_aux=True)(
        params, eps, args, kwargs, buffers(), cots
    )
    r_p = r_e = r_out = None
    if reference:
        with reference_run() as done:
            done(_grad_reference(f, target, params, calls, args, kwargs, cots))
        r_p, r_e, r_out = done.value or (None, None, None)
    entries = compare_outputs("grad", calls, t_out, j_out, r_out, rtol=rtol, atol=atol)

    # backward order: a module's parameter gradients, then its input gradients, latest module first
    owner_pre = {}
    for c in calls.values():
        owner_pre.setdefault(c.path, c.pre)
    events: list[tuple[float, str, str, str, Any, Any, Any]] = []
    for name, g in tg_p.items():
        public = target.public_name(name)
        owner = public.rsplit(".", 1)[0] if "." in public else public
        call = calls.get(owner)
        op = call.op if call else "Parameter"
        events.append(
            (owner_pre.get(owner, -1) + 0.5, public, "grad", op, g, jg_p.get(name), r_p.get(name) if r_p else None)
        )
    for key, g in tg_e.items():
        call_key, leaf = key.rsplit("|", 1)
        call = calls[call_key]
        n_inputs = len(call.float_inputs)
        name = call_key if n_inputs == 1 else f"{call_key}[in{leaf}]"
        events.append((call.pre, name, "grad_input", call.op, g, jg_e.get(key), r_e.get(key) if r_e else None))
    events.sort(key=lambda e: -e[0])
    for _, name, kind, op, g, a, r in events:
        if a is None:
            entries.append(missing("grad", name, kind, op, g, "torchjax did not produce it"))
        else:
            entries.append(measure("grad", name, kind, op, a, g, r, rtol=rtol, atol=atol))
    return entries


def _grad_reference(f, target, params, calls, args, kwargs, cots):
    state64 = state_of(target, lambda v: to_double(v.detach()))
    p64 = {k: state64[k] for k in params}
    b64 = {k: state64[k].clone() for k, _ in target.named_buffers()}
    (r_p, r_e), (_, r_out) = torch.func.grad_and_value(f, argnums=(0, 1), has_aux=True)(
        p64, eps_for(calls, _f64), to_double(args), to_double(kwargs), b64, [c.double() for c in cots]
    )
    return r_p, r_e, r_out


class _Result:
    value: Any = None

    def __call__(self, value: Any) -> None:
        self.value = value


@contextlib.contextmanager
def reference_run() -> Iterator[_Result]:
    """Runs the float64 reference; if it fails (the code builds float32 tensors of its own,
    calls a kernel with no float64 version), warns and leaves the result None, so the
    comparison falls back to tolerances instead of stopping."""
    result = _Result()
    try:
        yield result
    except Exception as err:  # the reference is optional: say why it is missing, go on
        warnings.warn(
            f"compare: the float64 reference run failed ({type(err).__name__}: {err}); "
            "comparing torch and torchjax directly with tolerances",
            RuntimeWarning,
            stacklevel=4,
        )
        result.value = None


def isolated_entries(target: Target, rec: Recorder, *, reference: bool, rtol, atol) -> list[Entry]:
    """``isolate=True``: each module run by torchjax on the inputs torch gave it.

    Every module is compiled on its own (``jit(module)``) and fed the arguments torch's
    run recorded, so an error entering a module from upstream is not counted against
    it: the first bad module is the first failure, not the first of many.
    """
    entries = []
    compiled: dict[int, Any] = {}
    state64 = state_of(target, lambda v: to_double(v.detach())) if reference else None
    names = {id(m): n for n, m in target.named_modules()}
    for call in sorted(rec.calls.values(), key=lambda c: c.post):
        args, kwargs = rec.inputs[call.key]
        module = call.module
        fn = compiled.setdefault(id(module), jit(module))
        exp = rec.outputs[call.key]
        try:
            with torch.no_grad():
                act = tensor_leaves(fn(*args, **kwargs))
        except Exception as err:  # reported as the entry's failure, with its message
            for i, name in enumerate(leaf_names(call.key, len(exp))):
                entries.append(missing("forward", name, "isolated", call.op, exp[i], f"{type(err).__name__}: {err}"))
            continue
        ref = None
        if state64 is not None:
            prefix = names[id(module)]
            sub = {
                k[len(prefix) + 1 :] if prefix else k: v
                for k, v in state64.items()
                if not prefix or k.startswith(prefix + ".")
            }
            try:
                with torch.no_grad():
                    ref = tensor_leaves(
                        torch.func.functional_call(module, sub, to_double(args), to_double(kwargs), strict=False)
                    )
            except Exception:  # a module that cannot run in float64: compared without a reference
                ref = None
        for i, name in enumerate(leaf_names(call.key, len(exp))):
            if i >= len(act):
                entries.append(missing("forward", name, "isolated", call.op, exp[i], "torchjax did not produce it"))
                continue
            r = ref[i] if ref is not None and i < len(ref) else None
            entries.append(measure("forward", name, "isolated", call.op, act[i], exp[i], r, rtol=rtol, atol=atol))
    return entries


def forward_entries(target, args, kwargs, rec, out, *, reference: bool, rtol, atol) -> list[Entry]:
    """The ``forward`` transform at module granularity, not isolated."""
    j_out, j_rec = forward_torchjax(target, args, kwargs)
    r_rec = None
    if reference:
        with reference_run() as done:
            _, r = forward_torch(
                target, to_double(args), to_double(kwargs), state=state_of(target, lambda v: to_double(v.detach()))
            )
            done(r.outputs)
        r_rec = done.value
    return compare_outputs("forward", rec.calls, rec.outputs, j_rec, r_rec, rtol=rtol, atol=atol)


def tree_entries(transform, name, op, expected, actual, reference, *, rtol, atol) -> list[Entry]:
    """An entry per tensor leaf of a result pytree (a transform's final output)."""
    e_leaves, e_spec = pytree.tree_flatten(expected)
    a_leaves, a_spec = pytree.tree_flatten(actual)
    r_leaves = pytree.tree_flatten(reference)[0] if reference is not None else None
    tensors = [i for i, x in enumerate(e_leaves) if isinstance(x, torch.Tensor)]
    entries = []
    for n, i in enumerate(tensors):
        leaf_name = name if len(tensors) == 1 else f"{name}[{n}]"
        if e_spec != a_spec or not isinstance(a_leaves[i], torch.Tensor):
            entries.append(
                missing(transform, leaf_name, "output", op, e_leaves[i], "torchjax's result has another structure")
            )
            continue
        r = (
            r_leaves[i]
            if r_leaves is not None and i < len(r_leaves) and isinstance(r_leaves[i], torch.Tensor)
            else None
        )
        entries.append(measure(transform, leaf_name, "output", op, a_leaves[i], e_leaves[i], r, rtol=rtol, atol=atol))
    return entries
