//! PSCI 1.1 and SMCCC 1.1 as Xen presents them to guests (conduit `HVC #0`,
//! or a trapped `SMC #0`): function IDs, decoding of a call from x0..x3, and
//! the answers to the feature queries.
//!
//! Function IDs live in W0 (the upper half of x0 is ignored, as in Xen). For
//! SMC32/HVC32-convention IDs (bit 30 clear) arguments are W registers and
//! are zero-extended here. Unknown IDs decode to [`SmcccCall::Unknown`], to be
//! answered with x0 = [`NOT_SUPPORTED`] (-1).
//!
//! The [`host`] module covers the other direction: the EL2 binary calling the
//! real firmware (QEMU's built-in PSCI, SMC conduit with `virtualization=on`).

/// Function identifiers.
pub mod fid {
    /// PSCI_VERSION.
    pub const PSCI_VERSION: u32 = 0x8400_0000;
    /// CPU_SUSPEND, SMC32.
    pub const CPU_SUSPEND_32: u32 = 0x8400_0001;
    /// CPU_SUSPEND, SMC64.
    pub const CPU_SUSPEND_64: u32 = 0xC400_0001;
    /// CPU_OFF (also the `cpu_off` ID published in the guest DT).
    pub const CPU_OFF: u32 = 0x8400_0002;
    /// CPU_ON, SMC32.
    pub const CPU_ON_32: u32 = 0x8400_0003;
    /// CPU_ON, SMC64 (also the `cpu_on` ID published in the guest DT).
    pub const CPU_ON_64: u32 = 0xC400_0003;
    /// AFFINITY_INFO, SMC32.
    pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
    /// AFFINITY_INFO, SMC64.
    pub const AFFINITY_INFO_64: u32 = 0xC400_0004;
    /// MIGRATE_INFO_TYPE.
    pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
    /// SYSTEM_OFF.
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    /// SYSTEM_RESET.
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
    /// PSCI_FEATURES.
    pub const PSCI_FEATURES: u32 = 0x8400_000A;
    /// Standard service CALL_COUNT.
    pub const STD_CALL_COUNT: u32 = 0x8400_FF00;
    /// Standard service CALL_UID.
    pub const STD_CALL_UID: u32 = 0x8400_FF01;
    /// Standard service REVISION.
    pub const STD_REVISION: u32 = 0x8400_FF03;
    /// SMCCC_VERSION.
    pub const SMCCC_VERSION: u32 = 0x8000_0000;
    /// SMCCC_ARCH_FEATURES.
    pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
    /// SMCCC_ARCH_WORKAROUND_1 (Spectre v2, CVE-2017-5715).
    pub const ARCH_WORKAROUND_1: u32 = 0x8000_8000;
    /// SMCCC_ARCH_WORKAROUND_2 (SSBD, CVE-2018-3639).
    pub const ARCH_WORKAROUND_2: u32 = 0x8000_7FFF;
    /// SMCCC_ARCH_WORKAROUND_3 (Spectre-BHB, CVE-2022-23960).
    pub const ARCH_WORKAROUND_3: u32 = 0x8000_3FFF;
    /// Vendor-specific hypervisor service CALL_COUNT.
    pub const HYP_CALL_COUNT: u32 = 0x8600_FF00;
    /// Vendor-specific hypervisor service CALL_UID.
    pub const HYP_CALL_UID: u32 = 0x8600_FF01;
    /// Vendor-specific hypervisor service REVISION.
    pub const HYP_REVISION: u32 = 0x8600_FF03;
}

/// PSCI_VERSION answer: 1.1.
pub const PSCI_VERSION_1_1: u32 = 0x0001_0001;
/// SMCCC_VERSION answer: 1.1.
pub const SMCCC_VERSION_1_1: u32 = 0x0001_0001;

/// PSCI return code SUCCESS.
pub const SUCCESS: i64 = 0;
/// PSCI NOT_SUPPORTED, also SMCCC's "unknown function" (-1).
pub const NOT_SUPPORTED: i64 = -1;
/// PSCI INVALID_PARAMETERS.
pub const INVALID_PARAMETERS: i64 = -2;
/// PSCI DENIED.
pub const DENIED: i64 = -3;
/// PSCI ALREADY_ON.
pub const ALREADY_ON: i64 = -4;
/// PSCI ON_PENDING.
pub const ON_PENDING: i64 = -5;
/// PSCI INTERNAL_FAILURE.
pub const INTERNAL_FAILURE: i64 = -6;
/// PSCI NOT_PRESENT.
pub const NOT_PRESENT: i64 = -7;
/// PSCI DISABLED.
pub const DISABLED: i64 = -8;
/// PSCI INVALID_ADDRESS.
pub const INVALID_ADDRESS: i64 = -9;
/// SMCCC_ARCH_FEATURES: the workaround exists but this CPU does not need it.
pub const SMCCC_NOT_REQUIRED: i64 = -2;

/// AFFINITY_INFO answer: the target is on.
pub const AFFINITY_ON: i64 = 0;
/// AFFINITY_INFO answer: the target is off.
pub const AFFINITY_OFF: i64 = 1;
/// AFFINITY_INFO answer: the target is being turned on.
pub const AFFINITY_ON_PENDING: i64 = 2;
/// MIGRATE_INFO_TYPE answer: no trusted OS, no migration needed.
pub const MIGRATE_INFO_TYPE_NO_TOS: i64 = 2;

/// MPIDR affinity bits (Aff3, Aff2, Aff1, Aff0).
const MPIDR_HWID_MASK: u64 = 0xff_00ff_ffff;

/// AFFINITY_INFO as Xen 4.17's vPSCI answers it: `lowest_level` above 3
/// is [`INVALID_PARAMETERS`]; otherwise the affinity fields below that
/// level are ignored and the answer is [`AFFINITY_ON`] if any vCPU in the
/// named group is not powered off (a vCPU being started counts as on:
/// Xen starts it at once), else [`AFFINITY_OFF`] — also for a group with
/// no vCPU at all. `vcpus`: (virtual MPIDR affinity, powered off) of each.
pub fn affinity_info(
    target_affinity: u64,
    lowest_level: u32,
    vcpus: impl IntoIterator<Item = (u64, bool)>,
) -> i64 {
    if lowest_level > 3 {
        return INVALID_PARAMETERS;
    }
    let shift = match lowest_level {
        0 => 0,
        1 => 8,
        2 => 16,
        _ => 32,
    };
    let mask = MPIDR_HWID_MASK & !((1u64 << shift) - 1);
    let target = target_affinity & mask;
    if vcpus
        .into_iter()
        .any(|(aff, off)| aff & mask == target && !off)
    {
        AFFINITY_ON
    } else {
        AFFINITY_OFF
    }
}

/// PSCI error as a type, for handlers that return `Result`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciError {
    /// -1
    NotSupported,
    /// -2
    InvalidParameters,
    /// -3
    Denied,
    /// -4
    AlreadyOn,
    /// -5
    OnPending,
    /// -6
    InternalFailure,
    /// -7
    NotPresent,
    /// -8
    Disabled,
    /// -9
    InvalidAddress,
}

impl PsciError {
    /// The value to place in x0.
    pub const fn code(self) -> i64 {
        match self {
            PsciError::NotSupported => NOT_SUPPORTED,
            PsciError::InvalidParameters => INVALID_PARAMETERS,
            PsciError::Denied => DENIED,
            PsciError::AlreadyOn => ALREADY_ON,
            PsciError::OnPending => ON_PENDING,
            PsciError::InternalFailure => INTERNAL_FAILURE,
            PsciError::NotPresent => NOT_PRESENT,
            PsciError::Disabled => DISABLED,
            PsciError::InvalidAddress => INVALID_ADDRESS,
        }
    }

    /// Interpret a returned x0 (e.g. from the host firmware). `Ok` carries
    /// non-negative values; unrecognised negative values map to
    /// `InternalFailure`.
    pub const fn check(x0: u64) -> Result<u64, PsciError> {
        let v = x0 as i64;
        if v >= 0 {
            return Ok(x0);
        }
        Err(match v {
            NOT_SUPPORTED => PsciError::NotSupported,
            INVALID_PARAMETERS => PsciError::InvalidParameters,
            DENIED => PsciError::Denied,
            ALREADY_ON => PsciError::AlreadyOn,
            ON_PENDING => PsciError::OnPending,
            NOT_PRESENT => PsciError::NotPresent,
            DISABLED => PsciError::Disabled,
            INVALID_ADDRESS => PsciError::InvalidAddress,
            _ => PsciError::InternalFailure,
        })
    }
}

/// A decoded SMCCC call from a guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmcccCall {
    /// PSCI_VERSION → [`PSCI_VERSION_1_1`].
    PsciVersion,
    /// CPU_SUSPEND (Xen: standby, i.e. block until an interrupt, return 0).
    CpuSuspend {
        /// power_state.
        power_state: u64,
        /// entry_point_address (for powerdown states).
        entry: u64,
        /// context_id.
        context_id: u64,
    },
    /// CPU_OFF: does not return on success.
    CpuOff,
    /// CPU_ON.
    CpuOn {
        /// MPIDR affinity fields of the vCPU to start.
        target_mpidr: u64,
        /// Entry point IPA (see [`valid_entry_point`]).
        entry: u64,
        /// Value for the target's x0.
        context_id: u64,
    },
    /// AFFINITY_INFO → [`AFFINITY_ON`] / [`AFFINITY_OFF`] / error.
    AffinityInfo {
        /// MPIDR affinity fields.
        target_affinity: u64,
        /// Lowest affinity level of interest (Xen accepts only 0).
        lowest_level: u64,
    },
    /// MIGRATE_INFO_TYPE → [`MIGRATE_INFO_TYPE_NO_TOS`].
    MigrateInfoType,
    /// SYSTEM_OFF: domain shutdown (poweroff).
    SystemOff,
    /// SYSTEM_RESET: domain shutdown (reboot).
    SystemReset,
    /// PSCI_FEATURES → [`features`]`(fid)`.
    PsciFeatures {
        /// Queried function ID (W1).
        fid: u32,
    },
    /// SMCCC_VERSION → [`SMCCC_VERSION_1_1`].
    SmcccVersion,
    /// SMCCC_ARCH_FEATURES → [`arch_features`]`(fid, ..)`.
    SmcccArchFeatures {
        /// Queried function ID (W1).
        fid: u32,
    },
    /// ARCH_WORKAROUND_1: no return value (leave x0..x3 untouched).
    ArchWorkaround1,
    /// ARCH_WORKAROUND_2: only meaningful when SSBD is runtime-switchable.
    ArchWorkaround2 {
        /// W1 != 0: enable the mitigation for this vCPU.
        enable: bool,
    },
    /// ARCH_WORKAROUND_3: no return value.
    ArchWorkaround3,
    /// Standard-service CALL_COUNT → [`STD_CALL_COUNT`].
    StdCallCount,
    /// Standard-service CALL_UID → [`STD_UID_REGS`] in x0..x3.
    StdCallUid,
    /// Standard-service REVISION → x0 = 0, x1 = 1.
    StdRevision,
    /// Hypervisor-service CALL_COUNT → [`XEN_HYP_CALL_COUNT`].
    HypCallCount,
    /// Hypervisor-service CALL_UID → [`XEN_HYP_UID_REGS`] in x0..x3.
    HypCallUid,
    /// Hypervisor-service REVISION → x0 = 0, x1 = 1.
    HypRevision,
    /// Anything else: x0 = [`NOT_SUPPORTED`].
    Unknown {
        /// The function ID (W0).
        fid: u32,
    },
}

/// `true` for SMC64/HVC64-convention function IDs (bit 30).
#[inline]
pub const fn is_smc64(fid: u32) -> bool {
    fid & (1 << 30) != 0
}

/// Decode a guest call from its argument registers.
pub const fn decode(x0: u64, x1: u64, x2: u64, x3: u64) -> SmcccCall {
    let fid = x0 as u32;
    // SMC32 convention: arguments are W registers.
    let (a1, a2, a3) = if is_smc64(fid) {
        (x1, x2, x3)
    } else {
        (x1 as u32 as u64, x2 as u32 as u64, x3 as u32 as u64)
    };
    match fid {
        fid::PSCI_VERSION => SmcccCall::PsciVersion,
        fid::CPU_SUSPEND_32 | fid::CPU_SUSPEND_64 => SmcccCall::CpuSuspend {
            power_state: a1,
            entry: a2,
            context_id: a3,
        },
        fid::CPU_OFF => SmcccCall::CpuOff,
        fid::CPU_ON_32 | fid::CPU_ON_64 => SmcccCall::CpuOn {
            target_mpidr: a1,
            entry: a2,
            context_id: a3,
        },
        fid::AFFINITY_INFO_32 | fid::AFFINITY_INFO_64 => SmcccCall::AffinityInfo {
            target_affinity: a1,
            lowest_level: a2,
        },
        fid::MIGRATE_INFO_TYPE => SmcccCall::MigrateInfoType,
        fid::SYSTEM_OFF => SmcccCall::SystemOff,
        fid::SYSTEM_RESET => SmcccCall::SystemReset,
        fid::PSCI_FEATURES => SmcccCall::PsciFeatures { fid: x1 as u32 },
        fid::SMCCC_VERSION => SmcccCall::SmcccVersion,
        fid::SMCCC_ARCH_FEATURES => SmcccCall::SmcccArchFeatures { fid: x1 as u32 },
        fid::ARCH_WORKAROUND_1 => SmcccCall::ArchWorkaround1,
        fid::ARCH_WORKAROUND_2 => SmcccCall::ArchWorkaround2 {
            enable: x1 as u32 != 0,
        },
        fid::ARCH_WORKAROUND_3 => SmcccCall::ArchWorkaround3,
        fid::STD_CALL_COUNT => SmcccCall::StdCallCount,
        fid::STD_CALL_UID => SmcccCall::StdCallUid,
        fid::STD_REVISION => SmcccCall::StdRevision,
        fid::HYP_CALL_COUNT => SmcccCall::HypCallCount,
        fid::HYP_CALL_UID => SmcccCall::HypCallUid,
        fid::HYP_REVISION => SmcccCall::HypRevision,
        other => SmcccCall::Unknown { fid: other },
    }
}

/// PSCI_FEATURES answer, as Xen gives it: 0 (supported; for CPU_SUSPEND this
/// also means "original power_state format, no OS-initiated mode") for the
/// implemented PSCI functions and SMCCC_VERSION, NOT_SUPPORTED otherwise
/// (no SYSTEM_SUSPEND, SYSTEM_RESET2, OSI, ...).
pub const fn features(fid: u32) -> i64 {
    match fid {
        fid::PSCI_VERSION
        | fid::CPU_SUSPEND_32
        | fid::CPU_SUSPEND_64
        | fid::CPU_OFF
        | fid::CPU_ON_32
        | fid::CPU_ON_64
        | fid::AFFINITY_INFO_32
        | fid::AFFINITY_INFO_64
        | fid::MIGRATE_INFO_TYPE
        | fid::SYSTEM_OFF
        | fid::SYSTEM_RESET
        | fid::PSCI_FEATURES
        | fid::SMCCC_VERSION => SUCCESS,
        _ => NOT_SUPPORTED,
    }
}

/// Host Speculative Store Bypass mitigation state (Xen's `ssbd_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SsbdState {
    /// Firmware does not say.
    Unknown,
    /// Mitigation forced off.
    ForceDisable,
    /// Guests may toggle it with ARCH_WORKAROUND_2.
    Runtime,
    /// Mitigation forced on.
    ForceEnable,
    /// CPU not affected.
    Mitigated,
}

/// Host mitigation state that shapes SMCCC_ARCH_FEATURES answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mitigations {
    /// The hypervisor hardens the branch predictor on guest exit (WA1).
    pub workaround_1: bool,
    /// SSBD state (WA2).
    pub ssbd: SsbdState,
    /// The hypervisor applies the Spectre-BHB mitigation (WA3).
    pub workaround_3: bool,
}

impl Mitigations {
    /// Nothing mitigated / firmware silent: what QEMU's built-in PSCI gives
    /// (it does not implement SMCCC_ARCH_FEATURES).
    pub const NONE: Mitigations = Mitigations {
        workaround_1: false,
        ssbd: SsbdState::Unknown,
        workaround_3: false,
    };
}

/// SMCCC_ARCH_FEATURES answer, as Xen gives it: only the three workaround
/// IDs can be reported; everything else is NOT_SUPPORTED.
pub const fn arch_features(fid: u32, m: &Mitigations) -> i64 {
    match fid {
        // WA3 also mitigates Spectre v2, so it implies WA1.
        fid::ARCH_WORKAROUND_1 if m.workaround_1 || m.workaround_3 => SUCCESS,
        fid::ARCH_WORKAROUND_2 => match m.ssbd {
            SsbdState::Runtime => SUCCESS,
            SsbdState::ForceEnable | SsbdState::Mitigated => SMCCC_NOT_REQUIRED,
            SsbdState::Unknown | SsbdState::ForceDisable => NOT_SUPPORTED,
        },
        fid::ARCH_WORKAROUND_3 if m.workaround_3 => SUCCESS,
        _ => NOT_SUPPORTED,
    }
}

/// CPU_ON entry point check for a 64-bit guest (Xen: bit 0 set →
/// [`INVALID_ADDRESS`]).
pub const fn valid_entry_point(entry: u64) -> bool {
    entry & 1 == 0
}

const fn uuid_regs(b: [u8; 16]) -> [u64; 4] {
    let mut r = [0u64; 4];
    let mut n = 0;
    while n < 4 {
        r[n] = u32::from_le_bytes([b[4 * n], b[4 * n + 1], b[4 * n + 2], b[4 * n + 3]]) as u64;
        n += 1;
    }
    r
}

/// Number of hypervisor-service functions Xen reports.
pub const XEN_HYP_CALL_COUNT: u64 = 3;
/// Number of standard-service functions Xen 4.17 reports (3 + 12 PSCI).
pub const STD_CALL_COUNT: u64 = 15;
/// Xen's hypervisor-service UID a71812dc-c698-4369-9acf-79d18ddee667, as
/// x0..x3 (first byte in the low bits of x0, per SMCCC).
pub const XEN_HYP_UID_REGS: [u64; 4] = uuid_regs([
    0xa7, 0x18, 0x12, 0xdc, 0xc6, 0x98, 0x43, 0x69, 0x9a, 0xcf, 0x79, 0xd1, 0x8d, 0xde, 0xe6, 0x67,
]);
/// Xen's standard-service UID f863386f-4b39-4cbd-9220-ce1641e59f6f, as x0..x3.
pub const STD_UID_REGS: [u64; 4] = uuid_regs([
    0xf8, 0x63, 0x38, 0x6f, 0x4b, 0x39, 0x4c, 0xbd, 0x92, 0x20, 0xce, 0x16, 0x41, 0xe5, 0x9f, 0x6f,
]);
/// Service REVISION answer (x0 = major, x1 = minor) for both services.
pub const SERVICE_REVISION: (u64, u64) = (0, 1);

/// Calls from the EL2 binary to the real firmware. On QEMU `virt` with
/// `virtualization=on` (no EL3) QEMU implements PSCI itself with the **SMC**
/// conduit: `SMC #0` with x0..x3 as below, result in x0 (check it with
/// [`PsciError::check`]). Secondary pCPUs start at `entry` (a PA) at EL2 with
/// the MMU off and x0 = `context_id`.
pub mod host {
    use super::fid;

    /// Arguments for PSCI_VERSION.
    pub const fn psci_version() -> [u64; 4] {
        [fid::PSCI_VERSION as u64, 0, 0, 0]
    }
    /// Arguments for CPU_ON (SMC64).
    pub const fn cpu_on(target_mpidr: u64, entry_pa: u64, context_id: u64) -> [u64; 4] {
        [fid::CPU_ON_64 as u64, target_mpidr, entry_pa, context_id]
    }
    /// Arguments for CPU_OFF.
    pub const fn cpu_off() -> [u64; 4] {
        [fid::CPU_OFF as u64, 0, 0, 0]
    }
    /// Arguments for SYSTEM_OFF (does not return on success).
    pub const fn system_off() -> [u64; 4] {
        [fid::SYSTEM_OFF as u64, 0, 0, 0]
    }
    /// Arguments for SYSTEM_RESET (does not return on success).
    pub const fn system_reset() -> [u64; 4] {
        [fid::SYSTEM_RESET as u64, 0, 0, 0]
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn affinity_info_as_xen() {
        // vCPU 0 on, vCPU 1 off, vCPU 16 (Aff1 = 1) on.
        let v = [(0u64, false), (1, true), (0x100, false)];
        assert_eq!(super::affinity_info(0, 0, v), super::AFFINITY_ON);
        assert_eq!(super::affinity_info(1, 0, v), super::AFFINITY_OFF);
        // No such vCPU: off, not an error.
        assert_eq!(super::affinity_info(0xf, 0, v), super::AFFINITY_OFF);
        // Level 1: Aff0 ignored; the cluster of vCPUs 0 and 1 has one on.
        assert_eq!(super::affinity_info(0x1, 1, v), super::AFFINITY_ON);
        assert_eq!(super::affinity_info(0x105, 1, v), super::AFFINITY_ON);
        assert_eq!(super::affinity_info(0x200, 1, v), super::AFFINITY_OFF);
        // Levels 2 and 3: everything here is in group 0.
        assert_eq!(super::affinity_info(0x1_0000_0000, 3, v), super::AFFINITY_OFF);
        assert_eq!(super::affinity_info(0xffff, 2, v), super::AFFINITY_ON);
        assert_eq!(super::affinity_info(0x1_0000, 2, v), super::AFFINITY_OFF);
        // Bits outside the affinity fields (bit 31, 24-31) are ignored.
        assert_eq!(super::affinity_info(0x8000_0000, 0, v), super::AFFINITY_ON);
        assert_eq!(super::affinity_info(0, 4, v), super::INVALID_PARAMETERS);
        assert_eq!(super::affinity_info(0, 9, v), super::INVALID_PARAMETERS);
    }

    use super::*;

    #[test]
    fn decode_psci() {
        assert_eq!(decode(0x8400_0000, 1, 2, 3), SmcccCall::PsciVersion);
        // Upper half of x0 ignored.
        assert_eq!(
            decode(0xFFFF_FFFF_8400_0000, 0, 0, 0),
            SmcccCall::PsciVersion
        );
        assert_eq!(
            decode(0xC400_0003, 0x1_0000_0001, 0x4008_0000, u64::MAX),
            SmcccCall::CpuOn {
                target_mpidr: 0x1_0000_0001,
                entry: 0x4008_0000,
                context_id: u64::MAX
            }
        );
        // 32-bit variant: W registers, zero-extended.
        assert_eq!(
            decode(
                0x8400_0003,
                0xFFFF_FFFF_0000_0002,
                0xDEAD_0000_4008_0000,
                u64::MAX
            ),
            SmcccCall::CpuOn {
                target_mpidr: 2,
                entry: 0x4008_0000,
                context_id: 0xFFFF_FFFF
            }
        );
        assert_eq!(
            decode(0x8400_0001, 0x1_0000_0010, 0x1_0000_0020, 0x1_0000_0030),
            SmcccCall::CpuSuspend {
                power_state: 0x10,
                entry: 0x20,
                context_id: 0x30
            }
        );
        assert_eq!(
            decode(0xC400_0001, 0x1_0000_0010, 2, 3),
            SmcccCall::CpuSuspend {
                power_state: 0x1_0000_0010,
                entry: 2,
                context_id: 3
            }
        );
        assert_eq!(decode(0x8400_0002, 9, 9, 9), SmcccCall::CpuOff);
        assert_eq!(
            decode(0x8400_0004, 0x1_0000_0101, 0x1_0000_0000, 0),
            SmcccCall::AffinityInfo {
                target_affinity: 0x101,
                lowest_level: 0
            }
        );
        assert_eq!(
            decode(0xC400_0004, 0x1_0000_0101, 0, 0),
            SmcccCall::AffinityInfo {
                target_affinity: 0x1_0000_0101,
                lowest_level: 0
            }
        );
        assert_eq!(decode(0x8400_0006, 0, 0, 0), SmcccCall::MigrateInfoType);
        assert_eq!(decode(0x8400_0008, 0, 0, 0), SmcccCall::SystemOff);
        assert_eq!(decode(0x8400_0009, 0, 0, 0), SmcccCall::SystemReset);
        assert_eq!(
            decode(0x8400_000A, 0xFFFF_FFFF_C400_0003, 0, 0),
            SmcccCall::PsciFeatures { fid: 0xC400_0003 }
        );
    }

    #[test]
    fn decode_smccc() {
        assert_eq!(decode(0x8000_0000, 0, 0, 0), SmcccCall::SmcccVersion);
        assert_eq!(
            decode(0x8000_0001, 0x8000_8000, 0, 0),
            SmcccCall::SmcccArchFeatures { fid: 0x8000_8000 }
        );
        assert_eq!(decode(0x8000_8000, 0, 0, 0), SmcccCall::ArchWorkaround1);
        assert_eq!(
            decode(0x8000_7FFF, 1, 0, 0),
            SmcccCall::ArchWorkaround2 { enable: true }
        );
        assert_eq!(
            decode(0x8000_7FFF, 0x1_0000_0000, 0, 0),
            SmcccCall::ArchWorkaround2 { enable: false }
        );
        assert_eq!(decode(0x8000_3FFF, 0, 0, 0), SmcccCall::ArchWorkaround3);
        assert_eq!(decode(0x8600_FF01, 0, 0, 0), SmcccCall::HypCallUid);
        assert_eq!(decode(0x8400_FF01, 0, 0, 0), SmcccCall::StdCallUid);
        for fid in [
            0u32,
            1,
            2,
            0x8400_0005,
            0x8400_000E,
            0xC400_0012,
            0x8400_0050,
            0xFFFF_FFFF,
            0x8000_0002,
        ] {
            assert_eq!(decode(fid as u64, 0, 0, 0), SmcccCall::Unknown { fid });
        }
    }

    #[test]
    fn psci_features() {
        for f in [
            fid::PSCI_VERSION,
            fid::CPU_SUSPEND_32,
            fid::CPU_SUSPEND_64,
            fid::CPU_OFF,
            fid::CPU_ON_32,
            fid::CPU_ON_64,
            fid::AFFINITY_INFO_32,
            fid::AFFINITY_INFO_64,
            fid::MIGRATE_INFO_TYPE,
            fid::SYSTEM_OFF,
            fid::SYSTEM_RESET,
            fid::PSCI_FEATURES,
            fid::SMCCC_VERSION,
        ] {
            assert_eq!(features(f), 0, "{f:#x}");
        }
        for f in [
            0x8400_000E,
            0xC400_000E,
            0x8400_0012,
            0x8400_0015,
            fid::SMCCC_ARCH_FEATURES,
            0,
        ] {
            assert_eq!(features(f), -1, "{f:#x}");
        }
    }

    #[test]
    fn smccc_arch_features() {
        let none = Mitigations::NONE;
        for f in [
            fid::ARCH_WORKAROUND_1,
            fid::ARCH_WORKAROUND_2,
            fid::ARCH_WORKAROUND_3,
            fid::SMCCC_VERSION,
        ] {
            assert_eq!(arch_features(f, &none), -1);
        }
        let m = Mitigations {
            workaround_1: false,
            ssbd: SsbdState::Runtime,
            workaround_3: true,
        };
        assert_eq!(arch_features(fid::ARCH_WORKAROUND_1, &m), 0);
        assert_eq!(arch_features(fid::ARCH_WORKAROUND_2, &m), 0);
        assert_eq!(arch_features(fid::ARCH_WORKAROUND_3, &m), 0);
        let m = Mitigations {
            workaround_1: true,
            ssbd: SsbdState::Mitigated,
            workaround_3: false,
        };
        assert_eq!(arch_features(fid::ARCH_WORKAROUND_1, &m), 0);
        assert_eq!(
            arch_features(fid::ARCH_WORKAROUND_2, &m),
            SMCCC_NOT_REQUIRED
        );
        assert_eq!(arch_features(fid::ARCH_WORKAROUND_3, &m), -1);
    }

    #[test]
    fn codes_and_uids() {
        for e in [
            PsciError::NotSupported,
            PsciError::InvalidParameters,
            PsciError::Denied,
            PsciError::AlreadyOn,
            PsciError::OnPending,
            PsciError::InternalFailure,
            PsciError::NotPresent,
            PsciError::Disabled,
            PsciError::InvalidAddress,
        ] {
            assert_eq!(PsciError::check(e.code() as u64), Err(e));
        }
        assert_eq!(PsciError::check(0), Ok(0));
        assert_eq!(PsciError::check(0x10001), Ok(0x10001));
        assert_eq!(
            PsciError::check(-100i64 as u64),
            Err(PsciError::InternalFailure)
        );
        assert_eq!(
            XEN_HYP_UID_REGS,
            [0xdc12_18a7, 0x6943_98c6, 0xd179_cf9a, 0x67e6_de8d]
        );
        assert_eq!(STD_UID_REGS[0], 0x6f38_63f8);
        assert!(valid_entry_point(0x4008_0000));
        assert!(!valid_entry_point(0x4008_0001));
        assert_eq!(
            host::cpu_on(1, 0x4000_0000, 7),
            [0xC400_0003, 1, 0x4000_0000, 7]
        );
        assert_eq!(host::system_off()[0], 0x8400_0008);
        assert_eq!(host::system_reset()[0], 0x8400_0009);
    }
}
