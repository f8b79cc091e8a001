#!/bin/sh
# /init of the `xl_dom0` test (packed by xtask/src/xltest.rs): loads Linux's Xen device
# drivers, mounts xenfs, and runs our dom0/xl's read-only commands with no xenstored (so
# domain 0 is named Domain-0 by xl's fallback). Then powers off.
# Markers: FV-INIT as in init-test.sh; for each command `XL-BEGIN <name>`, its stdout, its
# stderr as `XL-ERR <line>`, `XL-END <name> rc=<status>`; then `XL-DONE`. Parsed by
# xtask/src/xltest.rs. Every failure is reported, never waited on.
/bin/busybox mount -t proc proc /proc
read -r t _ </proc/uptime
echo "FV-INIT uptime=$t"
/bin/busybox --install -s /bin
export PATH=/bin
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /etc/modules.order); do
	insmod "/lib/modules/$m.ko" || echo "XL-ERR insmod /lib/modules/$m.ko failed"
done
mount -t xenfs xenfs /proc/xen || echo "XL-ERR mount -t xenfs xenfs /proc/xen failed"

# run NAME ARGS...: `xl ARGS`, bounded to 60 s.
run() {
	name=$1
	shift
	echo "XL-BEGIN $name"
	timeout 60 xl "$@" >/tmp/out 2>/tmp/err
	rc=$?
	cat /tmp/out
	sed 's/^/XL-ERR /' /tmp/err
	echo "XL-END $name rc=$rc"
}
run list list
run info info
run uptime uptime
run vcpu-list vcpu-list
run dmesg dmesg
run domid domid Domain-0
run domname domname 0
echo "XL-DONE"
poweroff -f
