//! Host tests: known values and zerocopy round trips. Sizes and offsets are
//! checked at compile time next to each struct.

use zerocopy::{FromBytes, FromZeros, IntoBytes};

use crate::errno::{self, Errno};
use crate::event_channel::*;
use crate::grant_table::*;
use crate::hvm_params::*;
use crate::io::ring::const_ring_size;
use crate::io::xs_wire::{self, XsdSockmsg, XSD_ERRORS, XS_READ};
use crate::memory::*;
use crate::version::*;
use crate::xen::*;

const fn bit(n: u32) -> u32 {
    1 << n
}

#[test]
fn feature_masks_reported_by_xen_4_17_on_arm() {
    let common = bit(XENFEAT_writable_page_tables)
        | bit(XENFEAT_auto_translated_physmap)
        | bit(XENFEAT_memory_op_vnode_supported)
        | bit(XENFEAT_ARM_SMCCC_supported);
    let domu = common | bit(XENFEAT_not_direct_mapped);
    let dom0 = common | bit(XENFEAT_dom0) | bit(XENFEAT_direct_mapped);
    assert_eq!(domu, 0x0001_6005);
    assert_eq!(dom0, 0x0002_6805);
}

#[test]
fn feature_info_round_trip() {
    let info = XenFeatureInfo {
        submap_idx: 0,
        submap: 0x0001_6005,
    };
    assert_eq!(info.as_bytes(), &[0, 0, 0, 0, 0x05, 0x60, 0x01, 0x00]);
    let back = XenFeatureInfo::read_from_bytes(info.as_bytes()).unwrap();
    assert_eq!(back, info);
}

#[test]
fn hypercall_and_domid_values() {
    assert_eq!(XEN_HYPERCALL_TAG, 0xEA1);
    assert_eq!(HYPERVISOR_memory_op, 12);
    assert_eq!(HYPERVISOR_event_channel_op, 32);
    assert_eq!(HYPERVISOR_hvm_op, 34);
    assert_eq!(DOMID_SELF, 0x7FF0);
    assert_eq!(DOMID_INVALID, 0x7FF4);
}

#[test]
fn errno_negation() {
    assert_eq!(Errno::ENOSYS.neg(), -38);
    assert_eq!(Errno::EINVAL.neg() as u64, 0xFFFF_FFFF_FFFF_FFEA);
    assert_eq!(Errno(errno::EISCONN).get(), 106);
}

#[test]
fn shared_info_in_a_zeroed_page() {
    let mut page = [0u8; 4096];
    let (si, _) = SharedInfo::mut_from_prefix(&mut page).unwrap();
    si.vcpu_info[0].evtchn_upcall_pending = 1;
    si.vcpu_info[0].evtchn_pending_sel = 1 << 3;
    si.evtchn_pending[3] = 1 << 5; // port 3 * 64 + 5
    si.wc_sec = 0x1234_5678;
    assert_eq!(page[0], 1);
    assert_eq!(page[8], 1 << 3);
    assert_eq!(page[48 + 3 * 8], 1 << 5);
    assert_eq!(&page[1076..1080], &0x1234_5678u32.to_le_bytes());
}

#[test]
fn vcpu_info_round_trip() {
    let mut v = VcpuInfo::new_zeroed();
    v.evtchn_upcall_pending = 1;
    v.evtchn_pending_sel = !0;
    v.time.version = 2;
    let bytes = v.as_bytes();
    assert_eq!(bytes.len(), 48);
    assert_eq!(&bytes[8..16], &[0xFF; 8]);
    assert_eq!(bytes[16], 2);
    assert_eq!(VcpuInfo::read_from_bytes(bytes).unwrap(), v);
}

#[test]
fn add_to_physmap_from_guest_bytes() {
    // What Linux passes for the shared-info page at GFN 0x40123.
    let mut raw = [0u8; 24];
    raw[0..2].copy_from_slice(&DOMID_SELF.to_le_bytes());
    raw[4..8].copy_from_slice(&XENMAPSPACE_shared_info.to_le_bytes());
    raw[16..24].copy_from_slice(&0x40123u64.to_le_bytes());
    let x = XenAddToPhysmap::read_from_bytes(&raw[..]).unwrap();
    assert_eq!(x.domid, DOMID_SELF);
    assert_eq!(x.space, XENMAPSPACE_shared_info);
    assert_eq!(x.idx, 0);
    assert_eq!(x.gpfn, 0x40123);
    assert_eq!(x.as_bytes(), &raw[..]);
}

#[test]
fn grant_map_round_trip_and_status() {
    let mut op = GnttabMapGrantRef {
        host_addr: 0x3800_0000,
        flags: GNTMAP_host_map | GNTMAP_readonly,
        ref_: 8,
        dom: 1,
        ..Default::default()
    };
    op.status = GNTST_bad_gntref;
    let bytes = op.as_bytes();
    assert_eq!(&bytes[8..12], &6u32.to_le_bytes());
    assert_eq!(&bytes[18..20], &(-3i16).to_le_bytes());
    assert_eq!(GnttabMapGrantRef::read_from_bytes(bytes).unwrap(), op);
}

#[test]
fn grant_entry_flags() {
    let e = GrantEntryV1 {
        flags: GTF_permit_access | GTF_readonly,
        domid: 0,
        frame: 0x4_0000,
    };
    assert_eq!(e.as_bytes(), &[0x05, 0, 0, 0, 0, 0, 0x04, 0]);
    assert_eq!(e.flags & GTF_type_mask, GTF_permit_access);
    assert_eq!(GTF_reading | GTF_writing, 0x18);
}

#[test]
fn union_accessors() {
    let c = GnttabCopyPtrU::from_gref(0xAABB_CCDD);
    assert_eq!(c.gref(), 0xAABB_CCDD);
    assert_eq!(&c.as_bytes()[..4], &0xAABB_CCDDu32.to_ne_bytes());
    assert_eq!(GnttabCopyPtrU::from_gmfn(0x1_2345).gmfn(), 0x1_2345);

    let a = GnttabCacheFlushA::from_gref(7);
    assert_eq!(a.gref(), 7);

    let s = EvtchnStatusU::from_interdomain(EvtchnStatusInterdomain {
        dom: 3,
        _pad0: 0,
        port: 9,
    });
    assert_eq!(s.unbound_dom(), 3);
    assert_eq!(s.interdomain().port, 9);
    assert_eq!(EvtchnStatusU::from_u32(VIRQ_CONSOLE).virq(), VIRQ_CONSOLE);
}

#[test]
fn event_channel_limits() {
    assert_eq!(EVTCHN_2L_NR_CHANNELS, 4096);
    assert_eq!(EVTCHN_FIFO_NR_CHANNELS, 131_072);
    assert_eq!(EVTCHN_FIFO_LINK_MASK, 0x1_FFFF);
    assert_eq!(EVTCHN_FIFO_MAX_QUEUES, 16);
}

#[test]
fn callback_irq_for_domu_ppi_31() {
    let v = (HVM_PARAM_CALLBACK_TYPE_PPI << 56)
        | (HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_LOW_LEVEL << 8)
        | 31;
    assert_eq!(v, 0x0200_0000_0000_021F);
    assert_eq!(v & HVM_PARAM_CALLBACK_IRQ_TYPE_MASK, 2 << 56);
}

#[test]
fn xenstore_header_and_errors() {
    let h = XsdSockmsg {
        type_: XS_READ,
        req_id: 1,
        tx_id: 0,
        len: 7,
    };
    let mut buf = [0u8; 16 + 7];
    buf[..16].copy_from_slice(h.as_bytes());
    buf[16..].copy_from_slice(b"device\0");
    let (back, payload) = XsdSockmsg::read_from_prefix(&buf).unwrap();
    assert_eq!(back, h);
    assert_eq!(payload, b"device\0");

    let names: [&str; 16] = core::array::from_fn(|i| XSD_ERRORS[i].errstring);
    assert_eq!(names[0], "EINVAL");
    assert_eq!(names[15], "EPERM");
    let enoent = XSD_ERRORS.iter().find(|e| e.errstring == "ENOENT").unwrap();
    assert_eq!(enoent.errnum, 2);
    assert_eq!(xs_wire::XS_RESET_WATCHES, 21);
    assert_eq!(xs_wire::XENSTORE_PAYLOAD_MAX, 4096);
}

#[test]
fn ring_sizes() {
    // blkif: 112-byte requests, 16-byte responses -> 112-byte slots.
    assert_eq!(const_ring_size(4096, 112), 32);
    // netif tx: 12-byte requests, 4-byte responses.
    assert_eq!(const_ring_size(4096, 12), 256);
    assert_eq!(const_ring_size(4096, 8), 256);
}

#[test]
fn memory_reservation_tail_padding_is_explicit() {
    let r = XenMemoryReservation {
        extent_start: 0xFFFF_8000_0000_1000,
        nr_extents: 1,
        extent_order: 9,
        mem_flags: 0,
        domid: DOMID_SELF,
        _pad0: [0; 6],
    };
    assert_eq!(r.as_bytes().len(), 32);
    assert_eq!(&r.as_bytes()[24..26], &DOMID_SELF.to_le_bytes());
}

#[cfg(feature = "tools")]
#[test]
fn domctl_getdomaininfo_payload() {
    use crate::domctl::*;
    let mut d = XenDomctl::new_zeroed();
    d.cmd = XEN_DOMCTL_getdomaininfo;
    d.interface_version = XEN_DOMCTL_INTERFACE_VERSION;
    d.domain = 1;
    let info = XenDomctlGetdomaininfo {
        domain: 1,
        flags: XEN_DOMINF_hvm_guest | XEN_DOMINF_running,
        tot_pages: 0x4_0000,
        ..Default::default()
    };
    info.write_to_prefix(d.u.as_mut_bytes()).unwrap();
    let (back, _) = XenDomctlGetdomaininfo::read_from_prefix(d.u.as_bytes()).unwrap();
    assert_eq!(back, info);
    assert_eq!(&d.as_bytes()[16 + 8..16 + 16], &0x4_0000u64.to_le_bytes());
    assert_eq!(crate::sysctl::XEN_SYSCTL_INTERFACE_VERSION, 0x15);
}

#[test]
fn arm64_vcpu_guest_context_layout_and_init_values() {
    use crate::arch_arm::*;
    use core::mem::{offset_of, size_of};
    assert_eq!(size_of::<VcpuGuestCoreRegs>(), 312);
    assert_eq!(size_of::<VcpuGuestContext>(), 352);
    assert_eq!(offset_of!(VcpuGuestContext, user_regs), 8);
    assert_eq!(offset_of!(VcpuGuestContext, sctlr), 320);
    assert_eq!(offset_of!(VcpuGuestContext, ttbr1), 344);
    assert_eq!(PSR_GUEST64_INIT, 0x1c5);
    assert_eq!(SCTLR_GUEST_INIT, 0x00c5_0078);
    assert_eq!(VGCF_online, 1);
    let mut c = VcpuGuestContext::new_zeroed();
    c.flags = VGCF_online;
    c.user_regs.x[0] = 0x4800_0000;
    c.user_regs.x[30] = 0x1e;
    c.user_regs.pc64 = 0x4020_0000;
    c.user_regs.cpsr = PSR_GUEST64_INIT.into();
    c.sctlr = SCTLR_GUEST_INIT;
    let b = c.as_bytes();
    assert_eq!(&b[0..4], &1u32.to_le_bytes());
    assert_eq!(&b[8..16], &0x4800_0000u64.to_le_bytes());
    assert_eq!(&b[8 + 30 * 8..8 + 31 * 8], &0x1eu64.to_le_bytes());
    assert_eq!(&b[256..264], &0x4020_0000u64.to_le_bytes());
    assert_eq!(&b[264..272], &0x1c5u64.to_le_bytes());
    assert_eq!(&b[320..328], &0x00c5_0078u64.to_le_bytes());
    assert_eq!(VcpuGuestContext::read_from_bytes(b).unwrap(), c);
}

#[test]
fn arm_guest_memory_map() {
    use crate::arch_arm::*;
    assert_eq!(GUEST_MAGIC_BASE >> 12, 0x39000);
    assert_eq!((GUEST_MAGIC_BASE >> 12) + XENSTORE_PFN_OFFSET, 0x39001);
    assert_eq!(GUEST_RAM0_BASE >> 12, 0x40000);
    assert_eq!(GUEST_GICV3_GICR0_SIZE / GUEST_GICV3_RDIST_STRIDE, 128);
    assert_eq!(GUEST_EVTCHN_PPI, 31);
    const _: () = assert!(NR_MAGIC_PAGES << 12 <= GUEST_MAGIC_SIZE);
    const _: () = assert!(GUEST_GICV3_GICD_BASE + GUEST_GICV3_GICD_SIZE <= GUEST_GICV3_GICR0_BASE);
    assert_eq!(GUEST_TIMER_VIRT_PPI, 27);
    assert_eq!(GUEST_PHANDLE_GIC, 65000);
}

#[test]
fn console_ring_page_layout() {
    use crate::io::console::XenconsInterface;
    use core::mem::offset_of;
    assert_eq!(core::mem::size_of::<XenconsInterface>(), 3088);
    assert_eq!(offset_of!(XenconsInterface, out), 1024);
    assert_eq!(offset_of!(XenconsInterface, in_cons), 3072);
    assert_eq!(offset_of!(XenconsInterface, out_prod), 3084);
}

#[cfg(feature = "tools")]
#[test]
fn domctl_vcpucontext_payload() {
    use crate::domctl::*;
    let p = XenDomctlVcpucontext {
        vcpu: 3,
        _pad0: 0,
        ctxt: 0xFFFF_8000_0012_3000,
    };
    assert_eq!(p.as_bytes().len(), 16);
    assert_eq!(
        &p.as_bytes()[8..16],
        &0xFFFF_8000_0012_3000u64.to_le_bytes()
    );
    assert_eq!(XEN_DOMCTL_CONFIG_GIC_V3, 2);
    assert_eq!(XEN_DOMINF_shutdownshift, 16);
}
