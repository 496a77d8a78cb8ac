"""The pytest plugin from a course's point of view: a failing fixture test shows the
machine's failure report, and a tests folder of expectation files is collected."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]


def test_a_failing_fixture_test_shows_the_report(pytester, panic_image: Path) -> None:
    pytester.makepyfile(
        test_course=f"""
        import pytest

        @pytest.mark.vm(image={str(panic_image)!r})
        def test_boots_to_login(vm):
            vm.expect("login: ", within="2M")
    """
    )
    pytester.makefile(".vmm.toml", test_spec=f'[machine]\nimage = "{panic_image}"\n'
                      "[[step]]\nexpect = 'kernel panic'\nwithin = \"1M\"\n")  # fmt: skip
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--vmm-out", str(pytester.path / "out"))
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*ExpectationFailed: no serial output matching 'login: ' before the guest ended (halted*",
        "*vmm report (machine 0, *out/test_boots_to_login/vm0)*",
        "*kernel panic: no init found*",
        "*== stage timeline ==*",
    ])  # fmt: skip
    assert (pytester.path / "out" / "test_boots_to_login" / "vm0" / "state.vmsn").exists()
