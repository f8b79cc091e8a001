#!/bin/busybox sh
# /init of the initramfs that boots the `io` test's domUs (and the `cargo xtask run` demo) from
# their PV disk (packed by xtask/src/io.rs): loads the Xen frontends (xen-blkfront,
# xen-netfront), waits for the root disk, mounts it and switches to its /sbin/init
# (testing/io-root-init.sh on the images the xtask builds).
#
# Kernel command line (xl.cfg `extra`):
#   root=/dev/xvda     the root filesystem (ext4); default /dev/xvda
#   ro                 mount it read-only (default read-write)
# Prints `IO-INITRD root=DEV` and, if the disk never shows up or will not mount,
# `IO-INITRD-FAIL why` and then a shell on the console.
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
$B mount -t devtmpfs dev /dev
$B --install -s /bin
export PATH=/bin
root=/dev/xvda
opts=rw
for kv in $(cat /proc/cmdline); do
	case "$kv" in
	root=*) root=${kv#root=} ;;
	ro) opts=ro ;;
	esac
done
for m in $(cat /etc/modules.order 2>/dev/null); do
	insmod "/lib/modules/$m.ko" || echo "IO-INITRD insmod $m failed"
done
echo "IO-INITRD root=$root"
fail() {
	echo "IO-INITRD-FAIL $*"
	exec setsid cttyhack sh
}
# blkfront connects once the backend is up: bounded wait (20 s).
i=0
while [ ! -b "$root" ]; do
	i=$((i + 1))
	[ $i -le 200 ] || fail "no $root after 20 s ($(ls /sys/block | tr '\n' ' '))"
	usleep 100000
done
mkdir -p /newroot
mount -t ext4 -o "$opts" "$root" /newroot || fail "mount $root"
[ -x /newroot/sbin/init ] || fail "no /sbin/init on $root"
umount /sys
umount /dev
umount /proc
exec switch_root /newroot /sbin/init
