"""Run every benchmark module that is present and print its figures."""

from __future__ import annotations

import importlib
import sys
import time

MODULES = ["bench.bench_speed", "bench.bench_cpu", "bench.bench_boot", "bench.bench_disk", "bench.bench_kvm",
           "bench.bench_harness", "bench.bench_debug", "bench.bench_port_io", "bench.bench_start",
           "bench.bench_linux", "bench.bench_usernet", "bench.bench_fleet", "bench.bench_net_switch",
           "bench.bench_snapshot"]  # fmt: skip


def main(argv: list[str]) -> int:
    wanted = [m for m in MODULES if not argv or any(a in m for a in argv)]
    for name in wanted:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        print(f"== {name.split('.')[-1]}", flush=True)
        start = time.perf_counter()
        module.main()
        print(f"   ({time.perf_counter() - start:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
