#!/bin/busybox sh
# dom0 /init for the debian_toolstack test: Debian's Xen 4.17 daemons and xl.
B=/bin/busybox
$B mount -t proc proc /proc
$B echo "FV-INIT uptime=$($B cut -d' ' -f1 /proc/uptime)"
$B mount -t sysfs sys /sys
$B mount -t devtmpfs dev /dev
$B --install -s /bin
mkdir -p /dev/pts /run /var && mount -t devpts devpts /dev/pts
ln -sf /proc/self/fd /dev/fd
mount -t tmpfs tmpfs /run && mkdir -p /run/lock /run/xen /run/xenstored
ln -sfn /run /var/run
mkdir -p /var/lib/xen /var/lib/xenstored /var/log/xen/console
export PATH=/usr/lib/xen-4.17/bin:/bin:/sbin:/usr/bin:/usr/sbin
export LD_LIBRARY_PATH=/lib/aarch64-linux-gnu:/usr/lib/aarch64-linux-gnu
for m in $(cat /etc/modules.order); do insmod /lib/modules/$m.ko || echo "TS-FAIL insmod_$m"; done
mount -t xenfs xenfs /proc/xen || echo "TS-FAIL mount_xenfs"
step() { n=$1; shift; if "$@"; then echo "TS-OK $n"; else echo "TS-FAIL $n: rc=$?"; fi; }
step xenstored xenstored --pid-file /run/xenstored.pid
step xen-init-dom0 timeout 30 xen-init-dom0
step xenconsoled xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console
echo "TS-BEGIN list"; timeout 30 xl list 2>&1; echo "TS-END list rc=$?"
echo "TS-BEGIN info"; timeout 30 xl info 2>&1; echo "TS-END info rc=$?"
echo "TS-BEGIN vcpu-list"; timeout 30 xl vcpu-list 2>&1; echo "TS-END vcpu-list rc=$?"
echo "TS-BEGIN uptime"; timeout 30 xl uptime 2>&1; echo "TS-END uptime rc=$?"
echo "TS-BEGIN xenstore"; timeout 10 xenstore-read /local/domain/0/name 2>&1; echo "TS-END xenstore rc=$?"
echo "TS-BEGIN dmesg"; timeout 30 xl dmesg 2>&1 | tail -3; echo "TS-END dmesg rc=$?"
echo "TS-DONE"
poweroff -f
