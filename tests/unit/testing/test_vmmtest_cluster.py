"""`vmm test --cluster` on a real local Dask cluster (scheduler + two workers on 127.0.0.1):
the same results, JUnit and failure folders as `--jobs 1`, and a worker killed mid-run."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.unit.testing.conftest import TOYOS, boot_sector, require_file, write_spec
from tests.unit.testing.dask_cluster import START_GUARD, start_cluster
from vmm.cli import main
from vmm.testing.cluster import TOPIC

GUESTS = ROOT / "tests" / "guests"
RUN_GUARD = 600  # seconds: a bound on a `vmm test` subprocess, never an assertion
SPIN = bytes.fromhex("ebfe")  # jmp $: runs as long as its budget


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = start_cluster(tmp_path_factory.mktemp("dask"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def prompt_state(tmp_path_factory) -> Path:
    """The toy OS at its shell prompt, saved by a `snapshot` step."""
    require_file(TOYOS)
    folder = tmp_path_factory.mktemp("prompt")
    steps = '[[step]]\nexpect = \'toyos\\$ \'\nwithin = "50M"\n[[step]]\nsnapshot = "prompt"\n'
    spec = write_spec(folder, "boot", f'[machine]\nimage = "{TOYOS}"\n{steps}')
    assert main(["test", str(spec), "--out", str(folder / "out")]) == 0
    for suffix in (".vmsn", ".vmem"):
        (folder / "out" / "test_boot" / f"prompt{suffix}").rename(folder / f"prompt{suffix}")
    return folder / "prompt.vmsn"


def from_prompt(folder: Path, name: str, text: str, expected: str) -> Path:
    start = f'[machine]\nstart = "{folder / "prompt.vmsn"}"\n'
    steps = f'[[step]]\nsend = "echo {text}\\r"\n[[step]]\nexpect = \'{expected}\\r\\ntoyos\\$ \'\nwithin = "1s"\n'
    return write_spec(folder, name, start + steps)


def normalized_junit(path: Path, out: Path) -> str:
    root = ET.parse(path).getroot()
    for element in root.iter():
        element.attrib.pop("time", None)
        element.attrib.pop("hostname", None)
        for prop in list(element.findall("property")):
            if prop.get("name") in ("worker", "retried_after_worker_died"):
                element.remove(prop)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode").replace(str(out), "OUT")


def folder_contents(out: Path) -> dict[str, bytes]:
    found = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file() and p.name != ".vmm-test-out"):
        data = path.read_bytes()
        if path.suffix in (".txt", ".vmsn"):
            data = data.replace(str(out).encode(), b"OUT")
        found[str(path.relative_to(out))] = data
    return found


def outcomes(text: str) -> list[str]:
    return sorted(re.findall(r"^(PASSED|FAILED|ERROR) +(\S.*?)(?:  +[\d,]+ insns.*)?$", text, re.M), key=str)


def test_the_cluster_gives_what_a_local_run_gives(cluster, prompt_state: Path, tmp_path: Path, capsys) -> None:
    folder = prompt_state.parent
    panic = tmp_path / "panic.img"
    panic.write_bytes(boot_sector(bytes.fromhex("fa f4")))  # cli; hlt
    failing = write_spec(tmp_path, "halts", f'[machine]\nimage = "{panic}"\n[[step]]\nexit = 1\nwithin = "1M"\n')
    suite = [*sorted(GUESTS.glob("*.vmm.toml")), failing,
             from_prompt(folder, "echo_a", "alpha", "alpha"), from_prompt(folder, "echo_b", "beta", "beta"),
             from_prompt(folder, "echo_wrong", "gamma", "delta")]  # fmt: skip
    runs = {}
    for how in (["--jobs", "1"], ["--cluster", str(cluster.scheduler_file)]):
        out, junit = tmp_path / f"out-{how[0][2:]}", tmp_path / f"{how[0][2:]}.xml"
        status = main(["test", *map(str, suite), "--out", str(out), "--junit", str(junit), *how])
        runs[how[0]] = (status, outcomes(capsys.readouterr().out), normalized_junit(junit, out), folder_contents(out))
    local, remote = runs["--jobs"], runs["--cluster"]
    assert local[0] == remote[0] == 1
    assert ("FAILED", "test_halts") in local[1] and ("FAILED", "test_echo_wrong") in local[1]
    assert ("PASSED", "test_echo_a") in local[1] and len(local[1]) == len(suite)
    assert remote[1] == local[1]
    assert remote[2] == local[2]
    assert sorted(remote[3]) == sorted(local[3])
    assert {"test_halts/report.txt", "test_halts/screen.png", "test_halts/state.vmsn",
            "test_halts/state.vmem", "test_echo_wrong/report.txt"} <= set(local[3])  # fmt: skip
    for name, data in local[3].items():
        assert remote[3][name] == data, name


def spin_spec(folder: Path, name: str, budget: str) -> Path:
    image = folder / "spin.img"
    image.write_bytes(boot_sector(SPIN))
    return write_spec(folder, name, f'[machine]\nimage = "{image}"\n[[step]]\nrun = "{budget}"\n')


def run_and_kill(cluster, spec: Path, out: Path, *flags: str) -> tuple[str, str, subprocess.CompletedProcess]:
    """Start `vmm test spec --cluster`, kill the worker that starts the test, let the run end."""
    starts: queue.Queue = queue.Queue()
    cluster.client.subscribe_topic(TOPIC, lambda event: starts.put(event[1]["worker"]))
    junit = out.with_suffix(".xml")
    command = [sys.executable, "-m", "vmm", "test", str(spec), "--cluster", str(cluster.scheduler_file),
               "--out", str(out), "--junit", str(junit), "--progress", "lines", *flags]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        victim = starts.get(timeout=START_GUARD)
        cluster.kill_worker(victim)
        output, _ = process.communicate(timeout=RUN_GUARD)
    finally:
        cluster.client.unsubscribe_topic(TOPIC)
        if process.poll() is None:
            process.kill()
            process.wait()
    return victim, junit.read_text(), subprocess.CompletedProcess(command, process.returncode, output)


def test_a_killed_worker_retries_its_test_elsewhere_then_errors_name_it(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "dask", workers=2)
    try:
        spec = spin_spec(tmp_path, "spin", "1500M")  # about a second or more: killed mid-run
        victim, junit, run = run_and_kill(cluster, spec, tmp_path / "out1")
        assert run.returncode == 0, run.stdout
        assert "PASSED  test_spin" in run.stdout
        assert f"(retried: {victim} died while running it)" in run.stdout
        assert f'name="retried_after_worker_died" value="{victim}"' in junit
        # One worker left: kill it too. No worker remains; the run ends with the test an error.
        victim, junit, run = run_and_kill(cluster, spec, tmp_path / "out2", "--cluster-wait", "2")
        assert run.returncode == 1, run.stdout
        # (Said by the scheduler, which forgets the test with the files only that worker held,
        # or by vmm when the cluster stays without workers for --cluster-wait.)
        error = re.search(r"^ERROR   test_spin: (.*)$", run.stdout, re.M)
        assert error and f"the worker {victim} died while running it" in error[1], run.stdout
        assert "1 error in" in run.stdout
    finally:
        cluster.stop()
