"""``vmm disk ...`` through the argparse wiring the main CLI uses."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from vmm.cli.main import build_parser
from vmm.cli.progress import Progress
from vmm.disk.open import open_disk
from vmm.errors import VmmError


def vmm_disk(*argv: str) -> int:
    args = build_parser(["disk", *argv]).parse_args(["disk", *argv])
    return args.func(args)


def test_create_info_and_check(tmp_path, capsys):
    path = str(tmp_path / "d.vmdk")
    assert vmm_disk("create", "--type", "twoGbMaxExtentSparse", path, "1M") == 0
    assert vmm_disk("info", "--json", path) == 0
    out = capsys.readouterr().out
    info = json.loads(out[out.index("{") :])
    assert info["type"] == "twoGbMaxExtentSparse"
    assert info["virtual_size"] == 1 << 20
    assert info["allocated_size"] == 0
    assert info["chain"] == [path]
    assert vmm_disk("info", path) == 0
    assert "virtual size: 1 MiB (1048576 bytes)" in capsys.readouterr().out
    assert vmm_disk("check", path) == 0
    assert "no errors" in capsys.readouterr().out


def test_default_type_follows_the_extension(tmp_path):
    vmm_disk("create", str(tmp_path / "a.vmdk"), "64K")
    vmm_disk("create", str(tmp_path / "b.img"), "64K")
    assert (tmp_path / "a.vmdk").read_bytes()[:4] == b"KDMV"
    assert os.path.getsize(tmp_path / "b.img") == 65536


@pytest.mark.parametrize(
    ("size", "message"),
    [("12Q", "SIZE: '12Q' is not a size"), ("1000", "not a multiple of 512")],
)
def test_bad_sizes(tmp_path, size, message):
    with pytest.raises(VmmError, match=message):
        vmm_disk("create", str(tmp_path / "d.vmdk"), size)


def test_convert_child_commit_round_trip(tmp_path, capsys):
    raw = tmp_path / "src.raw"
    raw.write_bytes(bytes(range(256)) * 2 * 2048)  # 1 MiB
    base, child, out = (str(tmp_path / n) for n in ("base.vmdk", "child.vmdk", "out.raw"))
    assert vmm_disk("convert", str(raw), base) == 0
    assert capsys.readouterr().err == ""  # no progress bar when stderr is not a terminal
    assert vmm_disk("create", "--parent", base, child) == 0
    with open_disk(child) as disk:
        disk.write(0, b"\xff" * 512)
    assert vmm_disk("commit", child) == 0
    assert vmm_disk("convert", base, out) == 0
    data = (tmp_path / "out.raw").read_bytes()
    assert data[:512] == b"\xff" * 512 and data[512:] == raw.read_bytes()[512:]


def test_check_reports_damage_with_exit_3(tmp_path, capsys):
    path = tmp_path / "d.vmdk"
    vmm_disk("create", str(path), "1M")
    with open(path, "r+b") as f:
        f.seek(56)  # gdOffset past the end of the file
        f.write((1 << 40).to_bytes(8, "little"))
    assert vmm_disk("check", str(path)) == 3
    assert "gdOffset" in capsys.readouterr().out


def test_progress_draws_only_on_a_terminal_and_clears_itself():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        with Progress("copying", stream=stream) as progress:
            progress(50 << 20, 100 << 20)
            progress(100 << 20, 100 << 20)
    assert tty.getvalue().startswith("\rcopying:   0%|") and "/100M" in tty.getvalue()  # a tqdm bar
    assert tty.getvalue().endswith("\r")  # cleared when done: the closing line stays vmm's one line
    assert pipe.getvalue() == ""


def test_convert_says_what_it_wrote_and_replaces_only_with_force(tmp_path, capsys):
    src, dst = tmp_path / "a.img", tmp_path / "b.vmdk"
    vmm_disk("create", str(src), "1M")
    assert vmm_disk("convert", str(src), str(dst)) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"{dst}: monolithicSparse, 1 MiB, converted from {src}"
    with pytest.raises(VmmError, match=r"b.vmdk: already exists \(--force replaces it\)"):
        vmm_disk("convert", str(src), str(dst))
    with open(src, "r+b") as f:
        f.write(b"new")
    assert vmm_disk("convert", str(src), str(dst), "--force") == 0
    with open_disk(dst, read_only=True) as disk:
        assert disk.read(0, 1)[:3] == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.img", "b.vmdk"]  # no scratch left
    assert vmm_disk("check", str(dst)) == 0


def test_check_refuses_a_vmdk_that_is_not_one(tmp_path, capsys):
    garbage = tmp_path / "garbage.vmdk"
    garbage.write_bytes(bytes(range(256)) * 20)
    assert vmm_disk("check", str(garbage)) == 3
    out = capsys.readouterr().out.splitlines()
    assert out == [f"error: {garbage}: not a VMDK (no sparse header, no descriptor): vmm would read it as a raw image",
                   f"{garbage}: 1 error"]  # fmt: skip
    raw = tmp_path / "disk.img"
    raw.write_bytes(bytes(4096))
    assert vmm_disk("check", str(raw)) == 0
    assert capsys.readouterr().out.strip() == f"{raw}: a raw image (no metadata to check)"


def test_module_entry_point_prints_one_line_errors(tmp_path):
    bogus = tmp_path / "bogus.vmdk"
    bogus.write_bytes(b"KDMV" + bytes(20))
    result = subprocess.run(
        [sys.executable, "-m", "vmm.disk.cli", "info", str(bogus)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"vmm: {bogus}: sparse header: truncated (24 of 512 bytes)"]
