"""Expectation files: what a well-formed one means, and one clear line for a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmm.errors import ConfigError
from vmm.testing.spec import Budget, load_spec, parse_budget

HEAD = '[machine]\nimage = "disk.img"\n'


def spec(tmp_path: Path, text: str):
    path = tmp_path / "test_x.vmm.toml"
    path.write_text(text)
    return load_spec(path)


@pytest.mark.parametrize(
    ("text", "budget"),
    [(2_000_000, Budget(instructions=2_000_000)), ("50M", Budget(instructions=50_000_000)),
     ("1_500k insns", Budget(instructions=1_500_000)), ("5s", Budget(time_ns=5 * 10**9)),
     ("20ms", Budget(time_ns=20_000_000)), ("2.5us", Budget(time_ns=2500))],
)  # fmt: skip
def test_budgets_in_instructions_or_virtual_time(text, budget) -> None:
    assert parse_budget(text, "here") == budget


def test_steps_read_in_order_with_their_budgets(tmp_path: Path) -> None:
    s = spec(
        tmp_path,
        HEAD
        + """
        [[step]]
        expect = 'login: '
        within = "3M"
        [[step]]
        send = "root\\r"
        [[step]]
        exit = 1
        [[step]]
        serial_equals = "expected.txt"
        raw = true
    """,
    )
    assert [(st.kind, st.value) for st in s.steps][:3] == [("expect", "login: "), ("send", "root\r"), ("exit", 1)]
    assert s.steps[0].within == Budget(instructions=3_000_000)
    assert s.steps[2].within == Budget(time_ns=10**9)  # the default: 1 s of virtual time
    assert s.steps[3].value == tmp_path / "expected.txt" and s.steps[3].raw
    assert s.name == "test_x" and s.slug == "test_x"
    assert s.golden_path == tmp_path / "test_x.vmm.golden.json"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[step]]\nexpect = 'x'\n", "a [machine] table is required"),
        (HEAD, "no [[step]] tables"),
        (HEAD + "[[step]]\nexpect = 'x'\nsend = 'y'\n", "step 1: a step has exactly one of"),
        (HEAD + "[[step]]\nexpct = 'x'\n", "step 1: unknown key 'expct'"),
        (HEAD + "[[step]]\nexpect = '('\n", "step 1: expect = '(' is not a usable regex"),
        (HEAD + "[[step]]\nexpect = 'x'\nwithin = 'soon'\n", "step 1: within = 'soon': expected instructions"),
        (HEAD + "[[step]]\nstage = 'kernal'\n", "step 1: stage 'kernal' is not one of firmware"),
        (HEAD + "[[step]]\nexit = 'crashed'\n", "step 1: exit must be a status 0-255"),
        (HEAD + "[keep]\ntrace = -1\n[[step]]\nexit = 1\n", "[keep] trace must be"),
        ("[machine\n", "not valid TOML"),
    ],
)  # fmt: skip
def test_a_bad_file_is_one_line_naming_file_step_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        spec(tmp_path, text)
    assert str(caught.value).startswith(f"{tmp_path / 'test_x.vmm.toml'}: ")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_image_is_named_when_the_machine_is_built(tmp_path: Path) -> None:
    s = spec(tmp_path, HEAD + "[[step]]\nexit = 1\n")
    assert s.required_files() == [tmp_path / "disk.img"]
    with pytest.raises(ConfigError, match=r"\[machine\]: .*disk.img: no such file"):
        s.machine_config()
