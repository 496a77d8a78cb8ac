"""A real local Dask cluster for the tests: ``dask scheduler`` and ``dask worker`` processes
on 127.0.0.1, ports chosen by the OS, started and torn down by the test.

Waits are bounded (a guard against a hang, never an assertion on time): the scheduler
file appearing, the workers registering (Client.wait_for_workers).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

START_GUARD = 180.0  # seconds: a loaded 2-core machine imports Dask slowly


@dataclass
class LocalCluster:
    folder: Path
    scheduler: subprocess.Popen
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)  # by worker name
    client: object = None

    @property
    def scheduler_file(self) -> Path:
        return self.folder / "scheduler.json"

    def kill_worker(self, address: str) -> None:
        name = self.client.scheduler_info(n_workers=-1)["workers"][address]["name"]
        process = self.workers[name]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=START_GUARD)

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        for process in [*self.workers.values(), self.scheduler]:
            if process.poll() is None:
                process.terminate()
        for process in [*self.workers.values(), self.scheduler]:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def dask_command() -> str:
    return str(Path(sys.executable).parent / "dask")


def start_cluster(folder: Path, workers: int = 2) -> LocalCluster:
    from distributed import Client

    folder.mkdir(parents=True, exist_ok=True)
    log = open(folder / "scheduler.log", "wb")  # noqa: SIM115 - the process keeps it
    scheduler = subprocess.Popen(
        [dask_command(), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(folder / "scheduler.json")],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    cluster = LocalCluster(folder, scheduler)
    try:
        deadline = time.monotonic() + START_GUARD
        while not cluster.scheduler_file.exists() or not cluster.scheduler_file.read_text().strip().endswith("}"):
            if scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dask scheduler did not start: {(folder / 'scheduler.log').read_text()}")
            time.sleep(0.05)
        for i in range(workers):
            add_worker(cluster, f"w{i}")
        cluster.client = Client(scheduler_file=str(cluster.scheduler_file), timeout="60s", set_as_default=False)
        cluster.client.wait_for_workers(workers, timeout=START_GUARD)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def add_worker(cluster: LocalCluster, name: str) -> None:
    log = open(cluster.folder / f"{name}.log", "wb")  # noqa: SIM115 - the process keeps it
    cluster.workers[name] = subprocess.Popen(
        [dask_command(), "worker", "--scheduler-file", str(cluster.scheduler_file), "--nthreads", "1",
         "--no-nanny", "--no-dashboard", "--host", "127.0.0.1", "--name", name,
         "--local-directory", str(cluster.folder / name)],
        cwd=cluster.folder, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
