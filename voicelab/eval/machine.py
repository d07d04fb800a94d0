"""What a measurement ran on: CPU, cores, RAM, torch, GPU, date and git commit.

Benchmarks and eval reports put `machine_info()` beside their numbers so that a figure can always
be traced to the hardware and the code that produced it.
"""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cpu_model() -> str:
    """The CPU's marketing name (Linux /proc/cpuinfo; platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def ram_gib() -> float | None:
    """Total memory in GiB, or None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1)
    except (ValueError, OSError, AttributeError):
        return None


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers narrow), else cpu_count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def git_commit(repo: Path = REPO) -> dict:
    """{"commit": sha or None, "dirty": bool or None} of the checkout voicelab runs from."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                                 timeout=10, check=True)  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    sha = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if sha else None
    return {"commit": sha, "dirty": None if status is None else bool(status)}


def gpu_info() -> dict | None:
    """{"name", "memory_gib", "count", "cuda"} of CUDA device 0, or None without CUDA."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    p = torch.cuda.get_device_properties(0)
    return {
        "name": p.name,
        "memory_gib": round(p.total_memory / 1024**3, 1),
        "count": torch.cuda.device_count(),
        "cuda": torch.version.cuda,
    }


def machine_info() -> dict:
    """Everything above in one JSON-ready dict, with the UTC date of the measurement."""
    try:
        import torch

        torch_version = torch.__version__
        threads = torch.get_num_threads()
    except ImportError:
        torch_version, threads = None, None
    from voicelab import __version__

    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "ram_gib": ram_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": torch_version,
        "torch_threads": threads,
        "gpu": gpu_info(),
        # a shared or busy machine slows every wall-clock figure: say how busy it was
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "voicelab": __version__,
        **git_commit(),
    }


def machine_line(m: dict) -> str:
    """One markdown-friendly line: 'CPU (N cores, X GiB RAM), GPU ..., torch V, commit abc1234'."""
    gpu = m.get("gpu")
    gpu_s = f"{gpu['name']} ({gpu['memory_gib']} GiB)" if gpu else "no GPU"
    sha = (m.get("commit") or "unknown")[:10] + (" (uncommitted changes)" if m.get("dirty") else "")
    return (
        f"{m.get('cpu')} ({m.get('cores')} cores, {m.get('ram_gib')} GiB RAM), {gpu_s}, "
        f"torch {m.get('torch')}, Python {m.get('python')}, {m.get('date')}, commit {sha}"
    )
