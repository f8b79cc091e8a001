#!/bin/sh
# /init of the victim domU of the `attack` test (packed by xtask/src/attack.rs with busybox
# and testing/xen-dom0-test): it fills memory with a pattern and re-checks it every second
# (`xen-dom0-test --victim`), printing VICTIM-ALIVE <n> ok / VICTIM-CORRUPT <n> ... on hvc0,
# which dom0's xenconsoled logs to /var/log/xen/console/guest-victim.log for
# testing/init-attack.sh. Kernel command line (xl.cfg `extra`): victim_mib=N (default 16).
/bin/busybox mount -t proc proc /proc
read -r t _ </proc/uptime
read -r cmdline </proc/cmdline
mib=16
for kv in $cmdline; do
	case "$kv" in
	victim_mib=*) mib=${kv#victim_mib=} ;;
	esac
done
echo "VICTIM-INIT uptime=$t mib=$mib"
/bin/busybox --install -s /bin
export PATH=/bin
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# The checker runs forever; if it ever exits, say so and keep the domain up (the harness
# then sees no more heartbeats).
/bin/xen-dom0-test --victim "$mib"
echo "VICTIM-EXITED rc=$?"
while :; do sleep 60; done
