"""Facts about the machine, the libraries and a process's memory, for the results files."""

from __future__ import annotations

import datetime
import os
import platform
import resource
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

MIB = 1 << 20

# Some machines set these to steer OpenBLAS's kernel choice or cache blocking; on others they
# slow NumPy's matrix products down, so every child runs without them (and says what it got).
BLAS_ENV_REMOVED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def child_env(threads: int) -> dict[str, str]:
    """The environment of a child process: fixed thread counts, no OpenBLAS kernel overrides."""
    env = dict(os.environ)
    for name in BLAS_ENV_REMOVED:
        env.pop(name, None)
    for name in THREAD_ENV:
        env[name] = str(threads)
    return env


def _status_kib(field: str) -> int | None:
    """A 'VmXXX:  1234 kB' line of /proc/self/status, in KiB (None where there is no /proc)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mib() -> float | None:
    """This process's resident memory now, MiB."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib / 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) so later peaks exclude data loading (Linux)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float | None:
    """The peak resident memory since the last ``reset_peak_rss`` (or since start), MiB."""
    kib = _status_kib("VmHWM")
    return None if kib is None else kib / 1024


def maxrss_mib() -> float:
    """ru_maxrss of this process over its whole life (KiB on Linux), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """CPU model, core counts, memory, OS and Python."""
    cpu_model, flags = None, ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            if line.startswith("model name") and cpu_model is None:
                cpu_model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1]
    except OSError:
        pass
    mem_total = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1]) / MIB  # KiB -> GiB
    except OSError:
        pass
    simd = [f for f in ("avx512f", "avx2", "fma", "avx") if f in flags.split()]
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model or platform.processor() or "unknown",
        "simd": simd,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "memory_gib": None if mem_total is None else round(mem_total, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def versions() -> dict[str, str | None]:
    names = ("chainrule", "numpy", "torch", "scikit-learn", "micrograd", "threadpoolctl")
    return {name: version(name) for name in names}


def git_revision(repo: Path) -> str | None:
    """The commit the benchmark ran on, with '+dirty' when the work tree had changes."""

    def git(*args: str) -> str:
        run = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
        run.check_returncode()
        return run.stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def blas_info() -> list[dict[str, Any]]:
    """The thread pools (BLAS and OpenMP) loaded in this process, as threadpoolctl sees them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"error": "threadpoolctl is not installed"}]
    keep = ("user_api", "internal_api", "prefix", "version", "architecture", "num_threads")
    return [
        {k: pool.get(k) for k in keep if pool.get(k) is not None} | {"file": _short(pool)}
        for pool in threadpool_info()
    ]


def _short(pool: dict[str, Any]) -> str:
    return Path(str(pool.get("filepath", ""))).name


def limit_threads(threads: int) -> Any:
    """Cap every BLAS/OpenMP pool already loaded at ``threads`` (the env vars cover later ones)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=threads)


def torch_config() -> dict[str, Any]:
    """Which BLAS and kernels torch runs on, from its own build report."""
    import torch

    show = torch.__config__.show()
    build = {}
    for line in show.splitlines():
        if "Build settings:" in line:
            for item in line.split("Build settings:", 1)[1].split(","):
                if "=" in item:
                    k, v = item.strip().split("=", 1)
                    if k in ("BLAS_INFO", "LAPACK_INFO", "USE_MKL", "USE_MKLDNN", "USE_OPENMP"):
                        build[k] = v
    libraries = [
        line.strip(" -")
        for line in show.splitlines()
        if "Math Kernel Library" in line or "MKL-DNN" in line or "OpenBLAS" in line
    ]
    return {
        "version": torch.__version__,
        "build": build,
        "libraries": libraries,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl_available": torch.backends.mkl.is_available(),
        "mkldnn_available": torch.backends.mkldnn.is_available(),
        "mkldnn_enabled": bool(torch.backends.mkldnn.enabled),
        "num_threads": torch.get_num_threads(),
        "parallel_backend": next(
            (
                line.split(":", 1)[1].strip()
                for line in torch.__config__.parallel_info().splitlines()
                if "parallel backend" in line
            ),
            None,
        ),
    }
