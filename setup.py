"""Builds vmm's native parts with cffi (csrc/); everything else is in pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["csrc/build_uc_glue.py:ffibuilder", "csrc/build_kvm.py:ffibuilder",
                     "csrc/build_slirp.py:ffibuilder"])
