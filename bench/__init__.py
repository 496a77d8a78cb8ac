"""Benchmarks: `make bench` (python -m bench). Every figure is a ratio or a count measured
side by side in one run; nothing here is asserted."""
