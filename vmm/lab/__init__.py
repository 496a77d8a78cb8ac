"""`vmm lab`: several VMs and switches in one process, in lockstep on one virtual clock."""
