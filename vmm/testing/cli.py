"""``vmm test FILE...``: run expectation files, one line per test, JUnit XML on request.

Exit status 0 when every test passed, 1 when one failed or could not run, 2 for a bad
flag or expectation file. ``--jobs N`` runs tests in N worker processes (each test owns
its machine; results are the same as serially since runs are deterministic).
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from vmm.errors import ConfigError, VmmError
from vmm.fileio import atomic_write
from vmm.testing.report import printable
from vmm.testing.runner import TestResult, check_determinism, run_spec
from vmm.testing.spec import load_spec

SUFFIX = ".vmm.toml"


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help=f"expectation files, or folders holding *{SUFFIX}")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N", help="run N tests in parallel processes")
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


def run_one(path: str, out_dir: str, record: bool, determinism: bool) -> TestResult:
    """One test, start to end (the unit of work of a worker process)."""
    try:
        spec = load_spec(path)
    except VmmError as exc:
        return TestResult(Path(path).name, path, "error", str(exc))
    if determinism:
        return check_determinism(spec, Path(out_dir))
    return run_spec(spec, Path(out_dir), record=record)


def cmd_test(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise ConfigError(f"--jobs: expected a positive number, not {args.jobs}")
    files = collect(args.files)
    for path in files:  # bad files are reported before anything runs
        load_spec(path)
    started = time.monotonic()
    work = [(str(p), args.out, args.record, args.check_determinism) for p in files]
    results: dict[int, TestResult] = {}
    if args.jobs == 1 or len(files) == 1:
        for i, item in enumerate(work):
            results[i] = run_one(*item)
            print(results[i].line(), flush=True)
    else:
        # fork: workers start in milliseconds, and nothing in this process holds a machine yet.
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
            futures = {pool.submit(run_one, *item): i for i, item in enumerate(work)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                print(results[futures[future]].line(), flush=True)
    ordered = [results[i] for i in range(len(work))]
    wall = time.monotonic() - started
    counts = {k: sum(r.outcome == k for r in ordered) for k in ("passed", "failed", "error", "skipped")}
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    print(f"{summary} in {wall:.2f} s ({args.jobs} job{'s' if args.jobs > 1 else ''})")
    if args.junit:
        write_junit(Path(args.junit), ordered, wall)
    return 0 if counts["failed"] == counts["error"] == 0 else 1


def write_junit(path: Path, results: list[TestResult], wall: float) -> None:
    suite = ET.Element("testsuite", name="vmm test", tests=str(len(results)), time=f"{wall:.3f}",
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
        ET.SubElement(case, "system-out").text = printable(r.serial)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    atomic_write(path, ET.tostring(root, encoding="utf-8", xml_declaration=True))
