//! Event channels driven by random operation sequences: two domains (each
//! with its own guest memory that the guest scribbles on, loses pages of,
//! and races on every compare-and-swap), every EVTCHNOP, both delivery
//! ABIs, resets. After every step the cross-domain invariants the module
//! documents must hold, checked through its public API only.
#![no_main]
#![allow(non_upper_case_globals)]

use std::cell::Cell;

use arbitrary::{Arbitrary, Unstructured};
use hv_core::evtchn::{Error, EvtchnDomain, Notify, Peer, Port};
use hv_core::guest::fake::FakeRam;
use hv_core::guest::{GuestFault, GuestMemory};
use libfuzzer_sys::fuzz_target;
use xen_abi::event_channel::{
    EVTCHNSTAT_closed, EVTCHNSTAT_interdomain, EVTCHNSTAT_ipi, EVTCHNSTAT_unbound,
    EVTCHNSTAT_virq, NR_VIRQS,
};
use xen_abi::xen::{DomId, DOMID_SELF};

const BASE: u64 = 0x4000_0000;
const PAGES: u64 = 48;
const GFN0: u64 = BASE >> 12;

/// Guest memory of one domain, as hostile as the fuzzer wants: a page can
/// vanish (ballooned out), and the guest can flip bits under every CAS.
struct Hostile {
    ram: FakeRam,
    gone: Cell<Option<u64>>,
    flip: Cell<u32>,
}

impl Hostile {
    fn new() -> Self {
        Hostile { ram: FakeRam::new(BASE, (PAGES * 4096) as usize), gone: Cell::new(None), flip: Cell::new(0) }
    }
    fn check(&self, ipa: u64, len: usize) -> Result<(), GuestFault> {
        if let Some(g) = self.gone.get() {
            let last = ipa.saturating_add(len.max(1) as u64 - 1);
            if ipa >> 12 <= g && g <= last >> 12 {
                return Err(GuestFault::Unmapped(ipa));
            }
        }
        Ok(())
    }
}

impl GuestMemory for Hostile {
    fn read(&self, ipa: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
        self.check(ipa, buf.len())?;
        self.ram.read(ipa, buf)
    }
    fn write(&self, ipa: u64, buf: &[u8]) -> Result<(), GuestFault> {
        self.check(ipa, buf.len())?;
        self.ram.write(ipa, buf)
    }
    fn cmpxchg_u32(&self, ipa: u64, old: u32, new: u32) -> Result<u32, GuestFault> {
        self.check(ipa, 4)?;
        let f = self.flip.get();
        if f != 0 {
            if let Ok(w) = self.ram.read_u32(ipa) {
                let _ = self.ram.write_u32(ipa, w ^ f);
            }
        }
        self.ram.cmpxchg_u32(ipa, old, new)
    }
    fn fetch_or_u64(&self, ipa: u64, bits: u64) -> Result<u64, GuestFault> {
        self.check(ipa, 8)?;
        self.ram.fetch_or_u64(ipa, bits)
    }
    fn fetch_and_u64(&self, ipa: u64, mask: u64) -> Result<u64, GuestFault> {
        self.check(ipa, 8)?;
        self.ram.fetch_and_u64(ipa, mask)
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    AllocUnbound { remote_self: bool, as_other: bool, privileged: bool },
    BindInterdomain { remote_self: bool, port: u16 },
    BindVirq { virq: u8, vcpu: u8 },
    BindIpi { vcpu: u8 },
    Close { port: u16, with_peer: bool },
    Send { port: u16, with_peer: bool },
    Unmask { port: u16 },
    BindVcpu { port: u16, vcpu: u8 },
    SetPriority { port: u16, prio: u8 },
    RaiseVirq { virq: u8, vcpu: u8 },
    InitControl { page: u8, offset: u16, vcpu: u8 },
    ExpandArray { page: u8 },
    SetSharedInfo { page: u8, off: u16 },
    RegisterVcpuInfo { vcpu: u8, page: u8, off: u16 },
    Reset { with_peer: bool },
    /// The guest writes anything anywhere in its memory.
    Scribble { page: u8, off: u16, val: u64 },
    /// The guest writes a whole word of its event array/control area.
    Fill { page: u8, byte: u8 },
    /// A page disappears (or comes back).
    Vanish { page: Option<u8> },
    /// Every CAS from now on races with the guest flipping these bits.
    Flip { bits: u32 },
    Status { port: u16, caller_other: bool, privileged: bool },
}

fn gfn(page: u8) -> u64 {
    // Mostly our RAM, sometimes just outside it or absurd.
    match page {
        0..=199 => GFN0 + u64::from(page) % PAGES,
        200..=249 => GFN0 + PAGES + u64::from(page - 200),
        250 => 0,
        251 => u64::MAX,
        252 => u64::MAX >> 12,
        _ => GFN0 - 1,
    }
}

fn port(p: u16) -> Port {
    match p {
        0xFFF0.. => u32::MAX - u32::from(p - 0xFFF0),
        0x8000.. => u32::from(p),
        _ => u32::from(p % 300),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(setup) = <[(u8, u8); 2]>::arbitrary(&mut u) else { return };
    let ids: [DomId; 2] = [0, 1 + DomId::from(setup[0].0 % 8)];
    let max_ports = [63u32, 200, 1023, 4095, u32::MAX];
    let mut doms: Vec<EvtchnDomain> = (0..2)
        .map(|i| {
            let vcpus = 1 + u32::from(setup[i].1 % 3);
            let max = max_ports[usize::from(setup[i].0 >> 4) % max_ports.len()];
            EvtchnDomain::new(ids[i], vcpus, max).unwrap()
        })
        .collect();
    let mems = [Hostile::new(), Hostile::new()];

    let mut steps = 0;
    while !u.is_empty() && steps < 400 {
        steps += 1;
        let Ok(i) = u.int_in_range(0..=1usize) else { break };
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        if ferrovisor_fuzz::debug() {
            eprintln!("dom{} {op:?}", ids[i]);
        }
        let j = 1 - i;
        let (me, other) = if i == 0 {
            let (a, b) = doms.split_at_mut(1);
            (&mut a[0], &mut b[0])
        } else {
            let (a, b) = doms.split_at_mut(1);
            (&mut b[0], &mut a[0])
        };
        let (mm, om) = (&mems[i], &mems[j]);
        let (my_vcpus, other_vcpus) = (me.nr_vcpus(), other.nr_vcpus());
        let other_id = other.domid();
        let check_notify = |n: Notify| {
            assert!(n.local.iter().all(|v| v < my_vcpus), "{n:?}");
            assert!(n.peer.iter().all(|v| v < other_vcpus), "{n:?}");
        };
        let check_err = |e: Error, with_peer: bool| {
            if let Error::NeedPeer(d) = e {
                assert_eq!(d, other_id, "NeedPeer names a domain nobody connected to");
                assert!(!with_peer, "NeedPeer({d}) although it was passed");
            }
        };
        match op {
            Op::AllocUnbound { remote_self, as_other, privileged } => {
                let caller = if as_other { other_id } else { me.domid() };
                let remote = if remote_self { DOMID_SELF } else { other_id };
                if let Ok(p) = me.alloc_unbound(mm, caller, privileged, remote) {
                    assert!(as_other.then_some(privileged).unwrap_or(true));
                    let st = me.status(p, me.domid(), false).unwrap();
                    assert_eq!(st.status, EVTCHNSTAT_unbound);
                }
            }
            Op::BindInterdomain { remote_self, port: p } => {
                let rd = if remote_self { DOMID_SELF } else { other_id };
                match me.bind_interdomain(mm, rd, port(p), Peer::Other(other, om)) {
                    Ok((_, n)) => check_notify(n),
                    Err(e) => check_err(e, true),
                }
            }
            Op::BindVirq { virq, vcpu } => {
                if let Ok(p) = me.bind_virq(mm, u32::from(virq % 30), u32::from(vcpu % 4)) {
                    assert_eq!(me.virq_port(u32::from(virq % 30), u32::from(vcpu % 4)), Some(p));
                }
            }
            Op::BindIpi { vcpu } => {
                if let Ok(p) = me.bind_ipi(mm, u32::from(vcpu % 4)) {
                    assert_eq!(me.status(p, me.domid(), false).unwrap().status, EVTCHNSTAT_ipi);
                }
            }
            Op::Close { port: p, with_peer } => {
                let peer = if with_peer { Peer::Other(other, om) } else { Peer::None };
                match me.close(mm, port(p), peer) {
                    Ok(()) => {
                        assert_eq!(me.status(port(p), me.domid(), false).unwrap().status, EVTCHNSTAT_closed);
                    }
                    Err(e) => check_err(e, with_peer),
                }
            }
            Op::Send { port: p, with_peer } => {
                let peer = if with_peer { Peer::Other(other, om) } else { Peer::None };
                match me.send(mm, port(p), peer) {
                    Ok(n) => check_notify(n),
                    Err(e) => check_err(e, with_peer),
                }
            }
            Op::Unmask { port: p } => {
                if let Ok(n) = me.unmask(mm, port(p)) {
                    check_notify(n);
                }
            }
            Op::BindVcpu { port: p, vcpu } => {
                let _ = me.bind_vcpu(port(p), u32::from(vcpu % 4));
            }
            Op::SetPriority { port: p, prio } => {
                let _ = me.set_priority(port(p), u32::from(prio % 20));
            }
            Op::RaiseVirq { virq, vcpu } => {
                check_notify(me.raise_virq(mm, u32::from(virq % 30), u32::from(vcpu % 4)));
            }
            Op::InitControl { page, offset, vcpu } => {
                let off = if offset & 0x8000 != 0 { u32::from(offset) << 8 } else { u32::from(offset % 4096) };
                let _ = me.init_control(mm, gfn(page), off, u32::from(vcpu % 4));
            }
            Op::ExpandArray { page } => {
                if let Ok(n) = me.expand_array(mm, gfn(page)) {
                    check_notify(n);
                }
            }
            Op::SetSharedInfo { page, off } => {
                let ipa = (gfn(page) << 12).wrapping_add(u64::from(off % 16) * 8);
                if let Ok(n) = me.set_shared_info(mm, ipa) {
                    check_notify(n);
                }
            }
            Op::RegisterVcpuInfo { vcpu, page, off } => {
                let ipa = (gfn(page) << 12).wrapping_add(u64::from(off % 4100));
                if let Ok(n) = me.register_vcpu_info(mm, u32::from(vcpu % 4), ipa) {
                    check_notify(n);
                    assert_eq!(me.vcpu_info_ipa(u32::from(vcpu % 4)), Some(ipa));
                }
            }
            Op::Reset { with_peer } => {
                let peer = if with_peer { Peer::Other(other, om) } else { Peer::None };
                match me.reset(mm, peer) {
                    Ok(()) => {
                        for p in 0..4096 {
                            match me.status(p, me.domid(), false) {
                                Ok(st) => assert_eq!(st.status, EVTCHNSTAT_closed, "port {p} after reset"),
                                Err(_) => break,
                            }
                        }
                    }
                    Err(e) => {
                        check_err(e, with_peer);
                        // Retrying with the named peer must finish the job.
                        me.reset(mm, Peer::Other(other, om)).expect("reset with the peer");
                    }
                }
            }
            Op::Scribble { page, off, val } => {
                let ipa = (gfn(page) << 12) + u64::from(off % 4096);
                let _ = mm.ram.write(ipa, &val.to_le_bytes()[..(1 + (off >> 12) as usize % 8)]);
            }
            Op::Fill { page, byte } => {
                let ipa = gfn(page) << 12;
                let _ = mm.ram.write(ipa, &[byte; 4096]);
            }
            Op::Vanish { page } => mm.gone.set(page.map(gfn)),
            Op::Flip { bits } => mm.flip.set(bits),
            Op::Status { port: p, caller_other, privileged } => {
                let caller = if caller_other { other_id } else { me.domid() };
                if me.status(port(p), caller, privileged).is_ok() {
                    assert!(!caller_other || privileged);
                }
            }
        }
        for (d, m) in doms.iter().zip(&mems) {
            for v in 0..d.nr_vcpus() + 1 {
                let _ = d.upcall_pending(m, v);
            }
        }
        check(&doms);
    }
});

/// Interdomain ports point at each other, VIRQ ports and the VIRQ table
/// agree, notify vCPUs exist, `peer_of` matches the status.
fn check(doms: &[EvtchnDomain]) {
    for d in doms {
        let me = d.domid();
        assert_eq!(d.status(0, me, false).unwrap().status, EVTCHNSTAT_closed, "port 0");
        for p in 0..=4096 {
            let Ok(st) = d.status(p, me, false) else { break };
            assert!(st.vcpu < d.nr_vcpus(), "dom{me} port {p}: vCPU {}", st.vcpu);
            match st.status {
                EVTCHNSTAT_interdomain => {
                    let i = st.u.interdomain();
                    let other = doms.iter().find(|x| x.domid() == i.dom).expect("peer domain exists");
                    let back = other.status(i.port, i.dom, false).expect("remote port valid");
                    assert_eq!(back.status, EVTCHNSTAT_interdomain, "dom{me}:{p} -> dom{}:{}", i.dom, i.port);
                    let b = back.u.interdomain();
                    assert_eq!((b.dom, b.port), (me, p), "dom{me}:{p} -> dom{}:{}", i.dom, i.port);
                    assert_eq!(d.peer_of(p), (i.dom != me).then_some(i.dom));
                }
                EVTCHNSTAT_virq => {
                    let v = st.u.virq();
                    assert!(v < NR_VIRQS);
                    assert_eq!(d.virq_port(v, st.vcpu), Some(p), "dom{me} port {p} VIRQ {v}");
                    assert_eq!(d.peer_of(p), None);
                }
                EVTCHNSTAT_closed | EVTCHNSTAT_unbound | EVTCHNSTAT_ipi => {
                    assert_eq!(d.peer_of(p), None);
                }
                other => panic!("dom{me} port {p}: status {other}"),
            }
        }
        for virq in 0..NR_VIRQS {
            for v in 0..d.nr_vcpus() {
                if let Some(p) = d.virq_port(virq, v) {
                    let st = d.status(p, me, false).expect("VIRQ port valid");
                    assert_eq!(st.status, EVTCHNSTAT_virq, "dom{me} VIRQ {virq} vCPU {v} -> port {p}");
                    assert_eq!(st.u.virq(), virq);
                }
            }
        }
    }
}
