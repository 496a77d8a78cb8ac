#!/bin/busybox sh
# /init for the network tests (tests/e2e/test_switch_linux.py): configures eth0 from the
# kernel command line, pings, reports each result as "net-check: ..." and then either waits
# (net.stay: a peer others ping) or leaves through the exit port (0xF4).
#   net.ip=ADDR/LEN          an address on eth0
#   net.vlan=VID:ADDR/LEN    an 802.1Q subinterface eth0.VID with that address
#   net.wait=ADDR            first ping it once a second until it answers (at most 600 times)
#   net.ping=ADDR            ping it (3 echoes, 3 s each); "net-check: ping ADDR ok|failed"
#   net.serve=MB             serve MB MiB of zeros as http://ADDR/blob (busybox httpd)
#   net.fetch=ADDR           fetch http://ADDR/blob; "net-check: fetched N bytes in S s" (guest time)
#   net.rtt=ADDR             ping -c 20 ADDR; "net-check: rtt ADDR min/avg/max ..." (guest time)
#   net.stay                 keep running after the pings (sleep)
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r module; do
    [ -f "/lib/modules/$module.ko" ] && insmod "/lib/modules/$module.ko" 2>/dev/null
done < /etc/modules
ip link set lo up
ip link set eth0 up
stay=0
for word in $(cat /proc/cmdline); do
    case "$word" in
    net.ip=*) ip addr add "${word#net.ip=}" dev eth0 ;;
    net.vlan=*)
        spec=${word#net.vlan=}; vid=${spec%%:*}
        ip link add link eth0 name "eth0.$vid" type vlan id "$vid"
        ip link set "eth0.$vid" up
        ip addr add "${spec#*:}" dev "eth0.$vid"
        echo "net-check: eth0.$vid $(cat /proc/net/vlan/eth0.$vid 2>/dev/null | head -1 | tr -s ' ')" ;;
    net.stay) stay=1 ;;
    net.serve=*)
        mkdir -p /www && mount -t tmpfs tmpfs /www
        dd if=/dev/zero of=/www/blob bs=1048576 count="${word#net.serve=}" 2>/dev/null
        httpd -p 80 -h /www ;;
    esac
done
echo "net-check: up $(ip -o -4 addr show | awk '{print $2, $4}' | tr '\n' ' ')"
for word in $(cat /proc/cmdline); do
    case "$word" in
    net.wait=*)
        n=0
        until ping -c 1 -W 1 "${word#net.wait=}" > /dev/null 2>&1 || [ $n -ge 600 ]; do n=$((n + 1)); done
        echo "net-check: waited for ${word#net.wait=}: $n pings unanswered" ;;
    net.rtt=*)
        echo "net-check: rtt ${word#net.rtt=} $(ping -c 20 -W 3 "${word#net.rtt=}" | grep round-trip)" ;;
    net.fetch=*)
        start=$(cut -d' ' -f1 /proc/uptime)
        bytes=$(wget -q -O - "http://${word#net.fetch=}/blob" | wc -c)
        end=$(cut -d' ' -f1 /proc/uptime)
        echo "net-check: fetched $bytes bytes in $(echo "$start $end" | awk '{printf "%.2f", $2 - $1}') s" ;;
    net.ping=*)
        peer=${word#net.ping=}
        if ping -c 3 -W 3 "$peer" > /tmp/ping 2>&1; then
            echo "net-check: ping $peer ok ($(grep -c 'bytes from' /tmp/ping) replies)"
        else
            echo "net-check: ping $peer failed"
        fi ;;
    esac
done
echo "net-check: done"
if [ "$stay" = 1 ]; then
    while true; do sleep 3600; done
fi
printf '\000' | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f
