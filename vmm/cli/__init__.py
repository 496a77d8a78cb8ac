"""The ``vmm`` command line, one module per job.

- :mod:`.main`: ``main()``, the one error path (a VmmError is one line and its exit status);
- :mod:`.commands`: the table of commands, each with its one-line help and the module that
  adds its flags and runs it (only the chosen command's module is imported);
- :mod:`.machine_flags`: the flags every machine command shares (``--bios``, ``--disk``,
  ``--mem``, ``--kernel``...) and the MachineConfig they describe;
- :mod:`.run`: ``vmm run`` (its flags, the run loop, the exit status it reports);
- :mod:`.terminal`: the host keyboard and terminal while a guest runs (raw mode, Ctrl-]);
- :mod:`.screenshot`, :mod:`.debugger` (``step`` and ``trace``), :mod:`.version`.
"""

from vmm.cli.main import main

__all__ = ["main"]
