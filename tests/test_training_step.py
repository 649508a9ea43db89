"""A whole training step under ``torchjax.jit``: forward, ``loss.backward()``,
``optimizer.step()``, ``zero_grad()`` in one program, against the same step run eagerly.

After every call the module's parameters and buffers, their ``.grad`` (None where torch
leaves None) and the optimizer's state must hold what eager torch holds.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import torchjax
from torchjax import TracingError

torch.manual_seed(0)


def mlp():
    return torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(), torch.nn.Linear(16, 5))


class ConvBN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 4, 3, padding=1, bias=False)  # a bias before BN gets a zero gradient
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return self.fc(x.flatten(1))


def batches(n, shape, classes=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(*shape, generator=g), torch.randint(0, classes, (shape[0],), generator=g)) for _ in range(n)]


def assert_same_state(model, ref, opt, ref_opt, atol=1e-5, rtol=1e-4):
    for (name, a), b in zip(model.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, atol=atol, rtol=rtol, msg=lambda m, name=name: f"{name}: {m}")
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        assert (p.grad is None) == (q.grad is None), f"{name}.grad: {p.grad} vs {q.grad}"
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, atol=atol, rtol=rtol)
    for p, q in zip(model.parameters(), ref.parameters()):
        sa, sb = opt.state.get(p, {}), ref_opt.state.get(q, {})
        assert sa.keys() == sb.keys()
        for k in sa:
            if isinstance(sb[k], torch.Tensor):
                torch.testing.assert_close(sa[k], sb[k], atol=atol, rtol=rtol, msg=lambda m, k=k: f"state {k}: {m}")
            else:
                assert sa[k] == sb[k]


def compare(make_model, make_opt, step, data, *, schedule=None, atol=1e-5, rtol=1e-4):
    """Run ``step(model, opt, x, y)`` eagerly and through ``torchjax.jit`` side by side."""
    ref = make_model()
    model = copy.deepcopy(ref)
    ref_opt, opt = make_opt(ref), make_opt(model)
    sched = [schedule(o) for o in (ref_opt, opt)] if schedule else None
    fast = torchjax.jit(lambda x, y: step(model, opt, x, y))
    for x, y in data:
        want = step(ref, ref_opt, x, y)
        got = fast(x, y)
        torch.testing.assert_close(got, want.detach(), atol=atol, rtol=rtol)
        if sched:
            for s in sched:
                s.step()
        assert_same_state(model, ref, opt, ref_opt, atol, rtol)
    return fast


def standard_step(model, opt, x, y):
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    opt.zero_grad()
    return loss


OPTIMIZERS = {
    "sgd": lambda m, **kw: torch.optim.SGD(m.parameters(), lr=0.05, **kw),
    "sgd_momentum": lambda m, **kw: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, **kw),
    "sgd_nesterov_wd": lambda m, **kw: torch.optim.SGD(
        m.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2, **kw
    ),
    "adam": lambda m, **kw: torch.optim.Adam(m.parameters(), lr=1e-2, **kw),
    "adam_amsgrad_wd": lambda m, **kw: torch.optim.Adam(m.parameters(), lr=1e-2, amsgrad=True, weight_decay=0.1, **kw),
    "adamw": lambda m, **kw: torch.optim.AdamW(m.parameters(), lr=1e-2, **kw),
}


@pytest.mark.parametrize("foreach", [False, True], ids=["single_tensor", "foreach"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_mlp_20_steps_match_eager(name, foreach):
    fast = compare(mlp, lambda m: OPTIMIZERS[name](m, foreach=foreach), standard_step, batches(20, (8, 12)))
    assert fast.compiled.cache_size() == 1  # the first call ran eagerly, every other one compiled once


@pytest.mark.parametrize("name", ["sgd_momentum", "adam"])
def test_cnn_with_batchnorm_20_steps_match_eager(name):
    compare(ConvBN, OPTIMIZERS[name], standard_step, batches(20, (6, 2, 8, 8)))


def test_zero_grad_first_and_set_to_none_false():
    def step(model, opt, x, y):
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    compare(mlp, OPTIMIZERS["adamw"], step, batches(6, (8, 12)))


def test_grads_left_for_the_caller():
    def step(model, opt, x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    fast = compare(mlp, OPTIMIZERS["sgd_momentum"], step, batches(6, (8, 12)))
    assert fast.compiled.cache_size() == 1


def test_clip_grad_norm_inside_the_step():
    def step(model, opt, x, y):
        loss = F.cross_entropy(model(x) * 10, y)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        opt.zero_grad()
        return loss + 0 * norm

    compare(mlp, OPTIMIZERS["adamw"], step, batches(8, (8, 12)))


@pytest.mark.parametrize(
    "schedule",
    [
        lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10),
        lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 1.0 / (1 + e)),
    ],
    ids=["step", "cosine", "lambda"],
)
@pytest.mark.parametrize("name", ["sgd_momentum", "adamw"])
def test_lr_scheduler_between_calls_is_an_input(name, schedule):
    fast = compare(mlp, OPTIMIZERS[name], standard_step, batches(8, (8, 12)), schedule=schedule)
    assert fast.compiled.cache_size() == 1  # a new learning rate does not compile again


def test_gradient_accumulation_inside_one_call():
    def step(model, opt, x, y):
        total = 0
        for xs, ys in zip(x.chunk(2), y.chunk(2)):
            loss = F.cross_entropy(model(xs), ys) / 2
            loss.backward()
            total = total + loss.detach()
        opt.step()
        opt.zero_grad()
        return total

    compare(mlp, OPTIMIZERS["adam"], step, batches(6, (8, 12)))


def test_gradient_accumulation_across_calls():
    ref = mlp()
    model = copy.deepcopy(ref)
    ref_opt, opt = OPTIMIZERS["adamw"](ref), OPTIMIZERS["adamw"](model)

    def accumulate(model, x, y):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    def update(opt):
        opt.step()
        opt.zero_grad()

    fast_accumulate = torchjax.jit(lambda x, y: accumulate(model, x, y))
    fast_update = torchjax.jit(lambda: update(opt))
    data = batches(12, (8, 12))
    for i, (x, y) in enumerate(data):
        torch.testing.assert_close(fast_accumulate(x, y), accumulate(ref, x, y).detach())
        if i % 3 == 2:
            update(ref_opt)
            fast_update()
        assert_same_state(model, ref, opt, ref_opt)


def test_grads_present_before_the_first_call_are_accumulated_into():
    ref = mlp()
    model = copy.deepcopy(ref)
    x, y = batches(1, (8, 12))[0]
    for m in (ref, model):
        F.cross_entropy(m(x), y).backward()
    grad_before = model[0].weight.grad

    def accumulate(m):
        F.cross_entropy(m(x), y).backward()

    fast = torchjax.jit(lambda: accumulate(model))
    for _ in range(3):
        accumulate(ref)
        fast()
        for p, q in zip(model.parameters(), ref.parameters()):
            torch.testing.assert_close(p.grad, q.grad)
    assert model[0].weight.grad is grad_before  # accumulated in place, as torch does


def test_step_outputs_do_not_require_grad():
    model = mlp()
    opt = OPTIMIZERS["sgd"](model)
    fast = torchjax.jit(lambda x, y: standard_step(model, opt, x, y))
    for x, y in batches(3, (8, 12)):  # the first call runs eagerly, the others compiled
        loss = fast(x, y)
        assert not loss.requires_grad and loss.grad_fn is None


def test_scheduler_step_inside_the_compiled_step_is_refused():
    model = mlp()
    opt = OPTIMIZERS["adamw"](model)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1)
    x, y = batches(1, (8, 12))[0]
    standard_step(model, opt, x, y)  # the optimizer's state exists: the next call is traced

    def step(x, y):
        loss = standard_step(model, opt, x, y)
        sched.step()
        return loss

    with pytest.raises(TracingError, match=r"scheduler.step\(\) after the compiled step"):
        torchjax.jit(step)(x, y)
    assert all(p.grad is None for p in model.parameters())  # nothing of the trace left behind
    assert all(not isinstance(v, torchjax.JaxTensor) for s in opt.state.values() for v in s.values())


def test_gpt2_20_steps_match_eager():
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(
        n_layer=2, n_embd=32, n_head=4, vocab_size=100, n_positions=32,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,  # dropout draws from JAX's generator, not torch's
    )  # fmt: skip
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    data = [(torch.randint(0, 100, (2, 16), generator=g), None) for _ in range(20)]

    def step(model, opt, ids, _):
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        return loss

    def make_opt(m):
        return torch.optim.AdamW(m.parameters(), lr=3e-3, weight_decay=0.01)

    fast = compare(lambda: transformers.GPT2LMHeadModel(config), make_opt, step, data, atol=2e-5, rtol=2e-4)
    assert fast.compiled.cache_size() == 1


def test_a_view_of_a_parameter_sees_every_update():
    """Parameters take the program's output buffers over only when nothing else sees
    their storage; a view held elsewhere keeps seeing the parameter, as in eager torch."""
    ref = mlp()
    model = copy.deepcopy(ref)
    row = model[0].weight[0]  # a view, as a module that slices its weight would hold
    opt, ref_opt = OPTIMIZERS["adamw"](model), OPTIMIZERS["adamw"](ref)
    fast = torchjax.jit(lambda x, y: standard_step(model, opt, x, y))
    for x, y in batches(4, (8, 12)):
        standard_step(ref, ref_opt, x, y)
        fast(x, y)
        torch.testing.assert_close(row, ref[0].weight[0])
        torch.testing.assert_close(row, model[0].weight[0])


def test_state_lives_in_the_program_buffers_between_calls():
    """In the steady state a step neither copies the parameters nor crosses them again:
    each parameter's buffer is the program's, donated to every call, which writes the
    update into it in place."""
    from torchjax._src.crossing import crossing_cache

    model = mlp()
    opt = OPTIMIZERS["adam"](model)
    fast = torchjax.jit(lambda x, y: standard_step(model, opt, x, y))
    data = batches(6, (8, 12))
    for x, y in data[:3]:  # eager; compiled (takes the output buffers over); in place
        fast(x, y)
    tensors = [*model.parameters(), *[v for s in opt.state.values() for v in s.values()]]
    pointers = [t.data_ptr() for t in tensors]
    for x, y in data[3:]:
        values = [t.clone() for t in tensors]
        fast(x, y)
        assert [t.data_ptr() for t in tensors] == pointers  # written in place
        assert all(not torch.equal(t, v) for t, v in zip(tensors, values))  # and written
        for t in tensors:  # the next call reads the same buffer, not a crossing of it
            assert crossing_cache.get(t).unsafe_buffer_pointer() == t.data_ptr()


def test_a_changed_hyperparameter_compiles_again_and_is_used():
    """Only the learning rate is an input; a new momentum is compiled in (and used)."""

    def bump(o):  # a scheduler-like change of another hyperparameter
        class Bump:
            def step(self):
                for g in o.param_groups:
                    g["momentum"] = g["momentum"] * 0.5

        return Bump()

    fast = compare(mlp, OPTIMIZERS["sgd_momentum"], standard_step, batches(4, (8, 12)), schedule=bump)
    assert fast.compiled.cache_size() == 3  # calls 2, 3, 4 each met a new momentum


def test_a_tensor_learning_rate_is_read_every_call():
    def make_opt(m):
        return torch.optim.Adam(m.parameters(), lr=torch.tensor(0.01), foreach=False)

    def halve(o):
        class Halve:
            def step(self):
                for g in o.param_groups:
                    g["lr"].mul_(0.5)

        return Halve()

    fast = compare(mlp, make_opt, standard_step, batches(5, (8, 12)), schedule=halve)
    assert fast.compiled.cache_size() == 1


def test_dropout_in_attention_trains_and_memory_analysis_is_reported():
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=1, n_embd=32, n_head=4, vocab_size=50, n_positions=16, attn_pdrop=0.2)
    model = transformers.GPT2LMHeadModel(config)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ids = torch.randint(0, 50, (4, 16))

    @torchjax.jit
    def step():
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    assert step.memory_analysis() is None  # nothing compiled yet
    losses = [float(step()) for _ in range(15)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[1] - 0.1  # it learns (the batch is fixed)
    analysis = step.memory_analysis()
    assert analysis.argument_size_in_bytes > sum(p.numel() * 4 for p in model.parameters())


def test_disable_jit_runs_a_training_step_op_by_op():
    ref = mlp()
    model = copy.deepcopy(ref)
    ref_opt, opt = OPTIMIZERS["adam"](ref), OPTIMIZERS["adam"](model)
    fast = torchjax.jit(lambda x, y: standard_step(model, opt, x, y))
    with torchjax.disable_jit():
        for x, y in batches(4, (8, 12)):
            loss = fast(x, y)
            torch.testing.assert_close(loss, standard_step(ref, ref_opt, x, y).detach())
            assert_same_state(model, ref, opt, ref_opt)
    assert fast.compiled.cache_size() == 0


def test_train_and_eval_modes_each_get_their_program():
    """``model.eval()`` between calls must not run the program traced in training mode."""
    model = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.Dropout(0.5), torch.nn.BatchNorm1d(16))
    fast_model = torchjax.jit(model)
    fast_fn = torchjax.jit(lambda x: model(x) * 2)
    x = torch.randn(8, 12)
    for mode in (True, False, True, False):
        model.train(mode)
        with torch.no_grad():
            got, got_fn = fast_model(x), fast_fn(x)
        model.eval()  # the reference, without dropout's randomness or a stats update
        if not mode:
            torch.testing.assert_close(got, model(x))
            torch.testing.assert_close(got_fn, model(x) * 2)
        else:
            assert (got == 0).float().mean() > 0.1 or not torch.allclose(got, model(x))  # dropout ran
    assert fast_model.compiled.cache_size() == 2 and fast_fn.compiled.cache_size() == 2
