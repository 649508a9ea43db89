"""Thread pinning and the machine description printed above every result.

torch and XLA each keep their own thread pool; on a small machine both pools at full
size fight over the same cores and the timings measure the fight. The benchmark pins
both to one thread, and the process to one core, by default, so a ratio compares the
libraries, not their pools.
"""

from __future__ import annotations

import atexit
import os
import platform
import shutil
import subprocess
import sys
import tempfile

XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false"


def pin_threads(threads: int) -> None:
    """Pin torch and XLA to ``threads`` threads on as many cores. Must run before jax is imported.

    ``--xla_cpu_multi_thread_eigen=false`` alone leaves XLA's intra-op pool at one thread
    per core (measured: 2 ``tf_XLAEigen`` threads on 2 cores); the pool is sized from the
    process's CPU affinity, so the process is also pinned to ``threads`` cores.
    """
    if "jax" in sys.modules:
        raise RuntimeError("pin_threads: jax is already imported; XLA sizes its pool once, at import")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    flags = os.environ.get("XLA_FLAGS", "")
    if threads == 1 and XLA_ONE_THREAD not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {XLA_ONE_THREAD}".strip()
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)


def fresh_compile_caches() -> str:
    """Point torch.compile's on-disk caches (inductor's compiled kernels, FX graphs,
    AOTAutograd) at a new, empty directory, removed at exit, so that its first-call time
    is a cold compile as XLA's is (JAX keeps no cache between processes here). Returns
    the header line. A directory the user set (``TORCHINDUCTOR_CACHE_DIR``) is kept."""
    if "TORCHINDUCTOR_CACHE_DIR" in os.environ:
        return f"TORCHINDUCTOR_CACHE_DIR={os.environ['TORCHINDUCTOR_CACHE_DIR']} (set by the user; may be warm)"
    path = tempfile.mkdtemp(prefix="bench-inductor-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = path
    return "fresh, empty cache directory (cold compiles)"


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def xla_pool_threads() -> str:
    """The size of XLA's CPU intra-op pool (threads named ``tf_XLAEigen``), read from /proc."""
    import jax.numpy as jnp

    (jnp.ones(8) + 1).block_until_ready()  # the pool exists once the CPU client does
    if not os.path.isdir("/proc/self/task"):
        return "unknown (no /proc)"
    names = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                names.append(f.read().strip())
        except OSError:  # the thread ended
            continue
    return str(names.count("tf_XLAEigen"))


def _affinity() -> str:
    if not hasattr(os, "sched_getaffinity"):
        return "unknown"
    return "CPUs " + ", ".join(map(str, sorted(os.sched_getaffinity(0))))


def describe() -> dict[str, str]:
    """Machine, thread counts and versions, as ``name: value`` pairs."""
    import jax
    import numpy as np
    import torch
    import transformers

    import torchjax

    return {
        "machine": f"{cpu_model()}, {os.cpu_count()} logical CPUs ({platform.machine()})",
        "torch threads": f"{torch.get_num_threads()} intra-op, {torch.get_num_interop_threads()} inter-op",
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") or "(unset)",
        "CPU affinity": _affinity(),
        "XLA intra-op pool threads": xla_pool_threads(),
        "versions": (
            f"python {platform.python_version()}, torch {torch.__version__}, jax {jax.__version__}, "
            f"jaxlib {jax.lib.__version__}, numpy {np.__version__}, transformers {transformers.__version__}, "
            f"torchjax {torchjax.__version__}"
        ),
        "jax backend": f"{jax.default_backend()} ({len(jax.devices())} device(s))",
    }
