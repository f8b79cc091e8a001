//! Output of `xl list`, `xl info`, `xl uptime` and `xl vcpu-list`, byte for
//! byte as Xen 4.17's xl prints them (`tools/xl/xl_info.c`, `xl_vcpu.c`,
//! `xl_utils.c: print_bitmap`). The data comes from plain structs so the
//! formatting is testable without a hypervisor.

use std::fmt::Write as _;

/// Why a domain shut down (libxl_shutdown_reason). `Unknown` is libxl's -1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ShutdownReason {
    /// -1
    Unknown,
    /// 0: shown as `-`
    #[default]
    Poweroff,
    /// 1: `r`
    Reboot,
    /// 2: `s`
    Suspend,
    /// 3: `c`
    Crash,
    /// 4: `w`
    Watchdog,
    /// 5: `S`
    SoftReset,
}

impl ShutdownReason {
    /// The letter xl shows in the fifth state column.
    pub fn letter(self) -> char {
        match self {
            ShutdownReason::Unknown => '?',
            ShutdownReason::Poweroff => '-',
            ShutdownReason::Reboot => 'r',
            ShutdownReason::Suspend => 's',
            ShutdownReason::Crash => 'c',
            ShutdownReason::Watchdog => 'w',
            ShutdownReason::SoftReset => 'S',
        }
    }

    /// libxl's numeric code (shown by `xl list -v`).
    pub fn code(self) -> i32 {
        match self {
            ShutdownReason::Unknown => -1,
            ShutdownReason::Poweroff => 0,
            ShutdownReason::Reboot => 1,
            ShutdownReason::Suspend => 2,
            ShutdownReason::Crash => 3,
            ShutdownReason::Watchdog => 4,
            ShutdownReason::SoftReset => 5,
        }
    }
}

/// A domain's state flags (the `r b p s c d` columns).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DomainState {
    /// running on a CPU now
    pub running: bool,
    /// blocked
    pub blocked: bool,
    /// paused
    pub paused: bool,
    /// shut down
    pub shutdown: bool,
    /// the shutdown reason (only shown when `shutdown`)
    pub shutdown_reason: ShutdownReason,
    /// dying
    pub dying: bool,
}

impl DomainState {
    /// The six state characters, e.g. `r-----`, `--ps-d`, `---sc-`.
    pub fn flags(&self) -> String {
        let reason = if self.shutdown {
            self.shutdown_reason
        } else {
            ShutdownReason::Poweroff
        };
        [
            if self.running { 'r' } else { '-' },
            if self.blocked { 'b' } else { '-' },
            if self.paused { 'p' } else { '-' },
            if self.shutdown { 's' } else { '-' },
            reason.letter(),
            if self.dying { 'd' } else { '-' },
        ]
        .iter()
        .collect()
    }
}

/// One domain, as `libxl_dominfo` gives it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DomainInfo {
    /// The name (None prints as `(null)`, as glibc's printf does).
    pub name: Option<String>,
    /// The domain id.
    pub domid: u32,
    /// Current memory in KiB.
    pub mem_kib: u64,
    /// Outstanding claimed memory in KiB (added to `mem_kib` in the Mem column).
    pub outstanding_kib: u64,
    /// vCPUs online.
    pub vcpus: u32,
    /// State flags.
    pub state: DomainState,
    /// CPU time used, in nanoseconds.
    pub cpu_time_ns: u64,
    /// The domain handle (printed by `list -v`).
    pub uuid: [u8; 16],
    /// The XSM security label (printed by `list -v` / `-Z`).
    pub ssid_label: Option<String>,
}

/// `printf("%-Ns")`: pads by bytes, like C.
fn pad_right(s: &str, width: usize) -> String {
    let mut o = s.to_string();
    for _ in s.len()..width {
        o.push(' ');
    }
    o
}

/// xl's `(float)ns / 1e9`: single precision first, then double.
fn seconds(ns: u64) -> f64 {
    (ns as f32) as f64 / 1e9
}

/// libxl's UUID format.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let mut o = String::new();
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            o.push('-');
        }
        let _ = write!(o, "{b:02x}");
    }
    o
}

/// Options of `xl list` that change the table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// `-v`: UUID, reason code and security label
    pub verbose: bool,
    /// `-Z`: security label
    pub context: bool,
}

/// `xl list`'s header line (with newline).
pub fn list_header(opts: ListOptions) -> String {
    let mut o =
        String::from("Name                                        ID   Mem VCPUs\tState\tTime(s)");
    if opts.verbose {
        o.push_str("   UUID                            Reason-Code\tSecurity Label");
    }
    if opts.context && !opts.verbose {
        o.push_str("   Security Label");
    }
    o.push('\n');
    o
}

/// One `xl list` row (with newline).
pub fn list_row(d: &DomainInfo, opts: ListOptions) -> String {
    let mut o = pad_right(d.name.as_deref().unwrap_or("(null)"), 40);
    let _ = write!(
        o,
        " {:5} {:5} {:5}     {}  {:8.1}",
        d.domid as i32,
        (d.mem_kib.saturating_add(d.outstanding_kib)) / 1024,
        d.vcpus as i32,
        d.state.flags(),
        seconds(d.cpu_time_ns)
    );
    if opts.verbose {
        let _ = write!(o, " {}", format_uuid(&d.uuid));
        if d.state.shutdown {
            let _ = write!(o, " {:8x}", d.state.shutdown_reason.code());
        } else {
            let _ = write!(o, " {:>8}", "-");
        }
    }
    if opts.verbose || opts.context {
        let _ = write!(o, " {:>16}", d.ssid_label.as_deref().unwrap_or("-"));
    }
    o.push('\n');
    o
}

/// The whole `xl list` output.
pub fn list(domains: &[DomainInfo], opts: ListOptions) -> String {
    let mut o = list_header(opts);
    for d in domains {
        o.push_str(&list_row(d, opts));
    }
    o
}

/// `uname(2)` of dom0, the first four lines of `xl info`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeInfo {
    /// nodename
    pub host: String,
    /// release
    pub release: String,
    /// version
    pub version: String,
    /// machine
    pub machine: String,
}

/// `libxl_physinfo` (plus the free CPU count from `libxl_get_freecpus`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PhysInfo {
    /// nr_cpus
    pub nr_cpus: u32,
    /// max_cpu_id
    pub max_cpu_id: u32,
    /// nr_nodes
    pub nr_nodes: u32,
    /// cores_per_socket
    pub cores_per_socket: u32,
    /// threads_per_core
    pub threads_per_core: u32,
    /// CPU frequency in kHz
    pub cpu_khz: u32,
    /// hw_cap words
    pub hw_cap: [u32; 8],
    /// capability flags
    pub cap_pv: bool,
    /// hvm
    pub cap_hvm: bool,
    /// hvm_directio / pv_directio
    pub cap_hvm_directio: bool,
    /// hap
    pub cap_hap: bool,
    /// shadow
    pub cap_shadow: bool,
    /// iommu_hap_pt_share
    pub cap_iommu_hap_pt_share: bool,
    /// vmtrace
    pub cap_vmtrace: bool,
    /// vpmu
    pub cap_vpmu: bool,
    /// gnttab-v1
    pub cap_gnttab_v1: bool,
    /// gnttab-v2
    pub cap_gnttab_v2: bool,
    /// total pages
    pub total_pages: u64,
    /// free pages
    pub free_pages: u64,
    /// outstanding (claimed) pages
    pub outstanding_pages: u64,
    /// sharing_freed_pages
    pub sharing_freed_pages: u64,
    /// sharing_used_frames
    pub sharing_used_frames: u64,
    /// CPUs in no cpupool (`free_cpus`); None omits the line, as xl does
    /// when the query fails.
    pub free_cpus: Option<u32>,
}

/// `libxl_version_info` plus the scheduler name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionInfo {
    /// xen_major
    pub major: u32,
    /// xen_minor
    pub minor: u32,
    /// xen_extra, e.g. `.7`
    pub extra: String,
    /// xen_caps, e.g. `xen-3.0-aarch64 xen-3.0-armv7l`
    pub capabilities: String,
    /// xen_scheduler, e.g. `credit2`
    pub scheduler: String,
    /// page size in bytes
    pub pagesize: u32,
    /// virt_start
    pub virt_start: u64,
    /// xen_changeset
    pub changeset: String,
    /// xen_commandline
    pub commandline: String,
    /// cc_compiler
    pub compiler: String,
    /// cc_compile_by
    pub compile_by: String,
    /// cc_compile_domain
    pub compile_domain: String,
    /// cc_compile_date
    pub compile_date: String,
    /// build_id
    pub build_id: String,
}

/// Every `key : value` line of `xl info` (without `-n`), in order.
pub fn info_lines(node: &NodeInfo, phys: &PhysInfo, ver: &VersionInfo) -> Vec<String> {
    let mut l = Vec::new();
    let kv = |l: &mut Vec<String>, k: &str, v: String| l.push(format!("{k:<23}: {v}"));
    kv(&mut l, "host", node.host.clone());
    kv(&mut l, "release", node.release.clone());
    kv(&mut l, "version", node.version.clone());
    kv(&mut l, "machine", node.machine.clone());
    kv(&mut l, "nr_cpus", (phys.nr_cpus as i32).to_string());
    kv(&mut l, "max_cpu_id", (phys.max_cpu_id as i32).to_string());
    kv(&mut l, "nr_nodes", (phys.nr_nodes as i32).to_string());
    kv(
        &mut l,
        "cores_per_socket",
        (phys.cores_per_socket as i32).to_string(),
    );
    kv(
        &mut l,
        "threads_per_core",
        (phys.threads_per_core as i32).to_string(),
    );
    kv(
        &mut l,
        "cpu_mhz",
        format!("{}.{:03}", phys.cpu_khz / 1000, phys.cpu_khz % 1000),
    );
    kv(
        &mut l,
        "hw_caps",
        phys.hw_cap
            .iter()
            .map(|w| format!("{w:08x}"))
            .collect::<Vec<_>>()
            .join(":"),
    );
    let mut caps = String::new();
    let flags = [
        (phys.cap_pv, " pv"),
        (phys.cap_hvm, " hvm"),
        (phys.cap_hvm && phys.cap_hvm_directio, " hvm_directio"),
        (phys.cap_pv && phys.cap_hvm_directio, " pv_directio"),
        (phys.cap_hap, " hap"),
        (phys.cap_shadow, " shadow"),
        (phys.cap_iommu_hap_pt_share, " iommu_hap_pt_share"),
        (phys.cap_vmtrace, " vmtrace"),
        (phys.cap_vpmu, " vpmu"),
        (phys.cap_gnttab_v1, " gnttab-v1"),
        (phys.cap_gnttab_v2, " gnttab-v2"),
    ];
    for (on, s) in flags {
        if on {
            caps.push_str(s);
        }
    }
    // "virt_caps              :%s..." : no space of its own before the list.
    l.push(format!("{:<23}:{}", "virt_caps", caps));
    if ver.pagesize != 0 {
        let per_mib = ((1u64 << 20) / ver.pagesize as u64).max(1);
        kv(
            &mut l,
            "total_memory",
            (phys.total_pages / per_mib).to_string(),
        );
        kv(
            &mut l,
            "free_memory",
            (phys.free_pages.wrapping_sub(phys.outstanding_pages) / per_mib).to_string(),
        );
        kv(
            &mut l,
            "sharing_freed_memory",
            (phys.sharing_freed_pages / per_mib).to_string(),
        );
        kv(
            &mut l,
            "sharing_used_memory",
            (phys.sharing_used_frames / per_mib).to_string(),
        );
        kv(
            &mut l,
            "outstanding_claims",
            (phys.outstanding_pages / per_mib).to_string(),
        );
    }
    if let Some(n) = phys.free_cpus {
        kv(&mut l, "free_cpus", (n as i32).to_string());
    }
    kv(&mut l, "xen_major", (ver.major as i32).to_string());
    kv(&mut l, "xen_minor", (ver.minor as i32).to_string());
    kv(&mut l, "xen_extra", ver.extra.clone());
    kv(
        &mut l,
        "xen_version",
        format!("{}.{}{}", ver.major as i32, ver.minor as i32, ver.extra),
    );
    kv(&mut l, "xen_caps", ver.capabilities.clone());
    kv(&mut l, "xen_scheduler", ver.scheduler.clone());
    kv(&mut l, "xen_pagesize", ver.pagesize.to_string());
    kv(
        &mut l,
        "platform_params",
        format!("virt_start=0x{:x}", ver.virt_start),
    );
    kv(&mut l, "xen_changeset", ver.changeset.clone());
    kv(&mut l, "xen_commandline", ver.commandline.clone());
    kv(&mut l, "cc_compiler", ver.compiler.clone());
    kv(&mut l, "cc_compile_by", ver.compile_by.clone());
    kv(&mut l, "cc_compile_domain", ver.compile_domain.clone());
    kv(&mut l, "cc_compile_date", ver.compile_date.clone());
    kv(&mut l, "build_id", ver.build_id.clone());
    kv(&mut l, "xend_config_format", "4".to_string());
    l
}

/// `xl info [name]`: all lines, or with a name only the values of the lines
/// whose key starts with it (xl compares a prefix, so `xl info xen_m` gives
/// xen_major and xen_minor).
pub fn info(node: &NodeInfo, phys: &PhysInfo, ver: &VersionInfo, name: Option<&str>) -> String {
    let mut o = String::new();
    for line in info_lines(node, phys, ver) {
        match name {
            None => {
                o.push_str(&line);
                o.push('\n');
            }
            Some(n) => {
                if line.starts_with(n) {
                    if let Some(i) = line.find(':') {
                        let rest = &line[i + 1..];
                        if let Some(v) = rest.strip_prefix(' ') {
                            o.push_str(v);
                            o.push('\n');
                        } else if rest.is_empty() {
                            // "virt_caps              :\n": s[1] is the
                            // newline, not a space: nothing is printed.
                        }
                    }
                }
            }
        }
    }
    o
}

/// xl's `uptime_to_string`.
pub fn uptime_to_string(uptime: u64, short: bool) -> String {
    let day = uptime / 86400;
    let mut rest = uptime - day * 86400;
    let hour = rest / 3600;
    rest -= hour * 3600;
    let min = rest / 60;
    let sec = rest - min * 60;
    let days = match day {
        0 => String::new(),
        1 => "1 day, ".to_string(),
        d => format!("{d} days, "),
    };
    if short {
        format!("{days}{hour:2}:{min:02}")
    } else {
        format!("{days}{hour:2}:{min:02}:{sec:02}")
    }
}

/// One domain for `xl uptime`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UptimeEntry {
    /// The name (None prints `(null)`).
    pub name: Option<String>,
    /// The domain id.
    pub domid: u32,
    /// Seconds since the domain started (dom0: `/proc/uptime`).
    pub uptime_secs: u64,
}

/// `xl uptime` (long form), header included.
pub fn uptime(entries: &[UptimeEntry]) -> String {
    let mut o = format!("{:<33} {:>4} {}\n", "Name", "ID", "Uptime");
    for e in entries {
        let _ = writeln!(
            o,
            "{} {:4} {}",
            pad_right(e.name.as_deref().unwrap_or("(null)"), 33),
            e.domid as i32,
            uptime_to_string(e.uptime_secs, false)
        );
    }
    o
}

/// `xl uptime -s`; `now_hms` is the local time as `HH:MM:SS`.
pub fn uptime_short(entries: &[UptimeEntry], now_hms: &str) -> String {
    let mut o = String::new();
    for e in entries {
        let _ = writeln!(
            o,
            " {} up {}, {} ({})",
            now_hms,
            uptime_to_string(e.uptime_secs, true),
            e.name.as_deref().unwrap_or("(null)"),
            e.domid as i32
        );
    }
    o
}

/// xl's `print_bitmap`: `all`, `none`, or ranges like `0-1,4`.
pub fn format_bitmap(map: &[u8], maplen: usize) -> String {
    let bit = |i: usize| map.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0);
    let mut o = String::new();
    let mut state = 0;
    let mut firstset = 0usize;
    for i in 0..maplen {
        match state {
            0 | 2 => {
                if bit(i) {
                    firstset = i;
                    state += 1;
                }
            }
            _ => {
                if !bit(i) {
                    let _ = write!(o, "{}{}", if state > 1 { "," } else { "" }, firstset);
                    if i > firstset + 1 {
                        let _ = write!(o, "-{}", i - 1);
                    }
                    state = 2;
                }
            }
        }
    }
    match state {
        0 => o.push_str("none"),
        2 => {}
        _ => {
            if state == 1 && firstset == 0 {
                o.push_str("all");
            } else {
                let _ = write!(o, "{}{}", if state > 1 { "," } else { "" }, firstset);
                if maplen > firstset + 1 {
                    let _ = write!(o, "-{}", maplen - 1);
                }
            }
        }
    }
    o
}

/// One vCPU, as `libxl_vcpuinfo` gives it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct VcpuInfo {
    /// vCPU number
    pub vcpuid: u32,
    /// physical CPU it runs on
    pub cpu: u32,
    /// online
    pub online: bool,
    /// running
    pub running: bool,
    /// blocked
    pub blocked: bool,
    /// CPU time used, ns
    pub vcpu_time_ns: u64,
    /// hard affinity bitmap (bit n = pCPU n)
    pub hard_affinity: Vec<u8>,
    /// soft affinity bitmap
    pub soft_affinity: Vec<u8>,
}

/// `xl vcpu-list`'s header line.
pub fn vcpu_list_header() -> String {
    format!(
        "{:<32} {:>5} {:>5} {:>5} {:>5} {:>9} {}\n",
        "Name", "ID", "VCPU", "CPU", "State", "Time(s)", "Affinity (Hard / Soft)"
    )
}

/// One `xl vcpu-list` row; `nr_cpus` is the host's `max_cpu_id + 1`.
pub fn vcpu_row(name: Option<&str>, domid: u32, v: &VcpuInfo, nr_cpus: usize) -> String {
    let mut o = pad_right(name.unwrap_or("(null)"), 32);
    let _ = write!(o, " {:5} {:5}", domid, v.vcpuid);
    if !v.online {
        o.push_str("    -   --p ");
    } else {
        let _ = write!(
            o,
            "{:5} {:>3}{}- ",
            v.cpu,
            if v.running { 'r' } else { '-' },
            if v.blocked { 'b' } else { '-' }
        );
    }
    let _ = write!(o, "{:9.1}  ", seconds(v.vcpu_time_ns));
    o.push_str(&format_bitmap(&v.hard_affinity, nr_cpus));
    o.push_str(" / ");
    o.push_str(&format_bitmap(&v.soft_affinity, nr_cpus));
    o.push('\n');
    o
}

/// What `xl list -l` shows of one domain (a subset of libxl's
/// `libxl_domain_config`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainDetails {
    /// The domain id.
    pub domid: u32,
    /// `c_info.name` (None: no name in xenstore).
    pub name: Option<String>,
    /// `c_info.type`.
    pub domain_type: String,
    /// `c_info.uuid`.
    pub uuid: String,
    /// `b_info.max_vcpus`.
    pub max_vcpus: u32,
    /// vCPUs online at boot (`b_info.avail_vcpus`).
    pub avail_vcpus: u32,
    /// `b_info.max_memkb`.
    pub max_memkb: u64,
    /// `b_info.target_memkb`.
    pub target_memkb: u64,
}

/// `xl list -l` (JSON output format): an array with each domain's id and
/// configuration, indented as libxl's yajl generator does.
pub fn list_long(domains: &[DomainDetails]) -> String {
    let items: Vec<String> = domains.iter().map(details_json).collect();
    if items.is_empty() {
        return "[\n\n]\n".to_string();
    }
    format!("[\n{}\n]\n", items.join(",\n"))
}

fn details_json(d: &DomainDetails) -> String {
    let name = match &d.name {
        Some(n) => crate::domain::json_str(n),
        None => "null".into(),
    };
    let avail: Vec<String> = (0..d.avail_vcpus)
        .map(|i| format!("                    {i}"))
        .collect();
    let avail = if avail.is_empty() {
        "[\n\n                ]".to_string()
    } else {
        format!("[\n{}\n                ]", avail.join(",\n"))
    };
    format!(
        "    {{\n        \"domid\": {},\n        \"config\": {{\n            \"c_info\": {{\n                \"type\": {},\n                \"name\": {},\n                \"uuid\": {}\n            }},\n            \"b_info\": {{\n                \"max_vcpus\": {},\n                \"avail_vcpus\": {},\n                \"max_memkb\": {},\n                \"target_memkb\": {}\n            }}\n        }}\n    }}",
        d.domid,
        crate::domain::json_str(&d.domain_type),
        name,
        crate::domain::json_str(&d.uuid),
        d.max_vcpus,
        avail,
        d.max_memkb,
        d.target_memkb
    )
}

/// One row of `xl block-list` (`libxl_diskinfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    /// The device number (from the vdev).
    pub devid: u32,
    /// The backend's domain.
    pub backend_id: u32,
    /// The frontend's domain (what xl prints under `handle`).
    pub frontend_id: u32,
    /// The frontend's `state` (-1 if none).
    pub state: i32,
    /// The frontend's `event-channel` (-1 if none).
    pub evtch: i32,
    /// The frontend's `ring-ref` (-1 if none).
    pub rref: i32,
    /// The backend's path.
    pub backend: String,
}

/// `xl block-list`'s header.
pub fn block_list_header() -> String {
    format!(
        "{:<5} {:<3} {:<6} {:<5} {:<6} {:<8} {:<30}\n",
        "Vdev", "BE", "handle", "state", "evt-ch", "ring-ref", "BE-path"
    )
}

/// One `xl block-list` row.
pub fn block_list_row(b: &BlockInfo) -> String {
    format!(
        "{:<5} {:<3} {:<6} {:<5} {:<6} {:<8} {:<30}\n",
        b.devid as i32,
        b.backend_id as i32,
        b.frontend_id as i32,
        b.state,
        b.evtch,
        b.rref,
        b.backend
    )
}

/// One row of `xl network-list` (`libxl_nicinfo` and the nic's MAC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NicInfo {
    /// The device id.
    pub devid: u32,
    /// The backend's domain.
    pub backend_id: u32,
    /// The MAC address.
    pub mac: [u8; 6],
    /// The frontend's `state` (-1 if none).
    pub state: i32,
    /// The frontend's `event-channel` (-1 if none).
    pub evtch: i32,
    /// The frontend's `tx-ring-ref` (-1 if none).
    pub rref_tx: i32,
    /// The frontend's `rx-ring-ref` (-1 if none).
    pub rref_rx: i32,
    /// The backend's path.
    pub backend: String,
}

/// `xl network-list`'s header.
pub fn network_list_header() -> String {
    format!(
        "{:<3} {:<2} {:<17} {:<6} {:<5} {:<6} {:>5}/{:<5} {:<30}\n",
        "Idx", "BE", "Mac Addr.", "handle", "state", "evt-ch", "tx-", "rx-ring-ref", "BE-path"
    )
}

/// One `xl network-list` row.
pub fn network_list_row(n: &NicInfo) -> String {
    format!(
        "{:<3} {:<2} {}{:>6} {:>5} {:>6} {:>5}/{:<11} {:<30}\n",
        n.devid as i32,
        n.backend_id as i32,
        crate::devspec::format_mac(&n.mac),
        n.devid as i32,
        n.state,
        n.evtch,
        n.rref_tx,
        n.rref_rx,
        n.backend
    )
}
