# The Debian 12 (bookworm) packages the Linux guest is built from: the one place their
# names and versions live. `apt-get download` fetches exactly these; change them here.
KERNEL_PACKAGE  := linux-image-6.1.0-50-amd64
KERNEL_VERSION  := 6.1.176-1
BUSYBOX_PACKAGE := busybox-static
BUSYBOX_VERSION := 1:1.35.0-4+deb12u1+b1
MEMTEST_PACKAGE := memtest86+
MEMTEST_VERSION := 6.10-4
# The modules init loads (their dependencies come along, found in each module's modinfo).
MODULES := virtio_pci virtio_blk virtio_net virtio_balloon virtio_rng 8021q
