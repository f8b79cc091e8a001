//! Creating and destroying unprivileged domains (XEN_DOMCTL_createdomain /
//! destroydomain). A domU has Xen's guest layout (`xen_abi::arch_arm`): an
//! emulated GICv3 at GUEST_GICV3_*, RAM populated later by the toolstack,
//! the event upcall on GUEST_EVTCHN_PPI, no UART and no devices.

use crate::domain::{self, Domain, Life, Vcpu, Window, HVM_NR_PARAMS};
use crate::hw::sysreg;
use crate::platform::HeapTables;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use hv_arm::stage2::{self, Stage2};
use hv_arm::vgic::{Vgic, VgicConfig};
use hv_arm::vpl011::Vpl011;
use hv_core::mem::Range;
use hv_core::p2m::OwnedMap;
use spin::Mutex;
use xen_abi::arch_arm::*;
use xen_abi::domctl::*;
use xen_abi::errno::*;

/// Most vCPUs a domU may have (the vGIC's limit).
pub const MAX_VCPUS: u32 = 64;

/// Check a createdomain request as Xen on Arm does; fills in what the
/// hypervisor chose (GIC version).
pub fn sanitise(cfg: &mut XenDomctlCreatedomain) -> Result<(), i32> {
    let need = XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_hap;
    if cfg.flags & need != need {
        return Err(EINVAL);
    }
    if cfg.max_vcpus == 0 || cfg.max_vcpus > MAX_VCPUS {
        return Err(EINVAL);
    }
    match cfg.arch.gic_version {
        XEN_DOMCTL_CONFIG_GIC_NATIVE | XEN_DOMCTL_CONFIG_GIC_V3 => cfg.arch.gic_version = XEN_DOMCTL_CONFIG_GIC_V3,
        _ => return Err(EOPNOTSUPP),
    }
    if cfg.arch.nr_spis > 960 || cfg.arch.tee_type != 0 {
        return Err(EINVAL);
    }
    Ok(())
}

/// Build domain `id` from a sanitised request. It starts paused, with no
/// memory and every vCPU off.
pub fn create(id: u16, cfg: &XenDomctlCreatedomain) -> Result<Arc<Domain>, i32> {
    let nr = cfg.max_vcpus as usize;
    let vmid = domain::alloc_vmid().ok_or(ENOMEM)?;
    let s2 = match Stage2::new(&mut HeapTables) {
        Ok(s) => s,
        Err(_) => return Err(ENOMEM),
    };
    let vaff: Vec<u64> = (0..nr).map(|i| hv_core::dt::vcpuid_to_vaffinity(i as u32)).collect();
    let nr_spis = cfg.arch.nr_spis.div_ceil(32) * 32;
    let mut vgic = Vgic::new(VgicConfig { nr_vcpus: nr, nr_spis, vcpu_mpidr: vaff.clone() });
    // The vCPU owns its physical CPU, so the physical virtual-timer PPI is its own.
    vgic.map_hw(crate::irq::VTIMER_PPI, crate::irq::VTIMER_PPI);
    vgic.map_hw(crate::irq::PTIMER_PPI, crate::irq::PTIMER_PPI);
    let grant_window = Range::new(GUEST_GNTTAB_BASE, GUEST_GNTTAB_SIZE);
    // The toolstack's event-channel limit (libxl's default 1023 if unset).
    let max_port = match cfg.max_evtchn_port {
        0 => 1023,
        p => p.min(4095),
    };
    let Some(xen) = crate::xen::XenDom::new(id, nr, grant_window, max_port) else {
        s2.destroy(&mut HeapTables);
        return Err(ENOMEM);
    };
    let parange = (sysreg::id_aa64mmfr0_el1::read() & 0xf) as u8;
    let d = Domain {
        id,
        vcpus: (0..nr).map(|i| Vcpu::new(i, vaff[i], domain::Power::Off)).collect(),
        vgic: Mutex::new(vgic),
        gicd: Window { base: GUEST_GICV3_GICD_BASE, size: GUEST_GICV3_GICD_SIZE },
        gicr: Window { base: GUEST_GICV3_GICR0_BASE, size: nr as u64 * GUEST_GICV3_RDIST_STRIDE },
        vuart: Mutex::new(Vpl011::new()),
        uart: Window::NONE,
        uart_intid: 0,
        evtchn_ppi: GUEST_EVTCHN_PPI,
        vmid,
        vttbr: stage2::vttbr_el2(s2.root_pa(), vmid),
        vtcr: stage2::vtcr_el2(parange),
        cntvoff: sysreg::cntpct_el0::read(),
        s2: Mutex::new(s2),
        ram: alloc::vec![
            Range::new(GUEST_RAM0_BASE, GUEST_RAM0_SIZE),
            Range::new(GUEST_MAGIC_BASE, GUEST_MAGIC_SIZE),
        ],
        owned: Mutex::new(OwnedMap::new()),
        max_pages: AtomicU64::new(0),
        foreign: Mutex::new(BTreeMap::new()),
        mapped_by_others: core::sync::atomic::AtomicUsize::new(0),
        pins: Mutex::new(alloc::collections::BTreeMap::new()),
        life: Life::new(1),
        hvm_params: Mutex::new([0; HVM_NR_PARAMS]),
        handle: Mutex::new(cfg.handle),
        xen,
    };
    Ok(Arc::new(d))
}

/// XEN_DOMCTL_destroydomain: the domain stops for good. Its event channels
/// close now; memory and tables go when the last reference does.
pub fn destroy(domid: u16) -> Result<(), i32> {
    if domid == 0 {
        return Err(EINVAL);
    }
    let d = domain::remove(domid).ok_or(ESRCH)?;
    d.life.dying.store(true, Ordering::Release);
    crate::run::kick_domain(&d);
    crate::xen::hypercall::evtchn_teardown(&d);
    crate::log!(Info, "d{}: destroyed by the toolstack ({} pages, {} mapped elsewhere)", domid, d.tot_pages(),
        d.mapped_by_others.load(Ordering::Acquire));
    domain::DOM_EXC_PENDING.store(true, Ordering::Release);
    drop(d);
    Ok(())
}
