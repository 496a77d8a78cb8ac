"""`vmm test` against hostile expectation files (issue 23): a regex that backtracks without
end fails within the file's timeout, a failing test is not replayed past its timeout, and
malformed files (wrong types, huge sizes, deep nesting, random mutations) are one line."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.conftest import require_file
from tests.unit.testing.conftest import BIOS, boot_sector, write_spec
from vmm.cli import main
from vmm.errors import VmmError
from vmm.testing.spec import load_spec

FUZZ_CASES = 10_000

# 16-bit code at 0000:7C00: 40 'a' on COM1, then spin for ever.
AAAA_CODE = bytes.fromhex(
    "baf803"      # mov dx, 0x3f8
    "b92800"      # mov cx, 40
    "b061"        # mov al, 'a'
    "ee"          # next: out dx, al
    "e2fd"        # loop next
    "fa"          # cli
    "ebfe"        # jmp $
)  # fmt: skip


@pytest.fixture
def aaaa_image(tmp_path: Path) -> Path:
    require_file(BIOS, "run make -C firmware")
    path = tmp_path / "aaaa.img"
    path.write_bytes(boot_sector(AAAA_CODE))
    return path


def run_vmm_test(spec: Path, tmp_path: Path, capsys) -> tuple[int, list[str]]:
    status = main(["test", str(spec), "--out", str(tmp_path / "out")])
    return status, capsys.readouterr().out.splitlines()


def test_a_regex_that_backtracks_for_ever_fails_within_the_timeout(aaaa_image, tmp_path, capsys):
    spec = write_spec(
        tmp_path,
        "regex",
        f"timeout = 2\n[machine]\nimage = \"{aaaa_image}\"\n[[step]]\nexpect = '(a|aa)+c'\nwithin = '50M'\n",
    )
    status, out = run_vmm_test(spec, tmp_path, capsys)
    assert status == 1
    assert out[0].startswith("FAILED  test_regex")
    assert "matching '(a|aa)+c' against the serial output ran past the test's timeout" in out[1]


def test_a_test_that_ran_out_of_time_is_not_replayed(aaaa_image, tmp_path, capsys):
    spec = write_spec(
        tmp_path,
        "slow",
        f"timeout = 0.5\n[machine]\nimage = \"{aaaa_image}\"\n[[step]]\nexpect = 'never'\nwithin = '1000s'\n",
    )
    status, out = run_vmm_test(spec, tmp_path, capsys)
    assert status == 1
    assert "before the wall-clock timeout" in out[1]
    report = (tmp_path / "out" / "test_slow" / "report.txt").read_text()
    assert "not replayed: the test used up its wall-clock timeout" in report


HEAD = '[machine]\nimage = "disk.img"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[machine]\nimage = 5\n[[step]]\nexit = 1\n", "[machine]: image must be a non-empty string"),
        ("[machine]\nbundle = [1]\n[[step]]\nexit = 1\n", "[machine]: bundle must be a non-empty string"),
        (HEAD + "disks = 'a.img'\n[[step]]\nexit = 1\n", "[machine]: disks must be a list of file names"),
        (HEAD + "disks = [1, 2]\n[[step]]\nexit = 1\n", "[machine]: disks must be a list of file names"),
        (HEAD + "mem = '1e400M'\n[[step]]\nexit = 1\n", "[machine]: mem: "),
        (HEAD + "mem = 1.5\n[[step]]\nexit = 1\n", "[machine]: mem must be a size"),
        (HEAD + "stage_entries = 3\n[[step]]\nexit = 1\n", "stage_entries must be a table"),
        (HEAD + "[machine.stage_entries]\nkernel = 'zz'\n[[step]]\nexit = 1\n",
         "stage_entries: kernel = 'zz' is not an address"),
        (HEAD + "[machine.stage_entries]\nkernal = 1\n[[step]]\nexit = 1\n", "stage_entries: 'kernal' is not one of"),
        ("a = " + "[" * 100_000 + "]" * 100_000 + "\n", "not valid TOML"),
    ],
)  # fmt: skip
def test_malformed_machine_tables_are_one_line(tmp_path, text, message):
    path = tmp_path / "test_x.vmm.toml"
    path.write_text(text)
    with pytest.raises(VmmError) as info:
        load_spec(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


SEED_SPEC = """name = "seed"
timeout = 30
[machine]
image = "disk.img"
mem = "16M"
disks = ["b.img"]
stage_entries = { kernel = "0x100000" }
[keep]
trace = 64
[[step]]
expect = 'login: '
within = "3M"
[[step]]
send = "root\\r"
[[step]]
stage = "kernel"
within = "10ms"
[[step]]
exit = 1
"""


def test_fuzz_mutated_expectation_files_give_one_line_or_a_spec(tmp_path):
    """Seeded mutations of a valid file (bytes flipped, cut, repeated, spliced): every one
    loads or is refused with a VmmError; nothing else escapes."""
    rng = random.Random(2323)
    seed = SEED_SPEC.encode()
    path = tmp_path / "test_fuzz.vmm.toml"
    pieces = [
        b"[",
        b"]",
        b"=",
        b'"',
        b"'",
        b"\n",
        b"1e400",
        b"-1",
        b"[[step]]",
        b"{",
        b"}",
        b",",
        b"0x",
        b"99999999999999999999",
        b"true",
        b"inf",
        b"nan",
        b"\\u0000",
        b"[machine]",
        b"within = ",
    ]
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(FUZZ_CASES):
        data = bytearray(seed)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data) + 1)
            choice = rng.random()
            if choice < 0.4:
                data[at:at] = rng.choice(pieces)
            elif choice < 0.7 and data:
                del data[at : at + rng.randint(1, 8)]
            elif data:
                data[min(at, len(data) - 1)] = rng.randrange(256)
        path.write_bytes(bytes(data))
        try:
            load_spec(path)
            outcomes["loaded"] += 1
        except VmmError as exc:
            assert "\n" not in str(exc).rstrip("\n") or "TOML" in str(exc)
            outcomes["refused"] += 1
    assert outcomes["loaded"] and outcomes["refused"]
