"""`vmm test` at fleet scale on one machine: --shard K/N and merge-junit, the progress bar,
the slowest tests and the fleet summary, snapshot fan-out, and pytest-xdist."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.unit.testing.conftest import TOYOS, require_file, write_spec
from vmm.cli import main
from vmm.errors import ConfigError
from vmm.testing.fanout import MachinePool
from vmm.testing.progress import Progress
from vmm.testing.runner import TestResult as Result
from vmm.testing.runner import run_spec
from vmm.testing.shard import parse_shard, split
from vmm.testing.spec import load_spec

pytest_plugins = ["pytester"]
PANIC_STEPS = "[[step]]\nexpect = 'kernel panic'\nwithin = \"1M\"\n"


def test_the_split_is_balanced_by_recorded_durations_and_deterministic() -> None:
    durations = {"a": 10.0, "b": 1.0, "c": 1.0, "d": 8.0, "e": 2.0}
    shards = split(list("abcdef"), durations, 2)  # f has no duration: it counts as the mean, 4.4
    assert shards == [["a", "b", "e"], ["c", "d", "f"]]  # 13 s and 13.4 s
    assert split(list("abcdef"), durations, 2) == shards
    assert sorted(sum(split(list("abcdef"), durations, 4), [])) == list("abcdef")
    assert split(["x", "y"], {}, 3) == [["x"], ["y"], []]
    assert parse_shard(" 2/3 ") == (2, 3)
    for bad in ("0/2", "3/2", "1-2", "a/b"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)


def test_shards_cover_the_suite_once_and_their_junit_merges(panic_image: Path, tmp_path: Path, capsys) -> None:
    specs = [write_spec(tmp_path, f"t{i}", f'[machine]\nimage = "{panic_image}"\n{PANIC_STEPS}') for i in range(5)]
    durations = tmp_path / "durations.json"
    args = [*map(str, specs), "--durations-file", str(durations)]
    assert main(["test", *args, "--store-durations", "--out", str(tmp_path / "o")]) == 0
    capsys.readouterr()
    recorded = json.loads(durations.read_text())
    assert sorted(recorded) == sorted(s.as_posix() for s in specs)
    ran = []
    for k in (1, 2):
        junit = tmp_path / f"shard{k}.xml"
        assert main(["test", *args, "--shard", f"{k}/2", "--out", str(tmp_path / "o"), "--junit", str(junit)]) == 0
        out = capsys.readouterr().out
        assert f"(1 job, shard {k}/2)" in out
        ran.append(re.findall(r"^PASSED  (test_t\d)", out, re.M))
    assert sorted(ran[0] + ran[1]) == [f"test_t{i}" for i in range(5)] and ran[0] and ran[1]
    merged = tmp_path / "all.xml"
    assert main(["merge-junit", str(merged), str(tmp_path / "shard1.xml"), str(tmp_path / "shard2.xml")]) == 0
    assert capsys.readouterr().out.startswith(f"{merged}: 2 suites from 2 files (5 tests, 0 failures")
    root = ET.parse(merged).getroot()
    assert root.get("tests") == "5" and len(root.findall("testsuite/testcase")) == 5
    (tmp_path / "bad.xml").write_text("<html/>")
    assert main(["merge-junit", str(merged), str(tmp_path / "bad.xml")]) == 2
    assert "bad.xml: not a JUnit XML file (root element <html>)" in capsys.readouterr().err


def test_slowest_tests_and_the_fleet_summary_end_the_run(panic_image: Path, tmp_path: Path, capsys) -> None:
    specs = [write_spec(tmp_path, f"t{i}", f'[machine]\nimage = "{panic_image}"\n{PANIC_STEPS}') for i in range(3)]
    assert main(["test", *map(str, specs), "--durations", "2", "--out", str(tmp_path / "o")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[3] == "== slowest 2 durations =="
    assert re.match(r" +\d+\.\d\ds  test_t\d$", lines[4])
    assert re.match(r"fleet: [\d,]+ instructions and [\d.]+ s virtual in [\d.]+ s of test time on 1 worker: "
                    r"[\d.]+ M instructions and [\d.]+ s virtual per host second", lines[6])  # fmt: skip
    assert lines[7].startswith("3 passed in ")


def test_the_progress_bar_counts_tests_with_an_eta() -> None:
    stream = io.StringIO()
    progress = Progress(2, stream=stream, bar=True)
    progress.started(0, "w1")
    progress.finished(Result("first", "a", "passed", wall_s=0.1))
    progress.finished(Result("second", "b", "failed", message="why", wall_s=0.1))
    progress.close()
    shown = stream.getvalue()
    assert "PASSED  first" in shown and "FAILED  second" in shown
    assert "2/2" in shown and "1 passed, 1 failed" in shown
    lines = io.StringIO()
    plain = Progress(1, stream=lines, bar=False)  # not a terminal: the result lines only
    plain.finished(Result("only", "a", "passed"))
    assert lines.getvalue().startswith("PASSED  only") and "1/1" not in lines.getvalue()


@pytest.fixture
def prompt(tmp_path: Path) -> Path:
    require_file(TOYOS)
    steps = '[[step]]\nexpect = \'toyos\\$ \'\nwithin = "50M"\n[[step]]\nsnapshot = "prompt"\n'
    spec = write_spec(tmp_path, "boot", f'[machine]\nimage = "{TOYOS}"\n{steps}')
    assert run_spec(load_spec(spec), tmp_path / "o").outcome == "passed"
    return tmp_path / "o" / "test_boot" / "prompt.vmsn"


def from_start(folder: Path, name: str, start: Path, steps: str) -> Path:
    return write_spec(folder, name, f'[machine]\nstart = "{start}"\n{steps}')


def test_fan_out_boots_once_per_worker_and_reverts_to_the_same_machine(prompt: Path, tmp_path: Path) -> None:
    echo = '[[step]]\nsend = "echo hi\\r"\n[[step]]\nexpect = \'hi\\r\\ntoyos\\$ \'\nwithin = "1s"\n'
    poweroff = '[[step]]\nsend = "poweroff\\r"\n[[step]]\nexit = 1\nwithin = "1s"\n'
    specs = [load_spec(from_start(tmp_path, name, prompt, steps))
             for name, steps in (("echo", echo), ("off", poweroff), ("echo2", echo))]  # fmt: skip
    pool = MachinePool()
    shared = [run_spec(spec, tmp_path / "a", pool=pool) for spec in specs]
    fresh = [run_spec(spec, tmp_path / "b") for spec in specs]
    assert (pool.boots, pool.reverts) == (1, 2)
    assert [r.outcome for r in shared] == ["passed"] * 3
    assert [(r.instructions, r.serial, r.byte_insns) for r in shared] == [
        (r.instructions, r.serial, r.byte_insns) for r in fresh
    ]
    pool.close()


def test_a_start_state_names_the_whole_machine(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "both", '[machine]\nstart = "s.vmsn"\nimage = "x.img"\n[[step]]\nrun = "1M"\n')
    with pytest.raises(ConfigError, match="'image' comes from that state"):
        load_spec(spec)
    missing = load_spec(write_spec(tmp_path, "gone", '[machine]\nstart = "gone.vmsn"\n[[step]]\nrun = "1M"\n'))
    result = run_spec(missing, tmp_path / "o")
    assert result.outcome == "error" and "gone.vmsn: no such state file" in result.message


def test_pytest_xdist_runs_expectation_files_and_vm_fixtures_in_parallel(panic_image: Path, pytester) -> None:
    for folder in ("one", "two"):  # the same file and test names in two folders: no shared report folder
        pytester.mkpydir(folder)
        (pytester.path / folder / "test_boot.vmm.toml").write_text(
            f'[machine]\nimage = "{panic_image}"\n[[step]]\nexpect = "login: "\nwithin = "1M"\n'
        )
        (pytester.path / folder / "test_fixture.py").write_text(
            f"def test_login(vm_factory):\n    vm_factory(image={str(panic_image)!r}).expect('login: ', within='1M')\n"
        )
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--vmm-out", str(out))
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["*2 workers*"])
    reports = sorted(str(p.relative_to(out)) for p in out.rglob("report.txt"))
    assert len(reports) == 4 and len({Path(r).parent for r in reports}) == 4, reports


def test_a_start_state_machine_writes_its_disks_to_memory_and_a_revert_drops_them(prompt: Path) -> None:
    from vmm.disk.scratch import ScratchDisk

    image = TOYOS.read_bytes()
    pool = MachinePool()
    machine, give_back = pool.checkout(prompt, None)
    disk = machine.disks["ide0:0"]
    assert isinstance(disk, ScratchDisk)
    disk.write(0, bytes(512))  # as a guest would: the sector changes for this test only
    assert disk.read(0, 1) == bytes(512)
    give_back(machine)
    again, give_back = pool.checkout(prompt, None)
    assert again is machine and again.disks["ide0:0"].read(0, 1) == image[:512]
    give_back(again)
    pool.close()
    assert TOYOS.read_bytes() == image
