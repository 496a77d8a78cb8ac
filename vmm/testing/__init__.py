"""Regression tests of guest images: the pytest plugin and the expectation-file runner."""
