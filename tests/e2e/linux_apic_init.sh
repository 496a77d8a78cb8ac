#!/bin/busybox sh
# /init for tests/e2e/test_linux_apic.py: the Debian kernel on vmm's pc machine, in APIC
# mode: lists the interrupt controllers and counts of /proc/interrupts after a second of
# the guest's own time (the local APIC timer ticks, the serial IRQ goes through the
# I/O APIC), then leaves through port 0xF4.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
sleep 1
while read -r line; do
    case "$line" in
        *LOC:*|*IO-APIC*|*XT-PIC*) echo "apic-check: $line" ;;
    esac
done < /proc/interrupts
echo "apic-check: done"
printf '\000' | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f
