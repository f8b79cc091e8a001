#!/bin/sh
# /init of the `xenstored_dom0` test (packed by xtask/src/toolstack.rs): loads Linux's Xen
# device drivers, mounts xenfs, starts dom0/xenstored in place of Xen's C xenstored, and checks
# it with the `xenstore` client, both through the daemon's unix socket and through the
# kernel's /dev/xen/xenbus (`xenstore -D`), which reaches the daemon over dom0's xenstore ring
# and event channel. Then powers off.
# Markers: FV-INIT as in init-test.sh; `XS-OK <check>` / `XS-FAIL <check>: <why>` per check,
# then `XS-DONE pass=N fail=M`, parsed by xtask/src/tests.rs (the check names are listed in
# xtask/src/toolstack.rs). Every failure is reported, never waited on.
/bin/busybox mount -t proc proc /proc
read -r t _ </proc/uptime
echo "FV-INIT uptime=$t"
/bin/busybox --install -s /bin
export PATH=/bin
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /run /var/log/xen /tmp
LOG=/var/log/xen/xenstored.log

pass=0
fail=0
ok() { echo "XS-OK $1"; pass=$((pass + 1)); }
bad() { echo "XS-FAIL $1: $2"; fail=$((fail + 1)); }
oneline() { tr '\n' '|' | sed 's/|$//'; }
finish() {
	if [ "$fail" -ne 0 ]; then
		echo "# xenstored log:"
		sed 's/^/# /' "$LOG" 2>/dev/null | tail -n 30
		echo "# dmesg (tail):"
		dmesg | tail -n 20 | sed 's/^/# /'
	fi
	echo "XS-DONE pass=$pass fail=$fail"
	poweroff -f
}

# expect NAME WANT CMD...: CMD must print exactly WANT (newlines as |). No command waits
# unbounded: the client gives up on a reply after 30 s, watches have -T.
expect() {
	name=$1
	want=$2
	shift 2
	got=$("$@" 2>&1 | oneline)
	if [ "$got" = "$want" ]; then
		ok "$name"
	else
		bad "$name" "\`$*\` printed '$got', expected '$want'"
	fi
}

# Without Xen (or a hypervisor Linux takes for it) nothing below can work: say so and stop.
if [ ! -r /sys/hypervisor/type ]; then
	bad xen "/sys/hypervisor/type missing: dom0's kernel did not detect Xen"
	finish
fi
for m in $(cat /etc/modules.order); do
	insmod "/lib/modules/$m.ko" || bad "insmod_$m" "insmod /lib/modules/$m.ko failed"
done
mount -t xenfs xenfs /proc/xen || bad mount_xenfs "mount -t xenfs xenfs /proc/xen failed"
for t in read write ls list rm mkdir chmod exists watch; do
	ln -s xenstore "/bin/xenstore-$t"
done

# start: forks, returns once the socket listens and dom0's ring is served.
if out=$(xenstored --pid-file /run/xenstored.pid 2>&1); then
	pid=$(cat /run/xenstored.pid 2>/dev/null)
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ -S /run/xenstored/socket ]; then
		ok start
	else
		bad start "daemon not running (pid '$pid') or no /run/xenstored/socket"
		finish
	fi
else
	bad start "xenstored failed: $(echo "$out" | oneline)"
	finish
fi

expect dom0_nodes "Domain-0|0" xenstore -s read /local/domain/0/name /local/domain/0/domid
# The kernel's device: request and reply travel over dom0's ring and event channel.
expect kernel_ring "Domain-0" xenstore -D read /local/domain/0/name

# Linux's xenbus probes once xenstored signals it; its drivers then write their own nodes,
# e.g. drivers/xen/manage.c's control/feature-poweroff.
i=0
until xenstore -s exists /local/domain/0/control/feature-poweroff || [ "$i" -ge 60 ]; do
	sleep 0.5
	i=$((i + 1))
done
if xenstore -s exists /local/domain/0/control/feature-poweroff; then
	ok kernel_xenbus_up
else
	bad kernel_xenbus_up "no /local/domain/0/control/feature-poweroff after 30 s: $(xenstore -s ls /local/domain/0 2>&1 | oneline)"
fi

expect write_read "hello world|a\\tb" sh -c 'xenstore write /test/a "hello world" /test/b "a\\tb" && xenstore read /test/a /test/b'
expect write_read_kernel "via ring|hello world" sh -c 'xenstore -D write /test/k "via ring" && xenstore -s read /test/k && xenstore -D read /test/a'
expect argv0 "/test/a: hello world|a|b|k" sh -c 'xenstore-read -p /test/a && xenstore-list /test'
expect ls '/test/a = "hello world"|/test/b = "a\tb"|/test/k = "via ring"|k = "via ring"' \
	sh -c 'xenstore-ls -f /test && xenstore ls /test | grep "^k "'
expect rm "gone|a|/test/t" sh -c 'xenstore rm /test/b && { xenstore exists /test/b || echo gone; } &&
	xenstore write /test/t/u/v 1 && xenstore rm -t /test/t/u/v && xenstore list /test | grep -v "^k$";
	xenstore-exists /test/t || echo /test/t'
expect perms "n5 r7|n5 r7" sh -c 'xenstore mkdir /test/p && xenstore chmod /test/p n5 r7 && xenstore getperms /test/p && xenstore -D getperms /test/p'
expect perms_inherit 'n5 r7|p = ""  (n5,r7)| c = "1"  (n5,r7)' sh -c 'xenstore write /test/p/c 1 && xenstore getperms /test/p/c &&
	xenstore ls -p /test | grep -A1 "^p "'
expect perms_bad "refused|n5 r7" sh -c '{ xenstore chmod /test/p x1 2>/dev/null || echo refused; } && xenstore getperms /test/p'

# watch: the first event is the watch's own, the second the write.
watch_test() {
	rm -f /tmp/w
	xenstore "$1" watch -n 2 -T 30 /test/w >/tmp/w 2>&1 &
	wpid=$!
	i=0
	until [ -s /tmp/w ] || [ "$i" -ge 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	xenstore -s write /test/w/x 1
	wait "$wpid"
	echo "rc=$?"
	cat /tmp/w
}
expect watch "rc=0|/test/w|/test/w/x" watch_test -s
expect watch_kernel "rc=0|/test/w|/test/w/x" watch_test -D

# Transactions: isolation, commit, and a conflicting write (@2: a second connection).
txn='start
write /test/x/new 1
@2 exists /test/x/new
read /test/a
@2 write /test/a changed
write /test/a mine
commit
@2 read /test/a
@2 exists /test/x/new
start
write /test/x/ok 2
commit
read /test/x/ok'
expect transaction "OK|OK|no|hello world|OK|OK|ERR EAGAIN|changed|no|OK|OK|OK|2" sh -c "echo '$txn' | xenstore -s batch"
xenstore -s write /test/a "hello world"
expect transaction_kernel "OK|OK|no|hello world|OK|OK|ERR EAGAIN|changed|no|OK|OK|OK|2" sh -c "xenstore rm /test/x; echo '$txn' | xenstore -D batch"

# XS_INTRODUCE of a domain that does not exist: the daemon can map no ring for it and must
# say so (an error reply), then carry on.
got=$(printf 'introduce 7 4660 3\n' | timeout 60 xenstore -s batch 2>&1 | oneline)
case "$got" in
"ERR "*) ok introduce_bad_domain ;;
*) bad introduce_bad_domain "introduce of a missing domain 7 answered '$got', expected ERR ..." ;;
esac
grep 'introduce domain 7' "$LOG" | sed 's/^/# /'

if kill -0 "$pid" 2>/dev/null; then
	expect still_serving "Domain-0|Domain-0" sh -c 'xenstore -s read /local/domain/0/name && xenstore -D read /local/domain/0/name'
else
	bad still_serving "xenstored (pid $pid) died"
fi
finish
