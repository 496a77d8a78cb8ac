"""`vmm test`: a line per test, exit status, JUnit XML, parallel jobs, golden runs and
the determinism check, as a user sees them."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.unit.testing.conftest import write_spec
from vmm.cli import main

PANIC_STEPS = """
[[step]]
expect = 'kernel panic: (.*)\\r\\n'
within = "1M"
[[step]]
exit = "halted"
within = "1M"
"""


@pytest.fixture
def suite(panic_image: Path, tmp_path: Path) -> tuple[Path, Path]:
    good = write_spec(tmp_path, "good", f'[machine]\nimage = "{panic_image}"\n{PANIC_STEPS}')
    bad = write_spec(tmp_path, "bad", f'[machine]\nimage = "{panic_image}"\n[[step]]\nexit = 1\nwithin = "1M"\n')
    return good, bad


def test_one_line_per_test_and_a_failing_status(suite, tmp_path: Path, capsys) -> None:
    good, bad = suite
    junit = tmp_path / "results.xml"
    status = main(["test", str(good), str(bad), "--out", str(tmp_path / "out"), "--junit", str(junit)])
    out = capsys.readouterr().out.splitlines()
    assert status == 1
    assert re.match(r"PASSED  test_good +\d{1,3}(,\d{3})* insns +[\d.]+ ms virtual", out[0]), out[0]
    assert out[1].startswith("FAILED  test_bad")
    ended = "the guest ended with halted: CPU halted with interrupts disabled at pc 0x7c15"
    assert f"{ended}, expected exit status 1" in out[2]
    assert out[3].strip() == f"report: {tmp_path / 'out' / 'test_bad'}/report.txt"
    assert out[-2].startswith("1 passed, 1 failed in ")
    suite_xml = ET.parse(junit).getroot().find("testsuite")
    assert suite_xml.get("tests") == "2" and suite_xml.get("failures") == "1"
    cases = suite_xml.findall("testcase")
    assert cases[0].find("failure") is None and "kernel panic" in cases[0].find("system-out").text
    assert "== stage timeline ==" in cases[1].find("failure").text


def test_parallel_jobs_give_the_same_results(suite, tmp_path: Path, capsys) -> None:
    good, bad = suite
    main(["test", str(good), str(bad), "--out", str(tmp_path / "a")])
    serial = sorted(line.split(" ms virtual")[0] for line in capsys.readouterr().out.splitlines() if "insns" in line)
    assert main(["test", str(good), str(bad), "--out", str(tmp_path / "b"), "--jobs", "2"]) == 1
    out = capsys.readouterr().out
    parallel = sorted(line.split(" ms virtual")[0] for line in out.splitlines() if "insns" in line)
    assert parallel == serial and "(2 jobs)" in out


def test_a_golden_run_reports_the_first_divergence(suite, capsys, tmp_path: Path) -> None:
    good, _ = suite
    assert main(["test", str(good), "--record", "--out", str(tmp_path / "o")]) == 0
    golden_path = good.with_name("test_good.vmm.golden.json")
    golden = json.loads(golden_path.read_text())
    assert golden["serial"].endswith("kernel panic: no init found\r\n")
    assert main(["test", str(good), "--out", str(tmp_path / "o")]) == 0
    at = golden["serial"].index("no init")
    golden["serial"] = golden["serial"].replace("no init", "no INIT")
    golden_path.write_text(json.dumps(golden))
    capsys.readouterr()
    assert main(["test", str(good), "--out", str(tmp_path / "o")]) == 1
    message = capsys.readouterr().out.splitlines()[1].strip()
    written = golden["byte_insns"][at + 3]
    assert message == (
        f"serial output diverges from the golden run at byte {at + 3} (line 5): the golden run "
        f"wrote 'INIT found\\n' at instruction {written:,}, "
        f"this run 'init found\\n' at instruction {written:,}"
    )


def test_check_determinism_runs_twice(suite, capsys, tmp_path: Path) -> None:
    good, _ = suite
    assert main(["test", str(good), "--check-determinism", "--out", str(tmp_path / "o")]) == 0
    assert capsys.readouterr().out.startswith("PASSED  test_good")


def test_a_bad_file_is_its_own_error_and_the_rest_run(suite, tmp_path: Path, capsys) -> None:
    good, _ = suite
    bad = write_spec(tmp_path, "broken", "[machine]\nimage = 'x.img'\n[[step]]\nwait = 1\n")
    assert main(["test", str(bad), str(good), "--out", str(tmp_path / "o")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"ERROR   test_broken.vmm.toml: {bad}: step 1: unknown key 'wait' "
        "(known: exit, expect, note, raw, run, screen, send, send-keys, serial_equals, snapshot, stage, stages, within)"
    )
    assert out[1].startswith("PASSED  test_good")
    assert out[-1].startswith("1 passed, 1 error in ")


def test_each_run_owns_its_output_folder(suite, tmp_path: Path, capsys) -> None:
    good, bad = suite
    out = tmp_path / "o"
    assert main(["test", str(good), str(bad), "--out", str(out)]) == 1
    assert sorted(p.name for p in out.iterdir()) == [".vmm-test-out", "test_bad"]
    vmem = (out / "test_bad" / "state.vmem").stat()
    assert vmem.st_size == 64 << 20 and vmem.st_blocks * 512 < 4 << 20  # sparse: the guest used little RAM
    assert capsys.readouterr().out.splitlines()[-1] == f"failure reports in {out}/"
    assert main(["test", str(good), "--out", str(out)]) == 0  # the stale report goes
    assert sorted(p.name for p in out.iterdir()) == [".vmm-test-out"]
    # A golden run that no longer matches writes its own report, and names it.
    assert main(["test", str(good), "--record", "--out", str(out)]) == 0
    golden = good.with_name("test_good.vmm.golden.json")
    golden.write_text(golden.read_text().replace("no init", "no INIT"))
    capsys.readouterr()
    assert main(["test", str(good), "--out", str(out)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].strip() == f"report: {out / 'test_good'}/report.txt"
    assert "the golden run test_good.vmm.golden.json" in (out / "test_good" / "report.txt").read_text()
    # A folder vmm did not make is not cleared.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["test", str(good), "--out", str(mine)]) == 2
    assert "not empty and not made by vmm test" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me"
