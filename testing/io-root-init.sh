#!/bin/sh
# /sbin/init on the ext4 root images of the `io` test's domUs and the `cargo xtask run` demo
# (built by xtask/src/io.rs; testing/io-domu-init.sh switches to it). Busybox only; the image's
# /sbin/poweroff and /sbin/reboot sync and force (`xl shutdown` reaches the kernel, which runs
# them). Its console
# is hvc0, which dom0's xenconsoled logs to /var/log/xen/console/guest-<name>.log, where
# testing/init-io.sh reads the IO-* lines: keep their format in sync.
#
# Kernel command line (xl.cfg `extra`), all optional:
#   hostname=NAME   printed in IO-ROOT
#   fv_ip=A.B.C.D   eth0's address (/24), then `httpd` serves /var/fv (the blob) on port 80
#   fv_get=A.B.C.D  ping that address and fetch http://A.B.C.D/blob (IO-PING, IO-GET)
#   fv_io=ROLE      persist (default): write /var/fv/blob on the first boot (IO-WROTE), check
#                   it on later ones (IO-FOUND); a read-only /dev/xvdb is checked (IO-RO);
#                   hot-plugged xvdc/eth1 are reported (IO-HOTPLUG)
#                   writer: write files to /data without end (IO-WRITING n for the first ones)
#                   shell: an interactive shell on the console (the demo)
#                   bench: `xen-dom0-test --disk-bench /dev/xvdb 64` (IO-BENCH ...), a timed
#                   fetch of http://<fv_get>/big (IO-BENCH-NET dom0_to_domu_mibs=X), a 32 MiB
#                   blob served on port 8080, then IO-BENCH-READY
# Lines: IO-ROOT name=N boot=B root=DEV rw=0|1 blkdevs=LIST
#        IO-WROTE sha=S | IO-FOUND sha=S stored=S boots=N
#        IO-RO ro=0|1 write=rejected|accepted hello=TEXT
#        IO-NET eth0 ip=A mac=M | IO-NET-FAIL why
#        IO-PING A ok|fail   IO-GET A sha=S|fail
#        IO-HOTPLUG xvdc added hello=TEXT | xvdc removed | eth1 added mac=M | eth1 removed
export PATH=/bin:/sbin
/bin/busybox --install -s /bin 2>/dev/null
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmpfs /tmp
name=
ip=
get=
role=persist
for kv in $(cat /proc/cmdline); do
	case "$kv" in
	hostname=*) name=${kv#hostname=} ;;
	fv_ip=*) ip=${kv#fv_ip=} ;;
	fv_get=*) get=${kv#fv_get=} ;;
	fv_io=*) role=${kv#fv_io=} ;;
	esac
done
[ -n "$name" ] && hostname "$name"
read -r boot </proc/sys/kernel/random/boot_id
rootdev=$(awk '$2 == "/" && $1 != "rootfs" {print $1}' /proc/mounts | tail -1)
rw=1
grep -q ' / ext4 ro' /proc/mounts && rw=0
echo "IO-ROOT name=$name boot=${boot%%-*} root=$rootdev rw=$rw blkdevs=$(ls /sys/block | grep xvd | tr '\n' ',')"

sha() { sha256sum "$1" 2>/dev/null | cut -c1-16; }

if [ -n "$ip" ]; then
	i=0
	while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 200 ]; do usleep 100000; i=$((i + 1)); done
	if ip addr add "$ip/24" dev eth0 && ip link set eth0 up; then
		ip link set lo up
		echo "IO-NET eth0 ip=$ip mac=$(cat /sys/class/net/eth0/address)"
		httpd -p 80 -h /var/fv
	else
		echo "IO-NET-FAIL eth0 $(ls /sys/class/net | tr '\n' ' ')"
	fi
fi

case "$role" in
persist)
	mkdir -p /var/fv
	if [ -f /var/fv/blob ]; then
		n=$(($(cat /var/fv/boots) + 1))
		echo $n >/var/fv/boots
		sync
		echo "IO-FOUND sha=$(sha /var/fv/blob) stored=$(cat /var/fv/blob.sha) boots=$n"
	else
		dd if=/dev/urandom of=/var/fv/blob bs=64k count=32 2>/dev/null
		sha /var/fv/blob >/var/fv/blob.sha
		echo 1 >/var/fv/boots
		sync
		echo "IO-WROTE sha=$(cat /var/fv/blob.sha)"
	fi
	if [ -b /dev/xvdb ]; then
		if dd if=/dev/zero of=/dev/xvdb bs=4096 count=1 seek=100 conv=notrunc oflag=direct 2>/dev/null; then
			w=accepted
		else
			w=rejected
		fi
		mkdir -p /mnt/ro
		hello=
		mount -t ext4 -o ro /dev/xvdb /mnt/ro && hello=$(cat /mnt/ro/hello) && umount /mnt/ro
		echo "IO-RO ro=$(cat /sys/block/xvdb/ro) write=$w hello=$hello"
	fi
	;;
writer)
	mkdir -p /data
	n=0
	while :; do
		n=$((n + 1))
		dd if=/dev/urandom of=/data/f$((n % 64)) bs=64k count=8 2>/dev/null
		[ $((n % 4)) -eq 0 ] && sync
		[ $n -le 8 ] && echo "IO-WRITING $n"
	done
	;;
esac

if [ "$role" = bench ]; then
	mkdir -p /tmp/www
	dd if=/dev/urandom of=/tmp/www/blob bs=64k count=512 2>/dev/null
	httpd -p 8080 -h /tmp/www
	/bin/xen-dom0-test --disk-bench /dev/xvdb 64
	read -r t0 _ </proc/uptime
	if timeout 120 wget -q -O /dev/null "http://$get/big"; then
		read -r t1 _ </proc/uptime
		echo "IO-BENCH-NET $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "dom0_to_domu_mibs=%.1f", 32 / (b - a) }')"
	else
		echo "IO-BENCH-NET fail"
	fi
	echo "IO-BENCH-READY"
	get=
fi

if [ -n "$get" ]; then
	if ping -c 3 -W 5 "$get" >/dev/null 2>&1; then p=ok; else p=fail; fi
	echo "IO-PING $get $p"
	if timeout 60 wget -q -O /tmp/get "http://$get/blob"; then
		echo "IO-GET $get sha=$(sha /tmp/get)"
	else
		echo "IO-GET $get fail"
	fi
fi

if [ "$role" = shell ]; then
	echo "busybox shell on $name's console (root on $rootdev); 'poweroff' ends the domain"
	while :; do setsid cttyhack sh; done
fi

# Hot-plugged devices: report them as they come and go (the disk is mounted only long enough
# to read it, so a graceful detach finds it closed).
c=0
e=0
while :; do
	if [ -b /dev/xvdc ] && [ $c = 0 ]; then
		c=1
		mkdir -p /mnt/c
		hello=
		mount -t ext4 -o ro /dev/xvdc /mnt/c && hello=$(cat /mnt/c/hello) && umount /mnt/c
		echo "IO-HOTPLUG xvdc added hello=$hello"
	elif [ ! -b /dev/xvdc ] && [ $c = 1 ]; then
		c=0
		echo "IO-HOTPLUG xvdc removed"
	fi
	if [ -e /sys/class/net/eth1 ] && [ $e = 0 ]; then
		e=1
		echo "IO-HOTPLUG eth1 added mac=$(cat /sys/class/net/eth1/address)"
	elif [ ! -e /sys/class/net/eth1 ] && [ $e = 1 ]; then
		e=0
		echo "IO-HOTPLUG eth1 removed"
	fi
	usleep 200000
done
