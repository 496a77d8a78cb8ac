"""Regression tests of guest images: the pytest plugin and the expectation-file runner.

``VM`` drives one guest from a script or test; ``load_spec``/``run_spec`` run an
expectation file (``NAME.vmm.toml``); ``load_machine_state`` opens the state a failure
report keeps (``state.vmsn`` + ``state.vmem``).
"""

from vmm.snapshot.statefile import load_machine_state, save_machine_state
from vmm.testing.session import ExpectationFailed, GuestSession
from vmm.testing.spec import load_spec
from vmm.testing.vm import VM

__all__ = ["VM", "ExpectationFailed", "GuestSession", "load_machine_state", "load_spec", "save_machine_state"]
