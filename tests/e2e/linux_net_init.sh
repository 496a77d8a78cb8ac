#!/bin/busybox sh
# /init for tests/e2e/test_linux_user_net.py and bench/bench_usernet.py: Debian's kernel and
# busybox on vmm's `--nic user` (libslirp). Gets an address with udhcpc, pings the gateway,
# fetches a page from a host server through 10.0.2.2 (the host's loopback), then serves a
# page with busybox httpd on port 80 for a host client coming in through hostfwd, and waits
# for a line on the console before it leaves through port 0xF4. The kernel command line
# says what to do: hostport=N (the host's server), bench=ping|tcp and size=N (64 KiB blocks)
# for bench/bench_usernet.py, bench=lease to stop after the lease and the pings.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r module; do
    [ -f "/lib/modules/$module.ko" ] && insmod "/lib/modules/$module.ko" 2>/dev/null
done < /etc/modules
hostport=""; bench=""; size=160
for word in $(cat /proc/cmdline); do
    case "$word" in
        hostport=*) hostport=${word#hostport=} ;;
        bench=*) bench=${word#bench=} ;;
        size=*) size=${word#size=} ;;
    esac
done

mkdir -p /usr/share/udhcpc /www
cat > /usr/share/udhcpc/default.script <<'SCRIPT'
#!/bin/sh
case "$1" in
    bound|renew)
        ifconfig "$interface" "$ip" netmask "$subnet"
        for r in $router; do route add default gw "$r" dev "$interface"; break; done
        echo "net-check: lease $ip mask $subnet router $router dns $dns"
        ;;
esac
SCRIPT
chmod +x /usr/share/udhcpc/default.script
ip link set lo up
ip link set eth0 up
udhcpc -i eth0 -f -q -n -t 10 -T 1 -s /usr/share/udhcpc/default.script 2>&1 | sed '/^net-check: /!s/^/net-check: udhcpc: /'
ping -c 3 10.0.2.2 > /tmp/ping.out 2>&1
echo "net-check: ping: $(grep -E 'packets transmitted' /tmp/ping.out)"

if [ "$bench" = ping ]; then
    ping -c 50 -i 0.05 10.0.2.2 | sed 's/^/bench: /'
elif [ "$bench" = tcp ]; then
    start=$(cut -d' ' -f1 /proc/uptime)
    echo "bench: tcp start"
    dd if=/dev/zero bs=65536 count="$size" 2>/dev/null | nc 10.0.2.2 "$hostport"
    echo "bench: uptime $start $(cut -d' ' -f1 /proc/uptime)"
elif [ "$bench" = lease ]; then
    :  # the lease and the pings only (the determinism test)
else
    if [ -n "$hostport" ]; then
        echo "net-check: from host: $(wget -q -O - "http://10.0.2.2:$hostport/from-guest" 2>&1)"
    fi
    echo "hello from the vmm guest over hostfwd" > /www/index.html
    httpd -p 80 -h /www
    echo "net-check: httpd ready"
    read -r line
    echo "net-check: console said $line"
fi
echo "net-check: done"
printf '\000' | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f
