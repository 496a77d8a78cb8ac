"""Packet backends for the virtual NICs: what a frame the guest sends reaches, and where
frames for the guest come from."""
