#!/bin/busybox sh
# dom0 /init of the `io` test (packed by xtask/src/io.rs): PV disks and networks of domUs,
# served by Linux's xen-blkback and xen-netback in dom0, set up by `xl`.
#
# dom0's layout:
#   /var/lib/ferrovisor/vmlinuz, io-initrd.gz   the domUs' kernel and initramfs
#                                               (testing/io-domu-init.sh: root from xvda)
#   /var/lib/ferrovisor/root.img                ext4 root (busybox, testing/io-root-init.sh),
#                                               copied to vm1.img and vm2.img
#   /var/lib/ferrovisor/ro.img, extra.img       small ext4 images with /hello
#   /dev/vda                                    a QEMU virtio disk (the host's file): vm3's root,
#                                               which the host checks with e2fsck afterwards
#   /etc/xen/{vm1,vm2,vm3,bad}.cfg
# The domUs print IO-* lines (testing/io-root-init.sh) on their consoles, which xenconsoled
# logs to /var/log/xen/console/guest-<name>.log, where this script polls (bounded waits on
# dom0's clock, never a fixed sleep).
#
# Markers, parsed by xtask/src/io.rs (keep in sync): FV-INIT uptime=S; IO-TEST-OK <step>
# [details] / IO-TEST-FAIL <step> <why>, one per step in order (a step whose prerequisite
# failed fails as "skipped"), diagnostics as "# " lines before a FAIL; IO-TEST-DONE pass=N
# fail=M.
# The helpers shared with init-domu.sh and init-attack.sh (wait_until, gone, ok/bad/blocked,
# step_create...) are testing/lib-dom0.sh, installed as /etc/ferrovisor/lib.sh.
. /etc/ferrovisor/lib.sh
MARK=IO-TEST-
DIAG_LINES=15
dom0_boot
echo 4 >/proc/sys/kernel/printk
load_modules

# line NAME PATTERN: the last line of NAME's console log matching PATTERN, from PATTERN on
line() { grep "$2" "$(clog "$1")" 2>/dev/null | tail -n 1 | tr -d '\r' | sed "s/.*\($2\)/\1/"; }
# field KEY LINE: KEY's value in a "k=v k=v" line
field() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }
sha() { sha256sum "$1" | cut -c1-16; }
# Loop devices in use (their backing files), one line.
loops() {
	for f in /sys/block/loop*/loop/backing_file; do
		[ -r "$f" ] && printf '%s=%s ' "${f#/sys/block/}" "$(cat "$f")"
	done | sed 's|/loop/backing_file||g'
}
# The PV backends in xenstore (vbd and vif), one line.
backends() { timeout 10 xenstore-ls /local/domain/0/backend 2>/dev/null | grep -E '^ *[0-9]+ = ' | oneline; }
vbds_of() { timeout 10 xenstore-list "/local/domain/0/backend/vbd/$1" 2>/dev/null | oneline; }

# bad's diagnostics after xl list
diag_more() {
	echo "# ---- backends: $(backends); loops: $(loops)"
	echo "# ---- dom0 dmesg (tail):"
	dmesg | tail -n 8 | sed 's/^/#   /'
}
# run CMD...: CMD with output in /tmp/cmd.out, bounded by 60 s
run() { timeout 60 "$@" >/tmp/cmd.out 2>&1; }
# step_wait STEP NAME PATTERN PREREQ: PATTERN in NAME's console within 120 s
step_wait() {
	blocked "$1" "$4" && return 1
	if wait_until 120 has "$2" "$3"; then
		return 0
	fi
	bad "$1" "no '$3' on $2's console within 120 s" "$2"
	return 1
}
# step_destroy STEP NAME PREREQ: `xl destroy`, then gone from xl list
step_destroy() {
	blocked "$1" "$3" && return
	if run xl destroy "$2"; then
		if wait_until 60 gone "$2"; then
			ok "$1"
		else
			bad "$1" "$2 still listed 60 s after xl destroy" "$2"
		fi
	else
		bad "$1" "xl destroy $2: rc=$?: $(oneline </tmp/cmd.out)" "$2"
	fi
}

# ---------------------------------------------------------------------------- bench
# `cargo xtask bench io` (FV_MODE=bench in /etc/ferrovisor/io.env): the same disk measured from
# dom0 (a loop device over the image) and from a domU (xvdb, through blkback on that loop
# device), then TCP both ways between dom0 and the domU. Lines: IO-BENCH-DOM0 <figures>,
# IO-BENCH-DOMU <figures>, IO-BENCH-NET dom0_to_domu_mibs=X domu_to_dom0_mibs=Y, IO-BENCH-DONE,
# or IO-BENCH-FAIL why.
FV_MODE=test
[ -r /etc/ferrovisor/io.env ] && . /etc/ferrovisor/io.env
if [ "$FV_MODE" = bench ]; then
	bfail() {
		echo "# $(oneline </tmp/cmd.out)"
		tails 15 " " /tmp/create-bench.out /var/log/xen/xl-bench.log "$(clog bench)"
		echo "IO-BENCH-FAIL $*"
		poweroff -f
	}
	[ -n "$is_xen" ] || bfail "no Xen"
	run /etc/init.d/xencommons start || bfail "xencommons"
	# Room beyond the initramfs (a tmpfs of its own: rootfs is capped at half of dom0's RAM).
	mkdir -p /bench /srv
	mount -t tmpfs -o size=300m tmpfs /bench
	cp /var/lib/ferrovisor/root.img /bench/root.img
	dd if=/dev/zero of=/bench/disk.img bs=1M count=96 2>/dev/null
	dd if=/dev/urandom of=/srv/big bs=64k count=512 2>/dev/null
	ip link set lo up
	{ run brctl addbr xenbr0 && run ip addr add 192.0.2.1/24 dev xenbr0 && run ip link set xenbr0 up &&
		run httpd -p 80 -h /srv; } || bfail "bridge"
	l=$(losetup -f) && run losetup "$l" /bench/disk.img || bfail "losetup"
	r=$(timeout 300 xen-dom0-test --disk-bench "$l" 64)
	losetup -d "$l"
	case "$r" in IO-BENCH\ *) echo "IO-BENCH-DOM0 ${r#IO-BENCH }" ;; *) bfail "dom0 disk: $r" ;; esac
	timeout 120 xl create /etc/xen/bench.cfg >/tmp/create-bench.out 2>&1 || bfail "xl create"
	wait_until 400 has bench IO-BENCH-READY || bfail "no IO-BENCH-READY from the domU"
	d=$(line bench "IO-BENCH seq")
	[ -n "$d" ] || bfail "domU disk: $(line bench IO-BENCH)"
	echo "IO-BENCH-DOMU ${d#IO-BENCH }"
	n=$(line bench IO-BENCH-NET)
	read -r t0 _ </proc/uptime
	run wget -q -O /dev/null http://192.0.2.2:8080/blob || bfail "wget from the domU"
	read -r t1 _ </proc/uptime
	echo "$n $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "domu_to_dom0_mibs=%.1f", 32 / (b - a) }')"
	run xl destroy bench
	echo "IO-BENCH-DONE"
	poweroff -f
fi

# ---------------------------------------------------------------------------- steps
# Starts our toolstack (nothing on stdout), or says why it does not serve.
start_toolstack() {
	timeout 60 /etc/init.d/xencommons start >/tmp/xencommons.out 2>&1 </dev/null &&
		timeout 10 xenstore-read /local/domain/0/name >/dev/null 2>&1 ||
		{ oneline </tmp/xencommons.out; return 1; }
}
step_toolstack xencommons
free0=$(free_mem)

# The bridge the vifs join (as a distribution's network setup would make it), dom0 at .1
# serving a blob over HTTP; the images.
if ! blocked bridge xencommons; then
	mkdir -p /srv
	dd if=/dev/urandom of=/srv/blob bs=64k count=32 2>/dev/null
	dom0_sha=$(sha /srv/blob)
	cp /var/lib/ferrovisor/root.img /var/lib/ferrovisor/vm1.img
	cp /var/lib/ferrovisor/root.img /var/lib/ferrovisor/vm2.img
	ip link set lo up
	if run brctl addbr xenbr0 && run ip addr add 192.0.2.1/24 dev xenbr0 && run ip link set xenbr0 up &&
		run httpd -p 80 -h /srv; then
		ok "bridge xenbr0 192.0.2.1/24 blob=$dom0_sha"
	else
		bad bridge "$(oneline </tmp/cmd.out)"
	fi
fi

# A missing image fails `xl create` with a message naming it, and leaves nothing behind.
if ! blocked missing_image xencommons; then
	if timeout 120 xl create /etc/xen/bad.cfg >/tmp/create-bad.out 2>&1; then
		bad missing_image "xl create with a missing image succeeded" bad
	elif ! grep -q missing.img /tmp/create-bad.out; then
		bad missing_image "xl create's error does not name the image: $(oneline </tmp/create-bad.out)" bad
	elif ! wait_until 30 gone bad; then
		bad missing_image "domain bad left behind" bad
	elif [ -n "$(backends)" ] || [ -n "$(loops)" ]; then
		bad missing_image "left behind: backends $(backends); loops $(loops)" bad
	else
		ok "missing_image $(grep -m1 missing.img /tmp/create-bad.out | oneline)"
	fi
fi

# vm1: root on a file image (xvda), a read-only disk (xvdb), a vif with a fixed MAC.
step_create create_vm1 vm1 bridge
if step_wait root_vm1 vm1 IO-WROTE create_vm1; then
	r=$(line vm1 IO-ROOT)
	vm1_sha=$(field sha "$(line vm1 IO-WROTE)")
	if [ "$(field root "$r")" = /dev/xvda ] && [ "$(field rw "$r")" = 1 ] && [ -n "$vm1_sha" ]; then
		ok "root_vm1 $r sha=$vm1_sha"
	else
		bad root_vm1 "unexpected: $r / $(line vm1 IO-WROTE)" vm1
	fi
fi
if step_wait ro_vm1 vm1 IO-RO root_vm1; then
	r=$(line vm1 IO-RO)
	if [ "$r" = "IO-RO ro=1 write=rejected hello=ro-disk" ]; then ok "ro_vm1 $r"; else bad ro_vm1 "$r" vm1; fi
fi
if step_wait net_vm1 vm1 IO-GET root_vm1; then
	p=$(line vm1 IO-PING)
	g=$(line vm1 IO-GET)
	if [ "$p" = "IO-PING 192.0.2.1 ok" ] && [ "$g" = "IO-GET 192.0.2.1 sha=$dom0_sha" ]; then
		ok "net_vm1 $(line vm1 IO-NET); $p; $g"
	else
		bad net_vm1 "$(line vm1 IO-NET); $p; $g (dom0's blob: $dom0_sha)" vm1
	fi
fi
if ! blocked dom0_to_vm1 net_vm1; then
	rm -f /tmp/get
	if ! run ping -c 3 -W 5 192.0.2.2; then
		bad dom0_to_vm1 "ping 192.0.2.2: $(oneline </tmp/cmd.out)" vm1
	elif ! run wget -q -O /tmp/get http://192.0.2.2/blob; then
		bad dom0_to_vm1 "wget from vm1: $(oneline </tmp/cmd.out)" vm1
	elif [ "$(sha /tmp/get)" != "$vm1_sha" ]; then
		bad dom0_to_vm1 "fetched sha $(sha /tmp/get), vm1 wrote $vm1_sha" vm1
	else
		ok "dom0_to_vm1 ping ok, sha=$vm1_sha"
	fi
fi

# vm2: its own image; reaches vm1 over the bridge; sees neither vm1's disk nor its blob.
step_create create_vm2 vm2 net_vm1
if step_wait vm2_to_vm1 vm2 IO-GET create_vm2; then
	p=$(line vm2 IO-PING)
	g=$(line vm2 IO-GET)
	if [ "$p" = "IO-PING 192.0.2.2 ok" ] && [ "$g" = "IO-GET 192.0.2.2 sha=$vm1_sha" ]; then
		ok "vm2_to_vm1 $p; $g"
	else
		bad vm2_to_vm1 "$p; $g (vm1's blob: $vm1_sha)" vm2
	fi
fi
if ! blocked isolation create_vm2; then
	r=$(line vm2 IO-ROOT)
	w=$(line vm2 IO-WROTE)
	if [ "$(field blkdevs "$r")" != "xvda," ]; then
		bad isolation "vm2 sees block devices $(field blkdevs "$r")" vm2
	elif [ -z "$w" ] || [ "$(field sha "$w")" = "$vm1_sha" ]; then
		bad isolation "vm2 did not write a fresh blob on its own image: '$w'" vm2
	elif run xl block-attach vm2 /var/lib/ferrovisor/vm1.img,raw,xvdc,w; then
		bad isolation "xl block-attach of vm1's image to vm2 (read-write) succeeded" vm2
	else
		ok "isolation vm2 has only xvda, its own blob; attaching vm1.img refused: $(oneline </tmp/cmd.out)"
	fi
fi

# Hotplug on vm1: a disk (xvdc = 51744), then a vif.
if ! blocked block_attach root_vm1; then
	if ! run xl block-attach vm1 /var/lib/ferrovisor/extra.img,raw,xvdc,r; then
		bad block_attach "xl block-attach: $(oneline </tmp/cmd.out)" vm1
	elif ! wait_until 60 has vm1 "IO-HOTPLUG xvdc added"; then
		bad block_attach "vm1 never saw xvdc" vm1
	elif [ "$(line vm1 'IO-HOTPLUG xvdc added')" != "IO-HOTPLUG xvdc added hello=hotplug-disk" ]; then
		bad block_attach "$(line vm1 'IO-HOTPLUG xvdc added')" vm1
	elif ! run xl block-list vm1 || ! grep -q '^51744 ' /tmp/cmd.out; then
		bad block_attach "xl block-list: $(oneline </tmp/cmd.out)" vm1
	else
		ok "block_attach $(line vm1 'IO-HOTPLUG xvdc added'); block-list: $(oneline </tmp/cmd.out)"
	fi
fi
if ! blocked block_detach block_attach; then
	if ! run xl block-detach vm1 xvdc; then
		bad block_detach "xl block-detach: $(oneline </tmp/cmd.out)" vm1
	elif ! wait_until 60 has vm1 "IO-HOTPLUG xvdc removed"; then
		bad block_detach "vm1 still has xvdc" vm1
	elif ! run xl block-list vm1 || grep -q '^51744 ' /tmp/cmd.out; then
		bad block_detach "xl block-list: $(oneline </tmp/cmd.out)" vm1
	elif loops | grep -q extra.img; then
		bad block_detach "extra.img still on a loop device: $(loops)" vm1
	else
		ok "block_detach"
	fi
fi
if ! blocked network_attach net_vm1; then
	if ! run xl network-attach vm1 bridge=xenbr0 mac=00:16:3e:00:00:12; then
		bad network_attach "xl network-attach: $(oneline </tmp/cmd.out)" vm1
	elif ! wait_until 60 has vm1 "IO-HOTPLUG eth1 added"; then
		bad network_attach "vm1 never saw eth1" vm1
	elif [ "$(line vm1 'IO-HOTPLUG eth1 added')" != "IO-HOTPLUG eth1 added mac=00:16:3e:00:00:12" ]; then
		bad network_attach "$(line vm1 'IO-HOTPLUG eth1 added')" vm1
	elif ! run xl network-list vm1 || [ "$(grep -c '^[0-9]' /tmp/cmd.out)" != 2 ]; then
		bad network_attach "xl network-list: $(oneline </tmp/cmd.out)" vm1
	else
		ok "network_attach $(line vm1 'IO-HOTPLUG eth1 added'); network-list: $(oneline </tmp/cmd.out)"
	fi
fi
if ! blocked network_detach network_attach; then
	if ! run xl network-detach vm1 1; then
		bad network_detach "xl network-detach: $(oneline </tmp/cmd.out)" vm1
	elif ! wait_until 60 has vm1 "IO-HOTPLUG eth1 removed"; then
		bad network_detach "vm1 still has eth1" vm1
	else
		ok "network_detach"
	fi
fi

step_destroy destroy_vm2 vm2 create_vm2
step_destroy destroy_vm1 vm1 create_vm1
# Nothing left: no backend in xenstore, no loop device.
no_leftovers() { [ -z "$(backends)" ] && [ -z "$(loops)" ]; }
if ! blocked cleanup destroy_vm1 destroy_vm2; then
	if wait_until 30 no_leftovers; then
		ok "cleanup"
	else
		bad cleanup "30 s after destroy: backends $(backends); loops $(loops)"
	fi
fi

# vm1 again: the blob written in its first life is on its image.
step_create recreate_vm1 vm1 destroy_vm1
if step_wait persist vm1 IO-FOUND recreate_vm1; then
	f=$(line vm1 IO-FOUND)
	if [ "$f" = "IO-FOUND sha=$vm1_sha stored=$vm1_sha boots=2" ]; then
		ok "persist $f"
	else
		bad persist "'$f', first boot wrote $vm1_sha" vm1
	fi
fi
step_destroy destroy_vm1_again vm1 recreate_vm1

# vm3: root on dom0's virtio disk; destroyed in the middle of writing. The host runs e2fsck on
# the disk's file after QEMU exits.
step_create create_vm3 vm3 xencommons
if step_wait writing_vm3 vm3 "IO-WRITING 4" create_vm3; then
	ok "writing_vm3 $(line vm3 IO-ROOT)"
fi
step_destroy destroy_vm3 vm3 writing_vm3
sync

if ! blocked memory xencommons; then
	if wait_until 60 mem_back; then ok "memory free_memory=$f MiB"; else bad memory "free_memory $f MiB, $free0 MiB at the start"; fi
fi

steps_done
sync
poweroff -f
