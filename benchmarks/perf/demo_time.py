"""Time the README's main command (``make demo``'s sweep) from a clean results folder.

Runs ``gnnleaky sweep quick --backend processes --max-group 6`` twice in fresh processes:
*cold* with an empty numba cache (the kernels are compiled, as on a fresh clone) and *warm*
with the cache the first run left; each into a new results store. Prints each run's wall
time, the CPU time of the sweep's processes, the sweep's own line of where the time went,
and the load average before and after (the machine may be shared: state it with the
numbers). Not a test: nothing is asserted.

    python benchmarks/perf/demo_time.py [--preset quick] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(preset: str, store: Path, cache: Path) -> dict[str, object]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "gnnleaky.cli", "sweep", preset, "--backend", "processes",
            "--max-group", "6", "--out", str(store), "--no-progress"]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"the sweep failed (exit {proc.returncode})")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return {"wall": wall, "cpu": cpu, "load": (load, os.getloadavg()[0]), "out": lines[-2:]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="quick")
    p.add_argument("--keep", help="keep the stores and the numba cache in this folder")
    args = p.parse_args()
    base = Path(args.keep or tempfile.mkdtemp(prefix="gnnleaky-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    cache = base / "numba-cache"
    print(f"cpu: {os.cpu_count()} logical cores; python {sys.version.split()[0]}")
    for label in ("cold", "warm"):
        store = base / f"{label}.sqlite"
        store.unlink(missing_ok=True)
        r = _run(args.preset, store, cache)
        load = r["load"]
        print(
            f"{label}: wall {r['wall']:.1f} s, CPU {r['cpu']:.1f} s (sweep processes), "
            f"load average {load[0]:.1f} -> {load[1]:.1f}"
        )
        for line in r["out"]:
            print(f"  {line}")


if __name__ == "__main__":
    main()
