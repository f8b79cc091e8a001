//! Golden output of list / info / uptime / vcpu-list, as Xen 4.17's xl
//! prints it (rows checked with the same printf formats in C), and whole
//! commands run against a fake hypervisor.

use xl::cli::parse;
use xl::format::*;
use xl::run::{run, HvResult, Hypervisor, NoHypervisor, Output};

fn running() -> DomainState {
    DomainState {
        running: true,
        ..Default::default()
    }
}

fn dom0() -> DomainInfo {
    DomainInfo {
        name: Some("Domain-0".into()),
        domid: 0,
        mem_kib: 512 * 1024,
        vcpus: 2,
        state: running(),
        cpu_time_ns: 10_300_000_000,
        ..Default::default()
    }
}

fn domu() -> DomainInfo {
    DomainInfo {
        name: Some("domu".into()),
        domid: 1,
        mem_kib: 128 * 1024,
        vcpus: 1,
        state: running(),
        cpu_time_ns: 1_900_000_000,
        ..Default::default()
    }
}

/// `xl list` exactly as Xen 4.17 printed it on our emulator
/// (shared/xen-reference/RESULTS.md).
const XEN_LIST: &str = "Name                                        ID   Mem VCPUs\tState\tTime(s)
Domain-0                                     0   512     2     r-----      10.3
domu                                         1   128     1     r-----       1.9
";

#[test]
fn list_matches_xen_reference() {
    assert_eq!(list(&[dom0(), domu()], ListOptions::default()), XEN_LIST);
}

#[test]
fn list_state_columns_and_edges() {
    let d = DomainInfo {
        name: Some("a-very-long-domain-name-that-exceeds-forty-chars".into()),
        domid: 12345,
        mem_kib: 4 * 1024 * 1024 * 1024,
        vcpus: 128,
        state: DomainState {
            running: false,
            blocked: true,
            paused: true,
            shutdown: true,
            shutdown_reason: ShutdownReason::Crash,
            dying: true,
        },
        cpu_time_ns: 123_456_789_012_345,
        ..Default::default()
    };
    assert_eq!(
        list_row(&d, ListOptions::default()),
        "a-very-long-domain-name-that-exceeds-forty-chars 12345 4194304   128     -bpscd  123456.8\n"
    );
    let flags = |shutdown, reason| {
        DomainState {
            shutdown,
            shutdown_reason: reason,
            ..Default::default()
        }
        .flags()
    };
    assert_eq!(
        flags(false, ShutdownReason::Crash),
        "------",
        "reason only shown when shut down"
    );
    assert_eq!(flags(true, ShutdownReason::Poweroff), "---s--");
    assert_eq!(flags(true, ShutdownReason::Reboot), "---sr-");
    assert_eq!(flags(true, ShutdownReason::Suspend), "---ss-");
    assert_eq!(flags(true, ShutdownReason::Watchdog), "---sw-");
    assert_eq!(flags(true, ShutdownReason::SoftReset), "---sS-");
    assert_eq!(flags(true, ShutdownReason::Unknown), "---s?-");
    // Outstanding claims count in the Mem column; a missing name is "(null)".
    let d = DomainInfo {
        mem_kib: 1024,
        outstanding_kib: 2048,
        ..Default::default()
    };
    assert!(list_row(&d, ListOptions::default()).starts_with(
        "(null)                                       0     3     0     ------       0.0"
    ));
    // Time goes through single precision, as in xl: 0.25 s prints 0.2.
    let d = DomainInfo {
        cpu_time_ns: 250_000_000,
        ..dom0()
    };
    assert!(list_row(&d, ListOptions::default()).ends_with("       0.2\n"));
}

#[test]
fn list_verbose() {
    let mut d = dom0();
    d.uuid = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
    let o = ListOptions {
        verbose: true,
        context: false,
    };
    assert_eq!(
        list_header(o),
        "Name                                        ID   Mem VCPUs\tState\tTime(s)   UUID                            Reason-Code\tSecurity Label\n"
    );
    assert_eq!(
        list_row(&d, o),
        "Domain-0                                     0   512     2     r-----      10.3 00010203-0405-0607-0809-0a0b0c0d0e0f        -                -\n"
    );
    d.state.shutdown = true;
    d.state.shutdown_reason = ShutdownReason::Unknown;
    assert!(list_row(&d, o).contains(" ffffffff "));
    let z = ListOptions {
        verbose: false,
        context: true,
    };
    assert!(list_header(z).ends_with("Time(s)   Security Label\n"));
}

fn node() -> NodeInfo {
    NodeInfo {
        host: "(none)".into(),
        release: "6.1.0-56-cloud-arm64".into(),
        version: "#1 SMP Debian 6.1.192-2 (2026-10-01)".into(),
        machine: "aarch64".into(),
    }
}

fn phys() -> PhysInfo {
    PhysInfo {
        nr_cpus: 2,
        max_cpu_id: 1,
        nr_nodes: 1,
        cores_per_socket: 1,
        threads_per_core: 1,
        cpu_khz: 62500,
        cap_hvm: true,
        cap_hap: true,
        cap_gnttab_v1: true,
        total_pages: 524288,
        free_pages: 1504 * 256,
        free_cpus: Some(0),
        ..Default::default()
    }
}

fn version() -> VersionInfo {
    VersionInfo {
        major: 4,
        minor: 17,
        extra: ".7".into(),
        capabilities: "xen-3.0-aarch64 xen-3.0-armv7l ".into(),
        scheduler: "credit2".into(),
        pagesize: 4096,
        virt_start: 0x200000,
        changeset: "".into(),
        commandline: "dom0_mem=512M console=dtuart dtuart=/pl011@9000000 loglvl=all".into(),
        compiler: "aarch64-linux-gnu-gcc (Debian 12.2.0-14+deb12u1) 12.2.0".into(),
        compile_by: "pkg-xen-devel".into(),
        compile_domain: "lists.alioth.debian.org".into(),
        compile_date: "Thu Oct  2 00:00:00 UTC 2026".into(),
        build_id: "0123456789abcdef".into(),
    }
}

const INFO: &str = "host                   : (none)
release                : 6.1.0-56-cloud-arm64
version                : #1 SMP Debian 6.1.192-2 (2026-10-01)
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
free_memory            : 1504
sharing_freed_memory   : 0
sharing_used_memory    : 0
outstanding_claims     : 0
free_cpus              : 0
xen_major              : 4
xen_minor              : 17
xen_extra              : .7
xen_version            : 4.17.7
xen_caps               : xen-3.0-aarch64 xen-3.0-armv7l 
xen_scheduler          : credit2
xen_pagesize           : 4096
platform_params        : virt_start=0x200000
xen_changeset          : 
xen_commandline        : dom0_mem=512M console=dtuart dtuart=/pl011@9000000 loglvl=all
cc_compiler            : aarch64-linux-gnu-gcc (Debian 12.2.0-14+deb12u1) 12.2.0
cc_compile_by          : pkg-xen-devel
cc_compile_domain      : lists.alioth.debian.org
cc_compile_date        : Thu Oct  2 00:00:00 UTC 2026
build_id               : 0123456789abcdef
xend_config_format     : 4
";

#[test]
fn info_layout() {
    assert_eq!(info(&node(), &phys(), &version(), None), INFO);
}

#[test]
fn info_details() {
    let mut p = phys();
    p.hw_cap[1] = 1;
    p.hw_cap[2] = 0xdeadbeef;
    p.outstanding_pages = 256 * 10;
    p.free_cpus = None;
    p.cap_pv = true;
    p.cap_hvm_directio = true;
    let text = info(&node(), &p, &version(), None);
    assert!(text.contains("\nhw_caps                : 00000000:00000001:deadbeef:00000000:00000000:00000000:00000000:00000000\n"));
    assert!(
        text.contains("\nvirt_caps              : pv hvm hvm_directio pv_directio hap gnttab-v1\n")
    );
    assert!(text.contains("\nfree_memory            : 1494\n"));
    assert!(text.contains("\noutstanding_claims     : 10\n"));
    assert!(!text.contains("free_cpus"));
    // No capabilities: nothing after the colon.
    let text = info(&node(), &PhysInfo::default(), &version(), None);
    assert!(text.contains("\nvirt_caps              :\n"));
    // `xl info NAME` prints the values of keys starting with NAME.
    assert_eq!(
        info(&node(), &phys(), &version(), Some("free_memory")),
        "1504\n"
    );
    assert_eq!(info(&node(), &phys(), &version(), Some("xen_m")), "4\n17\n");
    assert_eq!(info(&node(), &phys(), &version(), Some("nope")), "");
    assert_eq!(
        info(&node(), &PhysInfo::default(), &version(), Some("virt_caps")),
        ""
    );
}

#[test]
fn uptime_formats() {
    assert_eq!(uptime_to_string(307, false), " 0:05:07");
    assert_eq!(uptime_to_string(307, true), " 0:05");
    assert_eq!(uptime_to_string(86400 + 3661, false), "1 day,  1:01:01");
    assert_eq!(
        uptime_to_string(3 * 86400 + 7384, false),
        "3 days,  2:03:04"
    );
    assert_eq!(uptime_to_string(3 * 86400 + 7384, true), "3 days,  2:03");
    assert_eq!(uptime_to_string(36000, false), "10:00:00");
    let e = [
        UptimeEntry {
            name: Some("Domain-0".into()),
            domid: 0,
            uptime_secs: 307,
        },
        UptimeEntry {
            name: Some("domu".into()),
            domid: 1,
            uptime_secs: 3 * 86400 + 7384,
        },
    ];
    assert_eq!(
        uptime(&e),
        "Name                                ID Uptime\nDomain-0                             0  0:05:07\ndomu                                 1 3 days,  2:03:04\n"
    );
    assert_eq!(
        uptime_short(&e[..1], "12:34:56"),
        " 12:34:56 up  0:05, Domain-0 (0)\n"
    );
}

#[test]
fn bitmaps() {
    assert_eq!(format_bitmap(&[0b11], 2), "all");
    assert_eq!(format_bitmap(&[0], 2), "none");
    assert_eq!(format_bitmap(&[], 4), "none");
    assert_eq!(format_bitmap(&[0b1_0011], 8), "0-1,4");
    assert_eq!(format_bitmap(&[0b1100], 4), "2-3");
    assert_eq!(format_bitmap(&[0b0100], 4), "2");
    assert_eq!(format_bitmap(&[0b1011], 4), "0-1,3");
    assert_eq!(format_bitmap(&[0xff, 0x01], 9), "all");
    assert_eq!(format_bitmap(&[0xfe, 0x01], 9), "1-8");
    assert_eq!(format_bitmap(&[0b0101], 4), "0,2");
    assert_eq!(format_bitmap(&[0xff], 0), "none");
}

#[test]
fn vcpu_list_rows() {
    assert_eq!(
        vcpu_list_header(),
        "Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)\n"
    );
    let v = VcpuInfo {
        vcpuid: 0,
        cpu: 1,
        online: true,
        running: true,
        vcpu_time_ns: 5_250_000_000,
        hard_affinity: vec![0b11],
        soft_affinity: vec![0b11],
        ..Default::default()
    };
    assert_eq!(
        vcpu_row(Some("Domain-0"), 0, &v, 2),
        "Domain-0                             0     0    1   r--       5.2  all / all\n"
    );
    let v = VcpuInfo {
        vcpuid: 1,
        hard_affinity: vec![0b1_0011],
        ..Default::default()
    };
    assert_eq!(
        vcpu_row(Some("domu"), 1, &v, 8),
        "domu                                 1     1    -   --p       0.0  0-1,4 / none\n"
    );
    let v = VcpuInfo {
        online: true,
        blocked: true,
        cpu: 0,
        ..Default::default()
    };
    assert!(vcpu_row(Some("x"), 3, &v, 1).contains("    0   -b- "));
}

/// A hypervisor with two domains, for end-to-end command tests.
struct Fake;

impl Hypervisor for Fake {
    fn list_domains(&mut self) -> HvResult<Vec<DomainInfo>> {
        Ok(vec![dom0(), domu()])
    }
    fn physinfo(&mut self) -> HvResult<PhysInfo> {
        Ok(phys())
    }
    fn version_info(&mut self) -> HvResult<VersionInfo> {
        Ok(version())
    }
    fn node_info(&mut self) -> HvResult<NodeInfo> {
        Ok(node())
    }
    fn vcpus(&mut self, domid: u32) -> HvResult<Vec<VcpuInfo>> {
        let all = vec![0b11];
        Ok((0..if domid == 0 { 2 } else { 1 })
            .map(|i| VcpuInfo {
                vcpuid: i,
                cpu: i,
                online: true,
                running: true,
                vcpu_time_ns: 1_000_000_000,
                hard_affinity: all.clone(),
                soft_affinity: all.clone(),
                ..Default::default()
            })
            .collect())
    }
    fn uptime_secs(&mut self, domid: u32) -> HvResult<Option<u64>> {
        Ok(Some(if domid == 0 { 307 } else { 42 }))
    }
}

fn xl(hv: &mut dyn Hypervisor, line: &str) -> Output {
    let argv: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    let inv = parse(&argv).expect("parses");
    run(&inv, hv, &|p| std::fs::read(p))
}

#[test]
fn commands_against_a_fake_hypervisor() {
    let o = xl(&mut Fake, "list");
    assert_eq!((o.stdout.as_str(), o.code), (XEN_LIST, 0));
    let o = xl(&mut Fake, "list domu");
    assert_eq!(
        o.stdout,
        format!(
            "{}{}",
            list_header(ListOptions::default()),
            list_row(&domu(), ListOptions::default())
        )
    );
    let o = xl(&mut Fake, "list 7");
    assert_eq!(
        (o.stderr.as_str(), o.code),
        ("Error: Domain '7' does not exist.\n", 1)
    );
    let o = xl(&mut Fake, "list nope");
    assert_eq!(
        (o.stderr.as_str(), o.code),
        ("nope is an invalid domain identifier (rc=-6)\n", 1)
    );
    assert_eq!(xl(&mut Fake, "info").stdout, INFO);
    assert_eq!(xl(&mut Fake, "info total_memory").stdout, "2048\n");
    assert_eq!(xl(&mut Fake, "domid domu").stdout, "1\n");
    assert_eq!(xl(&mut Fake, "domname 0").stdout, "Domain-0\n");
    let o = xl(&mut Fake, "domid x");
    assert_eq!(
        o.stderr,
        "Can't get domid of domain name 'x', maybe this domain does not exist.\n"
    );
    let o = xl(&mut Fake, "domname 9");
    assert_eq!(
        o.stderr,
        "Can't get domain name of domain id '9', maybe this domain does not exist.\n"
    );
    assert_eq!(
        xl(&mut Fake, "uptime").stdout,
        "Name                                ID Uptime\nDomain-0                             0  0:05:07\ndomu                                 1  0:00:42\n"
    );
    assert_eq!(
        xl(&mut Fake, "vcpu-list domu").stdout,
        "Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)\n\
domu                                 1     0    0   r--       1.0  all / all\n"
    );
    let o = xl(&mut Fake, "pause domu");
    assert_eq!(
        (o.stderr.as_str(), o.code),
        ("xl: pause: not supported yet\n", 1)
    );
}

#[test]
fn without_a_hypervisor() {
    for (line, name) in [
        ("list", "list"),
        ("info", "info"),
        ("destroy 1", "destroy"),
        ("dmesg", "dmesg"),
        ("vcpu-list", "vcpu-list"),
        ("mem-set 1 2", "mem-set"),
    ] {
        let o = xl(&mut NoHypervisor, line);
        assert_eq!(
            (o.stderr, o.code),
            (format!("xl: {name}: not supported yet\n"), 1),
            "{line}"
        );
    }
}

#[test]
fn create_dry_run_and_errors() {
    let dir = std::env::temp_dir().join(format!("xl-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("vm.cfg");
    std::fs::write(
        &good,
        "name = \"vm\"\nmemory = 64\nextra = \"console=hvc0\"\n",
    )
    .unwrap();
    let good = good.to_str().unwrap();

    let o = xl(
        &mut NoHypervisor,
        &format!("create -n {good} vcpus=2 root=\"/dev/xvda\""),
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stderr, format!("Parsing config from {good}\n"));
    assert!(
        o.stdout
            .contains("\"cmdline\": \"root=/dev/xvda console=hvc0\""),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("\"max_vcpus\": 2"));

    // Overrides are appended after the file, so their errors have line numbers past it.
    let o = xl(
        &mut NoHypervisor,
        &format!("create -q -n {good} root=/dev/xvda"),
    );
    assert_eq!(o.code, 1);
    assert_eq!(
        o.stderr,
        format!("{good}:5: config parsing error near `/dev/xvda': lexical error\nFailed to parse config: Invalid argument\n")
    );

    let o = xl(&mut NoHypervisor, &format!("create {good}"));
    assert_eq!(
        (
            o.code,
            o.stderr.ends_with("xl: create: not supported yet\n")
        ),
        (1, true)
    );

    let o = xl(&mut NoHypervisor, &format!("create -n {good} memory=\"x\""));
    assert_eq!(
        o.stderr,
        format!("Parsing config from {good}\n{good}:5: parameter `memory' is not a valid number\n")
    );

    let o = xl(&mut NoHypervisor, "create -n /nonexistent/vm.cfg");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (
            3,
            "Failed to read config file: /nonexistent/vm.cfg: No such file or directory\n"
        )
    );
    let o = xl(&mut NoHypervisor, "create -n");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (6, "Config file not specified and none in save file\n")
    );
    // /dev/null means "only the command line".
    let o = xl(&mut NoHypervisor, "create -n /dev/null name=\"cli\"");
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("\"name\": \"cli\""));
    let o = xl(&mut NoHypervisor, "create -n -q /dev/null");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (1, "Domain name must be specified.\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
