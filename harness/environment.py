"""The hardware and software a run executed on, captured for its record.

Anything that can change a number is pinned here: package versions, Python, OS, CPU
model and instruction set, thread settings, GPU/CUDA/cuDNN and determinism flags, and
the harness source's git commit with a dirty flag. torch is only inspected when the run
already imported it, so tabular runs do not pay its import time.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import harness

PACKAGES = ("harness", "numpy", "pandas", "h5py", "mlflow", "torch")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "amx_tile", "neon", "asimd")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["harness"] = harness.__version__
    return versions


def cpu_description() -> dict[str, str]:
    """CPU model and the instruction-set flags that change floating-point kernels."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Hardware") and model in ("unknown", "", platform.machine()):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {
        "model": model,
        "machine": platform.machine(),
        "isa": " ".join(flag for flag in ISA_FLAGS if flag in flags) or "unknown",
        "logical_cores": str(os.cpu_count()),
        "usable_cores": str(len(os.sched_getaffinity(0))),
    }


def git_state() -> dict[str, str]:
    """Commit of the harness source tree and whether it had uncommitted changes."""
    root = Path(harness.__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": "unknown (not a git checkout)", "dirty": "unknown"}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": "unknown" if status is None else str(bool(status)).lower()}


def _nvidia_driver() -> str:
    """The NVIDIA driver version, which torch does not expose; "unknown" without nvidia-smi."""
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (
        done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout else "unknown"
    )


def torch_description() -> dict[str, str]:
    """Threads, GPU and determinism flags, if this process uses torch."""
    if "torch" not in sys.modules:
        return {"torch": "not used by this run", "gpu": "none (not used)"}
    import torch

    info = {
        "torch_threads": str(torch.get_num_threads()),
        "torch_interop_threads": str(torch.get_num_interop_threads()),
        "torch_cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "deterministic_algorithms": str(torch.are_deterministic_algorithms_enabled()).lower(),
        "cudnn_deterministic": str(torch.backends.cudnn.deterministic).lower(),
        "cudnn_benchmark": str(torch.backends.cudnn.benchmark).lower(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = str(torch.version.cuda)
        info["cudnn"] = str(torch.backends.cudnn.version())
        info["gpu_count"] = str(torch.cuda.device_count())
        info["gpu_driver"] = _nvidia_driver()
    else:
        info["gpu"] = "none"
    return info


def capture() -> dict[str, str]:
    """Flat ``section.key -> value`` description of this process's environment."""
    flat: dict[str, str] = {
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "os": platform.platform(),
    }
    flat.update({f"package.{k}": v for k, v in package_versions().items()})
    flat.update({f"cpu.{k}": v for k, v in cpu_description().items()})
    flat.update({f"git.{k}": v for k, v in git_state().items()})
    flat.update({f"threads.{v}": os.environ.get(v, "unset") for v in THREAD_VARIABLES})
    flat.update({f"torch.{k}": v for k, v in torch_description().items()})
    return flat
