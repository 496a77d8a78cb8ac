"""Where ``vmm test`` runs its tests: the executor interface and its local implementations.

An executor takes the runnable expectation files and yields each one's TestResult as it
completes, in any order; ``vmm test`` prints, counts and writes JUnit from those. Three
implementations: in this process (``--jobs 1``), in a pool of local processes
(``--jobs N``) and on a Dask cluster (``--cluster ADDRESS``, vmm.testing.cluster). Each
test owns its machine and runs are deterministic, so all three give the same results.
"""

from __future__ import annotations

import multiprocessing
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from vmm.errors import VmmError
from vmm.testing.fanout import PathMap, same_path, worker_pool
from vmm.testing.runner import TestResult, check_determinism, run_spec
from vmm.testing.spec import load_spec


@dataclass(frozen=True)
class RunOptions:
    out_dir: str
    record: bool = False
    determinism: bool = False
    fanout: bool = True  # tests sharing a start state revert one machine per worker


@dataclass(frozen=True)
class WorkItem:
    index: int  # the file's place on the command line: results are listed in this order
    path: str


Started = Callable[[int, str], None]  # (index, worker): a test began running there


def run_one(path: str, options: RunOptions, remap: PathMap = same_path) -> TestResult:
    """One test, start to end (the unit of work of every executor)."""
    from vmm.lab.testing import is_lab, run_lab_test

    if is_lab(path):  # a lab file ([[vm]] tables): the lab's steps are the test
        return run_lab_test(path, Path(options.out_dir))
    try:
        spec = load_spec(path)
    except VmmError as exc:
        return TestResult(Path(path).name, path, "error", str(exc))
    pool = worker_pool(options.fanout)
    if options.determinism:
        return check_determinism(spec, Path(options.out_dir), pool, remap)
    return run_spec(spec, Path(options.out_dir), record=options.record, pool=pool, remap=remap)


class Executor(ABC):
    """Runs work items; yields ``(index, result)`` as each test completes."""

    @property
    @abstractmethod
    def description(self) -> str:
        """How the summary line names it: "1 job", "2 jobs", "cluster tcp://…, 2 workers"."""

    @property
    def workers(self) -> int:
        return 1

    @abstractmethod
    def run(self, items: list[WorkItem], options: RunOptions, started: Started | None = None
            ) -> Iterator[tuple[int, TestResult]]:  # fmt: skip
        ...

    def close(self) -> None:  # noqa: B027 - most executors hold nothing
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessExecutor(Executor):
    """``--jobs 1``: one test after another in this process."""

    description = "1 job"

    def run(self, items, options, started=None):
        for item in items:
            if started is not None:
                started(item.index, "")
            yield item.index, run_one(item.path, options)


def _run_in_child(path: str, options: RunOptions) -> TestResult:
    result = run_one(path, options)
    result.worker = f"pid {os.getpid()}"
    return result


class ProcessPoolTestExecutor(Executor):
    """``--jobs N``: N forked worker processes on this machine (each keeps its own fan-out pool)."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    @property
    def description(self) -> str:
        return f"{self.jobs} jobs"

    @property
    def workers(self) -> int:
        return self.jobs

    def run(self, items, options, started=None):
        # fork: workers start in milliseconds, and nothing in this process holds a machine yet.
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=self.jobs, mp_context=context) as pool:
            futures = {pool.submit(_run_in_child, item.path, options): item for item in items}
            for future in as_completed(futures):
                item = futures[future]
                try:
                    yield item.index, future.result()
                except BrokenProcessPool:
                    # A worker process died (a crash in native code, the OOM killer): this test
                    # and the ones still queued cannot finish; say so instead of a traceback.
                    name = load_name(item.path)
                    yield item.index, TestResult(name, item.path, "error",
                                                 "a --jobs worker process died while the tests ran")  # fmt: skip


def load_name(path: str) -> str:
    from vmm.lab.spec import load_lab
    from vmm.lab.testing import is_lab

    try:
        return load_lab(path).name if is_lab(path) else load_spec(path).name
    except VmmError:
        return Path(path).name


def make_executor(jobs: int, cluster: str | None = None, no_worker_wait: float = 60.0) -> Executor:
    if cluster is not None:
        from vmm.testing.cluster import DaskExecutor

        return DaskExecutor(cluster, no_worker_wait)
    if jobs == 1:
        return InProcessExecutor()
    return ProcessPoolTestExecutor(jobs)
