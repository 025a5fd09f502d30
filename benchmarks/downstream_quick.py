"""Wall and CPU time of the reduced downstream benchmarks, end to end (set, flows, one training per row, scores,
report): ``hmore bench gait --quick`` and ``hmore bench action-flow --quick`` in fresh folders.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/downstream_quick.py [--out out/quick] [--threads 1]``.
Issue 15's goal: each under 10 minutes on 2 CPU cores. ``cpu`` is the process's CPU time (what an idle machine would
need with one thread); the load average is printed beside the wall time because the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="out/quick", help="scratch folder (emptied first)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    from hmore.bench import gait_bench
    from hmore.fineaction import bench as action_bench

    rows = []
    for name, bench in (("gait", gait_bench), ("action-flow", action_bench)):
        out = Path(args.out) / name
        shutil.rmtree(out, ignore_errors=True)
        w0, c0 = time.perf_counter(), time.process_time()
        summary = bench.run(out, preset="quick", threads=args.threads)
        rows.append((name, time.perf_counter() - w0, time.process_time() - c0, os.getloadavg()[0],
                     len(summary["rows"])))
    print(f"{'benchmark':<14}{'wall s':>9}{'cpu s':>9}{'load':>7}{'rows':>6}")
    for name, wall, cpu, load, n in rows:
        print(f"{name:<14}{wall:>9.0f}{cpu:>9.0f}{load:>7.1f}{n:>6}")


if __name__ == "__main__":
    main()
