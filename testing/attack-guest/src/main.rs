//! attack-guest: a bare-metal domU (an arm64 Image for xl, EL1, MMU off) that attacks the
//! hypervisor's guest interface and prints one result line per case on its PV console:
//!
//! ```text
//! ATTACK-BEGIN mode=<mode> cases=<n> victim=<domid>
//! ATTACK <n> <name> <result> expect=<expected> <OK|BAD>
//! ATTACK-DONE ok=<n> bad=<m>
//! ATTACK <n> <name> EXPECT-DEATH          (kill modes: what follows ends the domain)
//! ATTACK-UNEXPECTED ...                   (an exception no case expected: the guest crashes)
//! ```
//!
//! `/chosen/bootargs` (xl.cfg `extra`) selects the mode:
//!
//! - `attack=main victim=<domid>`: the numbered cases of `cases::MAIN`, then power off.
//! - `attack=kill-<name>`: `ram_zeroed`, `sysreg_prev_domain`, then one case the domain does not survive on its own
//!   (`masked-spin`, `abort-loop`, `wfi`, `crash`); the harness checks the outcome.
//! - `attack=churn`: print `ATTACK-CHURN-UP` and sleep (the harness destroys the domain);
//!   `attack=churn-off`: print it and power off.
//!
//! Expected results are Xen 4.17's (see cases.rs); the harness (xtask/src/attack.rs) decides
//! which `BAD` lines are known failures.

#![no_std]
#![no_main]

mod boot;
mod cases;
mod console;
mod cpu1;
mod env;
mod fdt;
mod gic;
mod hc;
mod rt;

use env::{Case, Env};
use xen_abi::sched::{SHUTDOWN_crash, SHUTDOWN_poweroff};
use xen_abi::xen::DOMID_SELF;

/// Numbers of the cases of the kill modes (after the main list's).
const KILL_BASE: usize = 900;
const KILLS: &[&str] = &["masked-spin", "abort-loop", "wfi", "crash"];
const KILL_CASES: &[&str] = &["kill_masked_spin", "kill_abort_loop", "kill_wfi", "kill_crash"];

fn run(cases: &[Case], first: usize, e: &mut Env) -> (u32, u32) {
    let (mut ok, mut bad) = (0, 0);
    for (i, c) in cases.iter().enumerate() {
        let out = (c.run)(e);
        let good = out.ok.unwrap_or_else(|| out.text.as_str() == c.expect);
        if good {
            ok += 1;
        } else {
            bad += 1;
        }
        println!(
            "ATTACK {} {} {} expect={} {}",
            first + i,
            c.name,
            out.text.as_str(),
            c.expect,
            if good { "OK" } else { "BAD" }
        );
    }
    (ok, bad)
}

#[no_mangle]
extern "C" fn rust_main(dtb: u64) -> ! {
    if !console::init() {
        hc::shutdown(SHUTDOWN_crash);
    }
    let dt = fdt::Dtb::at(dtb);
    let facts = dt.as_ref().map(|d| d.facts());
    let (ram_base, ram_size) = facts.as_ref().and_then(|f| f.mem).unwrap_or((0x4000_0000, 16 << 20));
    let mut mode_buf = [0u8; 64];
    let mut victim_buf = [0u8; 64];
    let args = facts.as_ref().and_then(|f| f.bootargs);
    let mode = args.and_then(|a| fdt::arg(a, "attack", &mut mode_buf)).unwrap_or("main");
    let victim = args.and_then(|a| fdt::arg(a, "victim", &mut victim_buf)).and_then(|v| v.parse().ok()).unwrap_or(DOMID_SELF);
    let mut e = Env {
        victim,
        me: DOMID_SELF,
        ram_base,
        ram_end: ram_base + ram_size,
        dtb: dt.as_ref().map(|d| (d.base, d.base + d.size)).unwrap_or((0, 0)),
        image: boot::image_range(),
        gnttab: 0,
        cpu1_up: false,
    };

    if mode == "churn" || mode == "churn-off" {
        println!("ATTACK-CHURN-UP mode={mode}");
        if mode == "churn-off" {
            console::drain(5000);
            hc::shutdown(SHUTDOWN_poweroff);
        }
        loop {
            // SAFETY: sleeps; every exception is masked, so only the domain's end stops it.
            unsafe { core::arch::asm!("wfi", options(nostack)) };
        }
    }

    if let Some(kill) = mode.strip_prefix("kill-") {
        println!("ATTACK-BEGIN mode={mode} cases={} victim={victim}", cases::KILL_PRELUDE.len() + 1);
        let Some(k) = KILLS.iter().position(|&n| n == kill) else {
            println!("ATTACK-UNKNOWN-MODE {mode}");
            hc::shutdown(SHUTDOWN_crash);
            loop {
                core::hint::spin_loop();
            }
        };
        run(cases::KILL_PRELUDE, KILL_BASE + 10 * k, &mut e);
        println!("ATTACK {} {} EXPECT-DEATH", KILL_BASE + 10 * k + cases::KILL_PRELUDE.len(), KILL_CASES[k]);
        // xenconsoled must have the line before the domain stops talking.
        console::drain(5000);
        kill_mode(kill);
    }

    println!("ATTACK-BEGIN mode=main cases={} victim={victim}", cases::MAIN.len());
    let (ok, bad) = run(cases::MAIN, 1, &mut e);
    println!("ATTACK-DONE ok={ok} bad={bad}");
    console::drain(5000);
    hc::shutdown(SHUTDOWN_poweroff);
    loop {
        // SAFETY: the domain is shut down; nothing runs here any more.
        unsafe { core::arch::asm!("wfi", options(nostack)) };
    }
}

/// What each kill mode does; none returns.
fn kill_mode(kill: &str) -> ! {
    match kill {
        // Both vCPUs spin with every exception masked: only `xl destroy` ends them.
        "masked-spin" => {
            hc::cpu_on(1, boot::park_entry_addr(), 0);
            // SAFETY: masks everything and spins, on purpose.
            unsafe { core::arch::asm!("msr daifset, #0xf", "2:", "b 2b", options(noreturn, nostack)) }
        }
        // vCPU 1 starts in an IPA hole with no vector table (VBAR_EL1 = 0, also a hole);
        // vCPU 0 points its vectors at a hole and touches one: each injected abort faults
        // again, forever.
        "abort-loop" => {
            hc::cpu_on(1, env::HOLE, 0);
            // SAFETY: deliberately unrecoverable.
            unsafe {
                core::arch::asm!(
                    "msr vbar_el1, {h}",
                    "isb",
                    "ldr xzr, [{h}]",
                    "2:",
                    "b 2b",
                    h = in(reg) env::HOLE,
                    options(noreturn, nostack),
                )
            }
        }
        // Sleep with every exception masked and no timer: only the domain's end wakes us.
        "wfi" => {
            // SAFETY: as above.
            unsafe { core::arch::asm!("msr daifset, #0xf", "2:", "wfi", "b 2b", options(noreturn, nostack)) }
        }
        // The guest reports a crash (on_crash="destroy" removes it).
        _ => {
            hc::shutdown(SHUTDOWN_crash);
            loop {
                core::hint::spin_loop();
            }
        }
    }
}

/// An exception no case expected: report it and crash the domain.
#[no_mangle]
extern "C" fn rust_unexpected(kind: u64, esr: u64, elr: u64, far: u64) -> ! {
    println!("ATTACK-UNEXPECTED vcpu={} vector={kind} esr={esr:#x} elr={elr:#x} far={far:#x}", rt::vcpu_id());
    console::drain(5000);
    hc::shutdown(SHUTDOWN_crash);
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("ATTACK-PANIC {}", info.message());
    console::drain(5000);
    hc::shutdown(SHUTDOWN_crash);
    loop {
        core::hint::spin_loop();
    }
}
