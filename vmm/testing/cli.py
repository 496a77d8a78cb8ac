"""``vmm test FILE...``: run expectation files, one line per test, JUnit XML on request.

Exit status 0 when every test passed, 1 when one failed or could not run (a malformed
expectation file is that file's error; the others still run), 2 for a bad flag.
Each run owns its output folder (``--out``): it clears what an earlier run left there, so
the reports in it are this run's, and names the folder at the end. ``--jobs N`` runs
tests in N worker processes (each test owns its machine; results are the same as serially
since runs are deterministic).
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
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
MARKER = ".vmm-test-out"  # in an output folder vmm made, so that a later run may clear it


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
    started = time.monotonic()
    results: dict[int, TestResult] = {}
    runnable: list[int] = []
    for i, path in enumerate(files):  # a malformed file is its own error, reported first
        try:
            load_spec(path)
        except VmmError as exc:
            results[i] = TestResult(path.name, str(path), "error", str(exc))
            print(results[i].line(), flush=True)
        else:
            runnable.append(i)
    out = Path(args.out)
    prepare_out(out)
    work = {i: (str(files[i]), args.out, args.record, args.check_determinism) for i in runnable}
    if args.jobs == 1 or len(work) <= 1:
        for i, item in work.items():
            results[i] = run_one(*item)
            print(results[i].line(), flush=True)
    else:
        # fork: workers start in milliseconds, and nothing in this process holds a machine yet.
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
            futures = {pool.submit(run_one, *item): i for i, item in work.items()}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                print(results[futures[future]].line(), flush=True)
    ordered = [results[i] for i in range(len(files))]
    wall = time.monotonic() - started
    counts = {k: sum(r.outcome == k for r in ordered) for k in ("passed", "failed", "error", "skipped")}
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    print(f"{summary} in {wall:.2f} s ({args.jobs} job{'s' if args.jobs > 1 else ''})")
    if any(r.report_dir for r in ordered):
        print(f"failure reports in {out}/")
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
