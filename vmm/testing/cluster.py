"""``vmm test --cluster ADDRESS``: expectation files run on a Dask distributed cluster.

The user runs the cluster (``dask scheduler`` on one machine, ``dask worker ADDRESS
--nthreads 1 --nworkers auto`` on each of the others, every one with ``pip install
'vmm[cluster]'``); vmm is only a client of it. Per test the client ships a *package*:

* the expectation file's text and the files it needs (image, bundle folder, ROM, kernel,
  disks, start state and the files that state names, golden run, serial_equals files),
  each named by its path under the files' common folder and by the SHA-256 of its
  content. A file's bytes (zlib-compressed: guest RAM is mostly zeros) are scattered
  once per run under the key ``vmm-file-<sha256>``, broadcast to the workers, which keep
  them in memory while the run lasts: sent once per worker, whatever the number of tests
  (and a worker that dies takes no file the others need to retry its test).
* The worker lays the files out under its own scratch folder in the same tree (a tree is
  built once per worker and per set of files), runs the test there with its own machine
  pool (snapshot fan-out, vmm.testing.fanout) and sends back the TestResult and the files
  of the test's output folder (zlib-compressed: a failure's state.vmem is mostly zeros).
* The client writes those files under its own ``--out``, the worker's folders in their
  text replaced by the local ones, so a failure folder is the one a local run writes.

A worker that dies while running a test: the scheduler gives the test to another worker;
when that one dies too, the test is an error naming both. When the cluster has no worker
left for ``--cluster-wait`` seconds, the tests not done are errors naming the workers that
died. The run always ends.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import queue
import shutil
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vmm.errors import ConfigError, VmmError
from vmm.fileio import atomic_write, atomic_write_sparse
from vmm.testing.executor import Executor, RunOptions, Started, WorkItem, load_name, run_one
from vmm.testing.runner import TestResult, write_golden
from vmm.testing.spec import load_spec

TOPIC = "vmm-test-start"  # workers log (test key, worker address) when a test starts
POLL = 0.5  # seconds between looks at the cluster while tests run
CONNECT_TIMEOUT = "30s"
DEFAULT_NO_WORKER_WAIT = 60.0  # seconds without any worker before the tests left are errors
TEXT_SUFFIXES = (".txt", ".vmsn", ".json")  # output files whose worker folders are rewritten
INSTALL_HINT = "pip install 'vmm[cluster]' (Dask distributed)"


@dataclass
class Package:
    """One test as a worker receives it (the files' bytes travel separately, by hash)."""

    key: str
    spec_rel: str  # the expectation file, under root
    spec_text: bytes
    root: str  # the client's common folder of the spec and its files
    files: dict[str, str] = field(default_factory=dict)  # path under root -> sha256


@dataclass
class Returned:
    """What a worker sends back: the result and the test's output folder."""

    result: TestResult
    files: dict[str, bytes]  # path under the output folder -> zlib-compressed bytes
    worker_out: str
    worker_spec_dir: str
    layout: str


# ---- the client: what a test needs, by content hash ----


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def needed_files(spec_path: Path) -> list[Path]:
    """Every file the test reads, resolved (missing ones are left out: the worker reports them)."""
    spec = load_spec(spec_path)
    found = list(spec.required_files())
    if "bundle" in spec.machine:  # a bundle folder: the .vmx, its disks and nvram
        found += [p for p in (spec.path.parent / spec.machine["bundle"]).parent.iterdir() if p.is_file()]
    if spec.golden_path.exists():
        found.append(spec.golden_path)
    found += [step.value for step in spec.steps if step.kind == "serial_equals"]
    if spec.start is not None and spec.start.exists():
        found += state_files(spec.start)
    unique = {p.resolve() for p in map(Path, found) if Path(p).is_file()}
    return sorted(unique)


def state_files(vmsn: Path) -> list[Path]:
    """The files a machine state file names by absolute path (disks, ROM, kernel, initrd)."""
    try:
        stat = vmsn.stat()
    except OSError:
        return []
    return list(_state_files(vmsn.resolve(), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=64)
def _state_files(vmsn: Path, mtime_ns: int, size: int) -> tuple[Path, ...]:
    """(Parsed once per file version: a hundred tests sharing a start state share this.)"""
    try:
        config = json.loads(vmsn.read_text(encoding="utf-8"))["config"]
        paths = [d["path"] for d in config["disks"]] + [config.get(k) for k in ("bios", "kernel", "initrd")]
    except (OSError, ValueError, KeyError, TypeError):
        return ()  # the worker's load of the state names what is wrong with it
    return tuple(Path(p) for p in paths if p)


def package_for(item: WorkItem, digests: dict[Path, str]) -> tuple[Package, dict[str, Path]]:
    spec_path = Path(item.path).resolve()
    files = needed_files(spec_path)
    root = Path(os.path.commonpath([spec_path.parent, *files]))
    shipped: dict[str, str] = {}
    by_hash: dict[str, Path] = {}
    for path in files:
        if path == spec_path:
            continue
        if path not in digests:
            digests[path] = sha256_file(path)
        shipped[str(path.relative_to(root))] = digests[path]
        by_hash[digests[path]] = path
    key = f"vmm-test-{item.index}-{uuid.uuid4().hex[:12]}"
    package = Package(key, str(spec_path.relative_to(root)), spec_path.read_bytes(), str(root), shipped)
    return package, by_hash


# ---- the worker ----


def lay_out(package: Package, blobs: dict[str, bytes], scratch: Path) -> Path:
    """The package's files under ``scratch`` in their client tree; built once per set of files."""
    name = hashlib.sha256(json.dumps(sorted(package.files.items())).encode()).hexdigest()[:24]
    tree = (scratch / "vmm-trees" / name).resolve()
    if not (tree / ".complete").exists():
        building = Path(tempfile.mkdtemp(dir=scratch, prefix="vmm-tree-"))
        for rel, sha in package.files.items():
            (building / rel).parent.mkdir(parents=True, exist_ok=True)
            (building / rel).write_bytes(zlib.decompress(blobs[sha]))  # a copy: a test may write its disk
        (building / ".complete").touch()
        tree.parent.mkdir(parents=True, exist_ok=True)
        try:
            building.rename(tree)
        except OSError:  # another thread built it first
            shutil.rmtree(building, ignore_errors=True)
    spec = tree / package.spec_rel
    spec.parent.mkdir(parents=True, exist_ok=True)
    if not spec.exists() or spec.read_bytes() != package.spec_text:
        # Scratch, not a user's file: renamed into place whole, without atomic_write's two
        # fsyncs (tens of ms per test on a busy disk).
        partial = spec.with_name(f".{spec.name}.{os.getpid()}.{threading.get_ident()}")
        partial.write_bytes(package.spec_text)
        os.replace(partial, spec)
    return tree


def run_package(package: Package, blobs: dict[str, bytes], options: RunOptions) -> Returned:
    """Run one test on this worker (the Dask task; the blobs arrive by hash)."""
    from distributed import get_worker

    worker = get_worker()
    worker.log_event(TOPIC, {"key": package.key, "worker": worker.address})
    scratch = Path(worker.local_directory)
    tree = lay_out(package, blobs, scratch)
    out = Path(tempfile.mkdtemp(dir=scratch, prefix="vmm-out-")).resolve()
    root = Path(package.root)

    def remap(path: Path) -> Path:
        return tree / path.relative_to(root) if path.is_relative_to(root) else path

    try:
        spec_path = tree / package.spec_rel
        result = run_one(str(spec_path), dataclasses.replace(options, out_dir=str(out)), remap)
        files = {}
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            files[str(path.relative_to(out))] = zlib.compress(path.read_bytes(), 1)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    result.worker = worker.address
    return Returned(result, files, str(out), str(spec_path.parent), str(tree))


# ---- back on the client ----


def bring_back(returned: Returned, item: WorkItem, package: Package, out_dir: Path) -> TestResult:
    """The worker's result and files as a local run would have made them."""
    local_spec_dir = str(Path(item.path).parent)
    pairs = [(returned.worker_out, str(out_dir)), (returned.worker_spec_dir, local_spec_dir),
             (os.path.join(returned.layout, ""), os.path.join(package.root, "")),  # root "/": no "//"
             (returned.layout, package.root)]  # fmt: skip

    def local(text: str) -> str:
        for worker_path, local_path in pairs:
            text = text.replace(worker_path, local_path)
        return text

    for rel, packed in returned.files.items():
        data = zlib.decompress(packed)
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix in TEXT_SUFFIXES:
            atomic_write(target, local(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape"))
        elif target.suffix == ".vmem":
            atomic_write_sparse(target, data)
        else:
            atomic_write(target, data)
    result = returned.result
    result.path = item.path
    result.message, result.report = local(result.message), local(result.report)
    result.report_dir = local(result.report_dir)
    return result


class DaskExecutor(Executor):
    """Tests as Dask tasks on the scheduler at ``address`` (or a scheduler file)."""

    def __init__(self, address: str, no_worker_wait: float = DEFAULT_NO_WORKER_WAIT) -> None:
        try:
            import distributed
        except ImportError:
            raise ConfigError(f"--cluster needs Dask distributed, which is not installed: {INSTALL_HINT}") from None
        self.address = address
        self.no_worker_wait = no_worker_wait
        kwargs = {"scheduler_file": address} if address.endswith(".json") else {"address": address}
        try:
            self.client = distributed.Client(timeout=CONNECT_TIMEOUT, set_as_default=False, **kwargs)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(f"--cluster {address}: cannot reach a Dask scheduler there: {exc}") from None
        self.scattered: dict[str, object] = {}  # sha256 -> the Future holding the bytes
        self.digests: dict[Path, str] = {}

    @property
    def description(self) -> str:
        n = self.workers
        return f"cluster {self.client.scheduler.address}, {n} worker{'s' if n != 1 else ''}"

    @property
    def workers(self) -> int:
        return len(self.alive())

    def alive(self) -> set[str]:
        return set(self.client.scheduler_info(n_workers=-1).get("workers", {}))

    def close(self) -> None:
        self.client.close()

    def _file_futures(self, by_hash: dict[str, Path]) -> dict[str, object]:
        # On every worker (broadcast): a worker that dies takes no file with it that the
        # others need to retry its test. Lost all the same (every worker died): sent again.
        new = {f"vmm-file-{sha}": zlib.compress(path.read_bytes(), 1) for sha, path in by_hash.items()
               if sha not in self.scattered or self.scattered[sha].status != "finished"}  # fmt: skip
        if new:
            for key, future in self.client.scatter(new, hash=False, broadcast=True).items():
                self.scattered[key.removeprefix("vmm-file-")] = future
        return {sha: self.scattered[sha] for sha in by_hash}

    def run(self, items: list[WorkItem], options: RunOptions, started: Started | None = None
            ) -> Iterator[tuple[int, TestResult]]:  # fmt: skip
        events: queue.Queue = queue.Queue()
        completed: queue.Queue = queue.Queue()  # futures, as Dask's thread finishes them
        self.client.subscribe_topic(TOPIC, lambda event: events.put(event[1]))
        futures: dict[object, tuple[WorkItem, Package, dict]] = {}
        by_key: dict[str, WorkItem] = {}
        attempts: dict[str, list[str]] = {}  # test (its first key) -> workers it started on, in order
        test_of: dict[str, str] = {}  # Dask key -> the test's first key (a retry has a key of its own)

        def submit(item: WorkItem, package: Package, by_hash: dict) -> object:
            blobs = self._file_futures(by_hash)
            future = self.client.submit(run_package, package, blobs, options, key=package.key, pure=False)
            futures[future] = (item, package, by_hash)
            future.add_done_callback(completed.put)
            by_key[package.key] = item
            test_of.setdefault(package.key, package.key)
            return future

        for item in items:
            try:
                package, by_hash = package_for(item, self.digests)
            except (OSError, VmmError) as exc:
                yield item.index, TestResult(load_name(item.path), item.path, "error", str(exc))
                continue
            submit(item, package, by_hash)
        out_dir = Path(options.out_dir)
        pending = set(futures)
        lonely_since: float | None = None
        while pending:
            done = set()
            try:
                done.add(completed.get(timeout=POLL))
                while True:
                    done.add(completed.get_nowait())
            except queue.Empty:
                pass
            done &= pending
            while not events.empty():
                event = events.get()
                if event["key"] not in test_of:
                    continue  # another client's test on a shared cluster
                attempts.setdefault(test_of[event["key"]], []).append(event["worker"])
                if started is not None:
                    started(by_key[event["key"]].index, event["worker"])
            for future in done:
                pending.discard(future)
                item, package, by_hash = futures[future]
                tried = attempts.get(test_of[package.key], [])
                if self._lost_with_worker(future, tried):  # once more, elsewhere (files sent again if lost)
                    retry = dataclasses.replace(package, key=f"{package.key}-retry")
                    test_of[retry.key] = test_of[package.key]
                    pending.add(submit(item, retry, by_hash))
                    continue
                yield item.index, self._finish(future, item, package, tried, out_dir, options)
            if not pending:
                break
            alive = self.alive()
            for future in list(pending):  # tried on two workers that both died: an error
                item, package, _ = futures[future]
                dead = [w for w in attempts.get(test_of[package.key], []) if w not in alive]
                if len(dead) >= 2:
                    pending.discard(future)
                    future.cancel()
                    message = f"the workers {dead[0]} and {dead[-1]} died while running it (it was tried twice)"
                    yield item.index, TestResult(load_name(item.path), item.path, "error", message)
            lonely_since = (lonely_since or time.monotonic()) if not alive else None
            if lonely_since is not None and time.monotonic() - lonely_since > self.no_worker_wait:
                for future in pending:
                    item, package, _ = futures[future]
                    future.cancel()
                    dead = attempts.get(test_of[package.key], [])
                    why = f"the worker {dead[-1]} died while running it" if dead else "it never started"
                    message = f"no Dask workers left for {self.no_worker_wait:g} s: {why}"
                    yield item.index, TestResult(load_name(item.path), item.path, "error", message)
                pending.clear()
        self.client.unsubscribe_topic(TOPIC)

    def _lost_with_worker(self, future, tried: list[str]) -> bool:
        """The test did not finish because the one worker it started on died (the scheduler may
        have dropped it with the files only that worker held): worth one more try."""
        if future.status not in ("error", "cancelled") or len(tried) != 1:
            return False
        alive = self.alive()
        return tried[0] not in alive and bool(alive)

    def _finish(self, future, item: WorkItem, package: Package, tried: list[str], out_dir: Path,
                options: RunOptions) -> TestResult:  # fmt: skip
        from distributed.scheduler import KilledWorker

        try:
            returned: Returned = future.result()
        except KilledWorker as exc:
            return TestResult(load_name(item.path), item.path, "error", f"Dask gave up on it: {exc}")
        except Exception as exc:  # noqa: BLE001 - a worker-side failure is this test's error, named
            why = f"{type(exc).__name__}: {exc}"
            dead = [w for w in tried if w not in self.alive()]
            if dead:  # e.g. the files it needed went with the last worker that held them
                return TestResult(load_name(item.path), item.path, "error",
                                  f"the worker {dead[-1]} died while running it ({why})")  # fmt: skip
            return TestResult(load_name(item.path), item.path, "error", f"on the cluster: {why}")
        result = bring_back(returned, item, package, out_dir)
        result.retried_after = [w for w in tried if w != result.worker]
        if options.record and result.outcome == "passed":
            write_golden(load_spec(item.path).golden_path, result)
        return result
