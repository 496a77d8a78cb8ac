"""pytest plugin (registered as ``pytest11: vmm``): guest images as tests.

* Files named ``test_*.vmm.toml`` are collected as tests (see vmm.testing.spec for the
  format); a failure shows the whole failure report, and its folder.
* The ``vm_factory`` fixture boots machines: ``vm = vm_factory(image=..., bios=...)``
  (paths relative to the test file's folder); the ``vm`` fixture boots the one named
  by ``@pytest.mark.vm(image=...)``. Both close their machines after the test; a failed
  test gets a failure report for each of its machines.
* Test ids are the tests' names: an expectation file's ``name``, else its file name.
* Works under pytest-xdist (``pytest -n N``): every test's report folder is its own (its
  name, or its node id when two tests share a name), whichever worker runs it.
* A missing image or ROM fails the test, naming the file: it is the test's own error,
  not a missing tool (a test that needs an outside tool skips, naming the tool).
* A failure raised by vmm (ExpectationFailed, any VmmError) shows the test's own lines,
  not vmm's stack frames.

Options: ``--vmm-out DIR`` (failure reports; default a pytest temporary folder),
``--vmm-record`` (store golden runs), ``--vmm-check-determinism``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SUFFIX = ".vmm.toml"
VMS_KEY = pytest.StashKey[list]()
# A test's report folder under --vmm-out: its name, or (when another test has the same
# name, e.g. two files' test_boot) its node id: under pytest-xdist (``-n N``) the workers
# write into one --vmm-out side by side, and no two tests share a folder.
FOLDER_KEY = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vmm", "guest image tests (vmm)")
    group.addoption("--vmm-out", metavar="DIR", help="where vmm failure reports and snapshots go")
    group.addoption("--vmm-record", action="store_true", help="store passing expectation-file runs as golden")
    group.addoption("--vmm-check-determinism", action="store_true", help="run each expectation file twice")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vm(**machine): the machine the `vm` fixture boots (image=, bios=, mem=...)")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _folder_name(item: pytest.Item) -> str:
    if isinstance(item, ExpectationItem):
        return _safe(item.path.name.removesuffix(".toml").removesuffix(".vmm"))
    return _safe(item.name)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    from collections import Counter

    names = Counter(_folder_name(item) for item in items)
    for item in items:
        name = _folder_name(item)
        item.stash[FOLDER_KEY] = name if names[name] == 1 else _safe(item.nodeid)


def _missing(what: str, needed_by: str) -> None:
    pytest.fail(f"{what}: no such file ({needed_by})", pytrace=False)


def _out_dir(config: pytest.Config, name: str) -> Path:
    chosen = config.getoption("--vmm-out")
    if chosen:
        return Path(chosen)
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is not None:
        return factory.mktemp(f"vmm-{name}")
    import tempfile

    return Path(tempfile.mkdtemp(prefix="vmm-"))


# ---- expectation files ----


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.name.startswith("test_") and file_path.name.endswith(SUFFIX):
        return ExpectationFile.from_parent(parent, path=file_path)
    return None


class ExpectationFile(pytest.File):
    def collect(self):
        from vmm.errors import VmmError
        from vmm.testing.spec import load_spec

        try:
            spec = load_spec(self.path)
        except VmmError as exc:  # this file's collection error; the other files still run
            raise self.CollectError(str(exc)) from None
        yield ExpectationItem.from_parent(self, name=spec.name.replace("::", ":"))

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, self.CollectError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class ExpectationFailure(Exception):
    """A failed expectation file: carries the report text pytest shows."""


class ExpectationItem(pytest.Item):
    def runtest(self) -> None:
        from vmm.testing.runner import check_determinism, run_spec
        from vmm.testing.spec import load_spec

        spec = load_spec(self.path)
        for needed in spec.required_files():
            if not needed.exists():
                _missing(str(needed), f"named by {self.path.name}")
        out = _out_dir(self.config, spec.slug)
        folder = self.stash.get(FOLDER_KEY, spec.slug)
        if folder != spec.slug:  # another file has this name: a folder of its own around the report
            out = out / folder
        if self.config.getoption("--vmm-check-determinism"):
            result = check_determinism(spec, out)
        else:
            result = run_spec(spec, out, record=self.config.getoption("--vmm-record"))
        self.user_properties += [("instructions", result.instructions), ("virtual_time_ns", result.time_ns)]
        if result.outcome != "passed":
            raise ExpectationFailure(result.report or result.message)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None):
        if isinstance(excinfo.value, ExpectationFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, 0, f"vmm: {self.name}"


# ---- fixtures ----


@pytest.fixture
def vm_factory(request: pytest.FixtureRequest):
    """``vm_factory(image=..., bundle=..., bios=..., mem=..., kernel=..., append=..., initrd=...)`` → VM."""
    from vmm.testing.vm import VM, build_config

    made: list = request.node.stash.setdefault(VMS_KEY, [])
    base = Path(request.node.path).parent

    def make(wall_timeout: float | None = 120.0, **machine: object) -> VM:
        for key in ("image", "bundle", "bios", "kernel", "initrd"):
            if machine.get(key) is not None:
                machine[key] = base / Path(str(machine[key]))
                if not machine[key].exists():
                    _missing(str(machine[key]), f"the vm fixture's {key}")
        vm = VM(build_config(**machine), wall_timeout)  # type: ignore[arg-type]
        made.append(vm)
        return vm

    yield make
    for vm in made:
        vm.close()
    made.clear()


@pytest.fixture
def vm(request: pytest.FixtureRequest, vm_factory):
    """The machine named by ``@pytest.mark.vm(image=...)`` on the test, its class or module."""
    marker = request.node.get_closest_marker("vm")
    if marker is None:
        pytest.fail("the vm fixture needs @pytest.mark.vm(image=...) (or use vm_factory)", pytrace=False)
    return vm_factory(**marker.kwargs)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    vms = item.stash.get(VMS_KEY, [])
    if not vms:
        return
    from vmm.testing.report import write_report
    from vmm.testing.spec import Keep

    message = str(call.excinfo.value).splitlines()[0] if call.excinfo else "the test failed"
    for i, vm in enumerate(vms):
        safe = item.stash.get(FOLDER_KEY, _safe(item.name))
        folder = _out_dir(item.config, safe) / safe / f"vm{i}"
        try:
            failure = write_report(vm.session, item.nodeid, "test", message, folder, Keep())
        except Exception as exc:  # noqa: BLE001 - the test's own failure matters more than its report
            report.sections.append((f"vmm report {i}", f"could not write the report: {exc!r}"))
            continue
        report.sections.append((f"vmm report (machine {i}, {folder})", failure.text))
