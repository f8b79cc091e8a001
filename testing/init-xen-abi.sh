#!/bin/sh
# /init of the `xen_dom0_abi` test and of `cargo xtask bench abi` (packed by
# xtask/src/dom0test.rs): loads Linux's Xen device drivers, mounts xenfs on /proc/xen, runs
# /bin/xen-dom0-test with the arguments in /etc/xen-dom0-test.args, powers off.
# Markers: FV-INIT as in init-test.sh; XT-* (checks) or XB-* (--bench) lines are results,
# parsed by xtask/src/tests.rs and xtask/src/bench.rs. Every failure is reported, never waited on.
/bin/busybox mount -t proc proc /proc
read -r t _ </proc/uptime
echo "FV-INIT uptime=$t"
/bin/busybox --install -s /bin
export PATH=/bin
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

args=$(cat /etc/xen-dom0-test.args)
case "$args" in
--bench*) p=XB last="XB-DONE" ;;
*) p=XT last="XT-DONE pass=0 fail=1" ;;
esac

# Without Xen (or a hypervisor Linux takes for it) nothing below can work: say so and stop.
if [ ! -r /sys/hypervisor/type ]; then
	echo "$p-FAIL xen: /sys/hypervisor/type missing: dom0's kernel did not detect Xen (no /hypervisor node with compatible xen,xen?)"
	echo "# dmesg (xen lines):"
	dmesg | grep -i xen | tail -n 20 | sed 's/^/# /'
	echo "$last"
	poweroff -f
fi

for m in $(cat /etc/modules.order); do
	insmod "/lib/modules/$m.ko" || echo "$p-FAIL insmod_$m: insmod /lib/modules/$m.ko failed"
done
mount -t xenfs xenfs /proc/xen || echo "$p-FAIL mount_xenfs: mount -t xenfs xenfs /proc/xen failed"

/bin/xen-dom0-test $args
rc=$?
if [ "$rc" -ne 0 ]; then
	echo "# xen-dom0-test exited with $rc; last kernel messages:"
	dmesg | tail -n 30 | sed 's/^/# /'
fi
poweroff -f
