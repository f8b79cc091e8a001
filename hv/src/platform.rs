//! The hardware behind the arch-neutral interfaces: physical GIC operations
//! for the vGIC's pass-through SPIs, and heap pages for stage-2 tables.

use crate::hw::gicv3;
use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use hv_arm::stage2::TableMemory;
use hv_arm::vgic::PhysIrq;

/// Pass-through SPI control: vCPU n runs on physical CPU n.
pub struct PhysGic;

impl PhysIrq for PhysGic {
    fn set_enabled(&mut self, pintid: u32, enabled: bool) {
        gicv3::set_spi_enabled(pintid, enabled);
    }

    fn set_edge(&mut self, pintid: u32, edge: bool) {
        gicv3::set_spi_edge(pintid, edge);
    }

    fn deactivate(&mut self, pintid: u32) {
        gicv3::deactivate_spi(pintid);
    }

    fn route_to_vcpu(&mut self, pintid: u32, vcpu: usize) {
        if let Some(mpidr) = crate::percpu::mpidr(vcpu) {
            gicv3::route_spi(pintid, mpidr);
        }
    }
}

/// Stage-2 table pages from the heap (identity mapped: PA == VA).
pub struct HeapTables;

impl TableMemory for HeapTables {
    fn alloc_zeroed(&mut self, pages: usize) -> Option<u64> {
        let layout = Layout::from_size_align(pages * 4096, pages.next_power_of_two() * 4096).ok()?;
        // SAFETY: the layout has non-zero size.
        let p = unsafe { alloc_zeroed(layout) };
        (!p.is_null()).then_some(p as u64)
    }

    fn read_entry(&self, table_pa: u64, index: usize) -> u64 {
        debug_assert!(index < 1024);
        // SAFETY: `table_pa` came from `alloc_zeroed` (the stage-2 code only
        // follows entries it wrote) and index is within its pages.
        unsafe { core::ptr::read_volatile((table_pa as *const u64).add(index)) }
    }

    fn write_entry(&mut self, table_pa: u64, index: usize, value: u64) {
        debug_assert!(index < 1024);
        // SAFETY: as for `read_entry`.
        unsafe { core::ptr::write_volatile((table_pa as *mut u64).add(index), value) }
    }

    /// Break-before-make: the old entry is gone from every CPU's TLBs
    /// before its table may be freed. Runs with this domain's VTTBR loaded
    /// (or before the domain first runs, when nothing is cached for it).
    fn tlb_invalidate(&mut self, ipa: u64, size: u64) {
        crate::hw::cache::invalidate_ipa_range(ipa, size);
    }

    fn free(&mut self, pa: u64, pages: usize) {
        if let Ok(layout) = Layout::from_size_align(pages * 4096, pages.next_power_of_two() * 4096) {
            // SAFETY: `pa` was returned by `alloc_zeroed` with this layout.
            unsafe { dealloc(pa as *mut u8, layout) };
        }
    }
}

/// Stage-2 table pages of one domain: heap pages, with TLB invalidation
/// under that domain's VMID (switching VTTBR_EL2 for the duration when the
/// calling CPU runs another domain).
pub struct Tables {
    vttbr: u64,
}

impl Tables {
    pub fn of(dom: &crate::domain::Domain) -> Tables {
        Tables { vttbr: dom.vttbr }
    }

    /// Drop every cached stage-1+2 translation of this domain on all CPUs.
    pub fn flush_all(&mut self) {
        self.with_vmid(crate::hw::cache::flush_guest_tlb);
    }

    /// Run TLB maintenance `f` with this domain's VMID in VTTBR_EL2.
    fn with_vmid(&self, f: impl FnOnce()) {
        use crate::hw::sysreg::{isb, vttbr_el2};
        let cur = vttbr_el2::read();
        if cur == self.vttbr {
            f();
            return;
        }
        // SAFETY: EL2 runs with interrupts masked and no guest executes on
        // this CPU until the previous value is back; VTTBR_EL2 only selects
        // which VMID the TLB maintenance applies to.
        unsafe {
            vttbr_el2::write(self.vttbr);
            isb();
        }
        f();
        // SAFETY: as above, the previous value back.
        unsafe {
            vttbr_el2::write(cur);
            isb();
        }
    }
}

impl TableMemory for Tables {
    fn alloc_zeroed(&mut self, pages: usize) -> Option<u64> {
        HeapTables.alloc_zeroed(pages)
    }

    fn read_entry(&self, table_pa: u64, index: usize) -> u64 {
        HeapTables.read_entry(table_pa, index)
    }

    fn write_entry(&mut self, table_pa: u64, index: usize, value: u64) {
        HeapTables.write_entry(table_pa, index, value)
    }

    fn tlb_invalidate(&mut self, ipa: u64, size: u64) {
        self.with_vmid(|| crate::hw::cache::invalidate_ipa_range(ipa, size));
    }

    fn free(&mut self, pa: u64, pages: usize) {
        HeapTables.free(pa, pages)
    }
}
