"""Machine state and snapshots.

- :mod:`.state`: what a whole machine is at one instruction; :mod:`.statefile`: a test's
  ``NAME.vmsn`` (JSON) + ``NAME.vmem``;
- :mod:`.checkpoint`: VMware's checkpoint envelope (.vmsn/.vmss); :mod:`.machinefile`: a
  machine in it, RAM in a sparse ``.vmem`` restored by copy-on-write mmap (:mod:`.vmem`);
- :mod:`.vmsd`: the snapshot tree; :mod:`.bundle`: take/revert/delete/suspend/resume on a
  bundle, crash-safe; :mod:`.check`: ``vmm snapshot check``; :mod:`.cli`: ``vmm snapshot``;
- :mod:`.live`: snapshots of a Machine from Python (``take_snapshot``, ``revert_snapshot``,
  ``Machine.from_snapshot``).
"""
