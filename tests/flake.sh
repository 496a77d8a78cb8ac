#!/bin/sh
# tests/flake.sh N [PYTEST ARGS...]: run the whole suite N times on a fresh clone of the
# current commit and list every test that did not pass every time.
#
# The clone is set up once (what `make test` builds, as CI does), then the suite runs N
# times with VMM_STRICT=1; each run writes a JUnit XML report, and the per-test outcomes
# are tallied from those. Uncommitted changes are not part of the clone. Exit status: 0
# when every test passed in every run (tests skipped in every run are listed apart), 1
# when some test failed or errored at least once, 2 on a usage or set-up error.
# The clone is removed at the end unless FLAKE_KEEP=1 (its path is printed either way).
set -eu

usage() {
    echo "usage: tests/flake.sh N [PYTEST ARGS...]   (N >= 1: how many runs of the suite)" >&2
    exit 2
}
[ $# -ge 1 ] || usage
runs=$1
shift
case $runs in '' | *[!0-9]*) usage ;; esac
[ "$runs" -ge 1 ] || usage

repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
commit=$(git -C "$repo" rev-parse HEAD)
work=$(mktemp -d "${TMPDIR:-/tmp}/vmm-flake.XXXXXX")
cleanup() { [ "${FLAKE_KEEP:-0}" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "flake: commit $(git -C "$repo" log -1 --format='%h %s' "$commit")"
echo "flake: fresh clone in $work/vmm"
git clone -q --no-checkout "$repo" "$work/vmm"
git -C "$work/vmm" checkout -q --detach "$commit"
cd "$work/vmm"
# The set-up is whatever `make test` builds before pytest (its prerequisites, e.g. the
# Linux guest), done once: pytest only collects here.
echo "flake: set-up (make test with collection only), log in $work/setup.log"
if ! make -j2 test PYTEST_ARGS="--collect-only -q" >"$work/setup.log" 2>&1; then
    tail -20 "$work/setup.log" >&2
    echo "flake: set-up failed (log above)" >&2
    FLAKE_KEEP=1
    exit 2
fi

run=1
while [ "$run" -le "$runs" ]; do
    start=$(date +%s)
    status=0
    VMM_STRICT=1 .venv/bin/python -m pytest -q -p no:cacheprovider --junitxml="$work/run-$run.xml" "$@" \
        >"$work/run-$run.log" 2>&1 || status=$?
    echo "flake: run $run/$runs: $(tail -1 "$work/run-$run.log") ($(($(date +%s) - start)) s, exit $status)"
    run=$((run + 1))
done

.venv/bin/python - "$work" "$runs" <<'EOF'
"""Tally the JUnit reports: a test is flaky or broken unless it passed in every run."""
import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

work, runs = Path(sys.argv[1]), int(sys.argv[2])
outcomes: dict[str, Counter] = defaultdict(Counter)
for n in range(1, runs + 1):
    report = work / f"run-{n}.xml"
    if not report.exists():
        print(f"flake: run {n} wrote no report (see {work}/run-{n}.log)")
        continue
    for case in ET.parse(report).iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        kinds = {child.tag for child in case}
        outcome = next((k for k in ("failure", "error", "skipped") if k in kinds), "passed")
        outcomes[name][outcome] += 1
always_skipped = sorted(name for name, c in outcomes.items() if c["skipped"] == runs)
bad = {name: c for name, c in outcomes.items() if c["passed"] != runs and c["skipped"] != runs}
passed = len(outcomes) - len(bad) - len(always_skipped)
print(f"flake: {len(outcomes)} tests, {passed} passed {runs} of {runs}, {len(always_skipped)} skipped in every run")
for name, c in sorted(bad.items()):
    detail = ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if k != "passed")
    print(f"  {name}: passed {c['passed']} of {runs} ({detail})")
for name in always_skipped:
    print(f"  (skipped every time: {name})")
sys.exit(1 if bad or not outcomes else 0)
EOF
