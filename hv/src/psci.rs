//! PSCI 1.1 and SMCCC 1.1 for guests (conduit `HVC #0`, or a trapped
//! `SMC #0`), answered as Xen 4.17 answers them.

use crate::domain::{Domain, Power};
use crate::hw::firmware;
use crate::run;
use crate::trap::Frame;
use hv_arm::psci::{self, SmcccCall};

pub fn handle(dom: &Domain, vcpu: usize, frame: &mut Frame) {
    let call = psci::decode(frame.x[0], frame.x[1], frame.x[2], frame.x[3]);
    let ret: i64 = match call {
        SmcccCall::PsciVersion => psci::PSCI_VERSION_1_1 as i64,
        SmcccCall::SmcccVersion => psci::SMCCC_VERSION_1_1 as i64,
        SmcccCall::PsciFeatures { fid } => psci::features(fid),
        SmcccCall::SmcccArchFeatures { fid } => psci::arch_features(fid, &psci::Mitigations::NONE),
        SmcccCall::ArchWorkaround1 | SmcccCall::ArchWorkaround3 => return,
        SmcccCall::ArchWorkaround2 { .. } => return,
        SmcccCall::MigrateInfoType => psci::MIGRATE_INFO_TYPE_NO_TOS,
        // Standby: return at once; a pending interrupt is taken on return.
        SmcccCall::CpuSuspend { .. } => psci::SUCCESS,
        SmcccCall::CpuOff => {
            crate::log!(Debug, "d{}v{}: CPU_OFF", dom.id, vcpu);
            run::vcpu_off(dom, &dom.vcpus[vcpu]);
        }
        SmcccCall::CpuOn { target_mpidr, entry, context_id } => cpu_on(dom, target_mpidr, entry, context_id),
        SmcccCall::AffinityInfo { target_affinity, lowest_level } => psci::affinity_info(
            target_affinity,
            lowest_level as u32,
            dom.vcpus.iter().map(|v| (v.vaff, *v.power.lock() == Power::Off)),
        ),
        SmcccCall::SystemOff => {
            crate::log!(Info, "d{}: SYSTEM_OFF", dom.id);
            if dom.id == 0 {
                crate::log!(Info, "Hardware domain powered off: halting the machine");
                firmware::system_off();
            }
            crate::domain::shutdown(dom, xen_abi::sched::SHUTDOWN_poweroff);
            psci::SUCCESS
        }
        SmcccCall::SystemReset => {
            crate::log!(Info, "d{}: SYSTEM_RESET", dom.id);
            if dom.id == 0 {
                crate::log!(Info, "Hardware domain rebooted: resetting the machine");
                firmware::system_reset();
            }
            crate::domain::shutdown(dom, xen_abi::sched::SHUTDOWN_reboot);
            psci::SUCCESS
        }
        SmcccCall::StdCallCount => psci::STD_CALL_COUNT as i64,
        SmcccCall::HypCallCount => psci::XEN_HYP_CALL_COUNT as i64,
        SmcccCall::StdCallUid => return set4(frame, psci::STD_UID_REGS),
        SmcccCall::HypCallUid => return set4(frame, psci::XEN_HYP_UID_REGS),
        SmcccCall::StdRevision | SmcccCall::HypRevision => {
            frame.x[1] = psci::SERVICE_REVISION.1;
            psci::SERVICE_REVISION.0 as i64
        }
        SmcccCall::Unknown { .. } => psci::NOT_SUPPORTED,
    };
    frame.x[0] = ret as u64;
}

fn set4(frame: &mut Frame, r: [u64; 4]) {
    frame.x[..4].copy_from_slice(&r);
}

fn cpu_on(dom: &Domain, target: u64, entry: u64, ctx: u64) -> i64 {
    if !psci::valid_entry_point(entry) {
        return psci::INVALID_ADDRESS;
    }
    let Some(v) = dom.vcpu_by_mpidr(target) else { return psci::INVALID_PARAMETERS };
    let mut p = v.power.lock();
    match *p {
        Power::On => return psci::ALREADY_ON,
        Power::Starting { .. } => return psci::ON_PENDING,
        Power::Off => *p = Power::Starting { entry, ctx },
    }
    drop(p);
    crate::log!(Debug, "d{}: CPU_ON v{} at {:#x}", dom.id, v.id, entry);
    if dom.is_hardware() {
        // vCPU n runs on physical CPU n, which idles until this request.
        if let Some(mpidr) = crate::percpu::mpidr(v.id) {
            crate::hw::gicv3::send_sgi(mpidr, run::SGI_KICK);
        }
    } else {
        run::vcpu_startable(dom, v);
    }
    psci::SUCCESS
}
