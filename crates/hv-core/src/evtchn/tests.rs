//! Host tests: every EVTCHNOP's success and error paths, both delivery ABIs
//! as a Linux guest would observe them in memory, and hostile guests.

use super::fifo::{CONTROL_BLOCK_SIZE, MAX_ARRAY_PAGES, WORDS_PER_PAGE};
use super::two_level::{MASK_OFF, PENDING_OFF};
use super::*;
use crate::guest::fake::FakeRam;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::Cell;
use xen_abi::event_channel::*;
use xen_abi::xen::DOMID_SELF;

const BASE: u64 = 0x4000_0000;
const RAM: usize = 0x20_0000; // 512 pages
const SI: u64 = BASE; // shared_info
const VI1: u64 = BASE + 0x1000 + 64; // vcpu_info of vCPU1
const CB0: u64 = BASE + 0x2000; // FIFO control block pages, one per vCPU
const CB1: u64 = BASE + 0x3000;
const ARRAY: u64 = BASE + 0x10_0000; // event array pages from here
const GFN_CB0: u64 = CB0 / 4096;
const GFN_CB1: u64 = CB1 / 4096;

fn gfn_array(i: u64) -> u64 {
    ARRAY / 4096 + i
}

fn ram() -> FakeRam {
    FakeRam::new(BASE, RAM)
}

fn dom(id: DomId, vcpus: u32) -> EvtchnDomain {
    EvtchnDomain::new(id, vcpus, 1023).unwrap()
}

/// A domain with shared_info placed.
fn dom_si(id: DomId, vcpus: u32, mem: &FakeRam) -> EvtchnDomain {
    let mut d = dom(id, vcpus);
    assert_eq!(d.set_shared_info(mem, SI), Ok(Notify::NONE));
    d
}

fn e(x: Errno) -> Error {
    Error::Errno(x)
}

fn one(v: u32) -> Notify {
    Notify::local(VcpuSet::single(v))
}

fn peer_one(v: u32) -> Notify {
    Notify {
        local: VcpuSet::EMPTY,
        peer: VcpuSet::single(v),
    }
}

// --- What a Linux guest sees (2-level).

fn bit_2l(mem: &FakeRam, off: u64, port: Port) -> bool {
    mem.read_u64(SI + off + u64::from(port / 64) * 8).unwrap() >> (port % 64) & 1 != 0
}

fn pending(mem: &FakeRam, port: Port) -> bool {
    bit_2l(mem, PENDING_OFF, port)
}

fn set_mask(mem: &FakeRam, port: Port, masked: bool) {
    let a = SI + MASK_OFF + u64::from(port / 64) * 8;
    let b = 1u64 << (port % 64);
    if masked {
        mem.fetch_or_u64(a, b).unwrap();
    } else {
        mem.fetch_and_u64(a, !b).unwrap();
    }
}

fn clear_pending(mem: &FakeRam, port: Port) {
    let a = SI + PENDING_OFF + u64::from(port / 64) * 8;
    mem.fetch_and_u64(a, !(1u64 << (port % 64))).unwrap();
}

fn upcall(mem: &FakeRam, vi: u64) -> u8 {
    let mut b = [0u8];
    mem.read(vi, &mut b).unwrap();
    b[0]
}

fn sel(mem: &FakeRam, vi: u64) -> u64 {
    mem.read_u64(vi + 8).unwrap()
}

/// Linux's upcall prologue: clear upcall_pending, xchg the selector.
fn ack_upcall(mem: &FakeRam, vi: u64) {
    mem.write(vi, &[0]).unwrap();
    mem.write_u64(vi + 8, 0).unwrap();
}

// --- What a Linux guest sees (FIFO).

fn word_ipa(port: Port) -> u64 {
    ARRAY + u64::from(port / WORDS_PER_PAGE) * 4096 + u64::from(port % WORDS_PER_PAGE) * 4
}

fn word(mem: &FakeRam, port: Port) -> u32 {
    mem.read_u32(word_ipa(port)).unwrap()
}

fn set_word(mem: &FakeRam, port: Port, w: u32) {
    mem.write_u32(word_ipa(port), w).unwrap()
}

const P: u32 = 1 << EVTCHN_FIFO_PENDING;
const M: u32 = 1 << EVTCHN_FIFO_MASKED;
const L: u32 = 1 << EVTCHN_FIFO_LINKED;
const B: u32 = 1 << EVTCHN_FIFO_BUSY;

fn ready(mem: &FakeRam, cb: u64) -> u32 {
    mem.read_u32(cb).unwrap()
}

fn head(mem: &FakeRam, cb: u64, q: u32) -> u32 {
    mem.read_u32(cb + 8 + 4 * u64::from(q)).unwrap()
}

/// Linux's FIFO consumer (bounded): take `ready`, drain queues from the
/// highest priority, unlinking each word; returns the delivered ports.
fn fifo_consume(mem: &FakeRam, cb: u64) -> Vec<Port> {
    let mut out = Vec::new();
    let rdy = mem.read_u32(cb).unwrap();
    mem.write_u32(cb, 0).unwrap();
    for q in 0..16 {
        if rdy & (1 << q) == 0 {
            continue;
        }
        let mut port = head(mem, cb, q);
        for _ in 0..1000 {
            if port == 0 {
                break;
            }
            let w = word(mem, port);
            set_word(mem, port, w & !(L | EVTCHN_FIFO_LINK_MASK));
            if w & P != 0 && w & M == 0 {
                set_word(mem, port, word(mem, port) & !P);
                out.push(port);
            }
            port = w & EVTCHN_FIFO_LINK_MASK;
        }
    }
    out
}

/// Domain in FIFO mode with `pages` array pages filled like Linux
/// (every word MASKED) and control blocks for vCPU0 (and 1).
fn fifo_dom(mem: &FakeRam, vcpus: u32, pages: u64) -> EvtchnDomain {
    let mut d = EvtchnDomain::new(1, vcpus, u32::MAX).unwrap();
    assert_eq!(d.set_shared_info(mem, SI), Ok(Notify::NONE));
    assert_eq!(d.init_control(mem, GFN_CB0, 0, 0), Ok(17));
    if vcpus > 1 {
        assert_eq!(d.init_control(mem, GFN_CB1, 0, 1), Ok(17));
    }
    for i in 0..pages {
        for w in 0..1024u64 {
            mem.write_u32(ARRAY + i * 4096 + w * 4, M).unwrap();
        }
        assert_eq!(d.expand_array(mem, gfn_array(i)), Ok(Notify::NONE));
    }
    d
}

/// Cross-domain invariants: interdomain ports point at each other, VIRQ
/// tables point at VIRQ ports of the right vCPU.
fn check(doms: &[&EvtchnDomain]) {
    for d in doms {
        assert_eq!(d.chans[0].state, State::Reserved);
        for (p, c) in d.chans.iter().enumerate() {
            assert!(c.notify_vcpu < d.nr_vcpus());
            if let State::Interdomain { dom, port } = c.state {
                let other = doms.iter().find(|x| x.domid == dom).expect("peer exists");
                assert_eq!(
                    other.chans[port as usize].state,
                    State::Interdomain {
                        dom: d.domid,
                        port: p as Port
                    },
                    "dom{} port {p}",
                    d.domid
                );
            }
            if let State::Virq(v) = c.state {
                let owner = if virq_is_global(v) { 0 } else { c.notify_vcpu };
                assert_eq!(d.vcpus[owner as usize].virq[v as usize], p as Port);
            }
        }
        for v in &d.vcpus {
            for (virq, &p) in v.virq.iter().enumerate() {
                if p != 0 {
                    assert_eq!(d.chans[p as usize].state, State::Virq(virq as u32));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------

#[test]
fn new_rejects_bad_vcpu_counts() {
    assert_eq!(EvtchnDomain::new(0, 0, 10).unwrap_err(), Errno::EINVAL);
    assert_eq!(
        EvtchnDomain::new(0, MAX_VCPUS + 1, 10).unwrap_err(),
        Errno::EINVAL
    );
    let d = EvtchnDomain::new(0, MAX_VCPUS, u32::MAX).unwrap();
    assert_eq!(d.abi(), Abi::TwoLevel);
    assert_eq!(d.nr_vcpus(), MAX_VCPUS);
}

#[test]
fn vcpuset() {
    let s = VcpuSet::single(3)
        .union(VcpuSet::single(127))
        .union(VcpuSet::single(500));
    assert_eq!(s.iter().collect::<Vec<_>>(), vec![3, 127]);
    assert!(s.contains(3) && !s.contains(4) && !s.contains(1000));
    assert!(VcpuSet::EMPTY.is_empty());
}

#[test]
fn alloc_unbound_ports_permissions_and_limits() {
    let mem = ram();
    let mut d = EvtchnDomain::new(5, 1, 3).unwrap();
    assert_eq!(d.alloc_unbound(&mem, 5, false, DOMID_SELF), Ok(1));
    assert_eq!(d.alloc_unbound(&mem, 5, false, 0), Ok(2));
    // Another unprivileged domain may not allocate here.
    assert_eq!(d.alloc_unbound(&mem, 7, false, 7), Err(Errno::EPERM));
    // dom0 (privileged) may; remote SELF means the caller.
    assert_eq!(d.alloc_unbound(&mem, 0, true, DOMID_SELF), Ok(3));
    // max_port = 3: full (Xen checks space before permission).
    assert_eq!(d.alloc_unbound(&mem, 5, false, 0), Err(Errno::ENOSPC));
    assert_eq!(d.alloc_unbound(&mem, 7, false, 0), Err(Errno::ENOSPC));
    let st = d.status(1, 5, false).unwrap();
    assert_eq!(
        (st.status, st.vcpu, st.u.unbound_dom()),
        (EVTCHNSTAT_unbound, 0, 5)
    );
    assert_eq!(d.status(2, 5, false).unwrap().u.unbound_dom(), 0);
    assert_eq!(d.status(3, 5, false).unwrap().u.unbound_dom(), 0);
    // Closing frees the lowest port for reuse.
    assert_eq!(d.close(&mem, 2, Peer::None), Ok(()));
    assert_eq!(d.status(2, 5, false).unwrap().status, EVTCHNSTAT_closed);
    assert_eq!(d.alloc_unbound(&mem, 5, false, 9), Err(Errno::EPERM));
    assert_eq!(d.alloc_unbound(&mem, 5, false, DOMID_SELF), Ok(2));
}

#[test]
fn alloc_unbound_silo_policy() {
    let mem = ram();
    let mut d = EvtchnDomain::new(5, 1, 16).unwrap();
    // A domU: with itself and dom0 only; a missing remote is -ESRCH first.
    assert_eq!(d.alloc_unbound_checked(&mem, 5, false, 6, true), Err(Errno::EPERM));
    assert_eq!(d.alloc_unbound_checked(&mem, 5, false, 6, false), Err(Errno::ESRCH));
    assert_eq!(d.alloc_unbound_checked(&mem, 5, false, 0, true), Ok(1));
    // Another domU allocating here for itself: SILO refuses (-EPERM).
    assert_eq!(d.alloc_unbound_checked(&mem, 6, false, DOMID_SELF, true), Err(Errno::EPERM));
    // dom0 may connect two domUs.
    assert_eq!(d.alloc_unbound_checked(&mem, 0, true, 6, true), Ok(2));
    // ...but the domU the port is for may not bind it (see bind_interdomain_errors).
    // A full table answers -ENOSPC before anything else.
    let mut full = EvtchnDomain::new(5, 1, 0).unwrap();
    assert_eq!(full.alloc_unbound_checked(&mem, 5, false, 6, false), Err(Errno::ENOSPC));
}

#[test]
fn two_level_port_limit() {
    let mem = ram();
    let mut d = EvtchnDomain::new(0, 1, u32::MAX).unwrap();
    for p in 1..4096 {
        assert_eq!(d.bind_ipi(&mem, 0), Ok(p));
    }
    assert_eq!(d.bind_ipi(&mem, 0), Err(Errno::ENOSPC));
    assert_eq!(d.alloc_unbound(&mem, 0, true, 0), Err(Errno::ENOSPC));
    assert_eq!(d.send(&mem, 4096, Peer::None), Err(e(Errno::EINVAL)));
    assert_eq!(d.status(4096, 0, true), Err(Errno::EINVAL));
}

#[test]
fn status_errors_and_reserved_port() {
    let mem = ram();
    let mut d = dom(3, 2);
    let st = d.status(0, 3, false).unwrap();
    assert_eq!(st.status, EVTCHNSTAT_closed);
    // Free port inside the first bucket: closed; beyond the table: invalid.
    assert_eq!(d.status(63, 3, false).unwrap().status, EVTCHNSTAT_closed);
    assert_eq!(d.status(64, 3, false), Err(Errno::EINVAL));
    assert_eq!(d.status(u32::MAX, 3, false), Err(Errno::EINVAL));
    assert_eq!(d.status(1, 4, false), Err(Errno::EPERM));
    assert!(d.status(1, 0, true).is_ok());
    let p = d.bind_ipi(&mem, 1).unwrap();
    let st = d.status(p, 3, false).unwrap();
    assert_eq!((st.status, st.vcpu), (EVTCHNSTAT_ipi, 1));
    let mut abi = EvtchnStatus {
        dom: DOMID_SELF,
        port: p,
        ..Default::default()
    };
    st.write_to(&mut abi);
    assert_eq!((abi.status, abi.vcpu, abi.port), (EVTCHNSTAT_ipi, 1, p));
    // Port 0 can be neither closed nor sent on.
    assert_eq!(d.close(&mem, 0, Peer::None), Err(e(Errno::EINVAL)));
    assert_eq!(d.send(&mem, 0, Peer::None), Err(e(Errno::EINVAL)));
    assert_eq!(d.unmask(&mem, 0), Ok(Notify::NONE));
    assert_eq!(d.bind_vcpu(0, 0), Err(Errno::EINVAL));
}

#[test]
fn loopback_interdomain() {
    let mem = ram();
    let mut d = dom_si(0, 1, &mem);
    let a = d.alloc_unbound(&mem, 0, true, DOMID_SELF).unwrap();
    // Sending on an unbound port is silently dropped.
    assert_eq!(d.send(&mem, a, Peer::None), Ok(Notify::NONE));
    assert!(!pending(&mem, a));
    let (b, n) = d.bind_interdomain(&mem, DOMID_SELF, a, Peer::None).unwrap();
    assert_eq!((a, b), (1, 2));
    // The new local port is always set pending.
    assert_eq!(n, one(0));
    assert!(pending(&mem, b) && !pending(&mem, a));
    let st = d.status(a, 0, false).unwrap();
    assert_eq!(st.status, EVTCHNSTAT_interdomain);
    assert_eq!((st.u.interdomain().dom, st.u.interdomain().port), (0, b));
    assert_eq!(d.status(b, 0, false).unwrap().u.interdomain().port, a);
    assert_eq!(d.peer_of(a), None);
    ack_upcall(&mem, SI);
    // send on b raises a and vice versa.
    assert_eq!(d.send(&mem, b, Peer::None), Ok(one(0)));
    assert!(pending(&mem, a));
    clear_pending(&mem, b);
    ack_upcall(&mem, SI);
    assert_eq!(d.send(&mem, a, Peer::None), Ok(one(0)));
    assert!(pending(&mem, b));
    // Binding again to the now-bound a fails.
    assert_eq!(
        d.bind_interdomain(&mem, 0, a, Peer::None).unwrap_err(),
        e(Errno::EINVAL)
    );
    // Close b: a becomes unbound, accepting ourselves again; b's pending cleared.
    assert_eq!(d.close(&mem, b, Peer::None), Ok(()));
    assert!(!pending(&mem, b));
    let st = d.status(a, 0, false).unwrap();
    assert_eq!((st.status, st.u.unbound_dom()), (EVTCHNSTAT_unbound, 0));
    assert_eq!(d.close(&mem, b, Peer::None), Err(e(Errno::EINVAL)));
    let (b2, _) = d.bind_interdomain(&mem, 0, a, Peer::None).unwrap();
    assert_eq!(b2, b);
    check(&[&d]);
}

#[test]
fn bind_interdomain_errors() {
    let mem0 = ram();
    let memu = ram();
    let mut d0 = dom_si(0, 1, &mem0);
    let mut du = dom_si(1, 1, &memu);
    let a = du.alloc_unbound(&memu, 1, false, 0).unwrap();
    let other = du.alloc_unbound(&memu, 0, true, 2).unwrap();
    let ipi = du.bind_ipi(&memu, 0).unwrap();
    // Remote domain not locked: the caller must retry with it.
    assert_eq!(
        d0.bind_interdomain(&mem0, 1, a, Peer::None).unwrap_err(),
        Error::NeedPeer(1)
    );
    let mut d9 = dom(9, 1);
    assert_eq!(
        d0.bind_interdomain(&mem0, 1, a, Peer::Other(&mut d9, &memu))
            .unwrap_err(),
        Error::NeedPeer(1)
    );
    for bad in [0, 63, 64, 4096, u32::MAX, other, ipi] {
        assert_eq!(
            d0.bind_interdomain(&mem0, 1, bad, Peer::Other(&mut du, &memu))
                .unwrap_err(),
            e(Errno::EINVAL),
            "port {bad}"
        );
    }
    // Nothing was allocated by the failures.
    assert_eq!(d0.status(1, 0, true).unwrap().status, EVTCHNSTAT_closed);
    // Local side full → ENOSPC before looking at the remote port.
    let mut full = EvtchnDomain::new(0, 1, 0).unwrap();
    assert_eq!(
        full.bind_interdomain(&mem0, 1, a, Peer::Other(&mut du, &memu))
            .unwrap_err(),
        e(Errno::ENOSPC)
    );
    check(&[&d0, &du]);
}

#[test]
fn bind_interdomain_silo_between_domus() {
    let mem7 = ram();
    let mem8 = ram();
    let mut d7 = dom_si(7, 1, &mem7);
    let mut d8 = dom_si(8, 1, &mem8);
    // dom0 (as toolstack) makes a port of d7 for d8; d8 still may not bind it.
    let a = d7.alloc_unbound(&mem7, 0, true, 8).unwrap();
    // Port checks first: a port not offered to d8 is -EINVAL.
    assert_eq!(
        d8.bind_interdomain(&mem8, 7, 63, Peer::Other(&mut d7, &mem7))
            .unwrap_err(),
        e(Errno::EINVAL)
    );
    assert_eq!(
        d8.bind_interdomain(&mem8, 7, a, Peer::Other(&mut d7, &mem7))
            .unwrap_err(),
        e(Errno::EPERM)
    );
    // Nothing changed on either side.
    assert_eq!(d7.status(a, 0, true).unwrap().status, EVTCHNSTAT_unbound);
    assert_eq!(d8.status(1, 0, true).unwrap().status, EVTCHNSTAT_closed);
}

#[test]
fn two_domains_both_ways_and_close() {
    let mem0 = ram();
    let memu = ram();
    let mut d0 = dom_si(0, 2, &mem0);
    let mut du = dom_si(7, 1, &memu);
    let a = du.alloc_unbound(&memu, 7, false, 0).unwrap();
    let (b, n) = d0
        .bind_interdomain(&mem0, 7, a, Peer::Other(&mut du, &memu))
        .unwrap();
    assert_eq!(n, one(0));
    assert_eq!(du.peer_of(a), Some(0));
    assert_eq!(d0.peer_of(b), Some(7));
    check(&[&d0, &du]);
    // dom0 → domU.
    assert_eq!(d0.send(&mem0, b, Peer::None), Err(Error::NeedPeer(7)));
    assert!(!pending(&memu, a));
    assert_eq!(
        d0.send(&mem0, b, Peer::Other(&mut du, &memu)),
        Ok(peer_one(0))
    );
    assert!(pending(&memu, a) && upcall(&memu, SI) == 1);
    // Already pending: no new notification.
    assert_eq!(
        d0.send(&mem0, b, Peer::Other(&mut du, &memu)),
        Ok(Notify::NONE)
    );
    // domU → dom0, after dom0 moves the port to vCPU1 (registered).
    assert_eq!(d0.register_vcpu_info(&mem0, 1, VI1), Ok(one(1)));
    ack_upcall(&mem0, VI1);
    clear_pending(&mem0, b);
    assert_eq!(d0.bind_vcpu(b, 1), Ok(()));
    assert_eq!(
        du.send(&memu, a, Peer::Other(&mut d0, &mem0)),
        Ok(peer_one(1))
    );
    assert_eq!(sel(&mem0, VI1), 1);
    // domU closes: dom0's port goes back to unbound, accepting domU.
    assert_eq!(du.close(&memu, a, Peer::None), Err(Error::NeedPeer(0)));
    assert_eq!(du.close(&memu, a, Peer::Other(&mut d0, &mem0)), Ok(()));
    let st = d0.status(b, 0, false).unwrap();
    assert_eq!(
        (st.status, st.u.unbound_dom(), st.vcpu),
        (EVTCHNSTAT_unbound, 7, 1)
    );
    assert_eq!(d0.peer_of(b), None);
    assert_eq!(d0.send(&mem0, b, Peer::None), Ok(Notify::NONE));
    // domU can bind to it again.
    let (a2, _) = du
        .bind_interdomain(&memu, 0, b, Peer::Other(&mut d0, &mem0))
        .unwrap();
    check(&[&d0, &du]);
    assert_eq!(
        du.send(&memu, a2, Peer::Other(&mut d0, &mem0)),
        Ok(Notify::NONE)
    ); // already pending
    check(&[&d0, &du]);
}

#[test]
fn virq_binding_rules() {
    let mem = ram();
    let mut d = dom_si(0, 2, &mem);
    assert_eq!(d.bind_virq(&mem, NR_VIRQS, 0), Err(Errno::EINVAL));
    assert_eq!(d.bind_virq(&mem, u32::MAX, 0), Err(Errno::EINVAL));
    assert_eq!(d.bind_virq(&mem, VIRQ_CONSOLE, 1), Err(Errno::EINVAL));
    assert_eq!(d.bind_virq(&mem, VIRQ_ARCH_0, 1), Err(Errno::EINVAL));
    assert_eq!(d.bind_virq(&mem, VIRQ_TIMER, 2), Err(Errno::ENOENT));
    assert_eq!(d.bind_virq(&mem, VIRQ_CONSOLE, 2), Err(Errno::EINVAL)); // global checked first
    let t0 = d.bind_virq(&mem, VIRQ_TIMER, 0).unwrap();
    let t1 = d.bind_virq(&mem, VIRQ_TIMER, 1).unwrap();
    let c = d.bind_virq(&mem, VIRQ_CONSOLE, 0).unwrap();
    let dbg1 = d.bind_virq(&mem, VIRQ_DEBUG, 1).unwrap();
    assert_eq!(d.bind_virq(&mem, VIRQ_TIMER, 0), Err(Errno::EEXIST));
    assert_eq!(d.bind_virq(&mem, VIRQ_CONSOLE, 0), Err(Errno::EEXIST));
    assert_eq!(d.virq_port(VIRQ_TIMER, 1), Some(t1));
    assert_eq!(d.virq_port(VIRQ_CONSOLE, 1), Some(c));
    let st = d.status(t1, 0, false).unwrap();
    assert_eq!(
        (st.status, st.vcpu, st.u.virq()),
        (EVTCHNSTAT_virq, 1, VIRQ_TIMER)
    );
    // VIRQ ports cannot be sent on by the guest.
    assert_eq!(d.send(&mem, t0, Peer::None), Err(e(Errno::EINVAL)));
    // Per-vCPU VIRQs stay put; global ones may move.
    assert_eq!(d.bind_vcpu(t0, 1), Err(Errno::EINVAL));
    assert_eq!(d.bind_vcpu(dbg1, 0), Err(Errno::EINVAL));
    assert_eq!(d.bind_vcpu(c, 5), Err(Errno::ENOENT));
    assert_eq!(d.bind_vcpu(c, 1), Ok(()));
    assert_eq!(d.status(c, 0, false).unwrap().vcpu, 1);
    assert_eq!(d.register_vcpu_info(&mem, 1, VI1), Ok(one(1)));
    ack_upcall(&mem, VI1);
    // Hypervisor raises: global on its notify vCPU, per-vCPU on that vCPU.
    assert_eq!(d.raise_virq(&mem, VIRQ_CONSOLE, 0), one(1));
    assert!(pending(&mem, c));
    assert_eq!(d.raise_virq(&mem, VIRQ_TIMER, 0), one(0));
    assert_eq!(d.raise_virq(&mem, VIRQ_DOM_EXC, 0), Notify::NONE); // unbound
    assert_eq!(d.raise_virq(&mem, 99, 0), Notify::NONE);
    assert_eq!(d.raise_virq(&mem, VIRQ_TIMER, 99), Notify::NONE);
    // Close frees the VIRQ for rebinding; global VIRQ rebinding on vCPU0.
    assert_eq!(d.close(&mem, c, Peer::None), Ok(()));
    assert_eq!(d.virq_port(VIRQ_CONSOLE, 0), None);
    assert_eq!(d.raise_virq(&mem, VIRQ_CONSOLE, 0), Notify::NONE);
    assert_eq!(d.bind_virq(&mem, VIRQ_CONSOLE, 0), Ok(c));
    assert_eq!(d.close(&mem, t1, Peer::None), Ok(()));
    assert_eq!(d.virq_port(VIRQ_TIMER, 1), None);
    assert_eq!(d.virq_port(VIRQ_TIMER, 0), Some(t0));
    check(&[&d]);
}

#[test]
fn ipi_and_bind_vcpu_rules() {
    let mem = ram();
    let mut d = dom_si(0, 2, &mem);
    assert_eq!(d.bind_ipi(&mem, 2), Err(Errno::ENOENT));
    assert_eq!(d.bind_ipi(&mem, u32::MAX), Err(Errno::ENOENT));
    let p = d.bind_ipi(&mem, 0).unwrap();
    assert_eq!(d.bind_vcpu(p, 1), Err(Errno::EINVAL));
    assert_eq!(d.send(&mem, p, Peer::None), Ok(one(0)));
    let u = d.alloc_unbound(&mem, 0, false, 3).unwrap();
    assert_eq!(d.bind_vcpu(u, 1), Ok(()));
    assert_eq!(d.bind_vcpu(u32::MAX, 1), Err(Errno::EINVAL));
    assert_eq!(d.bind_vcpu(40, 1), Err(Errno::EINVAL)); // free port
                                                        // Closing a port resets it to vCPU0.
    assert_eq!(d.close(&mem, u, Peer::None), Ok(()));
    assert_eq!(d.status(u, 0, false).unwrap().vcpu, 0);
}

#[test]
fn two_level_bits_as_linux_sees_them() {
    let mem = ram();
    let mut d = dom_si(0, 1, &mem);
    let mut ports = Vec::new();
    for _ in 0..70 {
        ports.push(d.bind_ipi(&mem, 0).unwrap());
    }
    // Raise port 1: pending, selector bit 0, upcall 0→1 → inject.
    assert_eq!(d.send(&mem, 1, Peer::None), Ok(one(0)));
    assert!(pending(&mem, 1));
    assert_eq!((sel(&mem, SI), upcall(&mem, SI)), (1, 1));
    // Port 65 (word 1): selector bit 1, upcall already 1 → no new inject.
    assert_eq!(d.send(&mem, 65, Peer::None), Ok(Notify::NONE));
    assert_eq!(sel(&mem, SI), 0b11);
    // Guest acks; a still-pending port does not re-notify (Xen semantics).
    ack_upcall(&mem, SI);
    assert_eq!(d.send(&mem, 1, Peer::None), Ok(Notify::NONE));
    assert_eq!(sel(&mem, SI), 0);
    // Guest handled port 1 (cleared pending): next send notifies again.
    clear_pending(&mem, 1);
    assert_eq!(d.send(&mem, 1, Peer::None), Ok(one(0)));
    // Masked port: only the pending bit.
    ack_upcall(&mem, SI);
    set_mask(&mem, 2, true);
    assert_eq!(d.send(&mem, 2, Peer::None), Ok(Notify::NONE));
    assert!(pending(&mem, 2));
    assert_eq!((sel(&mem, SI), upcall(&mem, SI)), (0, 0));
    // Unmask re-raises: selector + upcall + inject.
    assert_eq!(d.unmask(&mem, 2), Ok(one(0)));
    assert!(!bit_2l(&mem, MASK_OFF, 2));
    assert_eq!((sel(&mem, SI), upcall(&mem, SI)), (1, 1));
    // Unmask of a non-masked or non-pending port does nothing.
    ack_upcall(&mem, SI);
    assert_eq!(d.unmask(&mem, 2), Ok(Notify::NONE));
    set_mask(&mem, 3, true);
    assert_eq!(d.unmask(&mem, 3), Ok(Notify::NONE));
    assert_eq!(d.unmask(&mem, 4096), Err(Errno::EINVAL));
    assert_eq!(d.unmask(&mem, 63), Ok(Notify::NONE));
    assert_eq!(d.unmask(&mem, 500), Err(Errno::EINVAL));
    assert!(d.upcall_pending(&mem, 0) == (upcall(&mem, SI) != 0));
    // Close clears the pending bit.
    assert!(pending(&mem, 65));
    assert_eq!(d.close(&mem, 65, Peer::None), Ok(()));
    assert!(!pending(&mem, 65));
    assert_eq!(d.guest_faults(), 0);
}

#[test]
fn events_before_shared_info_are_replayed() {
    let mem = ram();
    let mut d = dom(0, 2);
    let t = d.bind_virq(&mem, VIRQ_TIMER, 0).unwrap();
    let t1 = d.bind_virq(&mem, VIRQ_TIMER, 1).unwrap();
    let u = d.alloc_unbound(&mem, 0, false, 0).unwrap();
    assert_eq!(d.raise_virq(&mem, VIRQ_TIMER, 0), Notify::NONE);
    assert_eq!(d.raise_virq(&mem, VIRQ_TIMER, 1), Notify::NONE);
    assert!(!d.upcall_pending(&mem, 0));
    assert_eq!(d.unmask(&mem, t), Ok(Notify::NONE));
    assert_eq!(d.vcpu_info_ipa(0), None);
    assert_eq!(d.set_shared_info(&mem, SI + 1), Err(Errno::EINVAL));
    assert_eq!(d.set_shared_info(&mem, 0x1000), Err(Errno::EINVAL));
    // Placement delivers: vCPU0 sees it; vCPU1 has no vcpu_info yet.
    assert_eq!(d.set_shared_info(&mem, SI), Ok(one(0)));
    assert_eq!(d.vcpu_info_ipa(0), Some(SI));
    assert!(pending(&mem, t) && pending(&mem, t1) && !pending(&mem, u));
    assert_eq!((sel(&mem, SI), upcall(&mem, SI)), (1, 1));
    assert!(d.upcall_pending(&mem, 0) && d.upcall_pending(&mem, 1));
    // vCPU1 registers: everything marked, spurious upcall.
    assert_eq!(d.register_vcpu_info(&mem, 1, VI1), Ok(one(1)));
    assert_eq!((sel(&mem, VI1), upcall(&mem, VI1)), (!0, 1));
    // Moving shared_info does not replay again.
    assert_eq!(d.set_shared_info(&mem, SI + 0x5000), Ok(Notify::NONE));
}

#[test]
fn register_vcpu_info_rules() {
    let mem = ram();
    let mut d = dom_si(0, 2, &mem);
    let p = d.bind_ipi(&mem, 0).unwrap();
    assert_eq!(d.send(&mem, p, Peer::None), Ok(one(0)));
    assert_eq!(d.register_vcpu_info(&mem, 2, VI1), Err(Errno::ENOENT));
    assert_eq!(d.register_vcpu_info(&mem, 1, VI1 + 4), Err(Errno::ENXIO));
    assert_eq!(d.register_vcpu_info(&mem, 1, 0x1000), Err(Errno::EINVAL));
    assert_eq!(
        d.register_vcpu_info(&mem, 1, BASE + RAM as u64 - 40),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        d.register_vcpu_info(&mem, 1, u64::MAX - 7),
        Err(Errno::EINVAL)
    );
    // vCPU0 moves away from shared_info: old contents copied over.
    mem.write(SI + 16, &[0xAB; 32]).unwrap();
    let vi0 = BASE + 0x1000 + 0x200;
    assert_eq!(d.register_vcpu_info(&mem, 0, vi0), Ok(one(0)));
    let mut t = [0u8; 32];
    mem.read(vi0 + 16, &mut t).unwrap();
    assert_eq!(t, [0xAB; 32]);
    assert_eq!(d.register_vcpu_info(&mem, 0, vi0), Err(Errno::EINVAL));
    assert_eq!(d.vcpu_info_ipa(0), Some(vi0));
    ack_upcall(&mem, vi0);
    clear_pending(&mem, p);
    assert_eq!(d.send(&mem, p, Peer::None), Ok(one(0)));
    assert_eq!((sel(&mem, vi0), upcall(&mem, vi0)), (1, 1));
    // A page-straddling vcpu_info is accepted (old Linux 6.1 builds).
    assert_eq!(
        d.register_vcpu_info(&mem, 1, BASE + 0x4000 - 24),
        Ok(one(1))
    );
}

#[test]
fn unregistered_vcpu_gets_events_on_registration() {
    let mem = ram();
    let mut d = dom_si(0, 2, &mem);
    let p = d.bind_ipi(&mem, 1).unwrap();
    assert_eq!(d.send(&mem, p, Peer::None), Ok(Notify::NONE));
    assert!(pending(&mem, p));
    assert!(d.upcall_pending(&mem, 1));
    assert_eq!(upcall(&mem, SI), 0); // not vCPU0's
    assert_eq!(d.register_vcpu_info(&mem, 1, VI1), Ok(one(1)));
    assert!(d.upcall_pending(&mem, 1));
}

#[test]
fn close_semantics() {
    let mem = ram();
    let mut d = dom_si(0, 1, &mem);
    assert_eq!(d.close(&mem, 1, Peer::None), Err(e(Errno::EINVAL)));
    assert_eq!(d.close(&mem, 64, Peer::None), Err(e(Errno::EINVAL)));
    assert_eq!(d.close(&mem, u32::MAX, Peer::None), Err(e(Errno::EINVAL)));
    let p = d.bind_ipi(&mem, 0).unwrap();
    assert_eq!(d.send(&mem, p, Peer::None), Ok(one(0)));
    assert_eq!(d.close(&mem, p, Peer::None), Ok(()));
    assert!(!pending(&mem, p));
    assert_eq!(d.send(&mem, p, Peer::None), Err(e(Errno::EINVAL)));
    assert_eq!(d.close(&mem, p, Peer::None), Err(e(Errno::EINVAL)));
    // Reused port starts clean.
    assert_eq!(d.bind_ipi(&mem, 0), Ok(p));
    assert!(!pending(&mem, p));
}

// --- FIFO -----------------------------------------------------------------

#[test]
fn fifo_init_control_rules() {
    let mem = ram();
    let mut d = dom_si(1, 2, &mem);
    assert_eq!(d.init_control(&mem, GFN_CB0, 0, 2), Err(Errno::ENOENT));
    assert_eq!(
        d.init_control(&mem, GFN_CB0, 4096 - 72 + 8, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        d.init_control(&mem, GFN_CB0, u32::MAX, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(d.init_control(&mem, GFN_CB0, 4, 0), Err(Errno::EINVAL));
    assert_eq!(d.init_control(&mem, 1, 0, 0), Err(Errno::EINVAL)); // not RAM
    assert_eq!(d.init_control(&mem, u64::MAX, 0, 0), Err(Errno::EINVAL));
    assert_eq!(d.abi(), Abi::TwoLevel); // failures leave 2-level
    assert_eq!(d.expand_array(&mem, gfn_array(0)), Err(Errno::EOPNOTSUPP));
    assert_eq!(d.set_priority(1, 3), Err(Errno::ENOSYS)); // 2-level has no priorities
                                                          // Control block at the very end of the page, for an offline vCPU.
    let off = 4096 - CONTROL_BLOCK_SIZE;
    assert_eq!(d.init_control(&mem, GFN_CB1, off, 1), Ok(17));
    assert_eq!(d.abi(), Abi::Fifo);
    assert_eq!(d.init_control(&mem, GFN_CB1, 0, 1), Err(Errno::EINVAL)); // twice
    assert_eq!(d.init_control(&mem, GFN_CB0, 0, 0), Ok(17));
    assert_eq!(d.fifo_array_pages(), Some(0));
}

#[test]
fn set_priority_rules() {
    let mem = ram();
    let mut d = dom_si(1, 1, &mem);
    let p = d.bind_ipi(&mem, 0).unwrap();
    assert_eq!(d.set_priority(p, 3), Err(Errno::ENOSYS));
    assert_eq!(d.set_priority(u32::MAX, 3), Err(Errno::EINVAL));
    assert_eq!(d.init_control(&mem, GFN_CB0, 0, 0), Ok(17));
    assert_eq!(d.set_priority(p, 16), Err(Errno::EINVAL));
    assert_eq!(d.set_priority(p, u32::MAX), Err(Errno::EINVAL));
    assert_eq!(d.set_priority(10, 3), Err(Errno::EACCES)); // free
    assert_eq!(d.set_priority(0, 3), Err(Errno::EACCES)); // reserved
    assert_eq!(d.set_priority(64, 3), Err(Errno::EINVAL)); // beyond table
    assert_eq!(d.set_priority(p, 0), Ok(()));
    assert_eq!(d.set_priority(p, 15), Ok(()));
}

#[test]
fn fifo_delivery_and_priority_order() {
    let mem = ram();
    let mut d = fifo_dom(&mem, 1, 1);
    let ps: Vec<Port> = (0..5).map(|_| d.bind_ipi(&mem, 0).unwrap()).collect();
    d.set_priority(ps[3], 2).unwrap();
    d.set_priority(ps[4], 0).unwrap();
    // Linux prefilled MASKED: a raise only sets PENDING.
    assert_eq!(d.send(&mem, ps[0], Peer::None), Ok(Notify::NONE));
    assert_eq!(word(&mem, ps[0]), M | P);
    // Unmask links it: head[7], ready bit 7, upcall → inject.
    assert_eq!(d.unmask(&mem, ps[0]), Ok(one(0)));
    assert_eq!(word(&mem, ps[0]), P | L);
    assert_eq!((ready(&mem, CB0), head(&mem, CB0, 7)), (1 << 7, ps[0]));
    assert_eq!(upcall(&mem, SI), 1);
    for &p in &ps[1..] {
        set_word(&mem, p, 0); // guest unmasks locally
    }
    // Same queue: linked behind the tail, no new ready bit / upcall.
    assert_eq!(d.send(&mem, ps[1], Peer::None), Ok(Notify::NONE));
    assert_eq!(word(&mem, ps[0]) & EVTCHN_FIFO_LINK_MASK, ps[1]);
    assert_eq!(d.send(&mem, ps[2], Peer::None), Ok(Notify::NONE));
    assert_eq!(d.send(&mem, ps[3], Peer::None), Ok(Notify::NONE));
    assert_eq!(d.send(&mem, ps[4], Peer::None), Ok(Notify::NONE));
    assert_eq!(ready(&mem, CB0), (1 << 7) | (1 << 2) | 1);
    assert_eq!(head(&mem, CB0, 0), ps[4]);
    // Pending again while linked: nothing changes.
    assert_eq!(d.send(&mem, ps[1], Peer::None), Ok(Notify::NONE));
    // Linux drains: highest priority first, FIFO order within a queue.
    assert_eq!(
        fifo_consume(&mem, CB0),
        vec![ps[4], ps[3], ps[0], ps[1], ps[2]]
    );
    // After draining, a new event starts a fresh queue (tail was consumed).
    mem.write(SI, &[0]).unwrap();
    assert_eq!(d.send(&mem, ps[1], Peer::None), Ok(one(0)));
    assert_eq!((head(&mem, CB0, 7), ready(&mem, CB0)), (ps[1], 1 << 7));
    assert_eq!(fifo_consume(&mem, CB0), vec![ps[1]]);
    assert_eq!(d.send(&mem, ps[1], Peer::None), Ok(Notify::NONE)); // upcall still 1
    assert_eq!(fifo_consume(&mem, CB0), vec![ps[1]]);
    assert_eq!(d.guest_faults(), 0);
}

#[test]
fn fifo_per_vcpu_queues_and_priority_change() {
    let mem = ram();
    let mut d = fifo_dom(&mem, 2, 1);
    assert_eq!(d.register_vcpu_info(&mem, 1, VI1), Ok(one(1)));
    mem.write(VI1, &[0]).unwrap();
    let p0 = d.bind_ipi(&mem, 0).unwrap();
    let p1 = d.bind_ipi(&mem, 1).unwrap();
    set_word(&mem, p0, 0);
    set_word(&mem, p1, 0);
    assert_eq!(d.send(&mem, p1, Peer::None), Ok(one(1)));
    assert_eq!(
        (ready(&mem, CB1), head(&mem, CB1, 7), ready(&mem, CB0)),
        (1 << 7, p1, 0)
    );
    assert_eq!(d.send(&mem, p0, Peer::None), Ok(one(0)));
    assert_eq!(fifo_consume(&mem, CB1), vec![p1]);
    assert_eq!(fifo_consume(&mem, CB0), vec![p0]);
    // Priority change: next event goes to the new queue; old tail forgotten.
    d.set_priority(p0, 1).unwrap();
    mem.write(SI, &[0]).unwrap();
    assert_eq!(d.send(&mem, p0, Peer::None), Ok(one(0)));
    assert_eq!((ready(&mem, CB0), head(&mem, CB0, 1)), (1 << 1, p0));
    assert_eq!(d.vcpus[0].tail[7], 0);
}

#[test]
fn fifo_event_before_its_array_page() {
    let mem = ram();
    let mut d = fifo_dom(&mem, 1, 1);
    let mut last = 0;
    for _ in 0..1100 {
        last = d.bind_ipi(&mem, 0).unwrap();
    }
    assert_eq!(last, 1100);
    let p = 1050;
    assert_eq!(d.send(&mem, p, Peer::None), Ok(Notify::NONE));
    assert!(d.chans[p as usize].saved_pending);
    // Unmask with no page is a no-op; set_priority still works.
    assert_eq!(d.unmask(&mem, p), Ok(Notify::NONE));
    d.set_priority(p, 4).unwrap();
    // Page arrives zeroed (unmasked): the remembered event is delivered.
    assert_eq!(d.expand_array(&mem, gfn_array(1)), Ok(one(0)));
    assert_eq!(word(&mem, p), P | L);
    assert_eq!((ready(&mem, CB0), head(&mem, CB0, 4)), (1 << 4, p));
    assert!(!d.chans[p as usize].saved_pending);
    assert_eq!(fifo_consume(&mem, CB0), vec![p]);
}

#[test]
fn two_level_pending_survives_switch_to_fifo() {
    let mem = ram();
    let mut d = dom_si(1, 1, &mem);
    let a = d.bind_ipi(&mem, 0).unwrap();
    let b = d.bind_ipi(&mem, 0).unwrap();
    assert_eq!(d.send(&mem, a, Peer::None), Ok(one(0)));
    assert_eq!(d.init_control(&mem, GFN_CB0, 0, 0), Ok(17));
    // Linux clears upcall before enabling FIFO events.
    mem.write(SI, &[0]).unwrap();
    assert_eq!(d.expand_array(&mem, gfn_array(0)), Ok(one(0)));
    assert_eq!(word(&mem, a), P | L);
    assert_eq!(word(&mem, b), 0);
    assert_eq!(fifo_consume(&mem, CB0), vec![a]);
}

#[test]
fn expand_array_limits() {
    let mem = ram();
    let mut d = EvtchnDomain::new(1, 1, u32::MAX).unwrap();
    assert_eq!(d.init_control(&mem, GFN_CB0, 0, 0), Ok(17));
    assert_eq!(d.expand_array(&mem, 7), Err(Errno::EINVAL));
    assert_eq!(d.expand_array(&mem, u64::MAX), Err(Errno::EINVAL));
    assert_eq!(d.fifo_array_pages(), Some(0));
    for i in 0..MAX_ARRAY_PAGES as u64 {
        // The same guest page may back several slots; fine for this test.
        assert_eq!(d.expand_array(&mem, gfn_array(i % 64)), Ok(Notify::NONE));
    }
    assert_eq!(d.expand_array(&mem, gfn_array(0)), Err(Errno::ENOSPC));
    assert_eq!(d.fifo_array_pages(), Some(128));
}

#[test]
fn fifo_busy_port_not_reused() {
    let mem = ram();
    let mut d = fifo_dom(&mem, 1, 1);
    let p = d.bind_ipi(&mem, 0).unwrap();
    set_word(&mem, p, 0);
    assert_eq!(d.send(&mem, p, Peer::None), Ok(one(0)));
    assert_eq!(d.close(&mem, p, Peer::None), Ok(()));
    assert_eq!(word(&mem, p), L); // PENDING cleared, still on the queue
    let q = d.bind_ipi(&mem, 0).unwrap();
    assert_ne!(q, p);
    // Once the guest unlinks it, it is free again.
    assert_eq!(fifo_consume(&mem, CB0), vec![]);
    d.close(&mem, q, Peer::None).unwrap();
    assert_eq!(d.bind_ipi(&mem, 0), Ok(p));
}

#[test]
fn fifo_port_range() {
    let mem = ram();
    let mut d = EvtchnDomain::new(0, 1, u32::MAX).unwrap();
    assert_eq!(d.init_control(&mem, GFN_CB0, 0, 0), Ok(17));
    for _ in 0..4200 {
        d.bind_ipi(&mem, 0).unwrap();
    }
    // Beyond 4095 is fine in FIFO; no page yet → remembered.
    assert_eq!(d.send(&mem, 4100, Peer::None), Ok(Notify::NONE));
    assert_eq!(
        d.send(&mem, EVTCHN_FIFO_NR_CHANNELS, Peer::None),
        Err(e(Errno::EINVAL))
    );
    assert_eq!(
        d.set_priority(EVTCHN_FIFO_NR_CHANNELS, 1),
        Err(Errno::EINVAL)
    );
    assert_eq!(d.unmask(&mem, u32::MAX), Err(Errno::EINVAL));
}

// --- Hostile guests ---------------------------------------------------------

/// Guest memory whose owner rewrites the word under every cmpxchg (a guest
/// toggling MASKED forever), and which can lose pages.
struct Hostile {
    ram: FakeRam,
    flip: Cell<bool>,
    gone: Cell<Option<u64>>,
    cmpxchgs: Cell<u32>,
}

impl Hostile {
    fn check(&self, ipa: u64) -> Result<(), GuestFault> {
        match self.gone.get() {
            Some(page) if ipa & !0xfff == page => Err(GuestFault::Unmapped(ipa)),
            _ => Ok(()),
        }
    }
}

impl GuestMemory for Hostile {
    fn read(&self, ipa: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
        self.check(ipa)?;
        self.ram.read(ipa, buf)
    }
    fn write(&self, ipa: u64, buf: &[u8]) -> Result<(), GuestFault> {
        self.check(ipa)?;
        self.ram.write(ipa, buf)
    }
    fn cmpxchg_u32(&self, ipa: u64, old: u32, new: u32) -> Result<u32, GuestFault> {
        self.check(ipa)?;
        self.cmpxchgs.set(self.cmpxchgs.get() + 1);
        if self.flip.get() {
            let w = self.ram.read_u32(ipa)?;
            self.ram.write_u32(ipa, w ^ M)?;
        }
        self.ram.cmpxchg_u32(ipa, old, new)
    }
    fn fetch_or_u64(&self, ipa: u64, bits: u64) -> Result<u64, GuestFault> {
        self.check(ipa)?;
        self.ram.fetch_or_u64(ipa, bits)
    }
    fn fetch_and_u64(&self, ipa: u64, mask: u64) -> Result<u64, GuestFault> {
        self.check(ipa)?;
        self.ram.fetch_and_u64(ipa, mask)
    }
}

#[test]
fn hostile_tail_racing_every_cmpxchg_is_bounded() {
    let h = Hostile {
        ram: ram(),
        flip: Cell::new(false),
        gone: Cell::new(None),
        cmpxchgs: Cell::new(0),
    };
    let mut d = fifo_dom(&h.ram, 1, 1);
    let a = d.bind_ipi(&h, 0).unwrap();
    let b = d.bind_ipi(&h, 0).unwrap();
    set_word(&h.ram, a, 0);
    set_word(&h.ram, b, 0);
    assert_eq!(d.send(&h, a, Peer::None), Ok(one(0)));
    h.flip.set(true);
    h.cmpxchgs.set(0);
    // Linking b after a loses every race: gives up after bounded tries.
    assert_eq!(d.send(&h, b, Peer::None), Ok(Notify::NONE));
    assert!(h.cmpxchgs.get() <= 6, "{} cmpxchgs", h.cmpxchgs.get());
    assert_eq!(word(&h.ram, a) & B, 0, "BUSY released");
    assert_eq!(d.vcpus[0].tail[7], b);
}

#[test]
fn hostile_pages_vanish() {
    let h = Hostile {
        ram: ram(),
        flip: Cell::new(false),
        gone: Cell::new(None),
        cmpxchgs: Cell::new(0),
    };
    let mut d = fifo_dom(&h.ram, 1, 1);
    let a = d.bind_ipi(&h, 0).unwrap();
    let b = d.bind_ipi(&h, 0).unwrap();
    set_word(&h.ram, a, 0);
    set_word(&h.ram, b, 0);
    // Control block gone: the event is lost, not a panic.
    h.gone.set(Some(CB0));
    assert_eq!(d.send(&h, a, Peer::None), Ok(Notify::NONE));
    assert!(d.guest_faults() > 0);
    // Array page gone.
    h.gone.set(Some(ARRAY));
    assert_eq!(d.send(&h, b, Peer::None), Ok(Notify::NONE));
    assert_eq!(d.unmask(&h, b), Ok(Notify::NONE));
    assert_eq!(d.close(&h, b, Peer::None), Ok(()));
    assert!(d.bind_ipi(&h, 0).is_ok());
    // vcpu_info (shared_info) gone in 2-level.
    let mut d2 = dom_si(2, 1, &h.ram);
    let p = d2.bind_ipi(&h, 0).unwrap();
    h.gone.set(Some(SI));
    assert_eq!(d2.send(&h, p, Peer::None), Ok(Notify::NONE));
    assert_eq!(d2.unmask(&h, p), Ok(Notify::NONE));
    assert!(!d2.upcall_pending(&h, 0));
    assert_eq!(d2.init_control(&h, SI / 4096, 0, 0), Err(Errno::EINVAL));
    h.gone.set(None);
    assert_eq!(d2.init_control(&h, GFN_CB0, 0, 0), Ok(17));
}

#[test]
fn hostile_corrupt_links_and_loops() {
    let mem = ram();
    let mut d = fifo_dom(&mem, 1, 1);
    let ps: Vec<Port> = (0..8).map(|_| d.bind_ipi(&mem, 0).unwrap()).collect();
    for &p in &ps {
        set_word(&mem, p, 0);
    }
    for &p in &ps[..4] {
        let _ = d.send(&mem, p, Peer::None);
    }
    // Guest makes a cycle and points links at garbage / unbound ports.
    set_word(&mem, ps[3], L | P | ps[0]);
    set_word(&mem, ps[1], L | P | EVTCHN_FIFO_LINK_MASK);
    mem.write_u32(CB0 + 8 + 4 * 7, 0xFFFF_FFFF).unwrap();
    mem.write_u32(CB0, 0xFFFF_FFFF).unwrap();
    for _ in 0..3 {
        for &p in &ps {
            let _ = d.send(&mem, p, Peer::None);
            let _ = d.unmask(&mem, p);
        }
    }
    // Words with every bit set, including BUSY held by the guest.
    for &p in &ps {
        set_word(&mem, p, u32::MAX);
        let _ = d.send(&mem, p, Peer::None);
        let _ = d.unmask(&mem, p);
        let _ = d.close(&mem, p, Peer::None);
    }
    check(&[&d]);
}

#[test]
fn reset_closes_everything_and_reverts_to_two_level() {
    let mem0 = ram();
    let memu = ram();
    let mut d0 = dom_si(0, 1, &mem0);
    let mut du = fifo_dom(&memu, 1, 1);
    du.bind_virq(&memu, VIRQ_TIMER, 0).unwrap();
    du.bind_ipi(&memu, 0).unwrap();
    let a = du.alloc_unbound(&memu, 1, false, DOMID_SELF).unwrap();
    let _ = du
        .bind_interdomain(&memu, DOMID_SELF, a, Peer::None)
        .unwrap();
    let x = du.alloc_unbound(&memu, 1, false, 0).unwrap();
    let (b, _) = d0
        .bind_interdomain(&mem0, 1, x, Peer::Other(&mut du, &memu))
        .unwrap();
    assert_eq!(du.reset(&memu, Peer::None), Err(Error::NeedPeer(0)));
    assert_eq!(du.abi(), Abi::Fifo);
    assert_eq!(
        du.status(x, 1, false).unwrap().status,
        EVTCHNSTAT_interdomain
    );
    assert_eq!(du.status(a, 1, false).unwrap().status, EVTCHNSTAT_closed);
    assert_eq!(du.reset(&memu, Peer::Other(&mut d0, &mem0)), Ok(()));
    assert_eq!(du.abi(), Abi::TwoLevel);
    assert_eq!(du.virq_port(VIRQ_TIMER, 0), None);
    assert_eq!(d0.status(b, 0, false).unwrap().status, EVTCHNSTAT_unbound);
    for p in 1..64 {
        assert_eq!(du.status(p, 1, false).unwrap().status, EVTCHNSTAT_closed);
    }
    check(&[&d0, &du]);
    // FIFO can be set up again from scratch.
    assert_eq!(du.init_control(&memu, GFN_CB0, 0, 0), Ok(17));
    assert_eq!(du.fifo_array_pages(), Some(0));
    assert_eq!(du.bind_virq(&memu, VIRQ_TIMER, 0), Ok(1));
}

/// Small deterministic PRNG.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_ops_keep_invariants() {
    for seed in 1..=12u64 {
        let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mems = [ram(), ram()];
        let mut doms = [
            EvtchnDomain::new(0, 2, 200).unwrap(),
            EvtchnDomain::new(1, 2, 200).unwrap(),
        ];
        for _ in 0..3000 {
            let i = rng.below(2) as usize;
            let j = 1 - i;
            let port = match rng.below(4) {
                0 => rng.next() as u32,
                _ => rng.below(80) as u32,
            };
            let vcpu = rng.below(3) as u32;
            let (a, b) = doms.split_at_mut(1);
            let (me, other) = if i == 0 {
                (&mut a[0], &mut b[0])
            } else {
                (&mut b[0], &mut a[0])
            };
            let (mm, om) = (&mems[i], &mems[j]);
            match rng.below(20) {
                0 => {
                    let _ = me.alloc_unbound(
                        mm,
                        me.domid,
                        false,
                        if rng.below(2) == 0 {
                            DOMID_SELF
                        } else {
                            other.domid
                        },
                    );
                }
                1 => {
                    let rd = if rng.below(2) == 0 {
                        DOMID_SELF
                    } else {
                        other.domid
                    };
                    let _ = me.bind_interdomain(mm, rd, port, Peer::Other(other, om));
                }
                2 => {
                    let _ = me.bind_virq(mm, rng.below(26) as u32, vcpu);
                }
                3 => {
                    let _ = me.bind_ipi(mm, vcpu);
                }
                4 => {
                    let r = me.close(mm, port, Peer::None);
                    if let Err(Error::NeedPeer(d)) = r {
                        assert_eq!(d, other.domid);
                        me.close(mm, port, Peer::Other(other, om)).unwrap();
                    }
                }
                5..=7 => {
                    let _ = me.send(mm, port, Peer::Other(other, om));
                }
                8 => {
                    let _ = me.unmask(mm, port);
                }
                9 => {
                    let _ = me.bind_vcpu(port, vcpu);
                }
                10 => {
                    let _ = me.set_priority(port, rng.below(20) as u32);
                }
                11 => {
                    let _ = me.raise_virq(mm, rng.below(26) as u32, vcpu);
                }
                12 => {
                    let _ = me.init_control(
                        mm,
                        if rng.below(2) == 0 { GFN_CB0 } else { GFN_CB1 } + rng.below(3) * 16,
                        (rng.below(600) * 8) as u32,
                        vcpu,
                    );
                }
                13 => {
                    let _ = me.expand_array(mm, gfn_array(rng.below(3)));
                }
                14 => {
                    let _ = me.set_shared_info(mm, SI + rng.below(2) * 0x8000);
                }
                15 => {
                    let _ = me.register_vcpu_info(mm, vcpu, VI1 + rng.below(4) * 8);
                }
                16 => {
                    // The guest scribbles anywhere in its shared pages.
                    let off = rng.below(0x12_0000) & !3;
                    let _ = mm.write_u32(BASE + off, rng.next() as u32);
                }
                17 => {
                    if rng.below(50) == 0 {
                        let _ = me.reset(mm, Peer::Other(other, om));
                    }
                }
                18 => {
                    let _ = me.status(port, me.domid, false);
                }
                _ => {
                    let _ = fifo_consume(mm, CB0);
                }
            }
            check(&[&doms[0], &doms[1]]);
        }
    }
}
