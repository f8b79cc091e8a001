//! The privcmd backend: [`Hypervisor`] for xl's commands, issuing the
//! hypercalls libxl and libxc issue for them through Linux's
//! `/dev/xen/privcmd`, and xenstore requests as libxl makes them.
//!
//! * [`xc`]: the libxc calls (sysctl, domctl, xen_version, memory_op,
//!   event channel, HVM and scheduler ops)
//! * [`xencall`]: the hypercall interface they use, the check of every
//!   pointer a hypercall carries, and writes into guest memory
//!   ([`xencall::GuestMem`])
//! * [`sys`]: the real one, `/dev/xen/privcmd`, and the loop-device and
//!   network-interface ioctls (xl's only `unsafe` code)
//! * [`xenstore`]: the xenstore client
//! * `create`: the domain builder (`xl create`)
//! * [`devices`]: PV disks and vifs (add, remove, list)
//! * `manage`: destroy, pause, shutdown/reboot, console, `list -l`
//! * [`monitor`]: the per-domain monitor left by `xl create`
//! * [`process`]: spawning the monitor, the console's terminal relay
//!
//! The parts outside the hypervisor (xenstore, files, clock, terminal,
//! processes, loop devices, network interfaces) are behind [`Host`], so the tests run everything against a
//! fake hypervisor and an in-memory xenstore.
//!
//! Domain names come from xenstore (`/local/domain/<id>/name`) as libxl
//! reads them. When no xenstore answers (no xenstored in dom0: no
//! `/run/xenstored/socket`, and `/dev/xen/xenbus` silent), domain 0 is
//! `Domain-0` (the name `xen-init-dom0` would have written) and every other
//! domain has no name, which xl prints as `(null)`, as libxl's NULL name.

pub mod abi;
mod create;
pub mod devices;
mod manage;
pub mod monitor;
pub mod process;
#[allow(unsafe_code)]
pub mod sys;
pub mod xc;
pub mod xencall;
pub mod xenstore;

#[cfg(test)]
mod device_tests;
#[cfg(test)]
mod domu_tests;
#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use xen_abi::domctl::*;
use xen_abi::version::*;

use crate::cli::{ConsoleType, CreateArgs};
use crate::domain::DomainConfig;
use crate::format::{
    DomainDetails, DomainInfo, DomainState, NodeInfo, PhysInfo, ShutdownReason, VcpuInfo,
    VersionInfo,
};
use crate::run::{HvError, HvResult, Hypervisor};
use std::time::Duration;
use xencall::{Errno, GuestMem, Xencall};
use xenstore::{Xs, XsError, XBT_NULL};

/// What `xl create` hands the per-domain monitor process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorSpec {
    /// The domain to watch.
    pub domid: u32,
    /// Its name (the log is `/var/log/xen/xl-<name>.log`).
    pub name: String,
    /// Where the config came from (for messages when it is parsed again).
    pub source: String,
    /// The config text, overrides appended (what a restart builds from).
    pub text: Vec<u8>,
}

/// One step of an attached console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pump {
    /// Bytes were relayed; call again.
    Data,
    /// Nothing happened within the timeout; call again.
    Idle,
    /// The user typed the escape character (Ctrl-]).
    Escape,
    /// The pty hung up or failed (xenconsoled closed it).
    PtyGone,
}

/// A console attached to a pty: the local terminal (raw while attached if
/// it is one) relayed both ways. Dropping it restores the terminal.
pub trait ConsoleSession {
    /// Relays whatever arrives within `timeout`.
    fn pump(&mut self, timeout: Duration) -> std::io::Result<Pump>;
    /// Switches to another pty (xenconsoled gave the domain a new one).
    fn reopen(&mut self, tty: &str) -> std::io::Result<()>;
}

/// What kind of file a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file (an image: served through a loop device).
    Regular,
    /// A block device (served as is).
    Block,
    /// Anything else.
    Other,
}

/// What `stat(2)` (following links) says of a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// The file type.
    pub kind: FileKind,
    /// `st_dev`
    pub dev: u64,
    /// `st_ino`
    pub ino: u64,
    /// A block device's major and minor numbers.
    pub rdev: (u32, u32),
    /// The permission bits.
    pub mode: u32,
}

/// What xl uses outside the hypervisor.
pub trait Host {
    /// `uname(2)`.
    fn uname(&mut self) -> Option<NodeInfo>;
    /// The first field of `/proc/uptime`, as `strtoul` reads it.
    fn dom0_uptime(&mut self) -> Option<u64>;
    /// Time since the epoch.
    fn clock(&mut self) -> Duration;
    /// Seconds since the epoch.
    fn now(&mut self) -> u64 {
        self.clock().as_secs()
    }
    /// The xenstore connection.
    fn xs(&mut self) -> &mut dyn Xs;
    /// `xs_read(path)`.
    fn xs_read(&mut self, path: &str) -> Result<String, XsError> {
        self.xs().read(XBT_NULL, path)
    }
    /// A file's bytes (kernel, ramdisk).
    fn read_file(&mut self, path: &str) -> std::io::Result<Vec<u8>>;
    /// Random bytes (UUIDs, the guest's `rng-seed`).
    fn random(&mut self, buf: &mut [u8]);
    /// Waits.
    fn sleep(&mut self, d: Duration);
    /// Prints to stderr now (progress of long commands).
    fn eprint(&mut self, msg: &str);
    /// Starts the background monitor of a new domain (`xl create` without
    /// `-F`/`-e`); returns its pid.
    fn spawn_monitor(&mut self, m: &MonitorSpec) -> Result<u32, String>;
    /// Attaches the local terminal to the pty at `tty`.
    fn open_console(&mut self, tty: &str) -> std::io::Result<Box<dyn ConsoleSession>>;
    /// This process's id.
    fn pid(&mut self) -> u32 {
        std::process::id()
    }
    /// Domain ids destroyed within libxl's reuse timeout (its domid
    /// history), which a new domain must not get.
    fn recent_domids(&mut self) -> Vec<u32>;
    /// Records that `domid` is being destroyed.
    fn mark_domid_recent(&mut self, domid: u32);
    /// `stat(2)`, following symbolic links.
    fn stat(&mut self, path: &str) -> std::io::Result<FileInfo>;
    /// Binds `file` to a free loop device (read-only if asked); returns the
    /// device's path (`/dev/loopN`).
    fn loop_attach(&mut self, file: &str, read_only: bool) -> std::io::Result<String>;
    /// Unbinds a loop device (`LOOP_CLR_FD`; one still open elsewhere is
    /// unbound when last closed).
    fn loop_detach(&mut self, dev: &str) -> std::io::Result<()>;
    /// Whether a network interface of that name exists (`if_nametoindex`).
    fn netif_exists(&mut self, name: &str) -> bool;
    /// A network interface's MTU.
    fn netif_mtu(&mut self, name: &str) -> std::io::Result<u32>;
    /// Sets a network interface's MTU (if given) and brings it up.
    fn netif_up(&mut self, name: &str, mtu: Option<u32>) -> std::io::Result<()>;
    /// Adds interface `name` to `bridge` (`SIOCBRADDIF`).
    fn bridge_add(&mut self, bridge: &str, name: &str) -> std::io::Result<()>;
    /// Removes interface `name` from `bridge` (`SIOCBRDELIF`).
    fn bridge_remove(&mut self, bridge: &str, name: &str) -> std::io::Result<()>;
    /// Takes the hotplug scripts' lock `name` (`claim_lock`), waiting at
    /// most `limit`; it is held until the guard is dropped. `None` if it
    /// could not be had (the caller goes on without it).
    fn lock(&mut self, name: &str, limit: Duration) -> Option<Box<dyn std::any::Any>>;
}

/// The real [`Host`]: libc, procfs, the clock, [`xenstore::Xenstore`].
#[derive(Default)]
pub struct SystemHost {
    xs: xenstore::Xenstore,
}

impl Host for SystemHost {
    fn uname(&mut self) -> Option<NodeInfo> {
        sys::uname().ok()
    }
    fn dom0_uptime(&mut self) -> Option<u64> {
        let s = std::fs::read_to_string("/proc/uptime").ok()?;
        Some(strtoul(s.split(' ').next().unwrap_or_default()))
    }
    fn clock(&mut self) -> Duration {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    }
    fn xs(&mut self) -> &mut dyn Xs {
        &mut self.xs
    }
    fn read_file(&mut self, path: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn random(&mut self, buf: &mut [u8]) {
        use std::io::Read;
        let ok = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(buf));
        if ok.is_err() {
            // No /dev/urandom: the clock is all there is (UUIDs stay distinct).
            let t = self.clock().as_nanos() as u64 ^ u64::from(std::process::id()) << 32;
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (t.rotate_left(i as u32 * 8) ^ (i as u64).wrapping_mul(0x9e37_79b9)) as u8;
            }
        }
    }
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
    fn eprint(&mut self, msg: &str) {
        use std::io::Write;
        let _ = std::io::stderr().write_all(msg.as_bytes());
    }
    fn spawn_monitor(&mut self, m: &MonitorSpec) -> Result<u32, String> {
        process::spawn_monitor(m)
    }
    fn open_console(&mut self, tty: &str) -> std::io::Result<Box<dyn ConsoleSession>> {
        Ok(Box::new(process::TermConsole::open(tty)?))
    }
    fn recent_domids(&mut self) -> Vec<u32> {
        let now = self.dom0_uptime().unwrap_or(0);
        process::DomidHistory::load(now).ids()
    }
    fn mark_domid_recent(&mut self, domid: u32) {
        let now = self.dom0_uptime().unwrap_or(0);
        let mut h = process::DomidHistory::load(now);
        h.add(now, domid);
        // Best effort, as a lost entry only allows an early reuse.
        let _ = h.save();
    }
    fn stat(&mut self, path: &str) -> std::io::Result<FileInfo> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let m = std::fs::metadata(path)?;
        let ft = m.file_type();
        let kind = if ft.is_file() {
            FileKind::Regular
        } else if ft.is_block_device() {
            FileKind::Block
        } else {
            FileKind::Other
        };
        let r = m.rdev();
        // glibc's and musl's gnu_dev_major / gnu_dev_minor.
        let major = ((r >> 8) & 0xfff) | ((r >> 32) & !0xfff);
        let minor = (r & 0xff) | ((r >> 12) & !0xff);
        Ok(FileInfo {
            kind,
            dev: m.dev(),
            ino: m.ino(),
            rdev: (major as u32, minor as u32),
            mode: m.mode() & 0o7777,
        })
    }
    fn loop_attach(&mut self, file: &str, read_only: bool) -> std::io::Result<String> {
        sys::loop_attach(file, read_only)
    }
    fn loop_detach(&mut self, dev: &str) -> std::io::Result<()> {
        sys::loop_detach(dev)
    }
    fn netif_exists(&mut self, name: &str) -> bool {
        sys::if_index(name).is_some()
    }
    fn netif_mtu(&mut self, name: &str) -> std::io::Result<u32> {
        sys::netif_mtu(name)
    }
    fn netif_up(&mut self, name: &str, mtu: Option<u32>) -> std::io::Result<()> {
        sys::netif_up(name, mtu)
    }
    fn bridge_add(&mut self, bridge: &str, name: &str) -> std::io::Result<()> {
        sys::bridge_port(bridge, name, true)
    }
    fn bridge_remove(&mut self, bridge: &str, name: &str) -> std::io::Result<()> {
        sys::bridge_port(bridge, name, false)
    }
    fn lock(&mut self, name: &str, limit: Duration) -> Option<Box<dyn std::any::Any>> {
        let dir = "/var/run/xen-hotplug";
        let _ = std::fs::create_dir_all(dir);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(format!("{dir}/{name}"))
            .ok()?;
        let start = std::time::Instant::now();
        loop {
            match sys::try_flock(&f) {
                Ok(true) => return Some(Box::new(f)),
                Ok(false) if start.elapsed() < limit => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => return None,
            }
        }
    }
}

/// C's `strtoul(s, NULL, 10)`: leading digits, 0 if none.
fn strtoul(s: &str) -> u64 {
    let s = s.trim_start();
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

/// libxl's `(1 << 20) / pagesize` etc. use pages of 4 KiB on Arm.
const XC_PAGE_SIZE: u64 = 4096;

/// `libxl_list_domain`'s batch size.
const LIST_BATCH: u32 = 1024;

/// `libxl_xen_console_read_start`'s buffer.
const CONSOLE_BUF: u32 = 16384;

/// The scheduler name `libxl_scheduler_to_string` gives an id.
pub fn scheduler_name(id: u32) -> Option<&'static str> {
    Some(match id {
        XEN_SCHEDULER_CREDIT => "credit",
        XEN_SCHEDULER_CREDIT2 => "credit2",
        XEN_SCHEDULER_ARINC653 => "arinc653",
        XEN_SCHEDULER_RTDS => "rtds",
        XEN_SCHEDULER_NULL => "null",
        _ => return None,
    })
}

/// A C string in a fixed array (up to the first NUL, or the whole array).
fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// `strerror` text for an errno (musl and glibc agree on these).
fn strerror(e: Errno) -> String {
    let s = std::io::Error::from_raw_os_error(e).to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// libxl's `libxl__xcinfo2xlinfo`.
pub fn dominfo(i: &XenDomctlGetdomaininfo, name: Option<String>) -> DomainInfo {
    let f = i.flags;
    let shutdown = f & XEN_DOMINF_shutdown != 0;
    let reason = match (f >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask {
        0 => ShutdownReason::Poweroff,
        1 => ShutdownReason::Reboot,
        2 => ShutdownReason::Suspend,
        3 => ShutdownReason::Crash,
        4 => ShutdownReason::Watchdog,
        5 => ShutdownReason::SoftReset,
        _ => ShutdownReason::Unknown,
    };
    DomainInfo {
        name,
        domid: u32::from(i.domain),
        mem_kib: i.tot_pages * (XC_PAGE_SIZE / 1024),
        outstanding_kib: i.outstanding_pages * (XC_PAGE_SIZE / 1024),
        vcpus: i.nr_online_vcpus,
        state: DomainState {
            running: f & XEN_DOMINF_running != 0,
            blocked: f & XEN_DOMINF_blocked != 0,
            paused: f & XEN_DOMINF_paused != 0,
            shutdown,
            shutdown_reason: if shutdown {
                reason
            } else {
                ShutdownReason::Unknown
            },
            dying: f & XEN_DOMINF_dying != 0,
        },
        cpu_time_ns: i.cpu_time,
        uuid: i.handle,
        // libxl asks FLASK for the label; without FLASK (xsm_op -ENOSYS) none.
        ssid_label: None,
    }
}

/// The privcmd [`Hypervisor`].
pub struct Backend<X, H> {
    /// The hypercall interface, or why it could not be opened.
    xc: Result<X, String>,
    host: H,
}

impl<X: Xencall, H: Host> Backend<X, H> {
    /// The host side (tests inspect their fake through it).
    pub fn host(&mut self) -> &mut H {
        &mut self.host
    }

    /// A backend over `xc` (or the error opening it, reported by every
    /// command that needs the hypervisor).
    pub fn new(xc: Result<X, String>, host: H) -> Self {
        Backend { xc, host }
    }

    fn xc(&mut self) -> HvResult<&mut X> {
        self.xc.as_mut().map_err(|e| HvError::Failed(e.clone()))
    }

    /// `libxl_domid_to_name`, with the fallback described in the module docs.
    fn name(&mut self, domid: u32) -> Option<String> {
        match self.host.xs_read(&format!("/local/domain/{domid}/name")) {
            Ok(n) => Some(n),
            Err(XsError::Unreachable) if domid == 0 => Some("Domain-0".into()),
            Err(_) => None,
        }
    }

    /// `libxl__domain_type`'s failure for a domain that does not exist.
    fn domain_type_check(&mut self, domid: u32) -> Result<(), String> {
        let x = self.xc().map_err(HvError::message)?;
        match xc::getdomaininfo(x, domid) {
            Ok(Some(_)) => Ok(()),
            _ => Err(format!(
                "libxl: error: libxl_dom.c:37:libxl__domain_type: unable to get domain type for domid={domid}"
            )),
        }
    }

    /// `libxl_get_max_cpus`: `max_cpu_id + 1`.
    fn max_cpus(&mut self) -> HvResult<u32> {
        let p = xc::physinfo(self.xc()?).map_err(|e| fail("libxl_physinfo failed", e))?;
        Ok(p.max_cpu_id + 1)
    }
}

fn fail(what: &str, e: Errno) -> HvError {
    HvError::Failed(format!("{what}: {}", strerror(e)))
}

impl<X: Xencall + GuestMem, H: Host> Hypervisor for Backend<X, H> {
    fn emit(&mut self, msg: &str) -> bool {
        self.host.eprint(msg);
        true
    }

    fn create(&mut self, config: &DomainConfig, args: &CreateArgs, text: &[u8]) -> HvResult<u32> {
        let domid = self.build(config, args.paused).map_err(HvError::Failed)?;
        if args.monitor && args.daemonize {
            let spec = MonitorSpec {
                domid,
                name: config.name.clone(),
                source: args.config_file.clone().unwrap_or_default(),
                text: text.to_vec(),
            };
            if let Err(e) = self.host.spawn_monitor(&spec) {
                self.host.eprint(&format!("{e}\n"));
            }
        }
        if args.console {
            self.console_cmd(domid, None, 0)?;
        }
        if args.monitor && !args.daemonize {
            self.monitor(domid, config);
        }
        Ok(domid)
    }

    fn destroy(&mut self, domid: u32, _force: bool) -> HvResult<()> {
        self.destroy_cmd(domid)
    }

    fn shutdown(
        &mut self,
        domids: &[u32],
        reboot: bool,
        fallback: bool,
        wait: u32,
    ) -> HvResult<()> {
        for &d in domids {
            self.request_shutdown(d, reboot, fallback)
                .map_err(HvError::Failed)?;
        }
        if wait > 0 {
            self.wait_stopped(domids, reboot, wait)
                .map_err(HvError::Failed)?;
        }
        Ok(())
    }

    fn pause(&mut self, domid: u32) -> HvResult<()> {
        self.pause_cmd(domid, true)
    }

    fn unpause(&mut self, domid: u32) -> HvResult<()> {
        self.pause_cmd(domid, false)
    }

    fn console(&mut self, domid: u32, ty: Option<ConsoleType>, num: i32) -> HvResult<()> {
        self.console_cmd(domid, ty, num)
    }

    fn domain_details(&mut self, domid: u32) -> HvResult<DomainDetails> {
        self.details(domid)
    }

    fn list_domains(&mut self) -> HvResult<Vec<DomainInfo>> {
        let mut out = Vec::new();
        let mut first = 0u32;
        loop {
            let batch = xc::getdomaininfolist(self.xc()?, first, LIST_BATCH)
                .map_err(|e| fail("libxl_list_domain failed", e))?;
            let Some(last) = batch.last() else { break };
            first = u32::from(last.domain) + 1;
            for i in &batch {
                let name = self.name(u32::from(i.domain));
                out.push(dominfo(i, name));
            }
        }
        Ok(out)
    }

    fn physinfo(&mut self) -> HvResult<PhysInfo> {
        let x = self.xc()?;
        let p = xc::physinfo(x).map_err(|e| fail("libxl_physinfo failed", e))?;
        // libxl_get_physinfo: ENOSYS (no memory sharing, as on Arm) is 0.
        let sharing = |x: &mut X, freed: bool, what: &str| match xc::sharing(x, freed) {
            Ok(n) => Ok(n as u64),
            Err(xen_abi::errno::ENOSYS) => Ok(0),
            Err(e) => Err(fail(&format!("libxl: error: getting sharing {what}"), e)),
        };
        let freed = sharing(x, true, "freed pages")?;
        let used = sharing(x, false, "used frames")?;
        let bytes = (p.max_cpu_id as usize + 1).div_ceil(8);
        let free_cpus = xc::cpupool_freeinfo(x, bytes)
            .ok()
            .map(|m| m.iter().map(|b| b.count_ones()).sum());
        let c = p.capabilities;
        use xen_abi::sysctl::*;
        Ok(PhysInfo {
            nr_cpus: p.nr_cpus,
            max_cpu_id: p.max_cpu_id,
            nr_nodes: p.nr_nodes,
            cores_per_socket: p.cores_per_socket,
            threads_per_core: p.threads_per_core,
            cpu_khz: p.cpu_khz,
            hw_cap: p.hw_cap,
            cap_pv: c & XEN_SYSCTL_PHYSCAP_pv != 0,
            cap_hvm: c & XEN_SYSCTL_PHYSCAP_hvm != 0,
            cap_hvm_directio: c & XEN_SYSCTL_PHYSCAP_directio != 0,
            cap_hap: c & XEN_SYSCTL_PHYSCAP_hap != 0,
            cap_shadow: c & XEN_SYSCTL_PHYSCAP_shadow != 0,
            cap_iommu_hap_pt_share: c & XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share != 0,
            cap_vmtrace: c & XEN_SYSCTL_PHYSCAP_vmtrace != 0,
            cap_vpmu: c & XEN_SYSCTL_PHYSCAP_vpmu != 0,
            cap_gnttab_v1: c & XEN_SYSCTL_PHYSCAP_gnttab_v1 != 0,
            cap_gnttab_v2: c & XEN_SYSCTL_PHYSCAP_gnttab_v2 != 0,
            total_pages: p.total_pages,
            free_pages: p.free_pages,
            outstanding_pages: p.outstanding_pages,
            sharing_freed_pages: freed,
            sharing_used_frames: used,
            free_cpus,
        })
    }

    fn version_info(&mut self) -> HvResult<VersionInfo> {
        let x = self.xc()?;
        // libxl_get_version_info ignores the sub-ops' errors (zeroed buffers).
        let s = |x: &mut X, cmd: u32, len: usize| {
            xc::version_buf(x, cmd, len)
                .map(|(_, b)| b)
                .unwrap_or_else(|_| vec![0; len])
        };
        let v = xc::version_noarg(x, XENVER_version).unwrap_or(-1);
        let extra = cstr(&s(x, XENVER_extraversion, 16));
        let cc = s(x, XENVER_compile_info, 144);
        let caps = cstr(&s(x, XENVER_capabilities, 1024));
        let changeset = cstr(&s(x, XENVER_changeset, 64));
        let pp = s(x, XENVER_platform_parameters, 8);
        let pagesize = xc::version_noarg(x, XENVER_pagesize).unwrap_or(-1);
        let commandline = cstr(&s(x, XENVER_commandline, 1024));
        // The union libxl reads into is 1024 bytes; the id gets the rest.
        let build_id = match xc::build_id(x, 1020) {
            Ok(b) => b.iter().map(|b| format!("{b:02x}")).collect(),
            Err(_) => String::new(),
        };
        let sched =
            xc::sched_id(x).map_err(|_| HvError::Failed("get_scheduler sysctl failed.".into()))?;
        Ok(VersionInfo {
            major: (v >> 16) as u32,
            minor: (v & 0xff) as u32,
            extra,
            capabilities: caps,
            scheduler: scheduler_name(sched).unwrap_or("(null)").to_string(),
            pagesize: pagesize as u32,
            virt_start: u64::from_le_bytes(pp[..8].try_into().expect("8 bytes")),
            changeset,
            commandline,
            compiler: cstr(&cc[0..64]),
            compile_by: cstr(&cc[64..80]),
            compile_domain: cstr(&cc[80..112]),
            compile_date: cstr(&cc[112..144]),
            build_id,
        })
    }

    fn block_attach(&mut self, domid: u32, disk: &crate::devspec::DiskSpec) -> HvResult<()> {
        let failed = |m: String| HvError::Failed(format!("{m}\nlibxl_device_disk_add failed."));
        self.domain_type_check(domid).map_err(failed)?;
        let d = self.check_disk(Some(domid), disk).map_err(failed)?;
        self.add_disk(domid, &d).map_err(failed)
    }

    fn block_detach(&mut self, domid: u32, vdev: &str, force: bool) -> HvResult<()> {
        let not_connected = || HvError::Failed(format!("Error: Device {vdev} not connected."));
        let devid = crate::devspec::vdev_number(vdev).ok_or_else(not_connected)?;
        let lx = devices::libxl_device_path(devices::Kind::Vbd, domid, devid);
        if self.host.xs_read(&format!("{lx}/backend")).is_err() {
            return Err(not_connected());
        }
        let (f, what) = if force {
            (devices::Force::On, "destroy")
        } else {
            (devices::Force::Off, "safe_remove")
        };
        self.remove_devices(domid, &[(devices::Kind::Vbd, devid)], f)
            .map_err(|e| HvError::Failed(format!("{e}\nlibxl_device_disk_{what} failed.")))
    }

    fn block_list(&mut self, domid: u32) -> HvResult<Vec<crate::format::BlockInfo>> {
        Ok(self.disk_infos(domid))
    }

    fn network_attach(&mut self, domid: u32, nic: &crate::devspec::NicSpec) -> HvResult<()> {
        let failed = |m: String| HvError::Failed(format!("{m}\nlibxl_device_nic_add failed."));
        self.domain_type_check(domid).map_err(failed)?;
        // A hot-plugged vif takes the next free id unless given one.
        self.add_nic(domid, nic).map(drop).map_err(failed)
    }

    fn network_detach(&mut self, domid: u32, dev: &str) -> HvResult<()> {
        let unknown = || HvError::Failed(format!("Unknown device {dev}."));
        let devid = if !dev.contains(':') {
            let id = strtoul(dev) as u32;
            let lx = devices::libxl_device_path(devices::Kind::Vif, domid, id);
            if self.host.xs_read(&format!("{lx}/backend")).is_err() {
                return Err(unknown());
            }
            id
        } else {
            let mac = crate::devspec::parse_mac(dev).ok_or_else(unknown)?;
            self.nic_infos(domid)
                .iter()
                .find(|n| n.mac == mac)
                .map(|n| n.devid)
                .ok_or_else(unknown)?
        };
        self.remove_devices(domid, &[(devices::Kind::Vif, devid)], devices::Force::Auto)
            .map_err(|e| HvError::Failed(format!("{e}\nlibxl_device_nic_del failed.")))
    }

    fn network_list(&mut self, domid: u32) -> HvResult<Vec<crate::format::NicInfo>> {
        Ok(self.nic_infos(domid))
    }

    fn node_info(&mut self) -> HvResult<NodeInfo> {
        self.host
            .uname()
            .ok_or_else(|| HvError::Failed("uname failed".into()))
    }

    fn vcpus(&mut self, domid: u32) -> HvResult<Vec<VcpuInfo>> {
        let info =
            xc::getdomaininfolist(self.xc()?, domid, 1).map_err(|e| fail("Getting infolist", e))?;
        let Some(d) = info.first().filter(|d| u32::from(d.domain) == domid) else {
            return Err(HvError::Failed(format!("Domain {domid} does not exist")));
        };
        if d.max_vcpu_id == XEN_INVALID_MAX_VCPU_ID {
            return Err(HvError::Failed("domain has no vcpus".into()));
        }
        let max_vcpu = d.max_vcpu_id;
        let bytes = (self.max_cpus()? as usize).div_ceil(8);
        let x = self.xc()?;
        let mut out = Vec::new();
        for v in 0..=max_vcpu {
            let i = xc::getvcpuinfo(x, domid, v).map_err(|e| fail("Getting vcpu info", e))?;
            let (hard, soft) = xc::getvcpuaffinity(x, domid, v, bytes)
                .map_err(|e| fail("Getting vcpu affinity", e))?;
            out.push(VcpuInfo {
                vcpuid: v,
                cpu: i.cpu,
                online: i.online != 0,
                running: i.running != 0,
                blocked: i.blocked != 0,
                vcpu_time_ns: i.cpu_time,
                hard_affinity: hard,
                soft_affinity: soft,
            });
        }
        Ok(out)
    }

    fn uptime_secs(&mut self, domid: u32) -> HvResult<Option<u64>> {
        if domid == 0 {
            return Ok(self.host.dom0_uptime());
        }
        // libxl_vm_get_start_time: /local/domain/<id>/vm, then <vm>/start_time.
        let Ok(vm) = self.host.xs_read(&format!("/local/domain/{domid}/vm")) else {
            return Ok(None);
        };
        let Ok(start) = self.host.xs_read(&format!("{vm}/start_time")) else {
            return Ok(None);
        };
        let start = strtoul(&start);
        Ok(Some(self.host.now().wrapping_sub(start)))
    }

    fn now_hms(&mut self) -> String {
        // Local time is UTC in dom0's initramfs (no TZ database).
        let t = self.host.now() % 86400;
        format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
    }

    fn dmesg(&mut self, clear: bool) -> HvResult<String> {
        // libxl_xen_console_read_start / _read_line: incremental reads of
        // up to 16 KiB from index 0 until one returns nothing (as libxl since
        // its fix of the carried-over count; 4.17.0 asked for as many bytes as
        // the previous read returned, which only ever shortens the output).
        let x = self.xc()?;
        let mut index = 0u32;
        let mut out = Vec::new();
        loop {
            let (data, next) = xc::readconsole(x, CONSOLE_BUF, clear, true, index)
                .map_err(|e| fail("libxl: error: reading console ring buffer", e))?;
            if data.is_empty() {
                break;
            }
            // printf("%s", line): up to the first NUL.
            let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
            out.extend_from_slice(&data[..end]);
            index = next;
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}
