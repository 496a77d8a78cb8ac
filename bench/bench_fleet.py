"""Tests at fleet scale: 100 copies of a toy OS test started from one snapshot.

Measured side by side in one run: tests per second with `--jobs 1`, `--jobs 2` and a local
Dask cluster of 2 worker processes (`--cluster`), and the cost of one test with and without
snapshot fan-out (`--no-fanout`). Each figure is the test phase of a whole `vmm test`
process as its summary line reports it (for --cluster: connecting, shipping the files,
running, bringing the results back). Also printed: what travels per test and once per
worker, which is what grows with the number of machines.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOYOS = ROOT / "guests" / "build" / "toyos.img"
COPIES = 100
NO_FANOUT_COPIES = 21  # each builds a machine: a fifth of the suite shows its per-test cost

BOOT = """name = "boot to the prompt"
[machine]
image = "{image}"
[[step]]
expect = 'toyos\\$ '
within = "50M"
[[step]]
snapshot = "prompt"
"""

COPY = """name = "copy {i}: echo from the prompt"
[machine]
start = "prompt.vmsn"
[[step]]
send = "echo hello {i}\\r"
[[step]]
expect = 'hello {i}\\r\\ntoyos\\$ '
within = "1s"
"""


def make_suite(folder: Path) -> list[Path]:
    from vmm.testing.runner import run_spec
    from vmm.testing.spec import load_spec

    boot = folder / "boot.vmm.toml"
    boot.write_text(BOOT.format(image=TOYOS))
    result = run_spec(load_spec(boot), folder / "boot-out")
    if result.outcome != "passed":
        raise SystemExit(f"the boot to the prompt failed: {result.message}")
    suite = folder / "suite"
    suite.mkdir()
    for suffix in (".vmsn", ".vmem"):
        shutil.move(folder / "boot-out" / "boot" / f"prompt{suffix}", suite / f"prompt{suffix}")
    files = []
    for i in range(COPIES):
        files.append(suite / f"test_copy{i:03}.vmm.toml")
        files[-1].write_text(COPY.format(i=i))
    return files


def timed(folder: Path, files: list[Path], flags: list[str]) -> float:
    out = folder / "out"
    command = [sys.executable, "-m", "vmm", "test", *map(str, files), "--out", str(out), "--progress", "lines",
               "--durations", "-1", *flags]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=folder)
    found = re.search(r"^(\d+) passed in (\d+\.\d+) s \(", result.stdout, re.M)
    if result.returncode != 0 or found is None or int(found[1]) != len(files):
        raise SystemExit(f"vmm test {' '.join(flags)} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return float(found[2])


def sizes(folder: Path, files: list[Path]) -> tuple[int, int, int, int]:
    """Bytes per test out (the package) and back (a passing result); bytes of files once per
    worker, as read and as sent (zlib)."""
    import zlib

    from vmm.testing.cluster import Returned, package_for
    from vmm.testing.executor import RunOptions, WorkItem, run_one

    package, by_hash = package_for(WorkItem(0, str(files[0])), {})
    result = run_one(str(files[0]), RunOptions(str(folder / "size-out")))
    back = Returned(result, {}, "/w/out", "/w/tree/x", "/w/tree")
    data = [path.read_bytes() for path in by_hash.values()]
    once, sent = sum(map(len, data)), sum(len(zlib.compress(d, 1)) for d in data)
    return len(pickle.dumps(package)), len(pickle.dumps(back)), once, sent


def main() -> None:
    if not TOYOS.exists():
        print("   skipped: guests/build/toyos.img is missing (run make)")
        return
    folder = Path(tempfile.mkdtemp(prefix="vmm-bench-fleet-"))
    cluster = None
    try:
        files = make_suite(folder)
        runs = {"--jobs 1": ["--jobs", "1"], "--jobs 2": ["--jobs", "2"]}
        figures = {how: (timed(folder, files, flags), timed(folder, files[:1], flags)) for how, flags in runs.items()}
        few = files[:NO_FANOUT_COPIES]
        no_fanout = timed(folder, few, ["--jobs", "1", "--no-fanout"]) - timed(
            folder, few[:1], ["--jobs", "1", "--no-fanout"]
        )
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=":0", local_directory=str(folder / "dask"))  # fmt: skip
        flags = ["--cluster", cluster.scheduler_address]
        figures["cluster, 2 workers"] = (timed(folder, files, flags), timed(folder, files[:1], flags))
        load = os.getloadavg()[0]
        print(f"   {COPIES} toy OS tests from one snapshot, {os.cpu_count()} cores (load average {load:.1f});")
        print("   marginal = (time of 100 - time of 1) / 99, fixed = the run of 1 (start-up, connect, ship files)")
        for how, (wall, one) in figures.items():
            marginal = (wall - one) / (COPIES - 1)
            print(f"   {how:<20} {wall:6.2f} s  {COPIES / wall:6.1f} tests/s   marginal {marginal * 1000:6.1f} ms/test"
                  f"   fixed {one:5.2f} s")  # fmt: skip
        with_fanout = (figures["--jobs 1"][0] - figures["--jobs 1"][1]) / (COPIES - 1)
        without = no_fanout / (len(few) - 1)
        print(f"   per test, --jobs 1: {with_fanout * 1000:.1f} ms with fan-out (revert), {without * 1000:.1f} ms "
              f"without (read the state, build the machine; {len(few)} tests): "
              f"fan-out {without / with_fanout:.1f}x")  # fmt: skip
        out, back, once, sent = sizes(folder, files)
        print(f"   sent per test: {out:,} bytes out (spec + file hashes), {back:,} bytes back (a passing result);")
        print(f"   once per worker: {once:,} bytes of files (toyos.img, prompt.vmsn, prompt.vmem), {sent:,} zlib'd")
    finally:
        if cluster is not None:
            cluster.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
