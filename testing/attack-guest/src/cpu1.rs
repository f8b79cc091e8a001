//! vCPU 1: started by PSCI CPU_ON, it serves commands from vCPU 0 through a mailbox in RAM
//! (sequence number in, acknowledgement out) and counts the SGIs it receives.

use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};

use crate::gic;
use crate::hc;
use crate::probe;
use crate::rt;

#[repr(C)]
pub struct Mbox {
    pub seq: u64,
    pub ack: u64,
    pub cmd: u64,
    pub arg: u64,
    pub res: [u64; 8],
    /// SGIs/PPIs taken by the IRQ handler.
    pub irqs: u64,
    /// Incremented by the service loop.
    pub alive: u64,
    /// Times vCPU 1 entered `rust_secondary`.
    pub starts: u64,
    /// OR of x1..x29 at entry (a previous occupant's registers if non-zero).
    pub entry_gprs: u64,
}

pub static mut MBOX: Mbox =
    Mbox { seq: 0, ack: 0, cmd: 0, arg: 0, res: [0; 8], irqs: 0, alive: 0, starts: 0, entry_gprs: 0 };

/// Unmask IRQs, enable the CPU interface and SGIs 0-15 at priority 0xa0.
pub const CMD_IRQ_ON: u64 = 2;
/// Write recognisable values to debug and PMU registers; res = what the probes said.
pub const CMD_WRITE_STATE: u64 = 3;
/// Read them back into res[0..4].
pub const CMD_READ_STATE: u64 = 4;
/// PSCI CPU_OFF (after acknowledging).
pub const CMD_CPU_OFF: u64 = 5;
/// Spin forever with every exception masked (after acknowledging).
pub const CMD_MASKED_SPIN: u64 = 6;

pub const MAGIC_BVR: u64 = 0x4141_4141_4141_4140;
pub const MAGIC_WVR: u64 = 0x4242_4242_4242_4240;
pub const MAGIC_PMEV: u64 = 0x4343_4343;

fn mb() -> *mut Mbox {
    addr_of_mut!(MBOX)
}

pub fn get(f: impl Fn(&Mbox) -> *const u64) -> u64 {
    // SAFETY: the mailbox is shared between the vCPUs: every access is volatile.
    unsafe { read_volatile(f(&*addr_of!(MBOX))) }
}

fn set_ack(v: u64) {
    // SAFETY: as in `get`.
    unsafe { write_volatile(addr_of_mut!((*mb()).ack), v) };
    rt::dsb();
}

fn set_res(i: usize, v: u64) {
    // SAFETY: as in `get`.
    unsafe { write_volatile(addr_of_mut!((*mb()).res[i]), v) };
}

/// The service loop of vCPU 1.
#[no_mangle]
extern "C" fn rust_secondary(_ctx: u64, gprs: u64) -> ! {
    // SAFETY: as in `get`.
    unsafe {
        write_volatile(addr_of_mut!((*mb()).entry_gprs), gprs);
        let s = read_volatile(addr_of!((*mb()).starts));
        write_volatile(addr_of_mut!((*mb()).starts), s + 1);
    }
    rt::dsb();
    let mut last = get(|m| &m.seq);
    set_ack(last);
    loop {
        // SAFETY: as in `get`.
        unsafe {
            let a = read_volatile(addr_of!((*mb()).alive));
            write_volatile(addr_of_mut!((*mb()).alive), a + 1);
        }
        let seq = get(|m| &m.seq);
        if seq == last {
            core::hint::spin_loop();
            continue;
        }
        last = seq;
        match get(|m| &m.cmd) {
            CMD_IRQ_ON => {
                gic::cpu_if_on();
                for i in 0..16 {
                    gic::enable_private(1, i);
                }
                // SAFETY: unmask IRQs on this vCPU; `rust_irq` handles them.
                unsafe { core::arch::asm!("msr daifclr, #2", "isb", options(nostack)) };
                set_ack(seq);
            }
            CMD_WRITE_STATE => {
                set_res(0, probe!("msr s2_0_c0_c0_4, {v}", MAGIC_BVR, options(nostack)).faulted() as u64);
                set_res(1, probe!("msr s2_0_c0_c0_6, {v}", MAGIC_WVR, options(nostack)).faulted() as u64);
                set_res(2, probe!("msr s3_3_c14_c8_0, {v}", MAGIC_PMEV, options(nostack)).faulted() as u64);
                set_ack(seq);
            }
            CMD_READ_STATE => {
                let p = probe!("mrs {v}, s2_0_c0_c0_4", 0, options(nostack));
                set_res(0, p.val);
                let p = probe!("mrs {v}, s2_0_c0_c0_6", 0, options(nostack));
                set_res(1, p.val);
                let p = probe!("mrs {v}, s3_3_c14_c8_0", 0, options(nostack));
                set_res(2, p.val);
                set_ack(seq);
            }
            CMD_CPU_OFF => {
                // SAFETY: mask IRQs first: this vCPU goes away.
                unsafe { core::arch::asm!("msr daifset, #2", "isb", options(nostack)) };
                set_ack(seq);
                hc::smccc_hvc(hc::PSCI_CPU_OFF, 0, 0, 0);
                // CPU_OFF does not return; if it did, say so.
                set_res(7, 0xdead);
                loop {
                    core::hint::spin_loop();
                }
            }
            CMD_MASKED_SPIN => {
                set_ack(seq);
                // SAFETY: masks every exception and spins: the domain's end must still
                // take this vCPU's physical CPU back.
                unsafe { core::arch::asm!("msr daifset, #0xf", "2:", "b 2b", options(noreturn, nostack)) };
            }
            _ => set_ack(seq),
        }
    }
}

/// IRQs (vCPU 1 only): acknowledge and end everything pending, counting.
#[no_mangle]
extern "C" fn rust_irq() {
    loop {
        let intid = gic::iar1() & 0xff_ffff;
        if intid >= 1020 {
            break;
        }
        // SAFETY: as in `get`.
        unsafe {
            let n = read_volatile(addr_of!((*mb()).irqs));
            write_volatile(addr_of_mut!((*mb()).irqs), n + 1);
        }
        gic::eoir1(intid);
    }
}

/// vCPU 0: issue `cmd` and wait up to `timeout_ms` for vCPU 1's acknowledgement.
pub fn command(cmd: u64, arg: u64, timeout_ms: u64) -> bool {
    // SAFETY: as in `get`.
    let seq = unsafe {
        write_volatile(addr_of_mut!((*mb()).cmd), cmd);
        write_volatile(addr_of_mut!((*mb()).arg), arg);
        rt::dsb();
        let s = read_volatile(addr_of!((*mb()).seq)) + 1;
        write_volatile(addr_of_mut!((*mb()).seq), s);
        s
    };
    rt::dsb();
    rt::wait_for(timeout_ms, || get(|m| &m.ack) == seq)
}
