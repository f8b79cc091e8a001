//! Ferrovisor: a Xen-compatible type-1 hypervisor for AArch64 (EL2).
//!
//! Start of day only: bring up the boot CPU, read the host device tree and
//! the Xen command line, start the other CPUs, build dom0 and run it.
#![no_std]
#![no_main]

extern crate alloc;

#[macro_use]
mod console;
mod boot;
mod dom0;
mod domain;
mod domu;
mod exit;
mod fatal;
mod heap;
mod hw;
mod inject;
mod irq;
mod percpu;
mod platform;
mod psci;
mod run;
mod trap;
mod xen;

use core::sync::atomic::{AtomicBool, Ordering};
use hv_core::bootinfo::BootInfo;
use hw::{firmware, gicv3, sysreg};

/// The hypervisor command line (XENVER_commandline).
pub static CMDLINE: spin::Once<alloc::string::String> = spin::Once::new();

/// GIC redistributor region, published for the secondaries.
static GICR: spin::Once<(usize, usize)> = spin::Once::new();
static SECONDARY_READY: [AtomicBool; boot::MAX_CPUS] = [const { AtomicBool::new(false) }; boot::MAX_CPUS];

#[no_mangle]
extern "C" fn primary_main(dtb_pa: u64) -> ! {
    hw::mmu::build();
    hw::mmu::enable();
    trap::install();
    percpu::init(0);
    heap::init();

    // SAFETY: the bootloader passed the DTB in x0; its header gives its size
    // and nothing writes it while the hypervisor boots.
    let dtb = unsafe {
        let hdr = hw::phys::slice(dtb_pa, 8);
        let size = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
        hw::phys::slice(dtb_pa, size.min(2 << 20))
    };
    let bi = match BootInfo::parse(dtb) {
        Ok(bi) => bi,
        Err(e) => {
            // Without a DT there is no known console: try the virt machine's.
            // SAFETY: best effort on a fatal path; QEMU virt's PL011.
            unsafe { console::init(0x900_0000) };
            panic!("cannot parse the host device tree: {:?}", e);
        }
    };
    let cmd = &bi.cmdline;
    CMDLINE.call_once(|| alloc::string::String::from(bi.xen_cmdline));
    if let Some(u) = &bi.uart {
        // SAFETY: the host DT names this PL011 as the hypervisor's console;
        // dom0's stage-2 never maps it (it sees an emulated one).
        unsafe { console::init(u.base as usize) };
    }
    let lvl = |l: Option<hv_core::cmdline::LogLevels>, d| l.map(|l| l.level).unwrap_or(d);
    console::set_levels(lvl(cmd.loglvl, hv_core::log::Level::Warning), lvl(cmd.guest_loglvl, hv_core::log::Level::Warning));
    log!(Info, "Ferrovisor {} (Xen 4.17 ABI), EL{}", env!("CARGO_PKG_VERSION"), sysreg::current_el::read() >> 2);
    log!(Info, "Command line: {}", bi.xen_cmdline);
    for u in &cmd.unknown {
        log!(Warning, "unknown option ignored: {}", u);
    }
    for u in &cmd.invalid {
        log!(Warning, "invalid option ignored: {} ({:?})", u.option, u.error);
    }

    let Some(gic) = &bi.gic else { panic!("no GICv3 in the host device tree") };
    let Some(gicr) = gic.redist.first() else { panic!("no GICv3 redistributor region") };
    GICR.call_once(|| (gicr.start as usize, gicr.size as usize));
    let boot_mpidr = sysreg::mpidr_el1::read();
    // SAFETY: the GIC addresses come from the host DT; the GIC is the hypervisor's.
    unsafe {
        gicv3::init_dist(gic.dist.start as usize, boot_mpidr);
        if !gicv3::init_cpu(0, boot_mpidr, gicr.start as usize, gicr.size as usize) {
            panic!("no redistributor for the boot CPU");
        }
    }
    gicv3::set_private_enabled(0, run::SGI_KICK, true);
    log!(Info, "GICv3: {} lines, {} list registers", gicv3::lines(), run::nr_lrs());

    // Physical CPUs from the DT, in order; CPU index == position.
    let mut nr_pcpus = 1;
    for (i, &mpidr) in bi.cpus.iter().enumerate().skip(1).take(boot::MAX_CPUS - 1) {
        let r = firmware::cpu_on(mpidr, boot::secondary_entry_pa(), i as u64);
        if r != 0 {
            log!(Warning, "CPU{} (MPIDR {:#x}) did not start: PSCI {}", i, mpidr, r);
            break;
        }
        // Bounded wait: a CPU that never arrives is left out.
        let mut ok = false;
        for _ in 0..50_000_000 {
            if SECONDARY_READY[i].load(Ordering::Acquire) {
                ok = true;
                break;
            }
            core::hint::spin_loop();
        }
        if !ok {
            log!(Warning, "CPU{} did not come up", i);
            break;
        }
        nr_pcpus += 1;
    }
    log!(Info, "{} CPU(s) online", nr_pcpus);

    match dom0::build(&bi, dtb, dtb_pa, nr_pcpus) {
        Ok(d) => {
            if d.uart_intid != 0 {
                irq::set_uart_intid(d.uart_intid);
                gicv3::set_spi_enabled(d.uart_intid, true);
                console::uart_rx_enable();
            }
            let total: u64 = bi.ram.iter().map(|r| r.size / 4096).sum();
            // Free for domUs: RAM minus dom0, the hypervisor, the host DTB
            // and the boot modules (left alone even when copied).
            let (s, e) = boot::image_range();
            let mut used: alloc::vec::Vec<hv_core::mem::Range> = d.ram.clone();
            used.push(hv_core::mem::Range::new(s & !0x1f_ffff, e - (s & !0x1f_ffff)));
            used.push(hv_core::mem::Range::new(dtb_pa & !0xfff, dtb.len() as u64 + (dtb_pa & 0xfff)));
            used.extend(bi.modules.iter().map(|m| m.range));
            used.extend(bi.reserved.iter().copied());
            let free = hv_core::mem::subtract_ranges(&bi.ram, &used);
            let frames = hv_core::frames::FrameAllocator::new(&free);
            log!(Info, "{} MiB free for domains", frames.free_pages() / 256);
            domain::FRAMES.call_once(|| spin::Mutex::new(frames));
            xen::control::MEMINFO.call_once(|| xen::control::MemInfo {
                total_pages: total,
                max_mfn: bi.ram.iter().map(|r| (r.start + r.size) / 4096).max().unwrap_or(0),
                nr_cpus: nr_pcpus as u32,
                cpu_khz: (sysreg::cntfrq_el0::read() / 1000) as u32,
            });
            domain::DOM0.call_once(|| d);
        }
        Err(e) => panic!("cannot build dom0: {:?}", e),
    }
    log!(Info, "heap: {} KiB free; starting dom0", heap::free_bytes() / 1024);
    sysreg::sev();
    run::idle_loop()
}

#[no_mangle]
extern "C" fn secondary_main(cpu: usize) -> ! {
    hw::mmu::enable();
    trap::install();
    percpu::init(cpu);
    let (base, size) = *GICR.wait();
    // SAFETY: the region the boot CPU read from the host DT.
    if !unsafe { gicv3::init_cpu(cpu, sysreg::mpidr_el1::read(), base, size) } {
        log!(Error, "CPU{}: no redistributor", cpu);
        loop {
            sysreg::wfi();
        }
    }
    gicv3::set_private_enabled(cpu, run::SGI_KICK, true);
    SECONDARY_READY[cpu].store(true, Ordering::Release);
    run::idle_loop()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    console::emergency(format_args!("(FV) <E> PANIC on CPU{}: {}", percpu::this_cpu(), info));
    firmware::system_off();
}
