"""Virtio 1.x devices on PCI: block, network, entropy, memory balloon."""
