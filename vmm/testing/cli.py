"""``vmm test FILE...``: run expectation files, one line per test, JUnit XML on request.

Where the tests run is an executor (vmm.testing.executor): this process, ``--jobs N``
local processes, or a Dask cluster (``--cluster ADDRESS``, vmm.testing.cluster).
``--shard K/N`` runs one part of a split balanced by recorded durations
(vmm.testing.shard); ``vmm merge-junit`` joins the parts' JUnit files.

Exit status 0 when every test passed, 1 when one failed or could not run (a malformed
expectation file is that file's error; the others still run), 2 for a bad flag.
Each run owns its output folder (``--out``): it clears what an earlier run left there, so
the reports in it are this run's, and names the folder at the end. ``--jobs N`` runs
tests in N worker processes (each test owns its machine; results are the same as serially
since runs are deterministic).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from vmm.errors import ConfigError, VmmError
from vmm.fileio import atomic_write
from vmm.lab.testing import check_lab, is_lab
from vmm.testing.executor import RunOptions, WorkItem, make_executor
from vmm.testing.progress import Progress, fleet_summary, slowest
from vmm.testing.report import printable
from vmm.testing.runner import TestResult
from vmm.testing.shard import (
    DURATIONS_FILE,
    add_merge_arguments,
    duration_key,
    load_durations,
    parse_shard,
    select_shard,
    store_durations,
)
from vmm.testing.spec import load_spec

DEFAULT_NO_WORKER_WAIT = 60.0  # vmm.testing.cluster's (not imported here: Dask loads only for --cluster)

SUFFIX = ".vmm.toml"
MARKER = ".vmm-test-out"  # in an output folder vmm made, so that a later run may clear it


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name == "merge-junit":
        add_merge_arguments(name, p)
        return
    p.add_argument("files", nargs="+", metavar="FILE", help=f"expectation files, or folders holding *{SUFFIX}")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N", help="run N tests in parallel processes")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run the tests on a Dask cluster: its scheduler's address (tcp://host:8786) or "
                        "scheduler file (.json); needs pip install 'vmm[cluster]'")  # fmt: skip
    p.add_argument("--cluster-wait", type=float, default=DEFAULT_NO_WORKER_WAIT, metavar="SECONDS",
                   help="with --cluster: how long the cluster may have no worker before the tests "
                        f"left are errors (default {DEFAULT_NO_WORKER_WAIT:g})")  # fmt: skip
    p.add_argument("--shard", metavar="K/N", help="run only shard K of N (a split balanced by recorded durations)")
    p.add_argument("--store-durations", action="store_true", help="record each test's duration for --shard")
    p.add_argument("--durations-file", metavar="PATH", default=DURATIONS_FILE,
                   help=f"durations for --shard and --store-durations (default {DURATIONS_FILE})")  # fmt: skip
    p.add_argument("--durations", type=int, default=5, metavar="N",
                   help="list the N slowest tests at the end (0: all, -1: none; default 5)")  # fmt: skip
    p.add_argument("--no-fanout", dest="fanout", action="store_false",
                   help="build a machine for every test that starts from a saved state (default: "
                        "one per worker and state, reverted for each test)")  # fmt: skip
    p.add_argument("--progress", choices=("auto", "bar", "lines"), default="auto",
                   help="a live bar with counts and ETA (default on a terminal) or plain lines")  # fmt: skip
    p.add_argument("--junit", metavar="PATH", help="also write the results as JUnit XML")
    p.add_argument("--out", metavar="DIR", default="vmm-test-out",
                   help="where failure reports and snapshots go (default ./vmm-test-out)")  # fmt: skip
    p.add_argument("--record", action="store_true", help="store each passing run as its golden run")
    p.add_argument("--check-determinism", action="store_true",
                   help="run each test twice; fail when serial bytes or instruction counts differ")  # fmt: skip
    p.set_defaults(func=cmd_test)


def collect(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found += sorted(path.rglob(f"*{SUFFIX}"))
        elif path.exists():
            found.append(path)
        else:
            raise ConfigError(f"{path}: no such expectation file or folder")
    if not found:
        raise ConfigError(f"no expectation files (*{SUFFIX}) in {', '.join(paths)}")
    return found


def prepare_out(out: Path) -> None:
    """Give this run an empty output folder: clear one a vmm run made, refuse any other."""
    if out.exists():
        if not out.is_dir():
            raise ConfigError(f"--out {out}: not a folder")
        entries = [p for p in out.iterdir() if p.name != MARKER]
        if entries and not (out / MARKER).exists():
            raise ConfigError(f"--out {out}: not empty and not made by vmm test (no {MARKER}): choose another folder")
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).touch()


def cmd_test(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise ConfigError(f"--jobs: expected a positive number, not {args.jobs}")
    if args.cluster is not None and args.jobs != 1:
        raise ConfigError("--cluster and --jobs: choose one (the cluster's workers are the jobs)")
    files = collect(args.files)
    if args.shard is not None:
        files = select_shard(files, parse_shard(args.shard), load_durations(Path(args.durations_file)))
    started = time.monotonic()
    results: dict[int, TestResult] = {}
    runnable: list[WorkItem] = []
    bar = {"auto": None, "bar": True, "lines": False}[args.progress]
    progress = Progress(len(files), bar=bar)
    try:
        for i, path in enumerate(files):  # a malformed file is its own error, reported first
            try:
                check_lab(path) if is_lab(path) else load_spec(path)
            except VmmError as exc:
                results[i] = TestResult(path.name, str(path), "error", str(exc))
                progress.finished(results[i])
            else:
                runnable.append(WorkItem(i, str(path)))
        out = Path(args.out)
        prepare_out(out)
        options = RunOptions(args.out, args.record, args.check_determinism, args.fanout)
        with make_executor(args.jobs, args.cluster, args.cluster_wait) as executor:
            for i, result in executor.run(runnable, options, progress.started):
                results[i] = result
                progress.finished(result)
            description = executor.description
            workers = executor.workers
    finally:
        progress.close()
    ordered = [results[i] for i in range(len(files))]
    wall = time.monotonic() - started
    for line in slowest(ordered, args.durations) if args.durations >= 0 else []:
        print(line)
    if len(ordered) > 1 or workers > 1:
        print(fleet_summary(ordered, wall))
    counts = {k: sum(r.outcome == k for r in ordered) for k in ("passed", "failed", "error", "skipped")}
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    shard = f", shard {args.shard}" if args.shard else ""
    print(f"{summary} in {wall:.2f} s ({description}{shard})")
    if args.store_durations:
        store_durations(Path(args.durations_file), {duration_key(files[i]): r.wall_s for i, r in results.items()
                                                    if r.wall_s > 0})  # fmt: skip
    if any(r.report_dir for r in ordered):
        print(f"failure reports in {out}/")
    if args.junit:
        write_junit(Path(args.junit), ordered, wall)
    return 0 if counts["failed"] == counts["error"] == 0 else 1


def write_junit(path: Path, results: list[TestResult], wall: float) -> None:
    suite = ET.Element("testsuite", name="vmm test", tests=str(len(results)), time=f"{wall:.3f}",
                       hostname=socket.gethostname(),
                       failures=str(sum(r.outcome == "failed" for r in results)),
                       errors=str(sum(r.outcome == "error" for r in results)),
                       skipped=str(sum(r.outcome == "skipped" for r in results)))  # fmt: skip
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=r.path, name=r.name, time=f"{r.wall_s:.3f}")
        if r.outcome in ("failed", "error"):
            element = ET.SubElement(case, "failure" if r.outcome == "failed" else "error", message=r.message)
            element.text = r.report or r.message
        elif r.outcome == "skipped":
            ET.SubElement(case, "skipped", message=r.message)
        props = ET.SubElement(case, "properties")
        ET.SubElement(props, "property", name="instructions", value=str(r.instructions))
        ET.SubElement(props, "property", name="virtual_time_ns", value=str(r.time_ns))
        if r.worker:
            ET.SubElement(props, "property", name="worker", value=r.worker)
        for dead in r.retried_after:
            ET.SubElement(props, "property", name="retried_after_worker_died", value=dead)
        ET.SubElement(case, "system-out").text = printable(r.serial)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    atomic_write(path, ET.tostring(root, encoding="utf-8", xml_declaration=True))
