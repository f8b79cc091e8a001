//! Trap syndromes and SMCCC calls are guest-influenced words: `ESR_EL2`
//! decoding, MMIO access decoding and value shaping, the post-indexed
//! LDR/STR instruction decoder, and PSCI/SMCCC call decoding must be total
//! and self-consistent.
#![no_main]

use arbitrary::Arbitrary;
use hv_arm::esr::{self, Exit, SysRegAccess};
use hv_arm::{mmio, psci};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    esr: u64,
    ipa: u64,
    hpfar: u64,
    far: u64,
    raw: u64,
    regs: [u64; 4],
}

fuzz_target!(|i: Input| {
    // A data abort without a syndrome: the guest's instruction word decoded
    // (post-indexed LDR/STR only), as the hypervisor reads it from guest memory.
    if let Some(p) = mmio::decode_post_indexed(i.raw as u32, i.ipa) {
        assert!(matches!(p.access.size, 1 | 2 | 4 | 8));
        assert!(p.access.reg <= 31 && p.rn <= 31);
        assert!(p.rn != p.access.reg || p.rn == 31, "{p:?}");
        assert!((-256..256).contains(&p.imm), "{p:?}");
        assert_eq!(p.access.ipa, i.ipa);
    }
    let exit = esr::decode(i.esr);
    assert_eq!(exit, Exit::decode(i.esr));
    assert!(matches!(esr::instr_len(i.esr), 2 | 4));
    assert!(esr::iss(i.esr) < 1 << 25);
    match exit {
        Exit::DataAbortLower(da) => {
            let _ = da.fault();
            if let Some(a) = mmio::decode(&da, i.ipa) {
                assert!(matches!(a.size, 1 | 2 | 4 | 8));
                assert!(a.reg <= 31);
                assert!(!(a.write && a.sign_extend));
                assert_eq!(a.ipa, i.ipa);
                let mask = a.mask();
                assert_eq!(mask, if a.size == 8 { u64::MAX } else { (1u64 << (8 * a.size)) - 1 });
                let loaded = a.load_value(i.raw);
                if !a.sixty_four {
                    assert_eq!(loaded >> 32, 0, "{a:?} raw {:#x} -> {loaded:#x}", i.raw);
                }
                if !a.sign_extend {
                    assert_eq!(loaded & !mask, 0, "{a:?} raw {:#x} -> {loaded:#x}", i.raw);
                }
                assert_eq!(loaded & mask & if a.sixty_four { u64::MAX } else { 0xFFFF_FFFF }, i.raw & mask & if a.sixty_four { u64::MAX } else { 0xFFFF_FFFF });
                let stored = a.store_value(i.raw);
                assert_eq!(stored & !mask, 0);
            }
        }
        Exit::SysReg(s) => {
            let k = s.key();
            let _ = SysRegAccess::from_iss(esr::iss(i.esr));
            let _ = k;
        }
        _ => {}
    }
    let _ = mmio::fault_ipa(i.hpfar, i.far);

    let [x0, x1, x2, x3] = i.regs;
    let call = psci::decode(x0, x1, x2, x3);
    let _ = format!("{call:?}");
    let fid = x0 as u32;
    let _ = psci::is_smc64(fid);
    let f = psci::features(fid);
    assert!(f == psci::SUCCESS || f == psci::NOT_SUPPORTED || f > 0, "features({fid:#x}) = {f}");
    let _ = psci::arch_features(fid, &psci::Mitigations::NONE);
    let _ = psci::valid_entry_point(x1);
    let _ = psci::PsciError::check(x0);
});
