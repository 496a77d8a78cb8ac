"""Sharding for CI without a cluster: ``vmm test --shard K/N``, recorded durations, JUnit merge.

N CI jobs each run ``vmm test --shard K/N`` over the same files; every file lands in
exactly one shard. The split is deterministic (the same files and durations give the same
shards on every machine) and balanced by each test's recorded duration: longest first,
each to the shard with the least time so far (ties: the lower shard). A test without a
recorded duration counts as the mean of the recorded ones (1 s when none is). Durations
are stored by ``vmm test --store-durations`` in ``.vmm-test-durations.json`` (or
``--durations-file``): ``{"path/as/given.vmm.toml": seconds}``, merged with what is there.

``vmm merge-junit OUT IN...`` joins the shards' JUnit files into one.
"""

from __future__ import annotations

import argparse
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from vmm.errors import ConfigError
from vmm.fileio import atomic_write

DURATIONS_FILE = ".vmm-test-durations.json"
SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str) -> tuple[int, int]:
    match = SHARD.match(text)
    if match is None:
        raise ConfigError(f"--shard {text!r}: expected K/N, e.g. 1/4 (shard K of N, counted from 1)")
    k, n = int(match[1]), int(match[2])
    if not 1 <= k <= n:
        raise ConfigError(f"--shard {text}: K must be from 1 to N")
    return k, n


def duration_key(path: Path) -> str:
    return path.as_posix()


def load_durations(path: Path) -> dict[str, float]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a durations file ({exc}); delete it or store durations again") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a durations file (expected an object of path: seconds)")
    return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float) and v >= 0}


def store_durations(path: Path, measured: dict[str, float]) -> None:
    durations = load_durations(path)
    durations.update({k: round(v, 3) for k, v in measured.items()})
    atomic_write(path, (json.dumps(dict(sorted(durations.items())), indent=1) + "\n").encode())


def split(keys: list[str], durations: dict[str, float], shards: int) -> list[list[str]]:
    """``keys`` in ``shards`` groups of about equal recorded time (each group in input order)."""
    known = [durations[k] for k in keys if k in durations]
    default = sum(known) / len(known) if known else 1.0
    order = sorted(keys, key=lambda k: (-durations.get(k, default), k))
    loads = [0.0] * shards
    member: dict[str, int] = {}
    for key in order:
        shard = min(range(shards), key=lambda i: (loads[i], i))
        member[key] = shard
        loads[shard] += durations.get(key, default)
    return [[k for k in keys if member[k] == i] for i in range(shards)]


def select_shard(files: list[Path], shard: tuple[int, int], durations: dict[str, float]) -> list[Path]:
    k, n = shard
    keys = [duration_key(f) for f in files]
    if len(set(keys)) != len(keys):
        raise ConfigError("--shard: a file is named twice")
    wanted = set(split(keys, durations, n)[k - 1])
    return [f for f, key in zip(files, keys, strict=True) if key in wanted]


# ---- vmm merge-junit ----

COUNTS = ("tests", "failures", "errors", "skipped")


def merge_junit(inputs: list[Path]) -> ET.Element:
    """One <testsuites> holding every <testsuite> of ``inputs``, with the totals."""
    merged = ET.Element("testsuites", name="vmm test")
    totals = dict.fromkeys(COUNTS, 0)
    time = 0.0
    for path in inputs:
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as exc:
            raise ConfigError(f"{path}: not a JUnit XML file: {exc}") from None
        suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
        if root.tag not in ("testsuite", "testsuites"):
            raise ConfigError(f"{path}: not a JUnit XML file (root element <{root.tag}>)")
        for suite in suites:
            suite.set("file", str(path))
            merged.append(suite)
            for key in COUNTS:
                totals[key] += int(suite.get(key, "0") or 0)
            time += float(suite.get("time", "0") or 0)
    for key, value in totals.items():
        merged.set(key, str(value))
    merged.set("time", f"{time:.3f}")
    return merged


def add_merge_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("output", metavar="OUT", help="the merged JUnit XML file to write")
    p.add_argument("inputs", nargs="+", metavar="IN", help="JUnit XML files (e.g. of vmm test --shard K/N jobs)")
    p.set_defaults(func=cmd_merge_junit)


def cmd_merge_junit(args: argparse.Namespace) -> int:
    merged = merge_junit([Path(p) for p in args.inputs])
    ET.indent(merged)
    atomic_write(Path(args.output), ET.tostring(merged, encoding="utf-8", xml_declaration=True))
    counts = ", ".join(f"{merged.get(k)} {k}" for k in COUNTS)
    print(f"{args.output}: {len(merged)} suites from {len(args.inputs)} files ({counts})")
    return 0 if merged.get("failures") == merged.get("errors") == "0" else 1
