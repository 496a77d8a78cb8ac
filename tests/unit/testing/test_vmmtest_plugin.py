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


def test_ids_are_test_names_a_bad_file_is_its_own_error_and_a_missing_image_fails(pytester, panic_image: Path) -> None:
    pytester.makefile(".vmm.toml", test_named=f'name = "panics on boot"\n[machine]\nimage = "{panic_image}"\n'
                      "[[step]]\nexpect = 'kernel panic'\nwithin = \"1M\"\n")  # fmt: skip
    pytester.makefile(".vmm.toml", test_broken="[machine\n")
    pytester.makepyfile(
        test_course=f"""
        import pytest

        @pytest.mark.vm(image="no/such/disk.img")
        def test_missing_image(vm):
            pass

        @pytest.mark.vm(image={str(panic_image)!r})
        def test_waits_in_vain(vm):
            vm.expect("login: ", within="2M")

        @pytest.mark.vm(image={str(panic_image)!r})
        def test_bad_budget(vm):
            vm.expect("login: ", within="-5")
    """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-v", "--continue-on-collection-errors", "--vmm-out", str(pytester.path / "out")
    )
    result.assert_outcomes(passed=1, failed=2, errors=2)  # a fixture that cannot boot is an error
    out = result.stdout.str()
    assert "test_named.vmm.toml::panics on boot PASSED" in out
    assert "ERROR collecting test_broken.vmm.toml" in out and "test_broken.vmm.toml" in out
    assert "no/such/disk.img: no such file (the vm fixture's image)" in out
    assert "SKIPPED" not in out
    # The failure shows the test's own line, not vmm's frames.
    assert 'vm.expect("login: ", within="2M")' in out
    assert "within: -5 is negative" in out and 'vm.expect("login: ", within="-5")' in out
    assert "vmm/testing/" not in out.replace("/vmm-out", "") and "vmm/sizes.py" not in out
