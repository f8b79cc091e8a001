//! domU life cycle against the fake hypervisor and the in-memory xenstore:
//! `xl create` (the hypercalls in docs/domains.md order, what lands in guest
//! memory and xenstore, rollback on failure), `destroy`, `shutdown` /
//! `reboot`, `pause`, `console`, `list`, and the monitor's actions.

#![allow(non_upper_case_globals)]

use std::time::Duration;

use xen_abi::arch_arm::*;
use xen_abi::domctl::*;
use xen_abi::errno::*;
use xen_abi::event_channel::EVTCHNOP_alloc_unbound;
use xen_abi::hvm_op::HVMOP_set_param;
use xen_abi::hvm_params::*;
use xen_abi::io::xs_wire::*;
use xen_abi::memory::XENMEM_populate_physmap;
use xen_abi::sched::SCHEDOP_remote_shutdown;
use xen_abi::sysctl::*;
use xen_abi::xen::*;

use super::fake::{Fail, FakeDomain, FakeEvent, FakeHost, FakeXen};
use super::xencall::Errno;
use super::xenstore::{args, Xs, XBT_NULL};
use super::{Backend, Pump};
use crate::build::image::fake_image;
use crate::config::Config;
use crate::domain::DomainConfig;
use crate::run::{run, Output};

pub(super) const CFG: &str = "/etc/xen/vm.cfg";
pub(super) const KERNEL: &str = "/boot/Image";
pub(super) const RAMDISK: &str = "/boot/initrd";

pub(super) fn config_text(extra: &str) -> String {
    format!(
        "name = \"vm\"\nmemory = 64\nvcpus = 2\nkernel = \"{KERNEL}\"\nramdisk = \"{RAMDISK}\"\n\
         extra = \"console=hvc0\"\nroot = \"/dev/xvda\"\n{extra}"
    )
}

fn kernel() -> Vec<u8> {
    let mut k = fake_image(0, 0x60_0000, 0x45_6789);
    for (i, b) in k.iter_mut().enumerate().skip(64) {
        *b = (i % 251) as u8;
    }
    k
}

fn ramdisk() -> Vec<u8> {
    (0..0x23_4567u32).map(|i| (i % 241) as u8).collect()
}

/// Xen with dom0 only (2 pCPUs).
pub(super) fn xen() -> FakeXen {
    let info = XenDomctlGetdomaininfo {
        domain: 0,
        flags: XEN_DOMINF_running | XEN_DOMINF_hvm_guest,
        tot_pages: 131072,
        max_pages: 131072,
        nr_online_vcpus: 2,
        max_vcpu_id: 1,
        ..Default::default()
    };
    FakeXen {
        domains: vec![FakeDomain {
            info,
            ..Default::default()
        }],
        phys: XenSysctlPhysinfo {
            nr_cpus: 4,
            max_cpu_id: 3,
            ..Default::default()
        },
        version: (4 << 16) | 17,
        ..Default::default()
    }
}

pub(super) fn host() -> FakeHost {
    let mut h = FakeHost::new();
    h.files.insert(KERNEL.into(), kernel());
    h.files.insert(RAMDISK.into(), ramdisk());
    h.xs.write(XBT_NULL, "/local/domain/0/name", "Domain-0")
        .unwrap();
    h
}

pub(super) type B = Backend<FakeXen, FakeHost>;

pub(super) fn backend() -> B {
    Backend::new(Ok(xen()), host())
}

pub(super) fn xl_with(b: &mut B, line: &str, cfg: &str) -> Output {
    let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
    let inv = crate::cli::parse(&argv).unwrap_or_else(|e| panic!("{line}: {e:?}"));
    let cfg = cfg.to_string();
    run(&inv, b, &move |p| {
        if p == CFG {
            Ok(cfg.clone().into_bytes())
        } else {
            Err(std::io::Error::from_raw_os_error(libc::ENOENT))
        }
    })
}

pub(super) fn xl(b: &mut B, line: &str) -> Output {
    xl_with(b, line, &config_text(""))
}

pub(super) fn x(b: &B) -> &FakeXen {
    b.xc.as_ref().unwrap()
}

pub(super) fn xm(b: &mut B) -> &mut FakeXen {
    b.xc.as_mut().unwrap()
}

pub(super) fn dom(b: &B, id: u16) -> Option<&FakeDomain> {
    x(b).domains.iter().find(|d| d.info.domain == id)
}

pub(super) fn read(b: &mut B, path: &str) -> Option<String> {
    b.host().xs.read(XBT_NULL, path).ok()
}

fn created(b: &mut B) -> u16 {
    let o = xl(b, &format!("create {CFG}"));
    assert_eq!(o.code, 0, "{o:?}\n{}", b.host().err);
    1
}

/// The hypercalls of a create, in order, consecutive repeats folded and
/// the name check's domain list left out.
fn create_calls(x: &FakeXen) -> Vec<(u64, u32)> {
    let mut v: Vec<(u64, u32)> = Vec::new();
    for &c in &x.log {
        if c.0 == HYPERVISOR_sysctl || c.0 == HYPERVISOR_xen_version {
            continue;
        }
        if v.last() != Some(&c) {
            v.push(c);
        }
    }
    v
}

#[test]
fn create_issues_the_documented_sequence() {
    let mut b = backend();
    created(&mut b);
    assert_eq!(
        create_calls(x(&b)),
        [
            (HYPERVISOR_domctl, XEN_DOMCTL_createdomain),
            (HYPERVISOR_domctl, XEN_DOMCTL_max_vcpus),
            (HYPERVISOR_domctl, XEN_DOMCTL_max_mem),
            (HYPERVISOR_domctl, XEN_DOMCTL_set_address_size),
            (HYPERVISOR_domctl, XEN_DOMCTL_set_paging_mempool_size),
            (HYPERVISOR_memory_op, XENMEM_populate_physmap),
            (HYPERVISOR_event_channel_op, EVTCHNOP_alloc_unbound),
            (HYPERVISOR_hvm_op, HVMOP_set_param),
            (HYPERVISOR_domctl, XEN_DOMCTL_cacheflush),
            (HYPERVISOR_domctl, XEN_DOMCTL_setvcpucontext),
            (HYPERVISOR_domctl, XEN_DOMCTL_unpausedomain),
        ]
    );
    let x = x(&b);
    let d = dom(&b, 1).unwrap();
    let c = d.created.unwrap();
    assert_eq!(c.flags, XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_hap);
    assert_eq!(
        (
            c.max_vcpus,
            c.max_evtchn_port,
            c.max_grant_frames,
            c.max_maptrack_frames
        ),
        (2, 1023, 64, 1024)
    );
    assert_eq!(
        (c.arch.gic_version, c.arch.nr_spis),
        (XEN_DOMCTL_CONFIG_GIC_NATIVE, 0)
    );
    assert_eq!(d.max_kb, 64 * 1024 + 1024);
    assert_eq!(d.address_size, 64);
    assert_eq!(d.pool_bytes, (4 * (2 * 256 + 64 + 128)) << 10);
    // 64 MiB of 2 MiB extents, then the 4 magic pages.
    assert_eq!(x.populated, [(1, 9, 32, 0x40000), (1, 0, 4, 0x39000)]);
    assert_eq!(d.info.tot_pages, 16384 + 4);
    assert_eq!(d.ports, [1, 2]);
    assert_eq!(d.params[&HVM_PARAM_CONSOLE_PFN], 0x39000);
    assert_eq!(d.params[&HVM_PARAM_CONSOLE_EVTCHN], 1);
    assert_eq!(d.params[&HVM_PARAM_STORE_PFN], 0x39001);
    assert_eq!(d.params[&HVM_PARAM_STORE_EVTCHN], 2);
    assert_eq!(d.params.len(), 4);
    assert!(x.map_batches.iter().all(|&n| (1..=1024).contains(&n)));
    assert!(x.map_batches.len() >= 4);
    // Started: unpaused, vCPU 0 online at the kernel with x0 = the DTB.
    assert_eq!(d.info.flags & XEN_DOMINF_paused, 0);
    let ctx = d.vcpu0.unwrap();
    assert_eq!(ctx.flags, VGCF_online);
    assert_eq!(ctx.user_regs.pc64, 0x4000_0000);
    assert_eq!((ctx.user_regs.cpsr, ctx.sctlr), (0x1c5, 0x00c5_0078));
    assert_eq!(x.peek(1, 0x4000_0000, kernel().len()), kernel());
    // The DTB: where x0 says, pointing at the ramdisk that is in memory.
    let dtb_addr = ctx.user_regs.x[0];
    assert_eq!(dtb_addr % (2 << 20), 0);
    let blob = x.peek(1, dtb_addr, 0x1_0000);
    let f = fdt::Fdt::new(&blob).unwrap();
    assert_eq!(f.chosen().bootargs(), Some("root=/dev/xvda console=hvc0"));
    let be = |n: &str| {
        let v = f.find_node("/chosen").unwrap().property(n).unwrap().value;
        u64::from_be_bytes(v.try_into().unwrap())
    };
    let (rs, re) = (be("linux,initrd-start"), be("linux,initrd-end"));
    assert_eq!(rs, 0x4060_0000, "2 MiB above image_size");
    assert_eq!(re - rs, ramdisk().len() as u64);
    assert_eq!(x.peek(1, rs, ramdisk().len()), ramdisk());
    assert!(dtb_addr >= re);
    assert_eq!(f.find_node("/cpus").unwrap().children().count(), 2);
    // The reserved grants let dom0 map the rings.
    let g = x.grant_frame(1).unwrap();
    assert_eq!(g[..16], super::create::reserved_grants());
    // Everything written was flushed.
    let flushed = |gfn: u64| {
        x.flushed
            .iter()
            .any(|&(d, s, n)| d == 1 && (s..s + n).contains(&gfn))
    };
    for gfn in [
        0x40000,
        0x40000 + 0x45,
        0x40600,
        dtb_addr >> 12,
        0x39000,
        0x39003,
    ] {
        assert!(flushed(gfn), "{gfn:#x}");
    }
    assert!(x.flushed.iter().all(|f| f.2 <= 1024));
}

#[test]
fn create_writes_xenstore_like_libxl() {
    let mut b = backend();
    created(&mut b);
    let r = |b: &mut B, p: &str| read(b, p).unwrap_or_else(|| panic!("no {p}"));
    assert_eq!(r(&mut b, "/local/domain/1/name"), "vm");
    assert_eq!(r(&mut b, "/local/domain/1/domid"), "1");
    assert_eq!(r(&mut b, "/local/domain/1/memory/static-max"), "65536");
    assert_eq!(r(&mut b, "/local/domain/1/memory/target"), "65536");
    assert_eq!(r(&mut b, "/local/domain/1/cpu/1/availability"), "online");
    assert_eq!(r(&mut b, "/local/domain/1/console/ring-ref"), "233472");
    assert_eq!(r(&mut b, "/local/domain/1/console/port"), "1");
    assert_eq!(r(&mut b, "/local/domain/1/console/type"), "xenconsoled");
    assert_eq!(r(&mut b, "/local/domain/1/console/output"), "pty");
    assert_eq!(r(&mut b, "/local/domain/1/console/limit"), "1048576");
    assert_eq!(r(&mut b, "/local/domain/1/store/ring-ref"), "233473");
    assert_eq!(r(&mut b, "/local/domain/1/store/port"), "2");
    assert_eq!(
        r(
            &mut b,
            "/local/domain/1/control/platform-feature-multiprocessor-suspend"
        ),
        "1"
    );
    let vm = r(&mut b, "/local/domain/1/vm");
    let uuid = crate::format::format_uuid(&dom(&b, 1).unwrap().info.handle);
    assert_eq!(vm, format!("/vm/{uuid}"));
    assert_eq!(r(&mut b, &format!("{vm}/name")), "vm");
    assert_eq!(r(&mut b, &format!("{vm}/uuid")), uuid);
    assert_eq!(r(&mut b, &format!("{vm}/start_time")), "1700000000.00");
    let perms = |b: &mut B, p: &str| b.host().xs.request(XS_GET_PERMS, 0, &args(&[p])).unwrap();
    assert_eq!(perms(&mut b, "/local/domain/1"), b"n0\0r1\0");
    assert_eq!(perms(&mut b, "/local/domain/1/name"), b"n0\0r1\0");
    assert_eq!(perms(&mut b, "/local/domain/1/control/shutdown"), b"n1\0");
    assert_eq!(perms(&mut b, "/local/domain/1/data"), b"n1\0");
    assert_eq!(perms(&mut b, "/local/domain/1/console/port"), b"n0\0r1\0");
    // The guest may write its data/ but not its console settings.
    let h = b.host();
    assert!(h
        .xs
        .as_guest(1, XS_WRITE, b"/local/domain/1/data/x\0y")
        .is_ok());
    assert!(h
        .xs
        .as_guest(1, XS_WRITE, b"/local/domain/1/console/port\09")
        .is_err());
    // All in one transaction, then the introduction.
    let start =
        h.xs.log
            .iter()
            .position(|l| l.0 == XS_TRANSACTION_START)
            .unwrap();
    let log = &h.xs.log[start..];
    assert!(log.iter().filter(|l| l.0 == XS_WRITE).all(|l| l.1 != 0));
    let intro = log.iter().position(|l| l.0 == XS_INTRODUCE).unwrap();
    let end = log.iter().position(|l| l.0 == XS_TRANSACTION_END).unwrap();
    assert!(end < intro);
    assert_eq!(log[intro].2, "1");
    assert!(h.xs.server.is_introduced(1));
    // The monitor got the whole config.
    assert_eq!(h.monitors.len(), 1);
    assert_eq!(
        (h.monitors[0].domid, h.monitors[0].name.as_str()),
        (1, "vm")
    );
    assert_eq!(h.monitors[0].text, config_text("").as_bytes());
    assert_eq!(h.err, format!("Parsing config from {CFG}\n"));
}

#[test]
fn create_options() {
    // -p: left paused; -e: no monitor.
    let mut b = backend();
    let o = xl(&mut b, &format!("create -p -e {CFG}"));
    assert_eq!(o.code, 0, "{o:?}");
    assert_ne!(dom(&b, 1).unwrap().info.flags & XEN_DOMINF_paused, 0);
    assert!(!create_calls(x(&b)).contains(&(HYPERVISOR_domctl, XEN_DOMCTL_unpausedomain)));
    assert!(b.host().monitors.is_empty());
    // key=value overrides reach the build (and the monitor's copy).
    let o = xl(
        &mut b,
        &format!("create {CFG} name=\"vm2\" memory=32 vcpus=1"),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(dom(&b, 2).unwrap().max_kb, 32 * 1024 + 1024);
    assert_eq!(read(&mut b, "/local/domain/2/name").as_deref(), Some("vm2"));
    let text = String::from_utf8(b.host().monitors[0].text.clone()).unwrap();
    assert!(
        text.ends_with("\nname=\"vm2\"\nmemory=32\nvcpus=1\n\n"),
        "{text}"
    );
    // Disks are built now (a block device as is): no warning.
    b.host().add_blockdev("/dev/loop0", 7, 0);
    b.host().on_sleep = Some(Box::new(super::fake::fake_kernel));
    let o = xl_with(
        &mut b,
        &format!("create -e {CFG}"),
        &config_text("name=\"vm3\"\ndisk=['phy:/dev/loop0,xvda,w']\n"),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert!(!b.host().err.contains("warning"), "{}", b.host().err);
    assert_eq!(
        read(
            &mut b,
            "/local/domain/0/backend/vbd/3/51712/physical-device"
        )
        .as_deref(),
        Some("7:0")
    );
    // -c: console once xenconsoled published the pty.
    let mut b = backend();
    b.host().on_sleep = Some(Box::new(|xs, _| {
        let _ = xs.write(XBT_NULL, "/local/domain/1/console/tty", "/dev/pts/3");
    }));
    b.host().console_steps = vec![Pump::Data, Pump::Data, Pump::Escape];
    let o = xl(&mut b, &format!("create -c {CFG}"));
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(b.host().consoles, ["/dev/pts/3"]);
    assert_eq!(dom(&b, 1).unwrap().info.flags & XEN_DOMINF_paused, 0);
}

/// A failure after `createdomain` destroys the domain and its entries.
#[test]
fn create_failures_roll_back() {
    let cases: [(u64, u32, usize, Errno, &str); 7] = [
        (
            HYPERVISOR_domctl,
            XEN_DOMCTL_max_mem,
            0,
            EINVAL,
            "Couldn't set max memory: Invalid argument",
        ),
        (
            HYPERVISOR_memory_op,
            XENMEM_populate_physmap,
            0,
            ENOMEM,
            "populate_physmap (gfn 0x40000, order 9): Cannot allocate memory",
        ),
        (
            HYPERVISOR_memory_op,
            XENMEM_populate_physmap,
            1,
            EINVAL,
            "populate_physmap (gfn 0x39000, order 0): Invalid argument",
        ),
        (
            HYPERVISOR_event_channel_op,
            EVTCHNOP_alloc_unbound,
            1,
            ENOSPC,
            "alloc_unbound (xenstore): No space left on device",
        ),
        (
            HYPERVISOR_hvm_op,
            HVMOP_set_param,
            3,
            EINVAL,
            "HVMOP_set_param 2: Invalid argument",
        ),
        (
            HYPERVISOR_domctl,
            XEN_DOMCTL_setvcpucontext,
            0,
            EINVAL,
            "SETVCPUCONTEXT failed: Invalid argument",
        ),
        (
            HYPERVISOR_domctl,
            XEN_DOMCTL_unpausedomain,
            0,
            EINVAL,
            "Unpausing domain: Invalid argument",
        ),
    ];
    for (op, cmd, nth, errno, want) in cases {
        let mut b = backend();
        xm(&mut b).fail.push(Fail {
            op,
            cmd,
            nth,
            errno,
        });
        let o = xl(&mut b, &format!("create {CFG}"));
        assert_eq!(o.code, 1, "{want}");
        assert!(o.stderr.contains(want), "{want}: {}", o.stderr);
        assert!(
            o.stderr
                .ends_with("Domain 1:cannot build the domain; it was destroyed\n"),
            "{}",
            o.stderr
        );
        assert!(dom(&b, 1).is_none(), "{want}: domain left behind");
        assert!(x(&b).guest.is_empty());
        assert_eq!(read(&mut b, "/local/domain/1/name"), None);
        assert!(b.host().monitors.is_empty());
    }
    // A GICv2 host: the domain cannot be described, so it goes.
    let mut b = backend();
    xm(&mut b).gic = XEN_DOMCTL_CONFIG_GIC_V2;
    let o = xl(&mut b, &format!("create {CFG}"));
    assert!(o.stderr.contains("GIC version 1"), "{}", o.stderr);
    assert!(dom(&b, 1).is_none());
    // No xenstore: nothing can be announced.
    let mut b = backend();
    b.host().xs.unreachable = true;
    let o = xl(&mut b, &format!("create {CFG}"));
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("xenstore is not reachable"),
        "{}",
        o.stderr
    );
    assert!(dom(&b, 1).is_none());
}

#[test]
fn populate_stops_at_max_mem() {
    // The hypervisor's partial success (max_mem lower than asked) is an
    // error: maxmem below memory lets only maxmem + 1 MiB in.
    let mut b = backend();
    let o = xl_with(
        &mut b,
        &format!("create {CFG}"),
        &config_text("memory=64\nmaxmem=32\n"),
    );
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("only 16 of 32 extents populated"),
        "{}",
        o.stderr
    );
    assert!(dom(&b, 1).is_none());
}

/// Problems found before any hypercall create nothing.
#[test]
fn create_checks_first() {
    let cases: [(&str, &str); 6] = [
        ("kernel=\"/nope\"\n", "libxl: error: cannot read kernel /nope: No such file or directory"),
        ("ramdisk=\"/nope\"\n", "libxl: error: cannot read ramdisk /nope: No such file or directory"),
        ("kernel=\"/boot/vmlinuz\"\n", "libxl: error: kernel /boot/vmlinuz is gzip-compressed"),
        ("kernel=\"/boot/zero\"\n", "is not an arm64 Image"),
        ("memory=8\n", "not enough memory for the kernel, ramdisk and device tree: they need 11 MiB, the domain has 8 MiB"),
        ("memory=4096\n", "is more than the 3072 MiB of guest RAM bank 0"),
    ];
    for (extra, want) in cases {
        let mut b = backend();
        b.host()
            .files
            .insert("/boot/vmlinuz".into(), vec![0x1f, 0x8b, 8, 0, 0, 0]);
        b.host().files.insert("/boot/zero".into(), vec![0; 4096]);
        let o = xl_with(&mut b, &format!("create {CFG}"), &config_text(extra));
        assert_eq!(o.code, 1, "{extra}");
        assert!(o.stderr.contains(want), "{extra}: {}", o.stderr);
        assert!(
            !x(&b).log.iter().any(|l| l.0 == HYPERVISOR_domctl),
            "{extra}"
        );
    }
    let mut b = backend();
    let o = xl_with(&mut b, &format!("create {CFG}"), "name=\"nok\"\n");
    assert!(
        o.stderr.contains("no kernel given for domain nok"),
        "{}",
        o.stderr
    );
    // A second domain of the same name.
    let mut b = backend();
    created(&mut b);
    let o = xl(&mut b, &format!("create {CFG}"));
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("Domain with name \"vm\" already exists."),
        "{}",
        o.stderr
    );
    assert!(dom(&b, 2).is_none());
}

#[test]
fn destroy_tears_everything_down() {
    let mut b = backend();
    created(&mut b);
    let vm = read(&mut b, "/local/domain/1/vm").unwrap();
    xm(&mut b).destroy_eagain = 3;
    let n = x(&b).log.len();
    let o = xl(&mut b, "destroy vm");
    assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{o:?}");
    assert!(dom(&b, 1).is_none());
    assert_eq!(read(&mut b, "/local/domain/1"), None);
    assert_eq!(read(&mut b, &vm), None);
    assert_eq!(read(&mut b, "/libxl/1"), None);
    assert!(b
        .host()
        .xs
        .log
        .iter()
        .any(|l| l.0 == XS_RELEASE && l.2 == "1"));
    let calls: Vec<u32> = x(&b).log[n..]
        .iter()
        .filter(|l| l.0 == HYPERVISOR_domctl)
        .map(|l| l.1)
        .collect();
    let pause = calls
        .iter()
        .position(|&c| c == XEN_DOMCTL_pausedomain)
        .unwrap();
    let destroys = calls
        .iter()
        .filter(|&&c| c == XEN_DOMCTL_destroydomain)
        .count();
    assert!(
        pause
            < calls
                .iter()
                .position(|&c| c == XEN_DOMCTL_destroydomain)
                .unwrap()
    );
    assert_eq!(destroys, 4, "three EAGAINs, then done");
    // By id too; and Xen's messages for a domain that is not there.
    let o = xl(&mut b, "destroy 1");
    assert_eq!(o.code, 1);
    assert_eq!(
        o.stderr,
        "libxl: error: libxl_domain.c:1183:libxl__destroy_domid: Domain 1:Non-existant domain\n\
         libxl: error: libxl_domain.c:1137:domain_destroy_callback: Domain 1:Unable to destroy guest\n\
         libxl: error: libxl_domain.c:1064:domain_destroy_cb: Domain 1:Destruction of domain failed\n\
         destroy failed (rc=-21)\n"
    );
    let o = xl(&mut b, "destroy vm");
    assert_eq!(o.stderr, "vm is an invalid domain identifier (rc=-6)\n");
    let o = xl(&mut b, "destroy 0");
    assert!(o
        .stderr
        .starts_with("Not destroying domain 0; use -f to force."));
}

#[test]
fn pause_and_unpause() {
    let mut b = backend();
    created(&mut b);
    assert_eq!(xl(&mut b, "pause vm").code, 0);
    assert_ne!(dom(&b, 1).unwrap().info.flags & XEN_DOMINF_paused, 0);
    let o = xl(&mut b, "list vm");
    assert!(o.stdout.contains("--p---"), "{}", o.stdout);
    assert_eq!(xl(&mut b, "unpause 1").code, 0);
    assert_eq!(dom(&b, 1).unwrap().info.flags & XEN_DOMINF_paused, 0);
    // xl reports libxl's error but exits 0.
    let o = xl(&mut b, "pause 7");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (0, "libxl: error: libxl_domain.c:587:libxl_domain_pause: Domain 7:Pausing domain: No such process\n")
    );
    let o = xl(&mut b, "unpause 7");
    assert!(
        o.stderr
            .contains("Domain 7:Unpausing domain: No such process"),
        "{}",
        o.stderr
    );
}

/// The guest's xenbus: it announces PV control and acknowledges requests.
fn pv_guest(b: &mut B) {
    let h = b.host();
    h.xs.as_guest(
        1,
        XS_WRITE,
        b"/local/domain/1/control/feature-poweroff\x001",
    )
    .unwrap();
    h.xs.as_guest(1, XS_WRITE, b"/local/domain/1/control/feature-reboot\x001")
        .unwrap();
    h.on_sleep = Some(Box::new(|xs, _| {
        let _ = xs.as_guest(1, XS_WRITE, b"/local/domain/1/control/shutdown\0");
    }));
}

#[test]
fn shutdown_through_control_node() {
    let mut b = backend();
    created(&mut b);
    // No PV control in the guest (yet).
    let o = xl(&mut b, "shutdown vm");
    assert_eq!(o.code, 1);
    assert_eq!(
        o.stderr,
        "PV control interface not available: external graceful shutdown not possible.\n\
         Use \"-F\" to fallback to ACPI power event.\nshutdown failed (rc=-10)\n"
    );
    pv_guest(&mut b);
    b.host().err.clear();
    let n = b.host().xs.log.len();
    let o = xl(&mut b, "shutdown vm");
    assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{o:?}");
    assert_eq!(b.host().err, "Shutting down domain 1\n");
    // Written in a transaction, then acknowledged by the guest.
    let log = b.host().xs.log[n..].to_vec();
    let w = log.iter().find(|l| l.0 == XS_WRITE).unwrap();
    assert_eq!(w.2, "/local/domain/1/control/shutdown");
    assert_ne!(w.1, 0);
    assert_eq!(
        read(&mut b, "/local/domain/1/control/shutdown").as_deref(),
        Some("")
    );
    // Reboot asks for "reboot".
    b.host().on_sleep = None;
    let mut b2 = backend();
    created(&mut b2);
    pv_guest(&mut b2);
    b2.host().on_sleep = None;
    xm(&mut b2).script.push((0, 1, FakeEvent::Shutdown(1)));
    let o = xl(&mut b2, "reboot vm");
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        read(&mut b2, "/local/domain/1/control/shutdown").as_deref(),
        Some("reboot")
    );
    // Nobody acknowledges: libxl gives up after a minute.
    let o = xl(&mut b, "shutdown vm");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (1, "libxl: error: libxl_domain.c:854:pvcontrol_cb: guest didn't acknowledge control request: -9\nshutdown failed (rc=-9)\n")
    );
    assert!(b.host().slept >= Duration::from_secs(60));
}

#[test]
fn shutdown_fallback_and_errors() {
    let mut b = backend();
    created(&mut b);
    let o = xl(&mut b, "shutdown -F vm");
    assert_eq!(o.code, 0, "{o:?}");
    assert!(b
        .host()
        .err
        .ends_with("PV control interface not available: sending ACPI power button event.\n"));
    assert!(x(&b)
        .log
        .contains(&(HYPERVISOR_sched_op, SCHEDOP_remote_shutdown)));
    assert_eq!(dom(&b, 1).unwrap().info.flags >> 16, 0);
    assert_ne!(dom(&b, 1).unwrap().info.flags & XEN_DOMINF_shutdown, 0);
    let o = xl(&mut b, "reboot -F 1");
    assert_eq!(o.code, 0, "{o:?}");
    let o = xl(&mut b, "reboot 5");
    assert_eq!(
        o.stderr,
        "libxl: error: libxl_dom.c:37:libxl__domain_type: unable to get domain type for domid=5\nreboot failed (rc=-3)\n"
    );
    let o = xl(&mut b, "reboot vm");
    assert!(o
        .stderr
        .contains("Use \"-F\" to fallback to ACPI reset event.\nreboot failed (rc=-10)"));
}

#[test]
fn shutdown_wait() {
    // -w: the guest shuts down, then the monitor destroys it.
    let mut b = backend();
    created(&mut b);
    pv_guest(&mut b);
    xm(&mut b).script.push((12, 1, FakeEvent::Shutdown(0)));
    b.host().err.clear();
    let o = xl(&mut b, "shutdown -w vm");
    assert_eq!(o.code, 0, "{o:?}");
    let err = b.host().err.clone();
    assert!(
        err.starts_with("Shutting down domain 1\nWaiting for 1 domains\n"),
        "{err}"
    );
    assert!(
        err.contains("Domain 1 has been shut down, reason code 0\n"),
        "{err}"
    );
    // Nobody destroyed it: taken as preserved after the grace period.
    assert!(b.host().slept >= Duration::from_secs(10));
    // -a -w on a domain that goes away.
    let mut b = backend();
    created(&mut b);
    pv_guest(&mut b);
    b.host().err.clear();
    xm(&mut b).destroy_eagain = 0;
    xm(&mut b).script.push((12, 1, FakeEvent::Shutdown(1)));
    xm(&mut b).script.push((20, 1, FakeEvent::Vanish));
    let o = xl(&mut b, "reboot -a -w");
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        b.host()
            .err
            .contains("Domain 1 has been shut down, reason code 1\n"),
        "{}",
        b.host().err
    );
}

#[test]
fn list_and_friends_show_domus() {
    let mut b = backend();
    created(&mut b);
    let o = xl(&mut b, "list");
    let rows: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(rows.len(), 3, "{}", o.stdout);
    assert!(rows[1].starts_with("Domain-0 "));
    assert!(
        rows[2]
            .starts_with("vm                                           1    64     1     r-----"),
        "{}",
        rows[2]
    );
    assert_eq!(xl(&mut b, "domid vm").stdout, "1\n");
    assert_eq!(xl(&mut b, "domname 1").stdout, "vm\n");
    b.host().clock += Duration::from_secs(75);
    let o = xl(&mut b, "uptime vm");
    assert_eq!(o.stdout, "Name                                ID Uptime\nvm                                   1  0:01:15\n");
    let o = xl(&mut b, "vcpu-list");
    assert_eq!(
        o.stdout.lines().filter(|l| l.starts_with("vm ")).count(),
        2,
        "{}",
        o.stdout
    );
    // Shut down with a crash: 's' and 'c'.
    xm(&mut b).domains[1].info.flags = XEN_DOMINF_shutdown | (3 << 16);
    assert!(
        xl(&mut b, "list vm").stdout.contains("   ---sc-  "),
        "{}",
        xl(&mut b, "list vm").stdout
    );
    let o = xl(&mut b, "list -l");
    assert_eq!(o.code, 0, "{o:?}");
    let s = &o.stdout;
    assert!(s.starts_with("[\n    {\n        \"domid\": 0,"), "{s}");
    assert!(s.contains("\"domid\": 1,\n        \"config\": {\n            \"c_info\": {\n                \"type\": \"pvh\",\n                \"name\": \"vm\","), "{s}");
    assert!(s.contains("\"max_vcpus\": 2,"), "{s}");
    assert!(
        s.contains("\"max_memkb\": 65536,\n                \"target_memkb\": 65536"),
        "{s}"
    );
    assert!(s.ends_with("}\n]\n"));
    assert_eq!(s.matches('{').count(), s.matches('}').count());
    let o = xl(&mut b, "list -l vm");
    assert!(!o.stdout.contains("\"domid\": 0"));
}

#[test]
fn console_attaches_and_detaches() {
    let mut b = backend();
    created(&mut b);
    // No pty yet: xenconsole's 5 s wait, then its error.
    let o = xl(&mut b, "console vm");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (
            1,
            "xenconsole: Could not read tty from store: No such file or directory\n"
        )
    );
    b.host()
        .xs
        .write(XBT_NULL, "/local/domain/1/console/tty", "/dev/pts/7")
        .unwrap();
    b.host().console_steps = vec![Pump::Data, Pump::PtyGone, Pump::Data, Pump::Escape];
    let o = xl(&mut b, "console -t pv vm");
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(b.host().consoles, ["/dev/pts/7"]);
    // Other console types: xenconsole's nodes (serial falls back to PV).
    b.host().consoles.clear();
    b.host()
        .xs
        .write(XBT_NULL, "/local/domain/1/vuart/0/tty", "/dev/pts/9")
        .unwrap();
    b.host()
        .xs
        .write(
            XBT_NULL,
            "/local/domain/1/device/console/2/tty",
            "/dev/pts/8",
        )
        .unwrap();
    for line in [
        "console -t vuart vm",
        "console -n 2 vm",
        "console -t serial vm",
    ] {
        assert_eq!(xl(&mut b, line).code, 0, "{line}");
    }
    assert_eq!(
        b.host().consoles,
        ["/dev/pts/9", "/dev/pts/8", "/dev/pts/7"]
    );
    let o = xl(&mut b, "console 0");
    assert_eq!(o.stderr, "Can't specify Domain-0\n");
}

#[test]
fn console_ends_when_the_domain_dies() {
    let mut b = backend();
    created(&mut b);
    b.host()
        .xs
        .write(XBT_NULL, "/local/domain/1/console/tty", "/dev/pts/7")
        .unwrap();
    // Output for a while, then silence; the domain is destroyed elsewhere.
    let mut steps = vec![Pump::Data; 20];
    steps.extend(vec![Pump::Idle; 20]);
    b.host().console_steps = steps;
    let n = x(&b).log.len() - dom(&b, 1).unwrap().started_at.unwrap();
    xm(&mut b).script.push((n + 1, 1, FakeEvent::Vanish));
    let o = xl(&mut b, "console 1");
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(b.host().consoles, ["/dev/pts/7"]);
    assert!(dom(&b, 1).is_none());
}

fn cfg_of(text: &str) -> DomainConfig {
    let c = Config::parse(CFG, text.as_bytes()).unwrap();
    DomainConfig::from_config(&c).unwrap().config
}

#[test]
fn monitor_restarts_then_destroys() {
    let mut b = backend();
    let cfg = cfg_of(&config_text(""));
    let domid = b.build(&cfg, false).unwrap();
    assert_eq!(domid, 1);
    // The guest reboots soon; once built again, it powers off. (Creation 2
    // gets the recent id 1 and is destroyed at once: the guest is the third.)
    xm(&mut b).script.push((3, 1, FakeEvent::Shutdown(1)));
    xm(&mut b).script.push((3, 3, FakeEvent::Shutdown(0)));
    let uuid = dom(&b, 1).unwrap().info.handle;
    let rc = b.monitor(domid, &cfg);
    assert_eq!(rc, 0);
    assert_eq!(x(&b).generations, 3);
    let second = x(&b)
        .domains
        .iter()
        .find(|d| d.generation == 2)
        .map(|d| d.created.unwrap().handle);
    assert_eq!(second, None, "powered off and destroyed");
    // Both builds wrote the same /vm/<uuid>.
    let path = format!("/vm/{}/uuid", crate::format::format_uuid(&uuid));
    let writes = b
        .host()
        .xs
        .log
        .iter()
        .filter(|l| l.0 == XS_WRITE && l.2 == path)
        .count();
    assert_eq!(writes, 2);
    assert!(dom(&b, 1).is_none());
    let log = b.host().err.clone();
    let want_start = "Waiting for domain vm (domid 1) to die [pid 777]\n\
                      Domain 1 has shut down, reason code 1 0x1\n\
                      Action for shutdown reason code 1 is restart\n\
                      Domain 1 needs to be cleaned up: destroying the domain\n\
                      Done. Rebooting now\n\
                      Waiting for domain vm (domid 2) to die [pid 777]\n";
    assert!(log.starts_with(want_start), "{log}");
    assert!(log.ends_with(
        "Domain 2 has shut down, reason code 0 0x0\nAction for shutdown reason code 0 is destroy\n\
         Domain 2 needs to be cleaned up: destroying the domain\nDone. Exiting now\n"
    ), "{log}");
    // Id 1 was destroyed a moment ago: the hypervisor's pick is refused and
    // the next id asked for by number, as libxl avoids recent ids.
    let creates = x(&b)
        .log
        .iter()
        .filter(|l| **l == (HYPERVISOR_domctl, XEN_DOMCTL_createdomain))
        .count();
    assert_eq!(creates, 3);
    assert_eq!(
        b.host().history.iter().map(|h| h.1).collect::<Vec<_>>(),
        [1, 2]
    );
}

#[test]
fn monitor_actions() {
    // Power off: destroyed, monitor ends.
    let mut b = backend();
    let cfg = cfg_of(&config_text(""));
    let d = b.build(&cfg, false).unwrap();
    xm(&mut b).script.push((2, 1, FakeEvent::Shutdown(0)));
    assert_eq!(b.monitor(d, &cfg), 0);
    assert!(dom(&b, 1).is_none());
    assert_eq!(read(&mut b, "/local/domain/1"), None);
    assert!(b.host().err.ends_with(
        "Domain 1 has shut down, reason code 0 0x0\nAction for shutdown reason code 0 is destroy\n\
         Domain 1 needs to be cleaned up: destroying the domain\nDone. Exiting now\n"
    ), "{}", b.host().err);
    // Crash with on_crash=preserve: left as it is.
    let mut b = backend();
    let cfg = cfg_of(&config_text("on_crash=\"preserve\"\n"));
    let d = b.build(&cfg, false).unwrap();
    xm(&mut b).script.push((2, 1, FakeEvent::Shutdown(3)));
    assert_eq!(b.monitor(d, &cfg), 0);
    assert!(dom(&b, 1).is_some());
    assert!(b
        .host()
        .err
        .ends_with("Action for shutdown reason code 3 is preserve\nDone. Exiting now\n"));
    // Destroyed by someone else: the monitor just ends.
    let mut b = backend();
    let d = b.build(&cfg, false).unwrap();
    xm(&mut b).domains.retain(|x| x.info.domain != 1);
    assert_eq!(b.monitor(d, &cfg), 0);
    assert!(b.host().err.ends_with("Domain 1 has been destroyed.\n"));
    // A restart that cannot build (kernel gone) ends the monitor.
    let mut b = backend();
    let cfg = cfg_of(&config_text("on_poweroff=\"restart\"\n"));
    let d = b.build(&cfg, false).unwrap();
    b.host().files.remove(KERNEL);
    xm(&mut b).script.push((2, 1, FakeEvent::Shutdown(0)));
    assert_eq!(b.monitor(d, &cfg), 0);
    assert!(
        b.host()
            .err
            .contains("Done. Rebooting now\nlibxl: error: cannot read kernel"),
        "{}",
        b.host().err
    );
    assert!(b.host().slept >= Duration::from_secs(2));
}
