PY ?= python
# One thread per process for torch and XLA: tests run two xdist workers on two cores.
export OMP_NUM_THREADS ?= 1
export XLA_FLAGS ?= --xla_cpu_multi_thread_eigen=false
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup demo test test-ops-full lint typecheck bench bench-quick

setup:
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'

demo: setup
	$(PY) -m torchjax.demo

test: setup
	$(PY) -m pytest -q -n 2 --dist loadgroup

test-ops-full: setup
	TORCHJAX_OPINFO_FULL=1 $(PY) -m pytest -q -n 2 tests/test_ops.py

lint:
	ruff check torchjax tests bench
	ruff format --check torchjax tests bench

typecheck:
	$(PY) -m mypy torchjax

bench: setup
	$(PY) -m bench.run

bench-quick:
	$(PY) -m bench.run --quick
