"""The control channel of a running VM: a UNIX socket speaking QMP-like JSON lines
(:mod:`.protocol`, :mod:`.server`, served from the run loop), its client and ``vmm ctl``
(:mod:`.client`, :mod:`.cli`), and what ``vmm run`` adds for it (:mod:`.session`)."""
