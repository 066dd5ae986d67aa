"""docs/benchmarks.md: each benchmark rewrites only its own section, between its markers."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def write_section(*, key: str, title: str, section: str, path: Path = DOC) -> None:
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    block = f"{begin}\n{section}{end}"
    if not path.exists():
        text = (
            "# Benchmarks\n\nFigures measured by the scripts in `bench/`; each section is "
            "rewritten by its own script between its markers.\n\n"
            f"## {title}\n\n{block}\n"
        )
    else:
        text = path.read_text(encoding="utf-8")
        head, found_begin, rest = text.partition(begin)
        _, found_end, tail = rest.partition(end)
        if found_begin and found_end:
            text = head + block + tail
        else:
            text = text.rstrip("\n") + f"\n\n## {title}\n\n{block}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as a section prints them."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def library_versions(*dists: str, absent: str | None = None) -> str:
    """``name version`` of each installed distribution; ``absent`` is printed for the
    missing ones (None leaves them out)."""
    versions = []
    for dist in dists:
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            if absent is not None:
                versions.append(f"{dist} {absent}")
    return ", ".join(versions)


def cpu_probe_ms() -> float:
    """Best of three timings of a fixed pure-Python workload that builds and drops 100,000
    small records, in a fresh interpreter (the benchmark's own heap would make it time
    garbage collection instead): how fast the machine runs this kind of code right now.
    A virtual machine cannot see the other tenants of its host; they show as a slower
    probe (a plain counting loop is not enough: it stays in the CPU's cache and kept its
    speed while the benchmarks ran 40 % slower)."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    return float(done.stdout)


_PROBE = """
import time
best = float("inf")
for _ in range(3):
    start = time.perf_counter()
    rows = [{"id": i, "name": str(i), "tags": [i, i + 1]} for i in range(100_000)]
    by_name = {row["name"]: row for row in rows}
    del rows, by_name
    best = min(best, time.perf_counter() - start)
print(1000 * best)
"""
