#!/bin/sh
# /init of the domUs of the `domu` test and `cargo xtask bench domu`
# (packed by xtask/src/domu.rs into dom0's /var/lib/ferrovisor/domu-initrd.gz). Busybox
# only, no modules: the Xen console (hvc0) and xenbus are built into Debian's kernels.
# Its console is hvc0; dom0's xenconsoled logs it to /var/log/xen/console/guest-<name>.log,
# where testing/init-domu.sh reads the DOMU-* lines. Keep their format in sync. DOMU-INIT's
# boot= is the start of Linux's random boot_id: it tells one boot from the next.
#
# The kernel command line (xl.cfg `extra`) says what to do:
#   hostname=NAME      the name printed in DOMU-INIT (Linux also takes it as the hostname)
#   fv_test=alive      (default) `DOMU-ALIVE n` every 2 s, forever
#   fv_test=poweroff   wait for a line on the console (dom0 writes one to the console's pty),
#                      at most fv_wait=SECS (default 60) s, then `poweroff -f`
#   fv_test=reboot     `reboot -f` at once, at every boot
#   fv_test=panic      a kernel panic (sysrq c; if that is refused, /init exits). arm64 Linux
#                      has no Xen panic notifier: with panic=-1 it then reboots (SHUTDOWN_reboot)
#   fv_test=shell      an interactive busybox shell on the console (respawned when it exits)
# `xl shutdown` / `xl reboot` reach the kernel through xenstore; it then runs /sbin/poweroff or
# /sbin/reboot, which are forced here (there is no init daemon to ask).
/bin/busybox mount -t proc proc /proc
read -r t _ </proc/uptime
read -r cmdline </proc/cmdline
name=
test=alive
wait=60
for kv in $cmdline; do
	case "$kv" in
	hostname=*) name=${kv#hostname=} ;;
	fv_test=*) test=${kv#fv_test=} ;;
	fv_wait=*) wait=${kv#fv_wait=} ;;
	esac
done
[ -n "$name" ] || read -r name </proc/sys/kernel/hostname
read -r boot </proc/sys/kernel/random/boot_id
echo "DOMU-INIT name=$name uptime=$t test=$test boot=${boot%%-*}"

/bin/busybox --install -s /bin
export PATH=/bin
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
hostname "$name"
mkdir -p /sbin
printf '#!/bin/sh\nexec /bin/busybox poweroff -f\n' >/sbin/poweroff
printf '#!/bin/sh\nexec /bin/busybox reboot -f\n' >/sbin/reboot
chmod 755 /sbin/poweroff /sbin/reboot

case "$test" in
poweroff)
	if read -r -t "$wait" _; then via=input; else via=timeout; fi
	echo "DOMU-POWEROFF via=$via"
	poweroff -f
	;;
reboot)
	echo "DOMU-REBOOT"
	reboot -f
	;;
panic)
	echo "DOMU-PANIC"
	echo c >/proc/sysrq-trigger
	echo "DOMU-PANIC sysrq refused; /init exits instead"
	exit 1
	;;
shell)
	echo "busybox shell on $name's console; 'poweroff -f' ends the domain"
	while :; do
		setsid cttyhack sh
	done
	;;
esac
n=0
while :; do
	n=$((n + 1))
	echo "DOMU-ALIVE $n"
	sleep 2
done
