//! FIFO ABI: per-vCPU control blocks (`ready`, `head[16]`), an event array
//! of guest pages (1024 `event_word_t` each), and 16 priority queues per
//! vCPU linked through the words' LINK fields.
//!
//! The guest owns the array and may rewrite it at any time. The hypervisor
//! keeps each queue's tail itself and never walks a queue; the only loop
//! over guest-controlled data is the cmpxchg that links a new event after
//! the tail, bounded as in Xen (a BUSY-locked tail, then at most 4 tries;
//! giving up drops that link, never hangs). Bit updates use atomic OR/AND
//! on the aligned 64-bit word around the 32-bit event word, which cannot be
//! starved by the guest.

use super::{probe, Chan, EvtchnDomain, Notify, Port, VcpuSet, PAGE_SIZE};
use crate::guest::{GuestFault, GuestMemory};
use alloc::vec::Vec;
use xen_abi::errno::Errno;
use xen_abi::event_channel::{
    EVTCHN_2L_NR_CHANNELS, EVTCHN_FIFO_BUSY, EVTCHN_FIFO_LINKED, EVTCHN_FIFO_LINK_BITS,
    EVTCHN_FIFO_LINK_MASK, EVTCHN_FIFO_MASKED, EVTCHN_FIFO_MAX_QUEUES, EVTCHN_FIFO_NR_CHANNELS,
    EVTCHN_FIFO_PENDING, EVTCHN_FIFO_PRIORITY_DEFAULT,
};

/// Event words per array page.
pub const WORDS_PER_PAGE: u32 = (PAGE_SIZE / 4) as u32;
/// Most event array pages (`EVTCHN_FIFO_NR_CHANNELS / 1024` = 128).
pub const MAX_ARRAY_PAGES: usize = (EVTCHN_FIFO_NR_CHANNELS / WORDS_PER_PAGE) as usize;
/// `sizeof(evtchn_fifo_control_block)`.
pub const CONTROL_BLOCK_SIZE: u32 = 72;
/// How often linking after a contended tail is retried (as Xen).
const LINK_TRIES: usize = 4;

/// (aligned u64 IPA, mask) for bit `bit` of the u32 at `ipa` (4-aligned).
fn bit64(ipa: u64, bit: u32) -> (u64, u64) {
    let shift = bit + if ipa & 4 != 0 { 32 } else { 0 };
    (ipa & !7, 1u64 << shift)
}

fn test_and_set(mem: &dyn GuestMemory, ipa: u64, bit: u32) -> Result<bool, GuestFault> {
    let (a, m) = bit64(ipa, bit);
    Ok(mem.fetch_or_u64(a, m)? & m != 0)
}

fn test_and_clear(mem: &dyn GuestMemory, ipa: u64, bit: u32) -> Result<bool, GuestFault> {
    let (a, m) = bit64(ipa, bit);
    Ok(mem.fetch_and_u64(a, !m)? & m != 0)
}

fn test(mem: &dyn GuestMemory, ipa: u64, bit: u32) -> Result<bool, GuestFault> {
    Ok(mem.read_u32(ipa)? & (1 << bit) != 0)
}

/// Single-copy-atomic store of a u32 (the trait's plain `write` is a byte
/// copy); a guest racing every attempt only gets the plain write.
fn store_u32(mem: &dyn GuestMemory, ipa: u64, val: u32) -> Result<(), GuestFault> {
    let mut cur = mem.read_u32(ipa)?;
    for _ in 0..LINK_TRIES {
        let found = mem.cmpxchg_u32(ipa, cur, val)?;
        if found == cur {
            return Ok(());
        }
        cur = found;
    }
    mem.write_u32(ipa, val)
}

enum Link {
    /// The tail was not LINKED any more (consumed): the queue is empty.
    Unlinked,
    Done,
    Raced(u32),
}

/// Xen's `try_set_link`: set LINK of the word at `ipa` (last seen as `w`)
/// iff it is still LINKED, clearing BUSY.
fn try_set_link(mem: &dyn GuestMemory, ipa: u64, w: u32, link: Port) -> Result<Link, GuestFault> {
    if w & (1 << EVTCHN_FIFO_LINKED) == 0 {
        return Ok(Link::Unlinked);
    }
    let new = (w & !((1 << EVTCHN_FIFO_BUSY) | EVTCHN_FIFO_LINK_MASK)) | link;
    let found = mem.cmpxchg_u32(ipa, w, new)?;
    Ok(if found == w {
        Link::Done
    } else {
        Link::Raced(found)
    })
}

impl EvtchnDomain {
    /// IPA of `port`'s event word, if its array page has been added.
    pub(super) fn fifo_word(&self, port: Port) -> Option<u64> {
        let pages = self.fifo.as_ref()?;
        let base = *pages.get((port / WORDS_PER_PAGE) as usize)?;
        Some(base + u64::from(port % WORDS_PER_PAGE) * 4)
    }

    /// Append `port` to the tail word at `tail_ipa`: true if linked, false
    /// if the tail had been consumed (the caller then writes `head`).
    fn fifo_set_link(&mut self, mem: &dyn GuestMemory, tail_ipa: u64, port: Port) -> bool {
        let r = (|| {
            let w = mem.read_u32(tail_ipa)?;
            match try_set_link(mem, tail_ipa, w, port)? {
                Link::Unlinked => return Ok(false),
                Link::Done => return Ok(true),
                Link::Raced(_) => {}
            }
            // Hold BUSY so the guest cannot unmask (rewrite) the tail.
            test_and_set(mem, tail_ipa, EVTCHN_FIFO_BUSY)?;
            let mut w = mem.read_u32(tail_ipa)?;
            for _ in 0..LINK_TRIES {
                match try_set_link(mem, tail_ipa, w, port)? {
                    Link::Unlinked => {
                        test_and_clear(mem, tail_ipa, EVTCHN_FIFO_BUSY)?;
                        return Ok(false);
                    }
                    Link::Done => return Ok(true),
                    Link::Raced(found) => w = found,
                }
            }
            // A guest fighting us: give up on this link (Xen does too).
            test_and_clear(mem, tail_ipa, EVTCHN_FIFO_BUSY)?;
            Ok(true)
        })();
        match r {
            Ok(linked) => linked,
            Err(f) => {
                // The tail word vanished: restart the queue at `port`.
                self.fault(f);
                false
            }
        }
    }

    /// Xen's `evtchn_fifo_set_pending`.
    pub(super) fn fifo_set_pending(
        &mut self,
        mem: &dyn GuestMemory,
        port: Port,
        vcpu: u32,
    ) -> VcpuSet {
        let Some(word) = self.fifo_word(port) else {
            // Array page not there yet: remember, replay on expand_array.
            self.chans[port as usize].saved_pending = true;
            return VcpuSet::EMPTY;
        };
        let v = vcpu as usize;
        // No control block: the guest cannot have unmasked anything yet.
        let Some(cb) = self.vcpus[v].control_block else {
            return VcpuSet::EMPTY;
        };

        let r = (|| -> Result<bool, GuestFault> {
            test_and_set(mem, word, EVTCHN_FIFO_PENDING)?;
            if test(mem, word, EVTCHN_FIFO_MASKED)? {
                return Ok(false);
            }
            Ok(!test_and_set(mem, word, EVTCHN_FIFO_LINKED)?)
        })();
        let newly_linked = match r {
            Ok(l) => l,
            Err(f) => {
                self.fault(f);
                return VcpuSet::EMPTY;
            }
        };
        if !newly_linked {
            return VcpuSet::EMPTY;
        }

        let c: Chan = self.chans[port as usize];
        let q = usize::from(c.priority).min(EVTCHN_FIFO_MAX_QUEUES - 1);
        // If it was the tail of the queue it was last on, that queue has
        // been consumed past it: forget the tail so nothing links after it.
        let (ov, oq) = (c.last_vcpu as usize, usize::from(c.last_prio));
        if let Some(t) = self.vcpus.get_mut(ov).and_then(|v| v.tail.get_mut(oq)) {
            if *t == port {
                *t = 0;
            }
        }
        let ch = &mut self.chans[port as usize];
        ch.last_vcpu = vcpu;
        ch.last_prio = q as u8;

        let tail = self.vcpus[v].tail[q];
        let linked = match (tail != 0).then(|| self.fifo_word(tail)).flatten() {
            Some(tw) => self.fifo_set_link(mem, tw, port),
            None => false,
        };
        if !linked {
            if let Err(f) = store_u32(mem, cb + 8 + 4 * q as u64, port) {
                self.fault(f);
            }
        }
        self.vcpus[v].tail[q] = port;
        if linked {
            return VcpuSet::EMPTY;
        }
        match test_and_set(mem, cb, q as u32) {
            Ok(false) => self.mark_upcall(mem, vcpu),
            Ok(true) => VcpuSet::EMPTY,
            Err(f) => {
                self.fault(f);
                VcpuSet::EMPTY
            }
        }
    }

    /// Xen's `evtchn_fifo_unmask`: clear MASKED, relink if PENDING.
    pub(super) fn fifo_unmask(&mut self, mem: &dyn GuestMemory, port: Port, vcpu: u32) -> VcpuSet {
        let Some(word) = self.fifo_word(port) else {
            return VcpuSet::EMPTY;
        };
        let r = test_and_clear(mem, word, EVTCHN_FIFO_MASKED)
            .and_then(|_| test(mem, word, EVTCHN_FIFO_PENDING));
        match r {
            Ok(true) => self.fifo_set_pending(mem, port, vcpu),
            Ok(false) => VcpuSet::EMPTY,
            Err(f) => {
                self.fault(f);
                VcpuSet::EMPTY
            }
        }
    }

    pub(super) fn fifo_clear_pending(&mut self, mem: &dyn GuestMemory, port: Port) {
        if let Some(word) = self.fifo_word(port) {
            if let Err(f) = test_and_clear(mem, word, EVTCHN_FIFO_PENDING) {
                self.fault(f);
            }
        }
    }

    /// A closed port still on a guest queue must not be reused yet.
    pub(super) fn fifo_is_busy(&self, mem: &dyn GuestMemory, port: Port) -> bool {
        match self.fifo_word(port) {
            Some(w) => test(mem, w, EVTCHN_FIFO_LINKED).unwrap_or(false),
            None => false,
        }
    }

    /// `EVTCHNOP_init_control`: register `vcpu`'s control block at
    /// `control_gfn`/`offset` (the vCPU may be offline). The first call
    /// switches the domain to FIFO, keeping pending state of bound ports
    /// (delivered once their array page exists). Returns `link_bits` (17).
    ///
    /// Errors as Xen: `-ENOENT` no such vCPU; `-EINVAL` offset past
    /// `4096 - 72` or not 8-aligned, control block already registered for
    /// this vCPU, or the frame is not writable RAM (the domain then stays
    /// in its current ABI).
    pub fn init_control(
        &mut self,
        mem: &dyn GuestMemory,
        control_gfn: u64,
        offset: u32,
        vcpu: u32,
    ) -> Result<u8, Errno> {
        if vcpu >= self.nr_vcpus() {
            return Err(Errno::ENOENT);
        }
        if offset > PAGE_SIZE as u32 - CONTROL_BLOCK_SIZE || !offset.is_multiple_of(8) {
            return Err(Errno::EINVAL);
        }
        if self.fifo.is_some() && self.vcpus[vcpu as usize].control_block.is_some() {
            return Err(Errno::EINVAL);
        }
        let base = control_gfn.checked_mul(PAGE_SIZE).ok_or(Errno::EINVAL)?;
        probe(mem, base)?;
        let cb = base + u64::from(offset);
        if self.fifo.is_none() {
            self.switch_to_fifo(mem);
        }
        self.vcpus[vcpu as usize].control_block = Some(cb);
        Ok(EVTCHN_FIFO_LINK_BITS as u8)
    }

    /// Xen's `setup_ports`: carry 2-level pending bits over, default
    /// priorities, empty queues.
    fn switch_to_fifo(&mut self, mem: &dyn GuestMemory) {
        let end = self.chans.len().min(EVTCHN_2L_NR_CHANNELS as usize);
        for p in 1..end {
            if self.chans[p].usable() {
                let pending = self.is_pending_2l(mem, p as Port);
                let c = &mut self.chans[p];
                c.saved_pending = pending;
                c.priority = EVTCHN_FIFO_PRIORITY_DEFAULT as u8;
            }
        }
        for v in &mut self.vcpus {
            v.control_block = None;
            v.tail = [0; EVTCHN_FIFO_MAX_QUEUES];
        }
        self.fifo = Some(Vec::new());
    }

    /// `EVTCHNOP_expand_array`: add the next event array page (ports
    /// `1024·n .. 1024·(n+1)`), then deliver events remembered for them.
    /// `-EOPNOTSUPP` not in FIFO mode, `-ENOSPC` 128 pages already,
    /// `-EINVAL` not writable RAM, `-ENOMEM`.
    pub fn expand_array(&mut self, mem: &dyn GuestMemory, array_gfn: u64) -> Result<Notify, Errno> {
        let Some(pages) = self.fifo.as_mut() else {
            return Err(Errno::EOPNOTSUPP);
        };
        if pages.len() >= MAX_ARRAY_PAGES {
            return Err(Errno::ENOSPC);
        }
        let base = array_gfn.checked_mul(PAGE_SIZE).ok_or(Errno::EINVAL)?;
        probe(mem, base)?;
        pages.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
        pages.push(base);
        let first = (pages.len() - 1) * WORDS_PER_PAGE as usize;
        let end = (first + WORDS_PER_PAGE as usize).min(self.chans.len());
        let mut n = VcpuSet::EMPTY;
        for p in first.max(1)..end {
            let c = self.chans[p];
            if c.usable() && c.saved_pending {
                self.chans[p].saved_pending = false;
                n = n.union(self.fifo_set_pending(mem, p as Port, c.notify_vcpu));
            }
        }
        Ok(Notify::local(n))
    }

    /// Number of event array pages (FIFO), or `None` in the 2-level ABI.
    pub fn fifo_array_pages(&self) -> Option<usize> {
        self.fifo.as_ref().map(Vec::len)
    }
}
