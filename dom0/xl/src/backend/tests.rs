//! The backend against the fake hypervisor: what xl prints, and which
//! hypercalls it takes to print it.

#![allow(non_upper_case_globals)]

use xen_abi::domctl::*;
use xen_abi::errno::*;
use xen_abi::sysctl::*;
use xen_abi::version::*;
use xen_abi::xen::{HYPERVISOR_domctl, HYPERVISOR_sysctl, HYPERVISOR_xen_version};
use zerocopy::IntoBytes;

use super::abi::*;
use super::fake::{FakeDomain, FakeHost, FakeVcpu, FakeXen};
use super::xencall::{check, GuestMem, Mem, Xencall};
use super::xenstore::Xs;
use super::*;
use crate::run::run;

/// A host whose xenstore holds these (path, value) pairs, or none at all.
fn host_with(names: Option<Vec<(String, String)>>) -> FakeHost {
    let mut h = FakeHost::new();
    match names {
        None => h.xs.unreachable = true,
        Some(n) => {
            for (p, v) in n {
                h.xs.write(0, &p, &v).unwrap();
            }
        }
    }
    h
}

fn dom(id: u16, pages: u64, vcpus: u32, flags: u32) -> FakeDomain {
    let mut info = XenDomctlGetdomaininfo {
        domain: id,
        flags,
        tot_pages: pages,
        max_pages: pages,
        cpu_time: 12_345_678_901,
        nr_online_vcpus: vcpus,
        max_vcpu_id: vcpus - 1,
        ..Default::default()
    };
    info.handle[15] = id as u8;
    let vcpus = (0..vcpus)
        .map(|v| FakeVcpu {
            online: true,
            running: v == 0,
            blocked: v != 0,
            cpu: v,
            time: 1_500_000_000,
            hard: 1 << v,
        })
        .collect();
    FakeDomain {
        info,
        vcpus,
        ..Default::default()
    }
}

/// Xen 4.17 on QEMU virt, 2 CPUs, 2 GiB, dom0_mem=512M.
fn xen() -> FakeXen {
    FakeXen {
        domains: vec![dom(
            0,
            131072,
            2,
            XEN_DOMINF_running | XEN_DOMINF_hvm_guest | XEN_DOMINF_hap,
        )],
        phys: XenSysctlPhysinfo {
            threads_per_core: 1,
            cores_per_socket: 1,
            nr_cpus: 2,
            max_cpu_id: 1,
            nr_nodes: 1,
            max_node_id: 0,
            cpu_khz: 62500,
            capabilities: XEN_SYSCTL_PHYSCAP_hvm
                | XEN_SYSCTL_PHYSCAP_hap
                | XEN_SYSCTL_PHYSCAP_gnttab_v1,
            total_pages: 524288,
            free_pages: 380000,
            ..Default::default()
        },
        sched: XEN_SCHEDULER_CREDIT2,
        version: (4 << 16) | 17,
        extra: ".3-pre",
        caps: "xen-3.0-aarch64 xen-3.0-armv7l ",
        cmdline: "dom0_mem=512M loglvl=all",
        build_id: vec![0xde, 0xad, 0xbe, 0xef],
        sharing: None,
        free_cpus: 0,
        ring: b"(XEN) Xen version 4.17\n(XEN) hello\n".to_vec(),
        ..Default::default()
    }
}

fn host() -> FakeHost {
    host_with(None)
}

fn xl<X: Xencall + GuestMem, H: Host>(b: &mut Backend<X, H>, line: &str) -> crate::run::Output {
    let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
    let inv = crate::cli::parse(&argv).unwrap_or_else(|e| panic!("{line}: {e:?}"));
    run(&inv, b, &|p| std::fs::read(p))
}

#[test]
fn list_without_xenstore() {
    let mut b = Backend::new(Ok(xen()), host());
    let o = xl(&mut b, "list");
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        o.stdout,
        "Name                                        ID   Mem VCPUs\tState\tTime(s)\n\
         Domain-0                                     0   512     2     r-----      12.3\n"
    );
    // libxl_list_domain: batches of 1024, until an empty batch.
    assert_eq!(b.xc.as_ref().unwrap().max_list, 1024);
}

#[test]
fn names_from_xenstore() {
    let mut x = xen();
    x.domains.push(dom(3, 32768, 1, XEN_DOMINF_blocked));
    x.domains.push(dom(
        7,
        1024,
        1,
        XEN_DOMINF_shutdown | XEN_DOMINF_paused | (3 << 16),
    ));
    let h = host_with(Some(vec![
        ("/local/domain/0/name".into(), "Domain-0".into()),
        ("/local/domain/3/name".into(), "guest".into()),
    ]));
    let mut b = Backend::new(Ok(x), h);
    let o = xl(&mut b, "list");
    let rows: Vec<&str> = o.stdout.lines().skip(1).collect();
    assert_eq!(
        rows[1],
        "guest                                        3   128     1     -b----      12.3"
    );
    // No name in xenstore: libxl's NULL, printed "(null)".
    assert_eq!(
        rows[2],
        "(null)                                       7     4     1     --psc-      12.3"
    );
    assert_eq!(xl(&mut b, "domid guest").stdout, "3\n");
    assert_eq!(xl(&mut b, "domname 3").stdout, "guest\n");
    // Unreachable xenstore: only dom0 gets a name.
    let mut b = Backend::new(Ok(b.xc.unwrap()), host());
    let o = xl(&mut b, "list");
    assert!(o.stdout.contains("\nDomain-0 "), "{}", o.stdout);
    assert!(
        o.stdout
            .contains("\n(null)                                       3 "),
        "{}",
        o.stdout
    );
}

#[test]
fn domid_domname() {
    let mut b = Backend::new(Ok(xen()), host());
    assert_eq!(xl(&mut b, "domid Domain-0").stdout, "0\n");
    assert_eq!(xl(&mut b, "domname 0").stdout, "Domain-0\n");
    let o = xl(&mut b, "domid nosuch");
    assert_eq!(o.code, 1);
}

#[test]
fn info_lines() {
    let mut b = Backend::new(Ok(xen()), host());
    let o = xl(&mut b, "info");
    assert_eq!(o.code, 0, "{o:?}");
    let want = "\
host                   : (none)
release                : 6.1.0-18-cloud-arm64
version                : #1 SMP Debian 6.1.76-1 (2024-02-01)
machine                : aarch64
nr_cpus                : 2
max_cpu_id             : 1
nr_nodes               : 1
cores_per_socket       : 1
threads_per_core       : 1
cpu_mhz                : 62.500
hw_caps                : 00000000:00000000:00000000:00000000:00000000:00000000:00000000:00000000
virt_caps              : hvm hap gnttab-v1
total_memory           : 2048
free_memory            : 1484
sharing_freed_memory   : 0
sharing_used_memory    : 0
outstanding_claims     : 0
free_cpus              : 0
xen_major              : 4
xen_minor              : 17
xen_extra              : .3-pre
xen_version            : 4.17.3-pre
xen_caps               : xen-3.0-aarch64 xen-3.0-armv7l 
xen_scheduler          : credit2
xen_pagesize           : 4096
platform_params        : virt_start=0x200000
xen_changeset          : 
xen_commandline        : dom0_mem=512M loglvl=all
cc_compiler            : gcc (Debian 12.2.0-14) 12.2.0
cc_compile_by          : pkg-xen-devel
cc_compile_domain      : lists.alioth.debian.org
cc_compile_date        : Mon Jan  1 00:00:00 UTC 2024
build_id               : deadbeef
xend_config_format     : 4
";
    assert_eq!(o.stdout, want);
    assert_eq!(xl(&mut b, "info xen_m").stdout, "4\n17\n");
}

/// memory_op sharing queries: ENOSYS (Ferrovisor) reads as 0, as libxl has
/// it; any other error fails the command.
#[test]
fn info_sharing_errors() {
    let mut x = xen();
    x.sharing = Some(ENOSYS);
    let mut b = Backend::new(Ok(x), host());
    assert_eq!(xl(&mut b, "info sharing_freed_memory").stdout, "0\n");
    let mut x = xen();
    x.sharing = Some(EPERM);
    let mut b = Backend::new(Ok(x), host());
    let o = xl(&mut b, "info");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (
            1,
            "libxl: error: getting sharing freed pages: Operation not permitted\n"
        )
    );
}

#[test]
fn vcpu_list() {
    let mut b = Backend::new(Ok(xen()), host());
    let o = xl(&mut b, "vcpu-list");
    assert_eq!(
        o.stdout,
        "Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)\n\
         Domain-0                             0     0    0   r--       1.5  0 / all\n\
         Domain-0                             0     1    1   -b-       1.5  1 / all\n"
    );
    let x = b.xc.as_ref().unwrap();
    assert!(x.log.contains(&(HYPERVISOR_domctl, XEN_DOMCTL_getvcpuinfo)));
    assert!(x
        .log
        .contains(&(HYPERVISOR_domctl, XEN_DOMCTL_getvcpuaffinity)));
}

#[test]
fn uptime() {
    let mut b = Backend::new(Ok(xen()), host());
    let o = xl(&mut b, "uptime");
    assert_eq!(o.stdout, "Name                                ID Uptime\nDomain-0                             0  1:02:03\n");
    let o = xl(&mut b, "uptime -s");
    assert_eq!(o.stdout, " 22:13:20 up  1:02, Domain-0 (0)\n");
}

#[test]
fn dmesg_and_clear() {
    let mut b = Backend::new(Ok(xen()), host());
    let o = xl(&mut b, "dmesg");
    assert_eq!(o.stdout, "(XEN) Xen version 4.17\n(XEN) hello\n");
    // Still there without -c, gone after it.
    assert_eq!(xl(&mut b, "dmesg -c").stdout, o.stdout);
    assert_eq!(xl(&mut b, "dmesg").stdout, "");
    let x = b.xc.as_ref().unwrap();
    assert!(x.log.iter().all(|&(op, _)| op == HYPERVISOR_sysctl));
}

/// A ring longer than libxl's 16 KiB buffer comes out whole.
#[test]
fn dmesg_long() {
    let mut x = xen();
    x.ring = (0..40000).map(|i| b"abcdefgh\n"[i % 9]).collect();
    let want = String::from_utf8(x.ring.clone()).unwrap();
    let mut b = Backend::new(Ok(x), host());
    assert_eq!(xl(&mut b, "dmesg").stdout, want);
}

#[test]
fn no_privcmd() {
    let mut b: Backend<FakeXen, _> =
        Backend::new(Err("xencall: error: Could not obtain handle on privileged command interface: No such file or directory".into()), host());
    let o = xl(&mut b, "list");
    assert_eq!(o.code, 1);
    assert!(o.stderr.starts_with("xencall: error:"), "{o:?}");
    // Commands that need no hypervisor still work.
    assert_eq!(xl(&mut b, "help").code, 0);
}

#[test]
fn version_calls() {
    let mut b = Backend::new(Ok(xen()), host());
    xl(&mut b, "info");
    let x = b.xc.as_ref().unwrap();
    for cmd in [
        XENVER_version,
        XENVER_extraversion,
        XENVER_compile_info,
        XENVER_capabilities,
        XENVER_changeset,
        XENVER_platform_parameters,
        XENVER_pagesize,
        XENVER_commandline,
        XENVER_build_id,
    ] {
        assert!(
            x.log.contains(&(HYPERVISOR_xen_version, cmd)),
            "no xen_version {cmd}"
        );
    }
    for cmd in [
        XEN_SYSCTL_physinfo,
        XEN_SYSCTL_sched_id,
        XEN_SYSCTL_cpupool_op,
    ] {
        assert!(x.log.contains(&(HYPERVISOR_sysctl, cmd)), "no sysctl {cmd}");
    }
}

/// Every buffer is freed after each call.
#[test]
fn buffers_freed() {
    let mut x = xen();
    xc::physinfo(&mut x).unwrap();
    xc::getvcpuaffinity(&mut x, 0, 1, 1).unwrap();
    xc::readconsole(&mut x, 100, false, true, 0).unwrap();
    assert_eq!(x.bufs.len(), 6);
    assert!(x.bufs.iter().all(Option::is_none));
    let b = x.alloc(1).unwrap();
    assert!(x.get(x.addr(b), 4096).is_some());
    assert!(x.get(x.addr(b) - 1, 1).is_none());
}

/// The pointer check refuses what the backend never issues, and pointers
/// outside its buffers.
#[test]
fn check_refuses() {
    let mut x = xen();
    let s = x.alloc(136).unwrap();
    let a = x.addr(s);
    let data = x.alloc(100).unwrap();
    let da = x.addr(data);
    // xen_version: buffers sized by sub-op.
    assert_eq!(
        check(
            HYPERVISOR_xen_version,
            &[XENVER_version as u64, 0, 0, 0, 0],
            &x
        ),
        Ok(())
    );
    assert_eq!(
        check(
            HYPERVISOR_xen_version,
            &[XENVER_capabilities as u64, da + 3500, 0, 0, 0],
            &x
        ),
        Err(EFAULT)
    );
    assert_eq!(
        check(
            HYPERVISOR_xen_version,
            &[XENVER_extraversion as u64, da, 0, 0, 0],
            &x
        ),
        Ok(())
    );
    assert_eq!(
        check(
            HYPERVISOR_xen_version,
            &[XENVER_extraversion as u64, da + 4090, 0, 0, 0],
            &x
        ),
        Err(EFAULT)
    );
    assert_eq!(
        check(HYPERVISOR_xen_version, &[99, da, 0, 0, 0], &x),
        Err(EFAULT)
    );
    x.bytes_mut(data)[..4].copy_from_slice(&5000u32.to_le_bytes());
    assert_eq!(
        check(
            HYPERVISOR_xen_version,
            &[XENVER_build_id as u64, da, 0, 0, 0],
            &x
        ),
        Err(EFAULT)
    );
    // sysctl: the embedded buffer must be inside a buffer, for its whole length.
    let mut op = XenSysctl {
        cmd: XEN_SYSCTL_readconsole,
        interface_version: XEN_SYSCTL_INTERFACE_VERSION,
        u: [0; 16],
    };
    xc::put(
        &mut op.u,
        &XenSysctlReadconsole {
            buffer: da,
            count: 4096,
            ..Default::default()
        },
    );
    x.bytes_mut(s)[..136].copy_from_slice(op.as_bytes());
    assert_eq!(check(HYPERVISOR_sysctl, &[a, 0, 0, 0, 0], &x), Ok(()));
    xc::put(
        &mut op.u,
        &XenSysctlReadconsole {
            buffer: da,
            count: 4097,
            ..Default::default()
        },
    );
    x.bytes_mut(s)[..136].copy_from_slice(op.as_bytes());
    assert_eq!(check(HYPERVISOR_sysctl, &[a, 0, 0, 0, 0], &x), Err(EFAULT));
    op.cmd = XEN_SYSCTL_getdomaininfolist;
    xc::put(
        &mut op.u,
        &XenSysctlGetdomaininfolist {
            buffer: da,
            max_domains: 35,
            ..Default::default()
        },
    );
    x.bytes_mut(s)[..136].copy_from_slice(op.as_bytes());
    assert_eq!(check(HYPERVISOR_sysctl, &[a, 0, 0, 0, 0], &x), Err(EFAULT));
    op.cmd = XEN_SYSCTL_debug_keys;
    x.bytes_mut(s)[..136].copy_from_slice(op.as_bytes());
    assert_eq!(check(HYPERVISOR_sysctl, &[a, 0, 0, 0, 0], &x), Err(EFAULT));
    // The sysctl struct itself must fit.
    assert_eq!(
        check(HYPERVISOR_sysctl, &[a + 4000, 0, 0, 0, 0], &x),
        Err(EFAULT)
    );
    // domctl: only the read-only commands, affinity maps checked per flag.
    let d = x.alloc(144).unwrap();
    let mut dc = XenDomctl {
        cmd: XEN_DOMCTL_getvcpuaffinity,
        interface_version: 0x15,
        domain: 0,
        _pad: [0; 3],
        u: [0; 16],
    };
    let bad = XenctlBitmap {
        bitmap: 0x1000,
        nr_bits: 8,
        _pad: 0,
    };
    let good = XenctlBitmap {
        bitmap: da,
        nr_bits: 8,
        _pad: 0,
    };
    xc::put(
        &mut dc.u,
        &XenDomctlVcpuaffinity {
            vcpu: 0,
            flags: XEN_VCPUAFFINITY_HARD,
            cpumap_hard: good,
            cpumap_soft: bad,
        },
    );
    x.bytes_mut(d)[..144].copy_from_slice(dc.as_bytes());
    assert_eq!(
        check(HYPERVISOR_domctl, &[x.addr(d), 0, 0, 0, 0], &x),
        Ok(())
    );
    xc::put(
        &mut dc.u,
        &XenDomctlVcpuaffinity {
            vcpu: 0,
            flags: 3,
            cpumap_hard: good,
            cpumap_soft: bad,
        },
    );
    x.bytes_mut(d)[..144].copy_from_slice(dc.as_bytes());
    assert_eq!(
        check(HYPERVISOR_domctl, &[x.addr(d), 0, 0, 0, 0], &x),
        Err(EFAULT)
    );
    dc.cmd = XEN_DOMCTL_shadow_op;
    x.bytes_mut(d)[..144].copy_from_slice(dc.as_bytes());
    assert_eq!(
        check(HYPERVISOR_domctl, &[x.addr(d), 0, 0, 0, 0], &x),
        Err(EFAULT)
    );
    // Anything else.
    assert_eq!(
        check(xen_abi::xen::HYPERVISOR_memory_op, &[1, da, 0, 0, 0], &x),
        Err(EFAULT)
    );
    assert_eq!(
        check(xen_abi::xen::HYPERVISOR_event_channel_op, &[0; 5], &x),
        Err(EFAULT)
    );
}

/// The payloads as Xen 4.17's headers lay them out (bytes, not just offsets).
#[test]
fn payload_bytes() {
    let r = XenSysctlReadconsole {
        clear: 1,
        incremental: 1,
        index: 0x1234,
        buffer: 0x1122_3344_5566_7788,
        count: 16384,
        ..Default::default()
    };
    let mut u = [0u64; 16];
    xc::put(&mut u, &r);
    assert_eq!(u[0], 0x0000_1234_0000_0101);
    assert_eq!(u[1], 0x1122_3344_5566_7788);
    assert_eq!(u[2], 16384);
    let a = XenDomctlVcpuaffinity {
        vcpu: 1,
        flags: 3,
        cpumap_hard: XenctlBitmap {
            bitmap: 0xaaaa,
            nr_bits: 8,
            _pad: 0,
        },
        cpumap_soft: XenctlBitmap {
            bitmap: 0xbbbb,
            nr_bits: 16,
            _pad: 0,
        },
    };
    let mut u = [0u64; 16];
    xc::put(&mut u, &a);
    // As hv/src/xen/control.rs decodes it: {vcpu, flags} @0, hard @8, soft @24.
    assert_eq!(&u[..5], &[1 | 3 << 32, 0xaaaa, 8, 0xbbbb, 16]);
    let c = XenSysctlCpupoolOp {
        op: 7,
        cpumap: XenctlBitmap {
            bitmap: 0xcccc,
            nr_bits: 8,
            _pad: 0,
        },
        ..Default::default()
    };
    let mut u = [0u64; 16];
    xc::put(&mut u, &c);
    assert_eq!(&u[..5], &[7, 0, 0, 0xcccc, 8]);
    let mut u = [0u64; 16];
    u[0] = 5 | 1 << 32 | 1 << 48;
    u[1] = 777;
    u[2] = 1;
    let v: XenDomctlGetvcpuinfo = xc::get(&u);
    assert_eq!(
        (v.vcpu, v.online, v.blocked, v.running, v.cpu_time, v.cpu),
        (5, 1, 0, 1, 777, 1)
    );
}

#[test]
fn system_host_stat() {
    let mut h = SystemHost::default();
    let f = std::env::temp_dir().join(format!("xl-stat-{}", std::process::id()));
    std::fs::write(&f, b"x").unwrap();
    let i = h.stat(f.to_str().unwrap()).unwrap();
    std::fs::remove_file(&f).unwrap();
    assert_eq!(i.kind, FileKind::Regular);
    assert_eq!(i.mode & 0o200, 0o200);
    assert_eq!(h.stat("/").unwrap().kind, FileKind::Other);
    assert_eq!(
        h.stat("/no/such/file").unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
    // Where the host has loop devices, their numbers.
    if let Ok(i) = h.stat("/dev/loop1") {
        if i.kind == FileKind::Block {
            assert_eq!(i.rdev, (7, 1));
        }
    }
}
