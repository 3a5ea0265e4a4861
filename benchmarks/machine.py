"""The machine a run measured: what it is, how busy others kept it, which code ran."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import platform
import resource
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from measure import script_python


def cpu_seconds() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, CPU seconds of this process and its
    reaped children) so far: the difference over a run is what others used."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait.
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    ours = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        ours += usage.ru_utime + usage.ru_stime
    return busy, ours


def source_fingerprint(sockdiff: str) -> str:
    """Where the timed sockdiff's package is and a hash of its .py files, to tell
    whether the code changed while the benchmark ran (not just which commit)."""
    try:
        python = script_python(sockdiff)
        where = subprocess.run(
            [python, "-c", "import os, sockdiff; print(os.path.dirname(sockdiff.__file__))"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
        digest = hashlib.sha256()
        for path in sorted(Path(where).rglob("*.py")):
            digest.update(str(path.relative_to(where)).encode() + b"\0" + path.read_bytes() + b"\0")
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return "unknown"
    return f"{where} sha256:{digest.hexdigest()[:12]}"


def environment(sockdiff: str) -> dict[str, Any]:
    def first_line(argv: Sequence[str]) -> str:
        try:
            out = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
        return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "unknown"

    mem_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    repo = Path(__file__).resolve().parent.parent
    commit = first_line(["git", "-C", str(repo), "describe", "--always", "--dirty"])
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        cpu = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "unknown"
        )
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sockdiff": first_line([sockdiff, "--version"]),
        "sockdiff_path": sockdiff,
        "git": commit,
        "ss": first_line(["ss", "-V"]),
        "netstat": first_line(["netstat", "-V"]),
    }
