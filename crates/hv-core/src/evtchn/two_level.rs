//! 2-level ABI: `evtchn_pending[64]` / `evtchn_mask[64]` (u64 words) in
//! shared_info, one selector word per vCPU in `vcpu_info`.
//!
//! Before the guest has placed shared_info, raised ports are remembered in
//! the port table (`saved_pending`) and replayed by
//! [`EvtchnDomain::set_shared_info`].

use super::{EvtchnDomain, Port, VcpuSet};
use crate::guest::GuestMemory;
use xen_abi::event_channel::EVTCHN_2L_NR_CHANNELS;

/// Offset of `evtchn_pending` in shared_info.
pub(super) const PENDING_OFF: u64 = 48;
/// Offset of `evtchn_mask` in shared_info.
pub(super) const MASK_OFF: u64 = 560;

/// (IPA of the u64 word holding `port` in the bitmap at `off`, bit mask).
fn word(si: u64, off: u64, port: Port) -> (u64, u64) {
    (si + off + u64::from(port / 64) * 8, 1u64 << (port % 64))
}

impl EvtchnDomain {
    /// Xen's `evtchn_2l_set_pending`.
    pub(super) fn set_pending_2l(
        &mut self,
        mem: &dyn GuestMemory,
        port: Port,
        vcpu: u32,
    ) -> VcpuSet {
        let Some(si) = self.shared_info else {
            self.chans[port as usize].saved_pending = true;
            return VcpuSet::EMPTY;
        };
        let (pw, bit) = word(si, PENDING_OFF, port);
        match mem.fetch_or_u64(pw, bit) {
            Ok(old) if old & bit != 0 => return VcpuSet::EMPTY,
            Ok(_) => {}
            Err(f) => {
                self.fault(f);
                return VcpuSet::EMPTY;
            }
        }
        let (mw, _) = word(si, MASK_OFF, port);
        match mem.read_u64(mw) {
            Ok(m) if m & bit != 0 => VcpuSet::EMPTY,
            Ok(_) => {
                if self.set_selector(mem, vcpu, port / 64) {
                    self.mark_upcall(mem, vcpu)
                } else {
                    VcpuSet::EMPTY
                }
            }
            Err(f) => {
                self.fault(f);
                VcpuSet::EMPTY
            }
        }
    }

    /// Xen's `evtchn_2l_unmask`: clear the mask bit; if it was set and the
    /// port is pending, set the selector and upcall of the notify vCPU.
    pub(super) fn unmask_2l(&mut self, mem: &dyn GuestMemory, port: Port, vcpu: u32) -> VcpuSet {
        let Some(si) = self.shared_info else {
            return VcpuSet::EMPTY;
        };
        let (mw, bit) = word(si, MASK_OFF, port);
        let (pw, _) = word(si, PENDING_OFF, port);
        let was_masked = match mem.fetch_and_u64(mw, !bit) {
            Ok(old) => old & bit != 0,
            Err(f) => {
                self.fault(f);
                return VcpuSet::EMPTY;
            }
        };
        let pending = match mem.read_u64(pw) {
            Ok(p) => p & bit != 0,
            Err(f) => {
                self.fault(f);
                return VcpuSet::EMPTY;
            }
        };
        if was_masked && pending && self.set_selector(mem, vcpu, port / 64) {
            self.mark_upcall(mem, vcpu)
        } else {
            VcpuSet::EMPTY
        }
    }

    pub(super) fn clear_pending_2l(&mut self, mem: &dyn GuestMemory, port: Port) {
        if let Some(si) = self.shared_info {
            let (pw, bit) = word(si, PENDING_OFF, port);
            if let Err(f) = mem.fetch_and_u64(pw, !bit) {
                self.fault(f);
            }
        }
    }

    /// Is `port`'s 2-level pending bit (or remembered pending state) set?
    pub(super) fn is_pending_2l(&mut self, mem: &dyn GuestMemory, port: Port) -> bool {
        if self.chans[port as usize].saved_pending {
            return true;
        }
        let Some(si) = self.shared_info else {
            return false;
        };
        let (pw, bit) = word(si, PENDING_OFF, port);
        match mem.read_u64(pw) {
            Ok(p) => p & bit != 0,
            Err(f) => {
                self.fault(f);
                false
            }
        }
    }

    /// shared_info just appeared: make remembered events visible.
    pub(super) fn replay_2l(&mut self, mem: &dyn GuestMemory) -> VcpuSet {
        let mut n = VcpuSet::EMPTY;
        let end = self.chans.len().min(EVTCHN_2L_NR_CHANNELS as usize);
        for p in 1..end {
            let c = self.chans[p];
            if c.usable() && c.saved_pending {
                self.chans[p].saved_pending = false;
                n = n.union(self.set_pending_2l(mem, p as Port, c.notify_vcpu));
            }
        }
        n
    }
}
