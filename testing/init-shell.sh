#!/bin/sh
# /init of `cargo xtask run`: an interactive busybox shell on the console,
# with our toolstack (xl, xenstored, xenstore) when dom0 runs on Xen or
# Ferrovisor.
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# Modules (the Xen ones, and any given with `cargo xtask run --module NAME`), dependencies first.
if [ -s /etc/modules.order ]; then
	for m in $(cat /etc/modules.order); do
		insmod "/lib/modules/$m.ko" 2>/dev/null || echo "insmod $m failed"
	done
fi
if [ -d /proc/xen ] && [ -x /usr/sbin/xenstored ]; then
	mount -t xenfs xenfs /proc/xen
	mkdir -p /run/xenstored /var/log/xen
	xenstored --pid-file /run/xenstored.pid && echo "xenstored started; try 'xl list', 'xl info', 'xl dmesg', 'xenstore ls /'"
fi
echo
echo "busybox shell on $(cat /sys/class/tty/console/active) after $(cut -d' ' -f1 /proc/uptime) s; 'poweroff -f' ends QEMU."
# setsid + cttyhack give the shell a controlling tty, so job control and ^C work.
setsid cttyhack sh
poweroff -f
