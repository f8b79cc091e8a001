//! Executes a parsed command against a [`Hypervisor`]. The hypervisor side
//! is a trait whose methods all default to "not supported yet", so the
//! binary works today (`xl create -n`, `xl help`) and the rest lights up as
//! the hypercall layer lands; tests drive it with a fake.

use crate::cli::{find_domain, help, Command, ConsoleType, CreateArgs, Invocation};
use crate::config::Config;
use crate::devspec::{parse_disk, DiskSpec, NicSpec};
use crate::domain::DomainConfig;
use crate::format::{
    self, BlockInfo, DomainDetails, DomainInfo, ListOptions, NicInfo, NodeInfo, PhysInfo,
    UptimeEntry, VcpuInfo, VersionInfo,
};

/// A hypervisor-side failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HvError {
    /// The operation is not implemented yet.
    NotSupported,
    /// It failed; the message is printed as is (with a newline).
    Failed(String),
}

impl HvError {
    /// The text printed for it.
    pub fn message(self) -> String {
        match self {
            HvError::NotSupported => "not supported yet".into(),
            HvError::Failed(m) => m,
        }
    }
}

/// Result of hypervisor calls.
pub type HvResult<T> = Result<T, HvError>;

/// What xl asks of libxl. Every method defaults to [`HvError::NotSupported`].
#[allow(unused_variables)]
pub trait Hypervisor {
    /// All domains, in domid order (`libxl_list_domain`).
    fn list_domains(&mut self) -> HvResult<Vec<DomainInfo>> {
        Err(HvError::NotSupported)
    }
    /// Host facts (`libxl_get_physinfo` + free CPUs).
    fn physinfo(&mut self) -> HvResult<PhysInfo> {
        Err(HvError::NotSupported)
    }
    /// Xen version facts (`libxl_get_version_info` + scheduler).
    fn version_info(&mut self) -> HvResult<VersionInfo> {
        Err(HvError::NotSupported)
    }
    /// dom0's `uname`.
    fn node_info(&mut self) -> HvResult<NodeInfo> {
        Err(HvError::NotSupported)
    }
    /// A domain's vCPUs (`libxl_list_vcpu`).
    fn vcpus(&mut self, domid: u32) -> HvResult<Vec<VcpuInfo>> {
        Err(HvError::NotSupported)
    }
    /// Seconds since the domain started (dom0: `/proc/uptime`); None if
    /// unknown (xl then prints nothing for it).
    fn uptime_secs(&mut self, domid: u32) -> HvResult<Option<u64>> {
        Err(HvError::NotSupported)
    }
    /// Local time as `HH:MM:SS` (for `uptime -s`).
    fn now_hms(&mut self) -> String {
        "00:00:00".to_string()
    }
    /// Prints `msg` to stderr right away, if this hypervisor streams its
    /// output (the real one does; returning false keeps `msg` in the
    /// [`Output`]).
    fn emit(&mut self, msg: &str) -> bool {
        false
    }
    /// Build and start a domain (`text` is the config as parsed, for the
    /// monitor to rebuild from).
    fn create(&mut self, config: &DomainConfig, args: &CreateArgs, text: &[u8]) -> HvResult<u32> {
        Err(HvError::NotSupported)
    }
    /// `xl destroy`
    fn destroy(&mut self, domid: u32, force: bool) -> HvResult<()> {
        Err(HvError::NotSupported)
    }
    /// `xl shutdown` / `xl reboot` of these domains; `wait` counts `-w`.
    fn shutdown(
        &mut self,
        domids: &[u32],
        reboot: bool,
        fallback: bool,
        wait: u32,
    ) -> HvResult<()> {
        Err(HvError::NotSupported)
    }
    /// What `xl list -l` shows of a domain.
    fn domain_details(&mut self, domid: u32) -> HvResult<DomainDetails> {
        Err(HvError::NotSupported)
    }
    /// `xl pause`
    fn pause(&mut self, domid: u32) -> HvResult<()> {
        Err(HvError::NotSupported)
    }
    /// `xl unpause`
    fn unpause(&mut self, domid: u32) -> HvResult<()> {
        Err(HvError::NotSupported)
    }
    /// `xl console` (returns when the console is left).
    fn console(&mut self, domid: u32, console_type: Option<ConsoleType>, num: i32) -> HvResult<()> {
        Err(HvError::NotSupported)
    }
    /// `xl dmesg`: the hypervisor's console ring.
    fn dmesg(&mut self, clear: bool) -> HvResult<String> {
        Err(HvError::NotSupported)
    }
    /// `xl block-attach` (`libxl_device_disk_add`); the error text ends
    /// with xl's own line.
    fn block_attach(&mut self, domid: u32, disk: &DiskSpec) -> HvResult<()> {
        Err(HvError::NotSupported)
    }
    /// `xl block-detach [-f]`; the error text ends with xl's own line.
    fn block_detach(&mut self, domid: u32, vdev: &str, force: bool) -> HvResult<()> {
        Err(HvError::NotSupported)
    }
    /// A domain's disks for `xl block-list`.
    fn block_list(&mut self, domid: u32) -> HvResult<Vec<BlockInfo>> {
        Err(HvError::NotSupported)
    }
    /// `xl network-attach` (`libxl_device_nic_add`); the error text ends
    /// with xl's own line.
    fn network_attach(&mut self, domid: u32, nic: &NicSpec) -> HvResult<()> {
        Err(HvError::NotSupported)
    }
    /// `xl network-detach <DevId|mac>`; the error text ends with xl's own
    /// line.
    fn network_detach(&mut self, domid: u32, dev: &str) -> HvResult<()> {
        Err(HvError::NotSupported)
    }
    /// A domain's vifs for `xl network-list`.
    fn network_list(&mut self, domid: u32) -> HvResult<Vec<NicInfo>> {
        Err(HvError::NotSupported)
    }
}

/// A hypervisor with nothing implemented yet.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHypervisor;

impl Hypervisor for NoHypervisor {}

/// What a command printed and its exit status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// stdout
    pub stdout: String,
    /// stderr
    pub stderr: String,
    /// exit status
    pub code: i32,
}

impl Output {
    fn fail(stderr: String, code: i32) -> Output {
        Output {
            stdout: String::new(),
            stderr,
            code,
        }
    }
}

fn not_supported(cmd: &str) -> String {
    format!("xl: {cmd}: not supported yet\n")
}

fn hv_fail(cmd: &str, e: HvError) -> Output {
    match e {
        HvError::NotSupported => Output::fail(not_supported(cmd), 1),
        HvError::Failed(m) => Output::fail(format!("{m}\n"), 1),
    }
}

/// `strerror` text of an I/O error (Rust adds " (os error N)").
fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The text xl parses for `create`: the file, then `\n<k=v lines>\n` when
/// there are command-line overrides.
pub fn config_text(file_data: &[u8], extra: &[String]) -> Vec<u8> {
    let mut data = file_data.to_vec();
    if !extra.is_empty() {
        data.push(b'\n');
        for e in extra {
            data.extend_from_slice(e.as_bytes());
            data.push(b'\n');
        }
        data.push(b'\n');
    }
    data
}

/// Runs `xl create`'s config handling: read, append overrides, parse,
/// resolve; then print the config (dry run) or ask the hypervisor.
pub fn create(
    args: &CreateArgs,
    hv: &mut dyn Hypervisor,
    read_file: &dyn Fn(&str) -> std::io::Result<Vec<u8>>,
) -> Output {
    let mut out = Output::default();
    let Some(file) = args.config_file.as_deref() else {
        return Output::fail(
            "Config file not specified and none in save file\n".into(),
            6,
        );
    };
    let data = if file == "/dev/null" {
        Vec::new()
    } else {
        match read_file(file) {
            Ok(d) => d,
            Err(e) => {
                return Output::fail(
                    format!("Failed to read config file: {file}: {}\n", strerror(&e)),
                    3,
                )
            }
        }
    };
    let data = config_text(&data, &args.extra_config);
    if !args.quiet {
        out.stderr
            .push_str(&format!("Parsing config from {file}\n"));
    }
    let cfg = match Config::parse(file, &data) {
        Ok(c) => c,
        Err(e) => {
            for m in &e.messages {
                out.stderr.push_str(m);
                out.stderr.push('\n');
            }
            out.stderr
                .push_str("Failed to parse config: Invalid argument\n");
            out.code = 1;
            return out;
        }
    };
    let resolved = match DomainConfig::from_config(&cfg) {
        Ok(r) => r,
        Err(e) => {
            out.stderr.push_str(&format!("{e}\n"));
            out.code = 1;
            return out;
        }
    };
    for w in &resolved.warnings {
        out.stderr.push_str(w);
        out.stderr.push('\n');
    }
    if args.dryrun {
        out.stdout.push_str(&resolved.config.to_json());
        return out;
    }
    // What is said so far comes before the build's own messages.
    if hv.emit(&out.stderr) {
        out.stderr.clear();
    }
    match hv.create(&resolved.config, args, &data) {
        Ok(_) => out,
        Err(e) => {
            let f = hv_fail("create", e);
            out.stderr.push_str(&f.stderr);
            out.code = f.code;
            out
        }
    }
}

fn names(domains: &[DomainInfo]) -> Vec<(u32, String)> {
    domains
        .iter()
        .filter_map(|d| d.name.clone().map(|n| (d.domid, n)))
        .collect()
}

/// Looks a domain up the way xl's `find_domain` does (listing domains only
/// when the qualifier is not a number).
fn lookup(hv: &mut dyn Hypervisor, cmd: &str, q: &str) -> Result<u32, Output> {
    if q.bytes().all(|b| b.is_ascii_digit()) {
        return find_domain(q, &[]).map_err(|m| Output::fail(m, 1));
    }
    let doms = hv.list_domains().map_err(|e| hv_fail(cmd, e))?;
    find_domain(q, &names(&doms)).map_err(|m| Output::fail(m, 1))
}

/// `libxl_domain_qualifier_to_domid`: an all-digit qualifier is an id,
/// anything else a name that must exist.
fn qualifier(hv: &mut dyn Hypervisor, q: &str) -> Option<u32> {
    if q.bytes().all(|b| b.is_ascii_digit()) {
        return find_domain(q, &[]).ok();
    }
    let doms = hv.list_domains().ok()?;
    find_domain(q, &names(&doms)).ok()
}

/// Executes one invocation.
pub fn run(
    inv: &Invocation,
    hv: &mut dyn Hypervisor,
    read_file: &dyn Fn(&str) -> std::io::Result<Vec<u8>>,
) -> Output {
    match run_inner(inv, hv, read_file) {
        Ok(o) | Err(o) => o,
    }
}

fn ok(stdout: String) -> Result<Output, Output> {
    Ok(Output {
        stdout,
        stderr: String::new(),
        code: 0,
    })
}

fn run_inner(
    inv: &Invocation,
    hv: &mut dyn Hypervisor,
    read_file: &dyn Fn(&str) -> std::io::Result<Vec<u8>>,
) -> Result<Output, Output> {
    match &inv.command {
        Command::Create(args) => Ok(create(args, hv, read_file)),
        Command::Help(c) => ok(help(c.as_deref())),
        Command::List {
            long,
            verbose,
            context,
            cpupool,
            numa,
            domain,
        } => {
            if *cpupool || *numa {
                return Err(Output::fail(not_supported("list"), 1));
            }
            let doms = hv.list_domains().map_err(|e| hv_fail("list", e))?;
            let shown: Vec<DomainInfo> = match domain {
                None => doms,
                Some(q) => {
                    let id = find_domain(q, &names(&doms)).map_err(|m| Output::fail(m, 1))?;
                    match doms.into_iter().find(|d| d.domid == id) {
                        Some(d) => vec![d],
                        None => {
                            return Err(Output::fail(
                                format!("Error: Domain '{q}' does not exist.\n"),
                                1,
                            ))
                        }
                    }
                }
            };
            if *long {
                // libxl skips a domain whose configuration it cannot retrieve.
                let details: Vec<DomainDetails> = shown
                    .iter()
                    .filter_map(|d| match hv.domain_details(d.domid) {
                        Err(HvError::NotSupported) => Some(Err(())),
                        r => r.ok().map(Ok),
                    })
                    .collect::<Result<_, ()>>()
                    .map_err(|()| Output::fail(not_supported("list"), 1))?;
                return ok(format::list_long(&details));
            }
            ok(format::list(
                &shown,
                ListOptions {
                    verbose: *verbose,
                    context: *context,
                },
            ))
        }
        Command::Info { numa, name } => {
            if *numa {
                return Err(Output::fail(not_supported("info"), 1));
            }
            let node = hv.node_info().map_err(|e| hv_fail("info", e))?;
            let phys = hv.physinfo().map_err(|e| hv_fail("info", e))?;
            let ver = hv.version_info().map_err(|e| hv_fail("info", e))?;
            ok(format::info(&node, &phys, &ver, name.as_deref()))
        }
        Command::Uptime { short, domains } => {
            let doms = hv.list_domains().map_err(|e| hv_fail("uptime", e))?;
            let ids: Vec<u32> = if domains.is_empty() {
                let mut v = vec![0];
                v.extend(doms.iter().map(|d| d.domid).filter(|&id| id != 0));
                v
            } else {
                let n = names(&doms);
                domains
                    .iter()
                    .map(|q| find_domain(q, &n))
                    .collect::<Result<_, _>>()
                    .map_err(|m| Output::fail(m, 1))?
            };
            let mut entries = Vec::new();
            for id in ids {
                if let Some(secs) = hv.uptime_secs(id).map_err(|e| hv_fail("uptime", e))? {
                    let name = doms
                        .iter()
                        .find(|d| d.domid == id)
                        .and_then(|d| d.name.clone());
                    entries.push(UptimeEntry {
                        name,
                        domid: id,
                        uptime_secs: secs,
                    });
                }
            }
            if *short {
                let now = hv.now_hms();
                ok(format::uptime_short(&entries, &now))
            } else {
                ok(format::uptime(&entries))
            }
        }
        Command::VcpuList(qs) => {
            let phys = hv.physinfo().map_err(|e| hv_fail("vcpu-list", e))?;
            let doms = hv.list_domains().map_err(|e| hv_fail("vcpu-list", e))?;
            let ids: Vec<u32> = if qs.is_empty() {
                doms.iter().map(|d| d.domid).collect()
            } else {
                let n = names(&doms);
                qs.iter()
                    .map(|q| find_domain(q, &n))
                    .collect::<Result<_, _>>()
                    .map_err(|m| Output::fail(m, 1))?
            };
            let nr_cpus = phys.max_cpu_id as usize + 1;
            let mut o = format::vcpu_list_header();
            for id in ids {
                let name = doms
                    .iter()
                    .find(|d| d.domid == id)
                    .and_then(|d| d.name.clone());
                // xl silently skips a domain whose vCPUs cannot be listed.
                if let Ok(vcpus) = hv.vcpus(id) {
                    for v in &vcpus {
                        o.push_str(&format::vcpu_row(name.as_deref(), id, v, nr_cpus));
                    }
                }
            }
            ok(o)
        }
        Command::Domid(name) => {
            let doms = hv.list_domains().map_err(|e| hv_fail("domid", e))?;
            match doms.iter().find(|d| d.name.as_deref() == Some(name.as_str())) {
                Some(d) => ok(format!("{}\n", d.domid)),
                None => Err(Output::fail(
                    format!("Can't get domid of domain name '{name}', maybe this domain does not exist.\n"),
                    1,
                )),
            }
        }
        Command::Domname(id) => {
            let doms = hv.list_domains().map_err(|e| hv_fail("domname", e))?;
            match doms.iter().find(|d| d.domid == *id).and_then(|d| d.name.clone()) {
                Some(n) => ok(format!("{n}\n")),
                None => Err(Output::fail(
                    format!("Can't get domain name of domain id '{id}', maybe this domain does not exist.\n"),
                    1,
                )),
            }
        }
        Command::Destroy { force, domain } => {
            let id = lookup(hv, "destroy", domain)?;
            if id == 0 && !*force {
                return Err(Output::fail(
                    "Not destroying domain 0; use -f to force.\n\
                     This can only be done when using a disaggregated hardware domain and toolstack.\n\n"
                        .into(),
                    1,
                ));
            }
            hv.destroy(id, *force).map_err(|e| hv_fail("destroy", e))?;
            ok(String::new())
        }
        Command::Shutdown {
            reboot,
            all,
            wait,
            fallback,
            domain,
        } => {
            let cmd = if *reboot { "reboot" } else { "shutdown" };
            let ids: Vec<u32> = if *all {
                let doms = hv.list_domains().map_err(|e| hv_fail(cmd, e))?;
                doms.iter().map(|d| d.domid).filter(|&id| id != 0).collect()
            } else {
                vec![lookup(hv, cmd, domain.as_deref().unwrap_or_default())?]
            };
            hv.shutdown(&ids, *reboot, *fallback, *wait)
                .map_err(|e| hv_fail(cmd, e))?;
            ok(String::new())
        }
        Command::Pause(d) | Command::Unpause(d) => {
            let pause = matches!(&inv.command, Command::Pause(_));
            let cmd = if pause { "pause" } else { "unpause" };
            let id = lookup(hv, cmd, d)?;
            let r = if pause { hv.pause(id) } else { hv.unpause(id) };
            match r {
                Ok(()) => ok(String::new()),
                // xl ignores libxl's result: the message, but success.
                Err(HvError::Failed(m)) => Ok(Output {
                    stdout: String::new(),
                    stderr: format!("{m}\n"),
                    code: 0,
                }),
                Err(e) => Err(hv_fail(cmd, e)),
            }
        }
        Command::Console {
            console_type,
            num,
            domain,
        } => {
            let id = lookup(hv, "console", domain)?;
            match hv.console(id, *console_type, *num) {
                Ok(()) => ok(String::new()),
                Err(HvError::NotSupported) => Err(Output::fail(not_supported("console"), 1)),
                Err(HvError::Failed(m)) if m.is_empty() => {
                    Err(Output::fail("Unable to attach console\n".into(), 1))
                }
                Err(HvError::Failed(m)) => Err(Output::fail(format!("{m}\n"), 1)),
            }
        }
        Command::Dmesg { clear } => {
            let text = hv.dmesg(*clear).map_err(|e| hv_fail("dmesg", e))?;
            ok(text)
        }
        Command::BlockAttach { domain, specs } => {
            let Some(id) = qualifier(hv, domain) else {
                return Err(Output::fail(
                    format!("{domain} is an invalid domain identifier\n"),
                    1,
                ));
            };
            let refs: Vec<&str> = specs.iter().map(String::as_str).collect();
            let disk =
                parse_disk("command line", &refs).map_err(|e| Output::fail(format!("{e}\n"), 1))?;
            if inv.global.dryrun {
                return Err(Output::fail(not_supported("block-attach -N"), 1));
            }
            hv.block_attach(id, &disk)
                .map_err(|e| hv_fail("block-attach", e))?;
            ok(String::new())
        }
        Command::BlockDetach {
            force,
            domain,
            vdev,
        } => {
            let id = lookup(hv, "block-detach", domain)?;
            hv.block_detach(id, vdev, *force)
                .map_err(|e| hv_fail("block-detach", e))?;
            ok(String::new())
        }
        Command::BlockList(qs) => {
            let mut o = Output {
                stdout: format::block_list_header(),
                ..Default::default()
            };
            for q in qs {
                let Some(id) = qualifier(hv, q) else {
                    o.stderr
                        .push_str(&format!("{q} is an invalid domain identifier\n"));
                    continue;
                };
                let disks = hv.block_list(id).map_err(|e| hv_fail("block-list", e))?;
                for d in &disks {
                    o.stdout.push_str(&format::block_list_row(d));
                }
            }
            Ok(o)
        }
        Command::NetworkAttach { domain, args } => {
            let id = lookup(hv, "network-attach", domain)?;
            let mut nic = NicSpec::default();
            let mut said = String::new();
            for a in args {
                match nic.apply(a) {
                    Ok(None) => {}
                    Ok(Some(m)) => said.push_str(&format!("{m}\n")),
                    Err(m) => return Err(Output::fail(format!("{said}{m}\n"), 1)),
                }
            }
            if inv.global.dryrun {
                return Err(Output::fail(
                    format!("{said}{}", not_supported("network-attach -N")),
                    1,
                ));
            }
            match hv.network_attach(id, &nic) {
                Ok(()) => Ok(Output {
                    stderr: said,
                    ..Default::default()
                }),
                Err(e) => Err(Output::fail(
                    format!("{said}{}", hv_fail("network-attach", e).stderr),
                    1,
                )),
            }
        }
        Command::NetworkDetach { domain, dev } => {
            let id = lookup(hv, "network-detach", domain)?;
            hv.network_detach(id, dev)
                .map_err(|e| hv_fail("network-detach", e))?;
            ok(String::new())
        }
        Command::NetworkList(qs) => {
            let mut o = Output {
                stdout: format::network_list_header(),
                ..Default::default()
            };
            for q in qs {
                // xl's find_domain exits on an unknown name.
                let id = match lookup(hv, "network-list", q) {
                    Ok(id) => id,
                    Err(e) => {
                        o.stderr = e.stderr;
                        o.code = e.code;
                        return Err(o);
                    }
                };
                let nics = hv
                    .network_list(id)
                    .map_err(|e| hv_fail("network-list", e))?;
                for n in &nics {
                    o.stdout.push_str(&format::network_list_row(n));
                }
            }
            Ok(o)
        }
        Command::Other(name, _) => Err(Output::fail(not_supported(name), 1)),
    }
}
