"""Training steps in one program: ``loss.backward()``, ``optimizer.step()`` and
``zero_grad()`` inside ``torchjax.jit``.

Inside a capture torch's autograd records on JaxTensors as it does on any tensor (a
module's parameters require grad), so ``backward()`` runs torch's own derivative
formulas, and the ops they call are traced into the program like the forward's. What a
step changes beyond the contents of tensors is Python state: a parameter's ``.grad``
(set, accumulated into, set to None) and an optimizer's ``state``. A :class:`StepState`
makes that state part of every call:

* before a call, :meth:`StepState.gather` collects what the program reads, by path: each
  tracked parameter's ``.grad`` and each tracked optimizer's state tensors (a tensor
  replaced between calls is read anew, never a stale one), and its learning rates, which
  are inputs of the program (an LR scheduler changes them between calls). What is None,
  and the other hyperparameters, are part of the call's signature;
* during the trace (:class:`StepTrace`) reads of that state resolve to the program's
  inputs and writes into it are the program's input updates; a ``.grad`` set or cleared
  is returned as an action that :meth:`StepState.apply` performs after every call; the
  real ``.grad`` attributes and optimizer state are put back when the trace ends;
* a trace that met state which is not yet an input is not compiled: the call gathers
  again and traces again; one in which an optimizer created its state (its first step)
  is not compiled either, and that call runs eagerly: the program is compiled for the
  steady state, from the next call (:attr:`StepState.outcome` tells which).

Optimizer code runs with ``torch.compiler.is_compiling()`` true, as under torch.compile:
torch's optimizers then keep step counts and bias corrections as tensors instead of
reading them with ``.item()``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from .capture_patch import CapturePatch
from .errors import TracingError
from .module_path import modules_met
from .tensor import JaxTensor, array_of, current_context

_local = threading.local()  # .trace: the StepTrace running on this thread, if any


def _current() -> StepTrace | None:
    return getattr(_local, "trace", None)


# Optimizers whose learning rate torch's own code takes as a tensor (with ``capturable``
# on, for those that have the flag): their lr is an input of the program. Any other
# optimizer's lr is compiled in as a constant, and a new value compiles the step again.
_TENSOR_LR = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)


class StepState:
    """The training state one ``torchjax.jit`` function's traces met: the parameters whose
    ``.grad`` it reads or sets, the optimizers it stepped."""

    def __init__(self, modules: list[torch.nn.Module] = ()) -> None:
        self.params: list[torch.Tensor] = []
        self._param_index: dict[int, int] = {}
        self.optimizers: list[torch.optim.Optimizer] = []
        # the modules the traces ran: their ``training`` flags are part of every call's
        # signature (``model.eval()`` between calls must not run the training program)
        self.modules: list[torch.nn.Module] = list(modules)
        self._module_ids = {id(m) for m in self.modules}
        self._local = threading.local()  # .gathered: the real tensors of this thread's call; .outcome

    @property
    def trains(self) -> bool:
        """Whether the traces met training state (``.grad``, an optimizer)."""
        return bool(self.params or self.optimizers)

    def add_modules(self, modules: list[torch.nn.Module]) -> bool:
        """Track these modules' ``training`` flags; True if one was not among this
        thread's call's inputs (its flag is not in the call's signature)."""
        new = [m for m in modules if id(m) not in self._module_ids]
        self.modules.extend(new)
        self._module_ids.update(id(m) for m in new)
        gathered = {id(m) for m in self.modules[: getattr(self._local, "n_modules", 0)]}
        return any(id(m) not in gathered for m in modules)

    def index(self, p: torch.Tensor) -> int | None:
        i = self._param_index.get(id(p))
        return i if i is not None and self.params[i] is p else None

    def add_param(self, p: torch.Tensor) -> int:
        i = self.index(p)
        if i is None:
            i = self._param_index[id(p)] = len(self.params)
            self.params.append(p)
        return i

    def add_optimizer(self, opt: torch.optim.Optimizer) -> bool:
        if any(o is opt for o in self.optimizers):
            return False
        self.optimizers.append(opt)
        for group in opt.param_groups:
            for p in group["params"]:
                self.add_param(p)
        return True

    def gather(self) -> tuple:
        """The state a call's program reads, as a tree: tensors and learning rates are its
        inputs, everything else (None, hyperparameters, state keys) its signature."""
        modes = tuple([m.training for m in self.modules])
        self._local.n_modules = len(modes)
        if not self.trains:
            self._local.gathered = ()
            return (modes,) if modes else ()
        tree = (tuple([p.grad for p in self.params]), tuple([_optimizer_tree(o) for o in self.optimizers]), modes)
        self._local.gathered = tree
        return tree

    def gathered(self) -> tuple:
        return getattr(self._local, "gathered", ())

    @property
    def outcome(self) -> tuple[bool, bool]:
        """``(discovered, created)`` of this thread's last trace: whether it met training
        state that was not an input, whether an optimizer created state in it."""
        return getattr(self._local, "outcome", (False, False))

    @outcome.setter
    def outcome(self, value: tuple[bool, bool]) -> None:
        self._local.outcome = value

    def apply(self, actions: tuple) -> None:
        """Perform a call's ``.grad`` assignments: ``(parameter index, tensor or None)``."""
        params = self.params
        with torch.no_grad():
            for i, value in actions:
                params[i].grad = value


def _optimizer_tree(opt: torch.optim.Optimizer) -> tuple:
    state = opt.state
    groups = []
    for group in opt.param_groups:
        lr = group["lr"]
        if isinstance(lr, float) and isinstance(opt, _TENSOR_LR):
            lr = np.asarray(lr, np.float64)  # an input of the program, not a constant
        hyper = tuple((k, v) for k, v in group.items() if k not in ("params", "lr"))
        per_param = tuple(
            tuple(sorted(state[p].items())) if p in state else None for p in group["params"]
        )  # fmt: skip
        groups.append((lr, hyper, per_param))
    return tuple(groups)


class StepTrace:
    """One trace of a training step: the state's inputs aliased, ``.grad`` changes
    recorded and undone, optimizer steps prepared for tracing."""

    def __init__(self, state: StepState, inputs: tuple):
        self.state = state
        self.inputs = inputs  # the gathered tree, its tensors as the trace's JaxTensors
        self.grads_before: dict[int, tuple[torch.Tensor, Any]] = {}
        self.discovered = False
        self.created = False
        self._undo: list[Callable[[], None]] = []
        self._steps: list[dict] = []  # per optimizer step running: id(param) -> (param, state before)

    # ------------------------------------------------------------------ setup

    def start(self) -> None:
        ctx = current_context()
        real = self.state.gathered()
        # what this call's program takes as inputs; anything else met is discovered
        self._input_params = {id(p) for p in self.state.params[: len(real[0])]} if real else set()
        self._input_optimizers = {id(o) for o in self.state.optimizers[: len(real[1])]} if real else set()
        if real:
            grads, opts, _ = real
            in_grads, in_opts, _ = self.inputs
            for p, g, jg in zip(self.state.params, grads, in_grads):
                self.note_grad(p)
                if g is not None:
                    ctx.alias(g, jg)
            for opt, groups, in_groups in zip(self.state.optimizers, opts, in_opts):
                for group, (lr, _, per_param), (lr_in, _, in_per_param) in zip(opt.param_groups, groups, in_groups):
                    for items, in_items in zip(per_param, in_per_param):
                        for (_, v), (_, jv) in zip(items or (), in_items or ()):
                            if isinstance(v, torch.Tensor):
                                ctx.alias(v, jv)
                    if isinstance(lr, torch.Tensor):
                        ctx.alias(lr, lr_in)
                    elif isinstance(lr_in, JaxTensor):
                        self._set(group, "lr", lr_in)  # the input, wherever the step reads lr

    def _set(self, mapping: dict, key: str, value: Any) -> None:
        old = mapping[key]
        mapping[key] = value
        self._undo.append(lambda: mapping.__setitem__(key, old))

    def note_grad(self, p: torch.Tensor) -> None:
        """Remember ``p.grad`` as it was before this trace (the first time ``p`` is met)."""
        if id(p) not in self.grads_before:
            grad = p.grad
            # a JaxTensor was set by this trace (backward), over None: a tensor that was
            # there would have been accumulated into in place, or cleared by a zero_grad
            # noted before
            self.grads_before[id(p)] = (p, None if isinstance(grad, JaxTensor) else grad)
            self.state.add_param(p)
            if id(p) not in self._input_params:
                self.discovered = True

    # ------------------------------------------------------------------ optimizer hooks

    def before_step(self, opt: torch.optim.Optimizer) -> None:
        self.state.add_optimizer(opt)
        if id(opt) not in self._input_optimizers:
            self.discovered = True
        before = {}
        for group in opt.param_groups:
            for p in group["params"]:
                self.note_grad(p)
                before[id(p)] = (p, dict(opt.state[p]) if p in opt.state else None)
            if group.get("capturable") is False:
                self._set(group, "capturable", True)  # torch's tensor-lr path
            lr = group["lr"]
            if isinstance(lr, JaxTensor) and isinstance(opt, torch.optim.SGD) and not lr.requires_grad:
                # SGD's single-tensor path multiplies by a tensor lr only if it requires grad
                # (else it reads it as a Python number); nothing records under step's no_grad
                lr.requires_grad_(True)
        self._steps.append(before)

    def after_step(self, opt: torch.optim.Optimizer) -> None:
        """Note the step's changes to ``opt.state``'s dicts, to undo; and whether it created
        state (a new tensor): a program is compiled for existing state only."""
        created = False
        for p, before in self._steps.pop().values():
            now = opt.state.get(p)
            if now is None:
                continue
            if before is None:
                created = created or any(isinstance(v, torch.Tensor) for v in now.values())
                self._undo.append(lambda opt=opt, p=p: opt.state.pop(p, None))
                continue
            created = created or any(isinstance(v, JaxTensor) and before.get(k) is not v for k, v in now.items())
            if now.keys() != before.keys() or any(now[k] is not before[k] for k in now):
                self._undo.append(lambda now=now, before=before: (now.clear(), now.update(before)))
        self.created = self.created or created

    @property
    def stepping(self) -> bool:
        return bool(self._steps)

    # ------------------------------------------------------------------ end

    def finish(self) -> tuple:
        """The ``.grad`` actions of this trace; every real ``.grad`` put back as it was."""
        ctx = current_context()
        candidates = dict(self.grads_before)
        for t, _jt, _slot in list(ctx.lifted.values()):
            if t.requires_grad and id(t) not in candidates and isinstance(t.grad, JaxTensor):
                candidates[id(t)] = (t, None)  # met only here: its .grad was not an input
                self.discovered = self.discovered or id(t) not in self._input_params
        actions = []
        for p, before in candidates.values():
            now = p.grad
            if now is before:
                continue
            if now is None:
                value = None
            else:
                value = array_of(now)
            actions.append((self.state.add_param(p), value))
        return tuple(actions)

    def undo(self) -> None:
        """Put back everything this trace changed on Python objects."""
        for p, before in self.grads_before.values():
            _set_grad(p, before)
        ctx = current_context()
        if ctx is not None:
            for t, _jt, _slot in list(ctx.lifted.values()):
                if isinstance(getattr(t, "grad", None), JaxTensor) and id(t) not in self.grads_before:
                    _set_grad(t, None)
        for fn in reversed(self._undo):
            fn()
        self._undo.clear()


def _set_grad(p: torch.Tensor, value) -> None:
    with torch.no_grad():
        p.grad = value


# --------------------------------------------------------------------------- hooks


def _pre_hook(opt, args, kwargs):
    trace = _current()
    if trace is not None:
        trace.before_step(opt)


def _post_hook(opt, args, kwargs):
    trace = _current()
    if trace is not None:
        trace.after_step(opt)


_hooks: list = []
_hooks_lock = threading.Lock()


def _install_hooks() -> None:
    """The global optimizer hooks, installed on the first traced step (they do nothing
    on threads that are not tracing one)."""
    with _hooks_lock:
        if not _hooks:
            _hooks.append(register_optimizer_step_pre_hook(_pre_hook))
            _hooks.append(register_optimizer_step_post_hook(_post_hook))


_original_is_compiling = torch.compiler.is_compiling


def _is_compiling() -> bool:
    trace = _current()
    if trace is not None and trace.stepping:
        return True
    return _original_is_compiling()


def _zero_grad_of(original):
    def zero_grad(self, *args, **kwargs):
        trace = _current()
        if trace is not None:
            params = (
                [p for g in self.param_groups for p in g["params"]]
                if isinstance(self, torch.optim.Optimizer)
                else list(self.parameters())
            )
            for p in params:
                trace.note_grad(p)
        return original(self, *args, **kwargs)

    return zero_grad


def _scheduler_step(self, *args, **kwargs):
    if _current() is not None:
        raise TracingError(
            f"torchjax.jit: {type(self).__name__}.step() was called inside the compiled step. "
            "A scheduler's state is Python numbers that a compiled program cannot advance; call "
            "scheduler.step() after the compiled step returns (the learning rate is an input of "
            "the program, so the new value is used by the next call without compiling again)."
        )
    return _ORIGINAL_SCHEDULER_STEP(self, *args, **kwargs)


_ORIGINAL_SCHEDULER_STEP = torch.optim.lr_scheduler.LRScheduler.step

_PATCHES = (
    CapturePatch(torch.compiler, "is_compiling", _is_compiling),
    CapturePatch(torch.optim.Optimizer, "zero_grad", _zero_grad_of(torch.optim.Optimizer.zero_grad)),
    CapturePatch(torch.nn.Module, "zero_grad", _zero_grad_of(torch.nn.Module.zero_grad)),
    CapturePatch(torch.optim.lr_scheduler.LRScheduler, "step", _scheduler_step),
)


@contextlib.contextmanager
def tracing(state: StepState, inputs: tuple) -> Iterator[StepTrace]:
    """Trace a step: within, the state's reads resolve to ``inputs``; on leaving, every
    Python-level change is undone."""
    _install_hooks()
    trace = StepTrace(state, inputs)
    outer = _current()
    _local.trace = trace
    try:
        with contextlib.ExitStack() as stack:
            for patch in _PATCHES:
                stack.enter_context(patch.held())
            trace.start()
            yield trace
    finally:
        try:
            trace.undo()
        finally:
            _local.trace = outer


def step_body(fn: Callable, state: StepState) -> Callable:
    """``fn`` as run inside a capture: ``(args, kwargs, state inputs) -> (output, actions)``."""

    def run(args, kwargs, inputs):
        state.outcome = (False, False)
        with tracing(state, inputs) as trace:
            out = fn(*args, **kwargs)
            actions = trace.finish()
        new_modules = state.add_modules(modules_met())
        state.outcome = (trace.discovered or new_modules, trace.created)
        return out, actions

    run.__qualname__ = getattr(fn, "__qualname__", type(fn).__name__)
    run.__wrapped__ = fn  # type: ignore[attr-defined]
    return run
