#!/bin/busybox sh
# dom0 /init of the `domu` test, `cargo xtask bench domu` and the `cargo xtask run` demo
# (packed by xtask/src/domu.rs). /etc/ferrovisor/domu.env sets
#   FV_MODE       test | bench | demo
#   FV_TOOLSTACK  ours   (dom0/xl, xenstored, xenconsoled, started by /etc/init.d/xencommons)
#                 debian (Xen 4.17's own xenstored, xen-init-dom0, xenconsoled and xl)
# The domUs boot the same kernel (/var/lib/ferrovisor/vmlinuz) with testing/domu-init.sh in
# /var/lib/ferrovisor/domu-initrd.gz; their xl.cfg files are in /etc/xen. Their consoles are
# logged by xenconsoled to /var/log/xen/console/guest-<name>.log, which this script polls
# (bounded loops on dom0's clock, never a fixed sleep).
#
# Markers, parsed by xtask/src/domu.rs (keep in sync):
#   FV-INIT uptime=S                      as in init-test.sh
#   test:  DOMU-TEST-OK <step> [details]  /  DOMU-TEST-FAIL <step> <why>, one per step, in
#          order (a step whose prerequisite failed fails as "skipped"); diagnostics (console
#          logs, xl list, xl dmesg) come before a FAIL as "# " lines; DOMU-LIST-BEGIN ..
#          DOMU-LIST-END rc=N around `xl list` with two domUs; DOMU-TEST-DONE pass=N fail=M
#   bench: DOMU-BENCH-CREATE right before `xl create`, DOMU-BENCH-SEEN when the domU's
#          DOMU-INIT is in its console log, DOMU-BENCH-RESULT key=value..., DOMU-BENCH-DONE
# The helpers shared with init-attack.sh and init-io.sh (wait_until, gone, ok/bad/blocked,
# step_create...) are testing/lib-dom0.sh, installed as /etc/ferrovisor/lib.sh.
. /etc/ferrovisor/lib.sh
MARK=DOMU-TEST-
dom0_boot
. /etc/ferrovisor/domu.env
if [ "$FV_TOOLSTACK" = debian ]; then
	export PATH=/usr/lib/xen-4.17/bin:$PATH
	export LD_LIBRARY_PATH=/lib/aarch64-linux-gnu:/usr/lib/aarch64-linux-gnu
fi
# Kernel messages below warnings stay off the console the markers share.
[ "$FV_MODE" = demo ] || echo 4 >/proc/sys/kernel/printk
load_modules

# Starts the dom0 daemons; their output (one line) on stdout, and the error when they are not
# serving. Output goes through a file: a daemon may keep what it inherits open.
start_toolstack() {
	if [ "$FV_TOOLSTACK" = debian ]; then
		{ xenstored --pid-file /run/xenstored.pid && timeout 30 xen-init-dom0 &&
			xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console; } \
			>/tmp/xencommons.out 2>&1 </dev/null
	else
		timeout 60 /etc/init.d/xencommons start >/tmp/xencommons.out 2>&1 </dev/null
	fi
	rc=$?
	[ "$rc" -eq 0 ] || { echo "rc=$rc: $(oneline </tmp/xencommons.out)"; return 1; }
	timeout 10 xenstore-read /local/domain/0/name >/tmp/xs.out 2>&1 ||
		{ echo "xenstore-read /local/domain/0/name: rc=$?: $(oneline </tmp/xs.out)"; return 1; }
	pidof xenconsoled >/dev/null || { echo "xenconsoled is not running"; return 1; }
	oneline </tmp/xencommons.out
}

# ---------------------------------------------------------------------------- demo
if [ "$FV_MODE" = demo ]; then
	if [ -n "$is_xen" ]; then
		if msg=$(start_toolstack); then
			if [ "$FV_TOOLSTACK" = debian ]; then
				echo "dom0 runs Xen 4.17's toolstack from Debian (xenstored, xenconsoled, xl)."
			else
				echo "dom0 runs our toolstack (xenstored and xenconsoled, started by xencommons; xl)."
			fi
			# The demo domU's disk (a copy of the root image) and the bridge its vif joins.
			cp /var/lib/ferrovisor/root.img /var/lib/ferrovisor/demo.img
			brctl addbr xenbr0 && ip addr add 192.0.2.1/24 dev xenbr0 && ip link set xenbr0 up
			cat <<'EOF'
  xl create -c /etc/xen/demo.cfg    start a domU (128 MiB, 1 vCPU, the same kernel) booting from
                                    its own disk (/var/lib/ferrovisor/demo.img as xvda), on the
                                    bridge xenbr0 as 192.0.2.2 (dom0 is 192.0.2.1), with a busybox
                                    shell on its console, attached here; Ctrl-] detaches
  xl console demo                   attach again;   xl list;   xl block-list demo;   xl destroy demo
EOF
		else
			echo "xencommons failed: $msg"
		fi
	else
		echo "no Xen hypervisor (/sys/hypervisor/type missing): the toolstack is not started"
	fi
	echo
	echo "busybox shell on $(cat /sys/class/tty/console/active) after $(cut -d' ' -f1 /proc/uptime) s; 'poweroff -f' ends QEMU."
	setsid cttyhack sh
	poweroff -f
fi

# ---------------------------------------------------------------------------- helpers
# Why NAME is not gone (one line).
why_not_gone() {
	if ! l=$(timeout 30 xl list 2>&1); then
		echo "xl list failed: $(echo "$l" | oneline)"
	elif echo "$l" | grep -q "^$1 "; then
		echo "$1 is still in xl list"
	else
		echo "$1 left xl list but a process still runs for $1.cfg:" \
			"$(for f in $(grep -ls "$1[.]cfg" /proc/[0-9]*/cmdline); do tr '\0' ' ' <"$f"; echo; done | oneline)"
	fi
}

# ---------------------------------------------------------------------------- bench
if [ "$FV_MODE" = bench ]; then
	POLL_US=20000
	fail() {
		echo "DOMU-BENCH-FAIL $*"
		tails 15 " " /tmp/create-bench.out /var/log/xen/xl-bench.log "$(clog bench)"
		echo "# xl dmesg:"
		xl dmesg 2>&1 | tail -n 15 | sed 's/^/# /'
		echo "DOMU-BENCH-DONE"
		poweroff -f
	}
	[ -n "$is_xen" ] || fail "no Xen"
	msg=$(start_toolstack) || fail "toolstack: $msg"
	free0=$(free_mem)
	mem=$(sed -n 's/^memory *= *//p' /etc/xen/bench.cfg)
	echo "DOMU-BENCH-CREATE"
	read -r t0 _ </proc/uptime
	timeout 120 xl create /etc/xen/bench.cfg >/tmp/create-bench.out 2>&1 || fail "xl create rc=$?: $(oneline </tmp/create-bench.out)"
	read -r t1 _ </proc/uptime
	wait_until 180 has bench DOMU-INIT || fail "no DOMU-INIT in $(clog bench) after 180 s"
	read -r t2 _ </proc/uptime
	echo "DOMU-BENCH-SEEN"
	free1=$(free_mem)
	du=$(grep -m1 DOMU-INIT "$(clog bench)" | tr -d '\r' | sed -n 's/.*uptime=\([0-9.]*\).*/\1/p')
	read -r t3 _ </proc/uptime
	timeout 60 xl destroy bench >/tmp/destroy-bench.out 2>&1 || fail "xl destroy rc=$?: $(oneline </tmp/destroy-bench.out)"
	read -r t4 _ </proc/uptime
	wait_until 60 gone bench || fail "bench still listed 60 s after xl destroy"
	echo "DOMU-BENCH-RESULT xl_create=$(sub "$t0" "$t1") create_to_init=$(sub "$t0" "$t2") domu_uptime=$du" \
		"xl_destroy=$(sub "$t3" "$t4") free_before_mib=$free0 free_after_mib=$free1 memory_mib=$mem"
	echo "DOMU-BENCH-DONE"
	poweroff -f
fi

# ---------------------------------------------------------------------------- test
diag_more() {
	echo "# ---- xl dmesg (tail):"
	timeout 30 xl dmesg 2>&1 | tail -n 12 | sed 's/^/#   /'
	echo "# ---- dom0 dmesg (tail):"
	dmesg | tail -n 5 | sed 's/^/#   /'
}
# step_init STEP NAME: DOMU-INIT in NAME's console log
step_init() {
	blocked "$1" "create_$2" && return
	if wait_until 180 has "$2" DOMU-INIT; then
		now
		eval "c=\$created_$2"
		ok "$1 $(grep -m1 DOMU-INIT "$(clog "$2")" | tr -d '\r' | sed 's/.*DOMU-INIT //') seen_after=$(sub "$c" "$now")s"
	else
		bad "$1" "no DOMU-INIT in $(clog "$2") within 180 s of dom0 time" "$2"
	fi
}
# step_destroy STEP NAME: `xl destroy`, then gone from xl list
step_destroy() {
	blocked "$1" "create_$2" && return
	if timeout 60 xl destroy "$2" >"/tmp/destroy-$2.out" 2>&1; then
		if wait_until 60 gone "$2"; then
			ok "$1"
		else
			bad "$1" "60 s after xl destroy: $(why_not_gone "$2")" "$2"
		fi
	else
		bad "$1" "xl destroy $2: rc=$?: $(oneline <"/tmp/destroy-$2.out")" "$2"
		destroy "$2"
	fi
}
# step_memory STEP: free_memory back to $free0
step_memory() {
	blocked "$1" xencommons && return
	if [ -z "$free0" ]; then
		bad "$1" "no free_memory in xl info at the start"
	elif wait_until 60 mem_back; then
		ok "$1 free_memory=$f MiB"
	else
		dying=$(timeout 30 xl list 2>/dev/null | awk 'NR > 1 && $5 ~ /d$/ { printf " %s(%s)", $2, $1 }')
		bad "$1" "xl info free_memory is $f MiB 60 s after the domains went, $free0 MiB before them; dying domains:${dying:- none}"
	fi
}

step_toolstack xencommons
free0=$(free_mem)
echo "DOMU-INFO xl info free_memory before the domUs: ${free0:-?} MiB"

# domu1 (1 vCPU, powers itself off on cue) and domu2 (2 vCPUs, heartbeat) side by side.
step_create create_domu1 domu1 xencommons
step_create create_domu2 domu2 xencommons
step_init init_domu1 domu1
step_init init_domu2 domu2

if ! blocked list init_domu1 init_domu2; then
	echo "DOMU-LIST-BEGIN"
	timeout 30 xl list >/tmp/list.out 2>&1
	rc=$?
	cat /tmp/list.out
	echo "DOMU-LIST-END rc=$rc"
	if [ "$rc" -eq 0 ] && grep -q "^domu1 " /tmp/list.out && grep -q "^domu2 " /tmp/list.out; then
		ok list
	else
		bad list "xl list rc=$rc, domu1 and domu2 not both listed"
	fi
fi

# domu1 waits for a line on its console: written to the pty xenconsoled publishes in xenstore
# (without one it powers off after fv_wait anyway). on_poweroff=destroy: it leaves xl list.
if ! blocked poweroff_domu1 init_domu1; then
	cue=none
	id=$(domid domu1)
	tty=$(timeout 10 xenstore-read "/local/domain/$id/console/tty" 2>/dev/null)
	if [ -n "$tty" ] && [ -c "$tty" ] && timeout 10 sh -c 'printf "go\n" >"$1"' _ "$tty"; then
		cue="$tty"
	fi
	if wait_until 120 gone domu1; then
		ok "poweroff_domu1 cue=$cue $(grep -m1 DOMU-POWEROFF "$(clog domu1)" | tr -d '\r')"
	else
		bad poweroff_domu1 "120 s after its cue ($cue): $(why_not_gone domu1)" domu1
		destroy domu1
	fi
fi

step_destroy destroy_domu2 domu2
step_memory memory

# domu3 reboots at every boot (on_reboot=restart): it must come back and boot again, i.e.
# print a DOMU-INIT with another boot= than its first one (whether xenconsoled appends to the
# log or starts it afresh for the new domain) and be in xl list. The restarted domain is a new
# one with a new domid (Xen 4.17 and Ferrovisor both hand out the next free id).
step_create create_domu3 domu3 xencommons
boot_ids() { grep DOMU-INIT "$(clog domu3)" 2>/dev/null | tr -d '\r' | sed -n 's/.* boot=\([0-9a-f]*\).*/\1/p'; }
first_boot() {
	boot1=$(boot_ids | head -n 1)
	[ -n "$boot1" ]
}
rebooted() {
	boot_ids | grep -qv "^$boot1\$" || return 1
	id2=$(domid domu3) && [ -n "$id2" ] && [ "$id2" != "$id1" ]
}
if ! blocked reboot_domu3 create_domu3; then
	id1=$id_domu3
	if ! wait_until 180 first_boot; then
		bad reboot_domu3 "no DOMU-INIT in $(clog domu3) within 180 s" domu3
	elif wait_until 150 rebooted; then
		ok "reboot_domu3 domid $id1 -> $id2, boot $boot1 -> $(boot_ids | grep -v "^$boot1\$" | tail -n 1), DOMU-INIT x$(count domu3 DOMU-INIT)"
	else
		bad reboot_domu3 "no DOMU-INIT of a new boot of a listed domu3 within 150 s (first domid $id1 boot $boot1, now domid '$(domid domu3)', DOMU-INIT x$(count domu3 DOMU-INIT))" domu3
	fi
fi
if ! blocked destroy_domu3 create_domu3; then
	if destroy domu3; then
		ok destroy_domu3
	else
		bad destroy_domu3 "after 90 s of xl destroy: $(why_not_gone domu3)" domu3
	fi
fi

# domu5 panics (on_crash and on_reboot destroy: arm64 Linux reboots after a panic) while domu4
# keeps its heartbeat and dom0 keeps answering.
step_create create_domu4 domu4 xencommons
step_init init_domu4 domu4
step_create create_domu5 domu5 xencommons
panicked() { has domu5 DOMU-PANIC && gone domu5; }
if ! blocked panic_domu5 create_domu5; then
	if wait_until 240 panicked; then
		ok "panic_domu5 kernel_panic_lines=$(count domu5 'Kernel panic')"
	else
		bad panic_domu5 "domu5 did not panic and go within 240 s (DOMU-INIT x$(count domu5 DOMU-INIT), DOMU-PANIC x$(count domu5 DOMU-PANIC); $(why_not_gone domu5))" domu5
		destroy domu5
	fi
fi
beat() { grep DOMU-ALIVE "$(clog domu4)" 2>/dev/null | tail -n 1 | tr -d '\r' | sed 's/.*DOMU-ALIVE //'; }
beating() {
	n2=$(beat)
	[ -n "$n2" ] && [ "$n2" -gt "${n1:-0}" ]
}
if ! blocked alive_domu4 init_domu4; then
	n1=$(beat)
	if wait_until 30 beating; then
		now
		t0=$now
		timeout 30 xl list >/tmp/list.out 2>&1
		rc=$?
		now
		if [ "$rc" -eq 0 ] && grep -q "^domu4 " /tmp/list.out; then
			ok "alive_domu4 heartbeat ${n1:-none} -> $n2, xl list in $(sub "$t0" "$now") s"
		else
			bad alive_domu4 "xl list rc=$rc after the panic (domu4 listed: $(grep -c '^domu4 ' /tmp/list.out))" domu4
		fi
	else
		bad alive_domu4 "no new DOMU-ALIVE from domu4 within 30 s (last ${n1:-none})" domu4
	fi
fi
step_destroy destroy_domu4 domu4
step_memory memory_final

steps_done
poweroff -f
