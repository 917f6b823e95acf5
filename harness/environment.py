"""The hardware and software a run executed on, captured for its record.

Anything that can change a number is pinned here: every installed distribution, Python,
OS, the CPU model and its floating-point instruction set, thread pools and the variables
that force kernel choices, GPU/CUDA/cuDNN, torch's build and determinism flags, and the
harness source's git commit with what was uncommitted. :func:`capture` gives short values
for MLflow tags; :func:`capture_details` adds the long form (package list, every CPU flag,
thread pools, torch's build configuration, the dirty files) for a JSON artifact. numpy and
torch are only inspected when the run already imported them, so tabular runs do not pay
torch's import time. Capturing never raises and never prints: what cannot be read is
recorded as ``unknown (why)``, because a missing fact must not cost a run.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.config import canonical_json
from harness.version import __version__

#: the folder whose git state is recorded: the checkout holding the harness package
SOURCE_ROOT = Path(__file__).resolve().parent.parent
CPUINFO = Path("/proc/cpuinfo")
#: MLflow's limit on a tag value (``mlflow.utils.validation.MAX_TAG_VAL_LENGTH``)
TAG_LIMIT = 8000
#: dirty files larger than this are described by their size, so capturing stays fast
HASH_LIMIT = 1 << 20
GIT_TIMEOUT_S = 10

PACKAGES = ("harness", "numpy", "pandas", "h5py", "mlflow", "torch")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: variables that force which kernels torch, oneDNN, MKL, OpenBLAS or numpy dispatch to
DISPATCH_VARIABLES = (
    "ATEN_CPU_CAPABILITY",
    "DNNL_MAX_CPU_ISA",
    "ONEDNN_MAX_CPU_ISA",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "OPENBLAS_CORETYPE",
    "NPY_DISABLE_CPU_FEATURES",
)
#: headline vector extensions (``cpu.isa``), kept in this fixed form so records compare
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "amx_tile", "neon", "asimd")
#: the instruction-set flags BLAS, oneDNN, torch and numpy choose floating-point kernels
#: by, per /proc/cpuinfo line (x86 ``flags``, ARM ``Features``); every other flag is excluded
FP_ISA_FLAGS = {
    "flags": re.compile(r"sse|sse2|pni|ssse3|sse4_[12]|avx\w*|fma4?|f16c|xop|amx_\w+"),
    "Features": re.compile(
        r"fp|fphp|asimd\w*|sve\w*|sme\w*|bf16|ebf16|i8mm|fcma|frint|neon|vfp\w*"
    ),
}
FP_ISA_RULE = (
    "cpu.flags keeps the instruction-set extensions floating-point kernels are chosen by: "
    "x86 sse, sse2, pni (SSE3), ssse3, sse4_1, sse4_2, avx*, fma, fma4, f16c, xop, amx_*; "
    "ARM fp, fphp, asimd*, sve*, sme*, bf16, ebf16, i8mm, fcma, frint, neon, vfp*. Excluded: "
    "the bugs line and mitigation flags (ibrs, ibpb, stibp, ssbd, md_clear, flush_l1d, "
    "arch_capabilities, ...), which microcode and kernel set; TSX (rtm, hle), which "
    "microcode can switch off; hypervisor, virtualisation, timer and power flags "
    "(hypervisor, vmx, svm, constant_tsc, arat, ...), which differ between a VM and its host; "
    "integer, crypto and memory extensions (aes, sha_ni, bmi1, bmi2, popcnt, erms, ...), "
    "which do not change floating-point results"
)


def installed_packages() -> list[str]:
    """``name==version`` of every distribution on ``sys.path``, sorted by normalised name.

    Only each metadata header is read (the full parser costs ~0.15 s for 100 packages);
    where a name is installed twice, the first on ``sys.path`` wins, as it does for import.
    """
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        fields = {}
        try:
            text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
        except (OSError, ValueError):
            text = ""
        for line in text.partition("\n\n")[0].splitlines():
            key, _, value = line.partition(":")
            if key in ("Name", "Version"):
                fields.setdefault(key, value.strip())
        name = fields.get("Name") or dist.metadata["Name"] or "unknown"
        version = fields.get("Version") or dist.version or "unknown"
        found.setdefault(re.sub(r"[-_.]+", "-", name).lower(), version)
    return [f"{name}=={version}" for name, version in sorted(found.items())]


def _packages() -> tuple[dict[str, str], list[str]]:
    """The versions a reader looks for first, and the count and sha256 of the full list."""
    listed = installed_packages()
    versions = dict(entry.split("==", 1) for entry in listed)
    tags = {f"package.{name}": versions.get(name, "not installed") for name in PACKAGES}
    tags["package.harness"] = __version__  # the running code's own, not its metadata's
    tags.update({"packages.count": str(len(listed)), "packages.sha256": _sha256(listed)})
    return tags, listed


def _read_cpuinfo() -> tuple[str | None, str | None, list[str], list[str]]:
    """Model, flags line key, flags and bugs of the first processor block that names them.

    Reading stops there: the kernel repeats them per core, and generating every core's
    block takes milliseconds per core on large machines.
    """
    model, key, flags, bugs = None, None, [], []
    with CPUINFO.open("rb") as file:
        for raw in file:
            name, _, value = raw.decode("utf-8", "replace").partition(":")
            name = name.strip()
            if not name and model is not None and key is not None:
                break
            if name in ("model name", "Hardware") and model is None:
                model = value.strip()
            elif name in FP_ISA_FLAGS and key is None:
                key, flags = name, sorted(set(value.split()))
            elif name == "bugs" and not bugs:
                bugs = sorted(set(value.split()))
    return model, key, flags, bugs


def _cpu() -> tuple[dict[str, str], dict[str, Any]]:
    """Model, instruction set, cores and kernel-forcing variables; details keep every flag."""
    try:
        model, key, flags, bugs = _read_cpuinfo()
        empty = "none" if flags else f"unknown (no flags in {CPUINFO})"
    except OSError as error:
        model, key, flags, bugs = None, None, [], []
        empty = f"unknown ({CPUINFO}: {error.strerror or error})"
    fp_flags = [f for f in flags if key is not None and FP_ISA_FLAGS[key].fullmatch(f)]
    affinity = getattr(os, "sched_getaffinity", None)
    dispatch = [f"{v}={os.environ[v]}" for v in DISPATCH_VARIABLES if v in os.environ]
    tags = {
        "model": model or platform.processor() or "unknown",
        "machine": platform.machine() or "unknown",
        "isa": " ".join(f for f in ISA_FLAGS if f in flags) or empty,
        "flags": " ".join(fp_flags) or empty,
        "logical_cores": str(os.cpu_count()),
        "usable_cores": str(len(affinity(0))) if affinity else "unknown (no sched_getaffinity)",
        "dispatch_env": " ".join(dispatch) or "none set",
    }
    details = {
        "model": tags["model"],
        "flags": flags,
        "fp_isa_flags": fp_flags,
        "rule": FP_ISA_RULE,
        "bugs": bugs,
    }
    return tags, details


def cpu_description() -> dict[str, str]:
    """CPU model, the instruction-set flags that change floating-point kernels, core counts."""
    return _cpu()[0]


class _GitUnavailable(Exception):
    """git could not be run at all (not installed, timed out)."""


def _git_run(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """A read-only git command in ``root``: C locale, no optional index lock, no inherited
    repository overrides (a hook's GIT_DIR would otherwise redirect it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE")}
    env.update(LC_ALL="C", LANGUAGE="C", GIT_OPTIONAL_LOCKS="0")
    env.pop("GIT_INDEX_FILE", None)
    try:
        return subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            env=env,
            timeout=GIT_TIMEOUT_S,
        )
    except FileNotFoundError:
        raise _GitUnavailable("git not found on PATH") from None
    except (OSError, subprocess.TimeoutExpired) as error:
        raise _GitUnavailable(f"git failed: {type(error).__name__}") from None


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "backslashreplace")


def _file_digest(path: Path) -> str:
    """sha256 of a dirty file's working-tree content, or what it is instead."""
    try:
        if path.is_symlink():
            return f"symlink to {os.readlink(path)}"
        if not path.exists():
            return "absent"
        if not path.is_file():
            return "not a file"
        size = path.stat().st_size
        if size > HASH_LIMIT:
            return f"not hashed ({size} bytes)"
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        return f"unreadable ({error.strerror or error})"


def _git(root: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """Commit of the checkout holding ``root`` and every path that differs from it:
    modified, staged, deleted and untracked files (not ignored ones), each with the sha256
    of its working-tree content, so two dirty records can be told apart."""

    def unknown(reason: str, commit: str | None = None) -> tuple[dict[str, str], dict[str, Any]]:
        keys = ("commit", "dirty", "dirty_count", "dirty_sha256")
        tags = dict.fromkeys(keys, f"unknown ({reason})")
        if commit is not None:
            tags["commit"] = commit
        return tags, {"root": str(root), "commit": commit, "error": reason}

    def reason(done: subprocess.CompletedProcess[bytes], default: str) -> str:
        lines = _decode(done.stderr).strip().splitlines()
        return lines[0] if lines else default

    try:
        head = _git_run(root, "rev-parse", "--show-toplevel", "HEAD")
        lines = head.stdout.splitlines()
        if head.returncode != 0 or len(lines) != 2:
            return unknown(reason(head, "not a git checkout"))
        top, commit = os.fsdecode(lines[0]), _decode(lines[1])
        if _git_run(root, "check-ignore", "-q", ".").returncode == 0:
            return unknown(f"{root} is ignored by the checkout at {top}: an installed copy")
        status = _git_run(
            root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"
        )
    except _GitUnavailable as error:
        return unknown(str(error))
    if status.returncode != 0:
        return unknown(reason(status, "git status failed"), commit)
    dirty = [
        {
            "status": _decode(entry[:2]),
            "path": _decode(entry[3:]),
            "sha256": _file_digest(Path(top, os.fsdecode(entry[3:]))),
        }
        for entry in status.stdout.split(b"\0")
        if entry
    ]
    tags = {
        "commit": commit,
        "dirty": str(bool(dirty)).lower(),
        "dirty_count": str(len(dirty)),
        "dirty_sha256": _sha256(dirty),
    }
    return tags, {"root": str(root), "toplevel": top, "commit": commit, "dirty": dirty}


def git_state(root: Path = SOURCE_ROOT) -> dict[str, str]:
    """Commit of the harness source tree, whether anything differed from it (untracked
    files included, ignored ones not), how many paths and the sha256 of their listing."""
    return _safely(lambda: _git(root), "error")[0]


def _threads() -> tuple[dict[str, str], list[dict[str, Any]] | str]:
    """Thread variables and the BLAS and OpenMP pools this process has loaded: library,
    version, threads, and (OpenBLAS, BLIS) the core type whose kernels it picked."""
    tags = {name: os.environ.get(name, "unset") for name in THREAD_VARIABLES}
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {**tags, "pools": "threadpoolctl not installed"}, "threadpoolctl not installed"
    pools = threadpool_info()
    summary = []
    for pool in pools:
        line = f"{pool.get('internal_api')}:{pool.get('prefix')}"
        if pool.get("version"):
            line += f" {pool['version']}"
        line += f" threads={pool.get('num_threads')}"
        for key in ("threading_layer", "architecture"):
            if pool.get(key):
                line += f" {key}={pool[key]}"
        summary.append(line)
    return {**tags, "pools": "; ".join(summary) or "none loaded"}, pools


def _numpy() -> tuple[dict[str, str], str]:
    """The SIMD targets numpy's own kernels run on here (its baseline, and the dispatched
    targets this CPU supports): float64 exp and log differ between them in the last bit."""
    umath = sys.modules.get("numpy._core._multiarray_umath") or sys.modules.get(
        "numpy.core._multiarray_umath"
    )
    if umath is None:
        return {"simd": "numpy not used by this run"}, "numpy not used by this run"
    found = getattr(umath, "__cpu_features__", {})
    baseline = " ".join(getattr(umath, "__cpu_baseline__", [])) or "none"
    dispatch = " ".join(t for t in getattr(umath, "__cpu_dispatch__", []) if found.get(t))
    simd = f"baseline {baseline}; dispatch {dispatch or 'none'}"
    return {"simd": simd}, simd


def _nvidia_driver() -> str:
    """The NVIDIA driver version, which torch does not expose; "unknown" without nvidia-smi."""
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired, UnicodeDecodeError):
        return "unknown"
    return (
        done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout else "unknown"
    )


def _torch() -> tuple[dict[str, str], dict[str, str] | str]:
    """Threads, GPU, determinism flags and build configuration, if this process uses torch."""
    if "torch" not in sys.modules:
        return {"torch": "not used by this run", "gpu": "none (not used)"}, "not used by this run"
    import torch

    config, parallel = torch.__config__.show(), torch.__config__.parallel_info()
    backend = re.search(r"^ATen parallel backend: (.+)$", parallel, re.MULTILINE)
    info = {
        "torch_threads": str(torch.get_num_threads()),
        "torch_interop_threads": str(torch.get_num_interop_threads()),
        "torch_cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "deterministic_algorithms": str(torch.are_deterministic_algorithms_enabled()).lower(),
        "cudnn_deterministic": str(torch.backends.cudnn.deterministic).lower(),
        "cudnn_benchmark": str(torch.backends.cudnn.benchmark).lower(),
        "parallel_backend": backend.group(1).strip() if backend else "unknown",
        "config_sha256": hashlib.sha256(config.encode()).hexdigest(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = str(torch.version.cuda)
        info["cudnn"] = str(torch.backends.cudnn.version())
        info["gpu_count"] = str(torch.cuda.device_count())
        info["gpu_driver"] = _nvidia_driver()
    else:
        info["gpu"] = "none"
    return info, {"config": config, "parallel_info": parallel}


def _sha256(value: Any) -> str:
    """sha256 of a value's canonical JSON, as every hash in a record is made."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


_Probe = Callable[[], tuple[dict[str, str], Any]]


def _prefixed(prefix: str, probe: _Probe) -> _Probe:
    def run() -> tuple[dict[str, str], Any]:
        tags, detail = probe()
        return {f"{prefix}.{key}": value for key, value in tags.items()}, detail

    return run


def _safely(probe: _Probe, error_key: str) -> tuple[dict[str, str], Any]:
    """A probe's tags and details; an unexpected error becomes one ``error_key`` tag naming
    it, and warnings are silenced: capturing must neither fail a run nor print."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return probe()
    except Exception as error:  # the run matters more than one fact about its host
        reason = f"unknown ({type(error).__name__}: {error})"[:1000]
        return {error_key: reason}, reason


def _probe(root: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """Everything, once, so the flat tags and the long-form details agree."""
    flat = {
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "os": platform.platform(),
    }
    details: dict[str, Any] = {}
    sections: dict[str, _Probe] = {
        "packages": _packages,
        "cpu": _prefixed("cpu", _cpu),
        "git": _prefixed("git", lambda: _git(root)),
        "threadpools": _prefixed("threads", _threads),
        "numpy": _prefixed("numpy", _numpy),
        "torch": _prefixed("torch", _torch),
    }
    for section, probe in sections.items():
        tags, details[section] = _safely(probe, f"{section}.error")
        flat.update(tags)
    long_tags = {key: value for key, value in flat.items() if len(value) > TAG_LIMIT}
    for key, value in long_tags.items():
        flat[key] = f"sha256:{hashlib.sha256(value.encode()).hexdigest()} ({len(value)} chars)"
    return flat, {"tags": flat, "long_tags": long_tags, **details}


def capture(root: Path = SOURCE_ROOT) -> dict[str, str]:
    """Flat ``section.key -> value`` description of this process's environment, every value
    a string short enough for an MLflow tag; ``root`` is the checkout whose git state counts."""
    return _probe(root)[0]


def capture_details(root: Path = SOURCE_ROOT) -> dict[str, Any]:
    """The long form, JSON-ready for an artifact: ``tags`` (what :func:`capture` returns,
    from the same look), ``long_tags`` (values too long for a tag, in full), ``packages``,
    ``cpu`` (every flag, the kept ones and the rule), ``git`` (the dirty paths and their
    sha256), ``threadpools``, ``numpy`` and ``torch`` (build configuration, parallel info)."""
    return _probe(root)[1]
