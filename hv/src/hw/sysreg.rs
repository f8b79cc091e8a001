//! Typed accessors for the system registers the hypervisor uses. Reads are
//! safe. Writes to registers that change translation, trapping, exception
//! routing or interrupt state are `unsafe fn`: the caller states why the new
//! value keeps the hypervisor's invariants.

macro_rules! sysreg {
    ($(#[$m:meta])* $name:ident, $reg:literal, ro) => {
        $(#[$m])*
        #[allow(dead_code)] // each register gets its full accessor set
        pub mod $name {
            #[inline(always)]
            pub fn read() -> u64 {
                let v: u64;
                // SAFETY: reading this register has no side effect.
                unsafe { core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack, preserves_flags)) };
                v
            }
        }
    };
    ($(#[$m:meta])* $name:ident, $reg:literal, rw) => {
        $(#[$m])*
        #[allow(dead_code)] // each register gets its full accessor set
        pub mod $name {
            #[inline(always)]
            pub fn read() -> u64 {
                let v: u64;
                // SAFETY: reading this register has no side effect.
                unsafe { core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack, preserves_flags)) };
                v
            }
            /// # Safety
            /// The value must keep the hypervisor's translation, trap and interrupt invariants.
            #[inline(always)]
            pub unsafe fn write(v: u64) {
                // SAFETY: the caller upholds this function's contract.
                unsafe { core::arch::asm!(concat!("msr ", $reg, ", {}"), in(reg) v, options(nostack, preserves_flags)) };
            }
        }
    };
}

sysreg!(current_el, "CurrentEL", ro);
sysreg!(mpidr_el1, "MPIDR_EL1", ro);
sysreg!(midr_el1, "MIDR_EL1", ro);
sysreg!(id_aa64mmfr0_el1, "ID_AA64MMFR0_EL1", ro);
sysreg!(cntpct_el0, "CNTPCT_EL0", ro);
sysreg!(cntfrq_el0, "CNTFRQ_EL0", ro);
sysreg!(esr_el2, "ESR_EL2", ro);
sysreg!(far_el2, "FAR_EL2", ro);
sysreg!(hpfar_el2, "HPFAR_EL2", ro);
sysreg!(pmcr_el0, "PMCR_EL0", ro);

sysreg!(vbar_el2, "VBAR_EL2", rw);
sysreg!(mair_el2, "MAIR_EL2", rw);
sysreg!(tcr_el2, "TCR_EL2", rw);
sysreg!(ttbr0_el2, "TTBR0_EL2", rw);
sysreg!(sctlr_el2, "SCTLR_EL2", rw);
sysreg!(hcr_el2, "HCR_EL2", rw);
sysreg!(cptr_el2, "CPTR_EL2", rw);
sysreg!(mdcr_el2, "MDCR_EL2", rw);
sysreg!(hstr_el2, "HSTR_EL2", rw);
sysreg!(vtcr_el2, "VTCR_EL2", rw);
sysreg!(vttbr_el2, "VTTBR_EL2", rw);
sysreg!(vpidr_el2, "VPIDR_EL2", rw);
sysreg!(vmpidr_el2, "VMPIDR_EL2", rw);
sysreg!(cnthctl_el2, "CNTHCTL_EL2", rw);
sysreg!(cntvoff_el2, "CNTVOFF_EL2", rw);
sysreg!(tpidr_el2, "TPIDR_EL2", rw);

// EL1 state the hypervisor sets up for a vCPU or uses to inject exceptions.
sysreg!(sctlr_el1, "SCTLR_EL1", rw);
sysreg!(vbar_el1, "VBAR_EL1", rw);
sysreg!(esr_el1, "ESR_EL1", rw);
sysreg!(far_el1, "FAR_EL1", rw);
sysreg!(elr_el1, "ELR_EL1", rw);
sysreg!(spsr_el1, "SPSR_EL1", rw);
sysreg!(ttbr0_el1, "TTBR0_EL1", rw);
sysreg!(ttbr1_el1, "TTBR1_EL1", rw);
sysreg!(tcr_el1, "TCR_EL1", rw);
sysreg!(cntv_ctl_el0, "CNTV_CTL_EL0", rw);
// The EL1 physical timer: guests reach it only through trapped accesses (exit.rs).
sysreg!(cntp_ctl_el0, "CNTP_CTL_EL0", rw);
sysreg!(cntp_cval_el0, "CNTP_CVAL_EL0", rw);
sysreg!(cntp_tval_el0, "CNTP_TVAL_EL0", rw);
sysreg!(cpacr_el1, "CPACR_EL1", rw);
sysreg!(sp_el1, "SP_EL1", rw);
sysreg!(sp_el0, "SP_EL0", rw);

// GICv3 CPU interface (physical, EL2 view) and virtual interface control.
sysreg!(icc_sre_el2, "ICC_SRE_EL2", rw);
sysreg!(icc_sre_el1, "ICC_SRE_EL1", rw);
sysreg!(icc_pmr_el1, "ICC_PMR_EL1", rw);
sysreg!(icc_bpr1_el1, "ICC_BPR1_EL1", rw);
sysreg!(icc_ctlr_el1, "ICC_CTLR_EL1", rw);
sysreg!(icc_igrpen1_el1, "ICC_IGRPEN1_EL1", rw);
sysreg!(icc_iar1_el1, "ICC_IAR1_EL1", ro);
sysreg!(icc_eoir1_el1, "ICC_EOIR1_EL1", rw);
sysreg!(icc_dir_el1, "ICC_DIR_EL1", rw);
sysreg!(icc_sgi1r_el1, "ICC_SGI1R_EL1", rw);
sysreg!(ich_hcr_el2, "ICH_HCR_EL2", rw);
sysreg!(ich_vtr_el2, "ICH_VTR_EL2", ro);
sysreg!(ich_vmcr_el2, "ICH_VMCR_EL2", rw);
sysreg!(ich_misr_el2, "ICH_MISR_EL2", ro);

/// ICH_LR<n>_EL2 by index (n < 16).
pub mod ich_lr {
    macro_rules! lr_match {
        ($n:expr, $op:ident $(, $v:expr)?) => {
            match $n {
                0 => lr_match!(@ $op "ICH_LR0_EL2" $(, $v)?),
                1 => lr_match!(@ $op "ICH_LR1_EL2" $(, $v)?),
                2 => lr_match!(@ $op "ICH_LR2_EL2" $(, $v)?),
                3 => lr_match!(@ $op "ICH_LR3_EL2" $(, $v)?),
                4 => lr_match!(@ $op "ICH_LR4_EL2" $(, $v)?),
                5 => lr_match!(@ $op "ICH_LR5_EL2" $(, $v)?),
                6 => lr_match!(@ $op "ICH_LR6_EL2" $(, $v)?),
                7 => lr_match!(@ $op "ICH_LR7_EL2" $(, $v)?),
                8 => lr_match!(@ $op "ICH_LR8_EL2" $(, $v)?),
                9 => lr_match!(@ $op "ICH_LR9_EL2" $(, $v)?),
                10 => lr_match!(@ $op "ICH_LR10_EL2" $(, $v)?),
                11 => lr_match!(@ $op "ICH_LR11_EL2" $(, $v)?),
                12 => lr_match!(@ $op "ICH_LR12_EL2" $(, $v)?),
                13 => lr_match!(@ $op "ICH_LR13_EL2" $(, $v)?),
                14 => lr_match!(@ $op "ICH_LR14_EL2" $(, $v)?),
                _ => lr_match!(@ $op "ICH_LR15_EL2" $(, $v)?),
            }
        };
        (@ read $r:literal) => {{
            let v: u64;
            // SAFETY: reading a list register has no side effect.
            unsafe { core::arch::asm!(concat!("mrs {}, ", $r), out(reg) v, options(nomem, nostack, preserves_flags)) };
            v
        }};
        (@ write $r:literal, $v:expr) => {{
            // SAFETY: list registers only affect the virtual CPU interface
            // of the vCPU about to run on this CPU; callers own that vCPU.
            unsafe { core::arch::asm!(concat!("msr ", $r, ", {}"), in(reg) $v, options(nostack, preserves_flags)) };
        }};
    }

    #[inline]
    pub fn read(n: usize) -> u64 {
        lr_match!(n, read)
    }

    #[inline]
    pub fn write(n: usize, v: u64) {
        lr_match!(n, write, v)
    }
}

/// Instruction synchronisation barrier.
#[inline(always)]
pub fn isb() {
    // SAFETY: a barrier has no memory-safety effect.
    unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) };
}

/// Wait for an interrupt (wakes on a pending physical IRQ even when masked at EL2).
#[inline(always)]
pub fn wfi() {
    // SAFETY: waiting has no memory-safety effect.
    unsafe { core::arch::asm!("wfi", options(nomem, nostack, preserves_flags)) };
}

/// Send an event to all CPUs (wakes `wfe`).
#[inline(always)]
pub fn sev() {
    // SAFETY: an event has no memory-safety effect.
    unsafe { core::arch::asm!("sev", options(nomem, nostack, preserves_flags)) };
}
