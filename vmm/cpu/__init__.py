"""CPU backends behind one interface (vmm.cpu.base): Unicorn (any host) and KVM."""
