#!/bin/busybox sh
# dom0 /init of the `attack` test (packed by xtask/src/attack.rs). dom0 starts our toolstack
# (xencommons), then:
#   1. creates the victim domU (testing/victim-init.sh: a 16 MiB pattern re-checked every
#      second, VICTIM-ALIVE n ok / VICTIM-CORRUPT ...) and waits for its heartbeat;
#   2. creates the attack guest (testing/attack-guest, a bare-metal Image: 64 MiB, 2 vCPUs,
#      `attack=main victim=<domid>`), waits for ATTACK-DONE in its console log and for the
#      domain to go (it powers off with one vCPU spinning, interrupts masked);
#   3. boots it once per kill mode (`attack=kill-<mode>`), each ending with a case the domain
#      does not survive on its own: the domain must crash (and be gone) or keep spinning
#      without harm until `xl destroy` removes it;
#   4. checks that dom0 answered all along, the victim kept beating and saw no change,
#      destroys the victim and waits for the hypervisor's free pages to be back where they
#      were (exact: `xen-dom0-test --free-pages`, XEN_SYSCTL_physinfo);
#   5. churn: fv_churn=N (kernel command line, default 20) create/destroy cycles of the
#      attack guest (`attack=churn`: prints ATTACK-CHURN-UP and sleeps, destroyed by xl;
#      every other cycle `attack=churn-off`: powers itself off), then free pages identical
#      to before the churn (and to the start, within fv_mem_slack pages, default 0).
# Every wait is a bounded poll on dom0's clock, never a fixed sleep.
#
# Markers, parsed by xtask/src/attack.rs (keep in sync):
#   FV-INIT uptime=S
#   ATTACK-TEST-OK <step> [details] / ATTACK-TEST-FAIL <step> <why>, one per step, in order
#   (a step whose prerequisite failed fails as "skipped"; "# " diagnostic lines come first)
#   ATTACK-LINE <a line of an attack guest's console: ATTACK ...>
#   ATTACK-TEST-DONE pass=N fail=M
# The helpers shared with init-domu.sh and init-io.sh (wait_until, gone, ok/bad/blocked...)
# are testing/lib-dom0.sh, installed as /etc/ferrovisor/lib.sh.
. /etc/ferrovisor/lib.sh
MARK=ATTACK-TEST-
dom0_boot
echo 4 >/proc/sys/kernel/printk

churn=20
slack=0
read -r cmdline </proc/cmdline
for kv in $cmdline; do
	case "$kv" in
	fv_churn=*) churn=${kv#fv_churn=} ;;
	# Pages the hypervisor may keep after the victim goes (0: exact; under Xen 4.17, whose
	# count moves by a few pages when a Linux domU goes, xtask passes a few).
	fv_mem_slack=*) slack=${kv#fv_mem_slack=} ;;
	esac
done

load_modules

KERNEL=/var/lib/ferrovisor/vmlinuz
VICTIM_INITRD=/var/lib/ferrovisor/victim-initrd.gz
ATTACK=/var/lib/ferrovisor/attack-guest.Image
KILLS="masked-spin abort-loop wfi crash"

# `xl list`, timed: sets lat (seconds) and keeps the worst in maxlat; fails if xl fails.
maxlat=0
xl_list() {
	read -r a _ </proc/uptime
	timeout 30 xl list >/tmp/list.out 2>&1
	r=$?
	read -r b _ </proc/uptime
	lat=$(sub "$a" "$b")
	maxlat=$(awk -v m="$maxlat" -v l="$lat" 'BEGIN { print (l > m) ? l : m }')
	return $r
}
listed() { xl_list && grep -q "^$1 " /tmp/list.out; }
# lib.sh's unlisted (and so gone), timed as every `xl list` here.
unlisted() { xl_list && ! grep -q "^$1 " /tmp/list.out; }
free_pages() { xen-dom0-test --free-pages 2>/dev/null | sed -n 's/^FREE-PAGES //p'; }
# The ATTACK lines of NAME's console, for the harness.
forward() { grep '^ATTACK' "$(clog "$1")" 2>/dev/null | tr -d '\r' | sed 's/^/ATTACK-LINE /'; }
beat() { grep 'VICTIM-ALIVE' "$(clog victim)" 2>/dev/null | tail -n 1 | sed 's/.*VICTIM-ALIVE \([0-9]*\).*/\1/'; }

# A domU config for the attack guest: NAME MODE VCPUS MEMORY
attack_cfg() {
	cat >"/etc/xen/$1.cfg" <<EOF
# Written by testing/init-attack.sh
name = "$1"
kernel = "$ATTACK"
memory = $4
vcpus = $3
extra = "attack=$2 victim=${victim_id:-0}"
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "destroy"
EOF
}

diag_more() {
	echo "# ---- xl dmesg (tail):"
	timeout 30 xl dmesg 2>&1 | tail -n 20 | sed 's/^/#   /'
}

# ---------------------------------------------------------------------------- 0. toolstack
# Starts our toolstack: its output (one line) on stdout, or why it does not serve.
start_toolstack() {
	timeout 60 /etc/init.d/xencommons start >/tmp/xencommons.out 2>&1 </dev/null &&
		timeout 10 xenstore-read /local/domain/0/name >/dev/null 2>&1 && pidof xenconsoled >/dev/null ||
		{ echo "xencommons: $(oneline </tmp/xencommons.out)"; return 1; }
	oneline </tmp/xencommons.out
}
step_toolstack xencommons
free0=$(free_pages)
echo "# free pages before the domUs: ${free0:-?} (xl info free_memory $(free_mem) MiB)"

# ---------------------------------------------------------------------------- 1. the victim
if ! blocked create_victim xencommons; then
	if create victim; then
		victim_id=$(domid victim)
		ok "create_victim domid=$victim_id"
	else
		bad create_victim "xl create /etc/xen/victim.cfg: $(oneline </tmp/create-victim.out)" victim
	fi
fi
if ! blocked victim_alive create_victim; then
	if wait_until 240 has victim VICTIM-ALIVE; then
		ok "victim_alive $(grep -m1 VICTIM-READY "$(clog victim)" | tr -d '\r')"
	else
		bad victim_alive "no VICTIM-ALIVE in $(clog victim) within 240 s" victim
	fi
fi
beat0=$(beat)

# ---------------------------------------------------------------------------- 2. main attack run
# Done (or dead); every 10th poll also times `xl list` (dom0 must keep answering).
polls=0
attack_done() {
	polls=$((polls + 1))
	[ $((polls % 10)) -eq 0 ] && xl_list
	has attack ATTACK-DONE || has attack ATTACK-UNEXPECTED || has attack ATTACK-PANIC
}
if ! blocked attack_run xencommons; then
	attack_cfg attack main 2 64
	now
	t0=$now
	if ! create attack; then
		bad attack_run "xl create: $(oneline </tmp/create-attack.out)" attack
	elif wait_until 300 attack_done && has attack ATTACK-DONE; then
		now
		forward attack
		ok "attack_run $(grep -m1 ATTACK-DONE "$(clog attack)" | tr -d '\r') in $(sub "$t0" "$now") s, worst xl list $maxlat s"
	else
		forward attack
		bad attack_run "no ATTACK-DONE within 300 s ($(count attack '^ATTACK [0-9]') case lines)" attack
	fi
fi
if ! blocked attack_gone attack_run; then
	if wait_until 60 gone attack; then
		ok attack_gone
	else
		bad attack_gone "the attack guest (vCPU 1 spinning masked, vCPU 0 powered off) still there 60 s after ATTACK-DONE" attack
	fi
fi
destroy attack
echo "# free pages after the main attack run: $(free_pages)"

# ---------------------------------------------------------------------------- 3. kill modes
for k in $KILLS; do
	s="kill_$(echo "$k" | tr - _)"
	blocked "$s" xencommons && continue
	n="kill-$k"
	attack_cfg "$n" "kill-$k" 2 64
	if ! create "$n"; then
		bad "$s" "xl create: $(oneline <"/tmp/create-$n.out")" "$n"
		continue
	fi
	if ! wait_until 120 has "$n" EXPECT-DEATH; then
		forward "$n"
		bad "$s" "no EXPECT-DEATH line within 120 s" "$n"
		destroy "$n"
		continue
	fi
	forward "$n"
	if [ "$k" = crash ]; then
		# The guest reports a crash: on_crash="destroy" removes it.
		if wait_until 60 gone "$n"; then
			ok "$s crashed and gone"
		else
			bad "$s" "still there 60 s after SHUTDOWN_crash" "$n"
			destroy "$n"
		fi
		continue
	fi
	# Spinning or looping for good: dom0 keeps answering and the victim keeps beating for
	# 3 s while the domain stays listed; then xl destroy must remove it.
	b1=$(beat)
	now
	tk=$now
	stayed=1
	while :; do
		now
		[ "$(sub "$tk" "$now" | cut -d. -f1)" -ge 3 ] && break
		listed "$n" || { stayed=; break; }
		usleep 200000
	done
	b2=$(beat)
	now
	t1=$now
	if [ -z "$stayed" ]; then
		bad "$s" "the domain left by itself (or xl list failed) while it should spin" "$n"
		destroy "$n"
	elif ! timeout 30 xl destroy "$n" >"/tmp/destroy-$n.out" 2>&1; then
		bad "$s" "xl destroy: $(oneline <"/tmp/destroy-$n.out")" "$n"
		destroy "$n"
	elif wait_until 60 gone "$n"; then
		now
		ok "$s spun 3 s (victim beat ${b1:-?} -> ${b2:-?}), destroyed in $(sub "$t1" "$now") s"
	else
		bad "$s" "still there 60 s after xl destroy" "$n"
	fi
done

echo "# free pages after the kill modes: $(free_pages)"

# ---------------------------------------------------------------------------- 4. aftermath
if ! blocked dom0_responsive xencommons; then
	if xl_list; then
		ok "dom0_responsive xl list ${lat} s, worst during the attacks ${maxlat} s"
	else
		bad dom0_responsive "xl list failed: $(oneline </tmp/list.out)"
	fi
fi
beating() {
	b=$(beat)
	[ -n "$b" ] && [ "$b" -gt "${beat_ref:-0}" ]
}
if ! blocked victim_intact victim_alive; then
	beat_ref=$(beat)
	corrupt=$(count victim VICTIM-CORRUPT)
	if [ "$corrupt" != 0 ]; then
		bad victim_intact "$corrupt VICTIM-CORRUPT line(s): $(grep -m3 VICTIM-CORRUPT "$(clog victim)" | oneline)" victim
	elif ! wait_until 30 beating; then
		bad victim_intact "no new VICTIM-ALIVE within 30 s (last ${beat_ref:-none})" victim
	elif ! listed victim; then
		bad victim_intact "victim no longer in xl list" victim
	else
		ok "victim_intact heartbeat ${beat0:-?} -> $(beat), no VICTIM-CORRUPT, domid $(domid victim)"
	fi
fi
if ! blocked destroy_victim create_victim; then
	if destroy victim; then
		ok destroy_victim
	else
		bad destroy_victim "still there after 90 s of xl destroy" victim
	fi
fi
# free pages back to REF (within $slack below it, if given)
pages_back() {
	f=$(free_pages)
	[ -n "$f" ] && [ "$f" -le "$1" ] && [ "$f" -ge $(($1 - ${2:-0})) ]
}
if ! blocked memory xencommons; then
	if [ -z "$free0" ]; then
		bad memory "no free page count at the start (xen-dom0-test --free-pages)"
	elif wait_until 60 pages_back "$free0" "$slack"; then
		ok "memory free_pages=$f (at the start $free0)"
	else
		bad memory "free pages $f 60 s after the domains went, $free0 before them ($((free0 - f)) missing, slack $slack)"
	fi
fi

# ---------------------------------------------------------------------------- 5. churn
if ! blocked churn xencommons; then
	fc0=$(free_pages)
	now
	tc=$now
	why=
	i=0
	while [ "$i" -lt "$churn" ]; do
		i=$((i + 1))
		n="churn-$i"
		if [ $((i % 2)) -eq 0 ]; then mode=churn-off; else mode=churn; fi
		attack_cfg "$n" "$mode" 1 16
		if ! create "$n"; then
			why="cycle $i: xl create: $(oneline <"/tmp/create-$n.out")"
			break
		fi
		if ! wait_until 60 has "$n" ATTACK-CHURN-UP; then
			why="cycle $i: no ATTACK-CHURN-UP within 60 s"
			break
		fi
		if [ "$mode" = churn ]; then
			timeout 30 xl destroy "$n" >"/tmp/destroy-$n.out" 2>&1 || { why="cycle $i: xl destroy: $(oneline <"/tmp/destroy-$n.out")"; break; }
		fi
		if ! wait_until 60 gone "$n"; then
			why="cycle $i ($mode): still there after 60 s"
			break
		fi
		rm -f "$(clog "$n")" "/etc/xen/$n.cfg" "/tmp/create-$n.out" "/tmp/destroy-$n.out" "/var/log/xen/xl-$n.log"
	done
	now
	if [ -n "$why" ]; then
		bad churn "$why" "$n"
		destroy "$n"
	else
		ok "churn $churn cycles in $(sub "$tc" "$now") s"
	fi
fi
if ! blocked memory_final xencommons; then
	if [ -z "$free0" ]; then
		bad memory_final "no free page count at the start"
	elif [ -z "$fc0" ]; then
		bad memory_final "no free page count before the churn"
	elif wait_until 60 pages_back "$fc0" && pages_back "$free0" "$slack"; then
		ok "memory_final free_pages=$f (before the churn $fc0, at the start $free0)"
	else
		bad memory_final "free pages $f after $churn create/destroy cycles, $fc0 before them, $free0 at the start"
	fi
fi

steps_done
poweroff -f
