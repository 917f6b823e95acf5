import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import harness
from harness import environment
from harness.config import canonical_json
from harness.environment import (
    DISPATCH_VARIABLES,
    TAG_LIMIT,
    THREAD_VARIABLES,
    capture,
    capture_details,
    git_state,
)

#: flags a CPU reports that must never reach ``cpu.flags``: microcode, kernel, hypervisor
VOLATILE = {
    "md_clear", "flush_l1d", "arch_capabilities", "ibrs", "ibpb", "stibp", "ssbd", "rtm",
    "hle", "hypervisor", "vmx", "constant_tsc", "arat", "aes", "bmi2", "sme", "misalignsse",
}  # fmt: skip


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def no_kernel_variables(monkeypatch):
    """Every variable the capture reads for kernels and threads is cleared for each test,
    whatever the calling machine sets (some set OPENBLAS_CORETYPE so that OpenBLAS computes
    correctly); a test sets the ones it inspects. Only this process's view changes: BLAS
    read them when it was loaded and keeps its choice."""
    for name in (*DISPATCH_VARIABLES, *THREAD_VARIABLES):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A committed checkout with an ignore file, under no user or system git config."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    root = tmp_path / "checkout"
    root.mkdir()
    (root / ".gitignore").write_text("*.log\nbuild/\n")
    (root / "code.py").write_text("x = 1\n")
    for args in (
        ["init", "-q"],
        ["add", "."],
        ["-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "start"],
    ):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    return root


def test_a_clean_checkout_stays_clean_when_only_ignored_files_are_added(repo):
    clean = git_state(repo)
    assert clean["dirty"] == "false" and clean["dirty_count"] == "0"
    assert len(clean["commit"]) == 40
    (repo / "run.log").write_text("ignored")
    (repo / "build").mkdir()
    (repo / "build" / "out.bin").write_bytes(b"\0" * 10)
    assert git_state(repo) == clean


def test_an_untracked_file_makes_the_checkout_dirty_and_is_listed_with_its_hash(repo):
    (repo / "notes.py").write_text("a")
    state = git_state(repo)
    assert state["dirty"] == "true" and state["dirty_count"] == "1"
    dirty = capture_details(repo)["git"]["dirty"]
    assert dirty == [{"status": "??", "path": "notes.py", "sha256": sha256(b"a")}]
    assert state["dirty_sha256"] == sha256(canonical_json(dirty).encode())
    (repo / "notes.py").write_text("b")
    assert git_state(repo)["dirty_sha256"] != state["dirty_sha256"]


def test_modified_and_deleted_tracked_files_are_listed(repo):
    (repo / "code.py").write_text("x = 2\n")
    (repo / ".gitignore").unlink()
    dirty = capture_details(repo)["git"]["dirty"]
    assert dirty == [
        {"status": " D", "path": ".gitignore", "sha256": "absent"},
        {"status": " M", "path": "code.py", "sha256": sha256(b"x = 2\n")},
    ]


def test_a_folder_the_checkout_ignores_is_not_described_by_its_commit(repo):
    installed = repo / "build" / "site-packages"
    installed.mkdir(parents=True)
    state = git_state(installed)
    assert state["commit"].startswith("unknown (") and "ignored" in state["commit"]


def test_outside_a_checkout_every_git_value_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    state = git_state(tmp_path)
    assert set(state) == {"commit", "dirty", "dirty_count", "dirty_sha256"}
    assert all(v.startswith("unknown (") for v in state.values())


def test_capture_works_without_git_cpuinfo_or_a_valid_locale(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("LC_ALL", "xx_XX.bogus")
    monkeypatch.setenv("LANG", "xx_XX.bogus")
    monkeypatch.setattr(environment, "CPUINFO", tmp_path / "cpuinfo")
    tags = capture()
    assert tags["git.commit"] == tags["git.dirty"] == "unknown (git not found on PATH)"
    assert tags["cpu.flags"].startswith("unknown (") and tags["cpu.model"]
    assert not any(key.endswith(".error") for key in tags)
    assert capfd.readouterr() == ("", "")


def test_a_failing_probe_becomes_an_error_tag_and_the_rest_is_still_captured(monkeypatch):
    def broken() -> list[str]:
        raise RuntimeError("metadata is corrupt")

    monkeypatch.setattr(environment, "installed_packages", broken)
    details = capture_details()
    assert details["tags"]["packages.error"] == "unknown (RuntimeError: metadata is corrupt)"
    assert details["packages"] == details["tags"]["packages.error"]
    assert details["tags"]["cpu.machine"] and details["tags"]["git.commit"]


X86_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: Example EPYC 9999
flags\t\t: fpu mmx sse sse2 pni ssse3 sse4_1 sse4_2 sse4a misalignsse fma f16c avx avx2 \
avx512f avx512_vnni amx_tile aes bmi2 rtm hle hypervisor constant_tsc arat md_clear ibrs \
ibpb stibp ssbd flush_l1d arch_capabilities vmx sme
bugs\t\t: spectre_v1 spectre_v2 srso

processor\t: 1
model name\t: Example EPYC 9999
flags\t\t: fpu
"""
ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha2 crc32 atomics fphp asimdhp cpuid asimdrdm \
asimddp sve sve2 i8mm bf16 sb paca

processor\t: 1
Features\t: fp asimd
"""


@pytest.mark.parametrize(
    ("text", "flags", "isa"),
    [
        (
            X86_CPUINFO,
            "amx_tile avx avx2 avx512_vnni avx512f f16c fma pni sse sse2 sse4_1 sse4_2 ssse3",
            "sse4_2 avx avx2 fma avx512f avx512_vnni amx_tile",
        ),
        (ARM_CPUINFO, "asimd asimddp asimdhp asimdrdm bf16 fp fphp i8mm sve sve2", "asimd"),
    ],
)
def test_cpu_flags_keep_the_floating_point_isa_and_drop_volatile_flags(
    tmp_path, monkeypatch, text, flags, isa
):
    (tmp_path / "cpuinfo").write_text(text)
    monkeypatch.setattr(environment, "CPUINFO", tmp_path / "cpuinfo")
    details = capture_details()
    assert details["tags"]["cpu.flags"] == flags
    assert details["tags"]["cpu.isa"] == isa
    assert details["cpu"]["fp_isa_flags"] == flags.split()
    assert set(flags.split()) < set(details["cpu"]["flags"])
    assert "hypervisor" in details["cpu"]["rule"] and "microcode" in details["cpu"]["rule"]


def test_cpu_flags_here_are_a_sorted_subset_free_of_volatile_flags():
    if not environment.CPUINFO.exists():
        pytest.skip("no /proc/cpuinfo on this system")
    details = capture_details()
    flags = details["tags"]["cpu.flags"].split()
    assert flags and flags == sorted(flags) == details["cpu"]["fp_isa_flags"]
    assert set(flags) <= set(details["cpu"]["flags"])
    assert not set(flags) & VOLATILE


def test_the_package_list_holds_every_distribution_with_its_version():
    details = capture_details()
    packages, tags = details["packages"], details["tags"]
    assert f"numpy=={np.__version__}" in packages
    assert f"harness=={harness.__version__}" in packages
    names = [entry.split("==")[0] for entry in packages]
    assert names == sorted(names) and len(set(names)) == len(names)
    assert tags["packages.count"] == str(len(packages))
    assert tags["packages.sha256"] == sha256(canonical_json(packages).encode())
    assert tags["package.numpy"] == np.__version__
    assert tags["package.harness"] == harness.__version__


def test_thread_pools_are_recorded_and_their_absence_is_said(monkeypatch):
    np.ones(2) @ np.ones(2)  # numpy's BLAS is loaded
    details = capture_details()
    blas = [pool for pool in details["threadpools"] if pool["user_api"] == "blas"]
    assert blas and {"internal_api", "version", "num_threads", "prefix"} <= set(blas[0])
    assert f"{blas[0]['internal_api']}:{blas[0]['prefix']}" in details["tags"]["threads.pools"]
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    assert capture()["threads.pools"] == "threadpoolctl not installed"


def test_tags_are_short_strings_and_the_details_are_json():
    details = capture_details()
    tags = capture()
    assert tags.keys() == details["tags"].keys()
    assert all(isinstance(v, str) and 0 < len(v) <= TAG_LIMIT for v in tags.values())
    assert json.loads(json.dumps(details)) == details
    assert details["git"]["root"] == str(Path(harness.__file__).resolve().parent.parent)
    assert details["numpy"] == tags["numpy.simd"] != "numpy not used by this run"


def test_kernel_and_thread_variables_are_recorded_exactly_as_set(monkeypatch):
    assert capture()["cpu.dispatch_env"] == "none set"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    tags = capture()
    assert tags["cpu.dispatch_env"] == "ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=COMPATIBLE"
    assert tags["threads.MKL_NUM_THREADS"] == "3"
    assert tags["threads.OMP_NUM_THREADS"] == tags["threads.OPENBLAS_NUM_THREADS"] == "unset"


def _coretype() -> str:
    """The caller's OpenBLAS core type (never changed: some machines need theirs), else one
    every CPU of this architecture runs."""
    machine = os.uname().machine.lower()
    fallback = "ARMV8" if machine in ("aarch64", "arm64") else "Prescott"
    return os.environ.get("OPENBLAS_CORETYPE") or fallback


CHILD_CAPTURE = """
import json, sys
import numpy
numpy.ones(2) @ numpy.ones(2)
from harness.environment import capture_details
details = capture_details()
print(json.dumps({"tags": details["tags"], "threadpools": details["threadpools"]}))
"""


def test_capture_in_a_process_started_with_kernel_and_thread_variables_set(tmp_path):
    """What a machine sets before Python starts (OpenBLAS core type, MKL's reproducibility
    mode, OpenMP threads) is read from the process's own environment, and nothing else
    the parent had reaches the record."""
    coretype = _coretype()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (*DISPATCH_VARIABLES, "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    }
    env.update(OPENBLAS_CORETYPE=coretype, MKL_CBWR="AUTO", OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", CHILD_CAPTURE],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    child = json.loads(done.stdout)
    tags = child["tags"]
    assert tags["cpu.dispatch_env"] == f"MKL_CBWR=AUTO OPENBLAS_CORETYPE={coretype}"
    assert tags["threads.OMP_NUM_THREADS"] == "1"
    assert tags["threads.MKL_NUM_THREADS"] == "unset"
    assert tags["threads.OPENBLAS_NUM_THREADS"] == env.get("OPENBLAS_NUM_THREADS", "unset")
    assert not any(key.endswith(".error") for key in tags)
    blas = [pool for pool in child["threadpools"] if pool["user_api"] == "blas"]
    assert blas and tags["threads.pools"].startswith(f"{blas[0]['internal_api']}:")


def test_an_overlong_value_is_summarised_by_its_sha256(monkeypatch):
    monkeypatch.setenv("MKL_CBWR", "x" * TAG_LIMIT)
    details = capture_details()
    full = "MKL_CBWR=" + "x" * TAG_LIMIT
    assert details["long_tags"] == {"cpu.dispatch_env": full}
    assert details["tags"]["cpu.dispatch_env"].startswith(f"sha256:{sha256(full.encode())} ")


def test_torch_build_configuration_is_recorded_when_the_run_uses_torch():
    torch = pytest.importorskip("torch")
    details = capture_details()
    config = details["torch"]["config"]
    assert config == torch.__config__.show() and "ATen" in details["torch"]["parallel_info"]
    assert details["tags"]["torch.config_sha256"] == sha256(config.encode())
    assert details["tags"]["torch.parallel_backend"] != "unknown"


def test_capturing_imports_no_torch_and_prints_nothing():
    code = (
        "import sys, numpy\n"
        "from harness.environment import capture_details\n"
        "tags = capture_details()['tags']\n"
        "print('torch' in sys.modules, tags['torch.torch'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "False not used by this run\n", "")


def test_capture_is_fast():
    capture()
    times = []
    for _ in range(5):
        started = time.perf_counter()
        capture()
        times.append(time.perf_counter() - started)
    assert statistics.median(times) < 1.0  # ~0.04 s measured; loose for loaded CI machines
