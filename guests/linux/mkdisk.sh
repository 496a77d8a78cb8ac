#!/bin/sh
# mkdisk.sh OUTPUT KERNEL INITRD CMDLINE: a bootable MBR disk image, as a PC installer
# would make it: syslinux's MBR code, one active FAT16 partition at 1 MiB holding
# SYSLINUX (ldlinux.sys/.c32), syslinux.cfg, the kernel and the initrd.
# Needs syslinux, syslinux-common, mtools, dosfstools and fdisk (Debian packages).
set -eu
out=$1 kernel=$2 initrd=$3 cmdline=$4
size_mib=48
tmp=$out.tmp
rm -f "$tmp"
truncate -s ${size_mib}M "$tmp"
printf 'label: dos\nlabel-id: 0x766d6d00\nstart=2048, type=6, bootable\n' | sfdisk --quiet "$tmp"
mkfs.fat -F 16 -n VMMLINUX -i 766d6d01 --offset 2048 -h 2048 "$tmp" >/dev/null
cfg=$(mktemp)
trap 'rm -f "$cfg"' EXIT
printf 'DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND %s\n' \
    "$cmdline" > "$cfg"
export MTOOLS_SKIP_CHECK=1
mcopy -i "$tmp@@1M" "$kernel" ::vmlinuz
mcopy -i "$tmp@@1M" "$initrd" ::initrd.gz
mcopy -i "$tmp@@1M" "$cfg" ::syslinux.cfg
syslinux --offset 1048576 --install "$tmp"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$tmp" bs=440 count=1 conv=notrunc status=none
mv "$tmp" "$out"
