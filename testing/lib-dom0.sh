# Shell helpers shared by the dom0 /init scripts that create domUs and report steps:
# testing/init-domu.sh, init-attack.sh and init-io.sh. xtask installs this file in their
# initramfs as /etc/ferrovisor/lib.sh (xtask/src/steps.rs) and each script sources it first.
# Sourcing only defines functions and sets defaults; nothing runs.
#
# What a script sets or defines for the step helpers:
#   MARK          its marker prefix (DOMU-TEST-, ATTACK-TEST-, IO-TEST-): ${MARK}OK <step>
#                 [details], ${MARK}FAIL <step> <why> (xtask/src/steps.rs parses them)
#   DIAG_LINES    lines of each log `bad` shows (default 12)
#   diag_more     more diagnostics `bad` prints after `xl list` (default: none)
#   start_toolstack  for step_toolstack: starts the toolstack, prints one line (the reason
#                 when it fails, with status 1)
# A script may redefine a helper after sourcing (init-attack.sh times `xl list` in unlisted).

# ---------------------------------------------------------------------------- boot
# dom0_boot: /proc, FV-INIT uptime=S (first), busybox's applets, the mounts and links that
# xencommons, xl and xenconsoled expect (what udev would provide: Debian's xl scripts stat
# /dev/stdin).
dom0_boot() {
	/bin/busybox mount -t proc proc /proc
	read -r t _ </proc/uptime
	echo "FV-INIT uptime=$t"
	/bin/busybox --install -s /bin
	export PATH=/usr/sbin:/usr/bin:/sbin:/bin
	mount -t sysfs sys /sys
	mount -t devtmpfs dev /dev
	mkdir -p /dev/pts /run /var/log/xen/console /var/lib/xen /var/lib/xenstored
	mount -t devpts devpts /dev/pts
	mount -t tmpfs tmpfs /run && mkdir -p /run/lock /run/xen /run/xenstored
	ln -sfn /run /var/run
	ln -sfn /run/lock /var/lock
	ln -sf /proc/self/fd /dev/fd
	ln -sf /proc/self/fd/0 /dev/stdin
	ln -sf /proc/self/fd/1 /dev/stdout
	ln -sf /proc/self/fd/2 /dev/stderr
}
# load_modules: sets is_xen (1 under a Xen hypervisor), loads /etc/modules.order's modules
# (a failure is reported under Xen) and mounts xenfs.
load_modules() {
	is_xen=
	[ -r /sys/hypervisor/type ] && is_xen=1
	for m in $(cat /etc/modules.order 2>/dev/null); do
		insmod "/lib/modules/$m.ko" 2>/dev/null || { [ -z "$is_xen" ] || echo "# insmod $m failed"; }
	done
	[ -n "$is_xen" ] && { mount -t xenfs xenfs /proc/xen || echo "# mount -t xenfs xenfs /proc/xen failed"; }
}

# ---------------------------------------------------------------------------- time and polls
oneline() { tr -d '\r' | tr '\n' '|' | sed 's/|$//' | cut -c1-400; }
now() { read -r now _ </proc/uptime; }
# sub A B: B - A, two decimals
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# wait_until SECS CMD...: runs CMD every $POLL_US us until it succeeds (0) or SECS seconds of
# dom0 uptime have passed (1).
POLL_US=100000
wait_until() {
	wlim=$1
	shift
	read -r w _ </proc/uptime
	wend=$((${w%.*} + wlim))
	until "$@"; do
		read -r w _ </proc/uptime
		[ "${w%.*}" -ge "$wend" ] && return 1
		usleep "$POLL_US"
	done
}

# ---------------------------------------------------------------------------- domains
# NAME's console log, as xenconsoled writes it
clog() { echo "/var/log/xen/console/guest-$1.log"; }
# has NAME PATTERN: the console log of NAME has a line matching PATTERN
has() { grep -q "$2" "$(clog "$1")" 2>/dev/null; }
# count NAME PATTERN: how many lines of NAME's console log match PATTERN
count() {
	n=$(grep -c "$2" "$(clog "$1")" 2>/dev/null)
	echo "${n:-0}"
}
# tails N INDENT FILE...: for each FILE there, "# FILE:" and its last N lines after "#INDENT"
tails() {
	tn=$1
	ti=$2
	shift 2
	for f in "$@"; do
		[ -f "$f" ] && { echo "# $f:"; tail -n "$tn" "$f" | tr -d '\r' | sed "s/^/#$ti/"; }
	done
}
# `xl list` answers and NAME is not in it
unlisted() { l=$(timeout 30 xl list 2>/dev/null) && ! echo "$l" | grep -q "^$1 "; }
# No process (e.g. xl's per-domain monitor, which restarts on reboot) still runs for NAME's
# cfg. The pattern has a [.] so that grep does not find itself.
no_monitor() { ! grep -qs "$1[.]cfg" /proc/[0-9]*/cmdline; }
gone() { unlisted "$1" && no_monitor "$1"; }
free_mem() { timeout 30 xl info 2>/dev/null | sed -n 's/^free_memory *: *//p'; }
# mem_back: xl info's free_memory (then in f) is $free0 again
mem_back() {
	f=$(free_mem)
	[ -n "$f" ] && [ "$f" = "$free0" ]
}
domid() { timeout 30 xl domid "$1" 2>/dev/null; }
# create NAME: `xl create /etc/xen/NAME.cfg`; output in /tmp/create-NAME.out (a file, not a
# pipe: xl's background monitor keeps what it inherits open). Sets created_NAME (uptime).
create() {
	now
	eval "created_$1=$now"
	timeout 120 xl create "/etc/xen/$1.cfg" >"/tmp/create-$1.out" 2>&1
}
# destroy NAME: until NAME is gone, `xl destroy` it (a restart may be in flight)
destroy_once() { timeout 30 xl destroy "$1" >"/tmp/destroy-$1.out" 2>&1; gone "$1"; }
destroy() { gone "$1" || wait_until 90 destroy_once "$1"; }

# ---------------------------------------------------------------------------- steps
pass=0
fail=0
failed=" "
DIAG_LINES=12
diag_more() { :; }
ok() {
	echo "${MARK}OK $*"
	pass=$((pass + 1))
}
# bad STEP WHY [DOMAIN...]: diagnostics ("# " lines: each domain's logs, xl list, diag_more),
# then the FAIL marker
bad() {
	s=$1
	why=$2
	shift 2
	for d in "$@"; do
		echo "# ---- $d: xl create output, xl's log, console log (tail)"
		tails "$DIAG_LINES" "   " "/tmp/create-$d.out" "/tmp/destroy-$d.out" /tmp/cmd.out "/var/log/xen/xl-$d.log" "$(clog "$d")"
	done
	echo "# ---- xl list:"
	timeout 30 xl list 2>&1 | sed 's/^/#   /'
	diag_more
	echo "${MARK}FAIL $s $why"
	fail=$((fail + 1))
	failed="$failed$s "
}
# blocked STEP PREREQ...: fails STEP as skipped when a prerequisite step failed
blocked() {
	s=$1
	shift
	for p in "$@"; do
		case "$failed" in
		*" $p "*)
			echo "${MARK}FAIL $s skipped: $p failed"
			fail=$((fail + 1))
			failed="$failed$s "
			return 0
			;;
		esac
	done
	return 1
}
# step_toolstack STEP: the first step; without Xen it fails (and so blocks every step that
# needs it), else start_toolstack's line goes with the OK or FAIL marker.
step_toolstack() {
	if [ -z "$is_xen" ]; then
		echo "# /sys/hypervisor/type missing: dom0's kernel did not detect Xen"
		echo "${MARK}FAIL $1 no Xen"
		failed=" $1 "
		fail=1
	elif msg=$(start_toolstack); then
		ok "$1${msg:+ $msg}"
	else
		bad "$1" "$msg"
	fi
}
# step_create STEP NAME [PREREQ...]: `create NAME`; sets id_NAME (its domid)
step_create() {
	s=$1
	d=$2
	shift 2
	blocked "$s" "$@" && return
	if create "$d"; then
		i=$(domid "$d")
		eval "id_$d=\$i"
		ok "$s domid=$i"
	else
		bad "$s" "xl create /etc/xen/$d.cfg: rc=$?: $(oneline <"/tmp/create-$d.out")" "$d"
	fi
}
# steps_done: the DONE marker, after every step
steps_done() { echo "${MARK}DONE pass=$pass fail=$fail"; }
