#!/bin/sh
# /init of `cargo xtask run`: an interactive busybox shell on the console.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# Modules given with `cargo xtask run --module NAME`, dependencies first.
if [ -s /etc/modules.order ]; then
	for m in $(cat /etc/modules.order); do
		insmod "/lib/modules/$m.ko" || echo "insmod $m failed"
	done
fi
echo
echo "busybox shell on $(cat /sys/class/tty/console/active) after $(cut -d' ' -f1 /proc/uptime) s; 'poweroff -f' ends QEMU."
# setsid + cttyhack give the shell a controlling tty, so job control and ^C work.
setsid cttyhack sh
poweroff -f
