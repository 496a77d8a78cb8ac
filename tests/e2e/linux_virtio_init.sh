#!/bin/busybox sh
# /init for tests/e2e/test_linux_virtio.py: Debian's own virtio drivers on vmm's pc machine.
# Lists what bound, reads and writes the virtio disks, brings eth0 up, reads /dev/hwrng, and
# waits for the host to ask for 32 MiB through the balloon; then leaves through port 0xF4.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r module; do
    [ -f "/lib/modules/$module.ko" ] && insmod "/lib/modules/$module.ko" 2>/dev/null
done < /etc/modules
echo "virtio-check: modules loaded"
for dev in /sys/bus/pci/devices/*; do
    [ "$(cat $dev/vendor)" = 0x1af4 ] || continue
    echo "virtio-check: pci $(cat $dev/vendor):$(cat $dev/device) class $(cat $dev/class) driver $(basename "$(readlink $dev/driver)")"
done
for dev in /sys/bus/virtio/devices/*; do
    echo "virtio-check: virtio device $(cat $dev/device) driver $(basename "$(readlink $dev/driver)")"
done
for disk in vda vdb; do
    [ -e /sys/block/$disk ] || continue
    echo "virtio-check: $disk size $(cat /sys/block/$disk/size) sectors"
    echo "virtio-check: $disk sector 5 starts $(dd if=/dev/$disk bs=512 skip=5 count=1 2>/dev/null | head -c 15)"
    echo -n "WRITTEN-BY-LINUX-$disk" | dd of=/dev/$disk bs=512 seek=9 conv=notrunc,fsync 2>/dev/null
    echo "virtio-check: $disk sector 9 written"
done
if [ -e /sys/class/net/eth0 ]; then
    ip link set eth0 up
    echo "virtio-check: eth0 address $(cat /sys/class/net/eth0/address) carrier $(cat /sys/class/net/eth0/carrier)"
fi
[ -e /dev/hwrng ] && echo "virtio-check: hwrng $(cat /sys/class/misc/hw_random/rng_current) read $(dd if=/dev/hwrng bs=16 count=1 2>/dev/null | wc -c) bytes"
if [ -e /sys/bus/virtio/drivers/virtio_balloon ] && [ "$(cat /proc/cmdline | grep -c balloon-wait)" = 1 ]; then
    dd if=/dev/zero of=/big bs=1M count=48 2>/dev/null   # make pages resident on the host
    rm /big
    before=$(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2)
    echo "virtio-check: balloon ready, MemTotal $before kB"
    n=0
    while [ $n -lt 600 ]; do
        now=$(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2)
        [ $((before - now)) -ge 32768 ] && break
        sleep 0.1
        n=$((n + 1))
    done
    echo "virtio-check: balloon gave $((before - now)) kB"
fi
echo "virtio-check: done"
printf '\000' | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f
