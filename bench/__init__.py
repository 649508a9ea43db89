"""Benchmarks of torchjax against torch.func and hand-written JAX (``python -m bench.run``).

The workloads are those of ``WORKLOADS.md``: the torch.func tutorials (per-sample
gradients, ensembling, jacobians, hessians), a small GPT-2, per-call overhead and
crossing. Benchmarks are never run as tests; ``tests/test_bench_quick.py`` only checks
that ``--quick`` produces a complete table.
"""
