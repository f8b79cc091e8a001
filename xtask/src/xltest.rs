//! dom0/xl (our `xl`, static musl) and the `xl_dom0` test: its read-only commands in a dom0
//! with Linux's Xen drivers and no xenstored (testing/init-xl.sh), checked against what
//! Debian's xl prints on Xen 4.17.

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};

use crate::console::Console;
use crate::debian::Kernel;
use crate::dom0test::MODULES;
use crate::initramfs::Initramfs;
use crate::say;
use crate::tools::Tools;

/// /init of the xl test.
pub const INIT: &str = include_str!("../../testing/init-xl.sh");


/// `xl info`'s keys in the order Debian's xl prints them on Xen 4.17 (Arm).
pub const INFO_KEYS: &[&str] = &[
    "host", "release", "version", "machine", "nr_cpus", "max_cpu_id", "nr_nodes", "cores_per_socket",
    "threads_per_core", "cpu_mhz", "hw_caps", "virt_caps", "total_memory", "free_memory",
    "sharing_freed_memory", "sharing_used_memory", "outstanding_claims", "free_cpus", "xen_major",
    "xen_minor", "xen_extra", "xen_version", "xen_caps", "xen_scheduler", "xen_pagesize", "platform_params",
    "xen_changeset", "xen_commandline", "cc_compiler", "cc_compile_by", "cc_compile_domain",
    "cc_compile_date", "build_id", "xend_config_format",
];

const LIST_HEADER: &str = "Name                                        ID   Mem VCPUs\tState\tTime(s)";
const VCPU_HEADER: &str = "Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)";
const UPTIME_HEADER: &str = "Name                                ID Uptime";

/// Between two markers (the first also waits for the modules to load).
const TO_STEP: Duration = Duration::from_secs(90);

/// Writes the initramfs: busybox, the Xen modules of `kernel`, `xl` (from
/// [`crate::tools::build`]), INIT.
pub fn write_initramfs(busybox: &Path, kernel: &Kernel, tools: &Tools, out: &Path) -> Result<()> {
    let mut rd = Initramfs::busybox_root(busybox, INIT)?;
    let names: Vec<String> = MODULES.iter().map(|m| (*m).to_owned()).collect();
    rd.add_modules(kernel, &names)?;
    let xl = tools.xl();
    let data = std::fs::read(&xl).with_context(|| format!("reading {}", xl.display()))?;
    rd.file("bin/xl", 0o755, data);
    rd.write_gz(out)
}

/// Hypervisor and kernel log lines that may land between xl's lines on the shared console.
pub(crate) fn noise(l: &str) -> bool {
    l.starts_with("(XEN)") || l.starts_with("(FV)") || (l.starts_with('[') && l[1..].trim_start().starts_with(|c: char| c.is_ascii_digit()))
}

/// Reads one `XL-BEGIN name` .. `XL-END name rc=N` section: its stdout lines (noise
/// removed, except for dmesg, which is hypervisor log lines), after checking rc=0 and no stderr.
fn section(console: &mut Console, name: &str) -> Result<Vec<String>> {
    console.expect(&format!("XL-BEGIN {name}"), TO_STEP)?;
    let mark = console.mark();
    let (rc, _) = console.expect(&format!("XL-END {name}"), TO_STEP)?;
    let lines = console.since(mark);
    let body: Vec<String> = lines[..lines.len().saturating_sub(1)]
        .iter()
        .filter(|l| name == "dmesg" || !noise(l))
        .map(|l| l.to_string())
        .collect();
    let errs: Vec<&String> = body.iter().filter(|l| l.starts_with("XL-ERR")).collect();
    ensure!(rc == "rc=0" && errs.is_empty(), "xl {name}: {rc}:\n    {}", body.join("\n    "));
    Ok(body)
}

/// Checks the sections of testing/init-xl.sh.
pub fn check(console: &mut Console, smp: u32, mem_mib: u32) -> Result<()> {
    let (uptime, wall) = console.expect("FV-INIT uptime=", Duration::from_secs(120))?;
    say!("dom0 /init after {:.1} s host time (dom0 uptime {uptime} s)", wall.as_secs_f64());

    let list = section(console, "list")?;
    ensure!(list.first().map(String::as_str) == Some(LIST_HEADER), "xl list: header {:?}", list.first());
    let dom0: Vec<&str> = list.iter().find(|l| l.starts_with("Domain-0 ")).map(|l| l.split_whitespace().collect()).unwrap_or_default();
    ensure!(
        dom0.len() == 6 && dom0[1] == "0" && dom0[2] == "512" && dom0[3] == smp.to_string() && dom0[4] == "r-----" && dom0[5].parse::<f64>().is_ok(),
        "xl list: Domain-0 row {dom0:?} in {list:?}"
    );

    let info = section(console, "info")?;
    let kv: Vec<(&str, &str)> = info.iter().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim_end(), v.trim())).collect();
    let keys: Vec<&str> = kv.iter().map(|(k, _)| *k).collect();
    ensure!(keys == INFO_KEYS, "xl info: keys {keys:?}, expected {INFO_KEYS:?}");
    ensure!(info.iter().all(|l| l.find(':') == Some(23)), "xl info: a key not padded to 23 columns:\n    {}", info.join("\n    "));
    let get = |k: &str| kv.iter().find(|(key, _)| *key == k).map(|(_, v)| *v).unwrap_or_default();
    for (key, want) in [
        ("nr_cpus", smp.to_string()),
        ("max_cpu_id", (smp - 1).to_string()),
        ("total_memory", mem_mib.to_string()),
        ("xen_major", "4".into()),
        ("xen_minor", "17".into()),
        ("xen_pagesize", "4096".into()),
        ("machine", "aarch64".into()),
        ("xend_config_format", "4".into()),
    ] {
        ensure!(get(key) == want, "xl info: `{key} : {}`, expected {want}", get(key));
    }
    ensure!(get("xen_caps").split_whitespace().any(|c| c == "xen-3.0-aarch64"), "xl info: xen_caps `{}`", get("xen_caps"));
    ensure!(get("xen_version").starts_with("4.17"), "xl info: xen_version `{}`", get("xen_version"));
    ensure!(!get("xen_scheduler").is_empty() && get("xen_scheduler") != "(null)", "xl info: xen_scheduler `{}`", get("xen_scheduler"));
    for key in ["free_memory", "sharing_freed_memory", "sharing_used_memory", "outstanding_claims", "free_cpus"] {
        ensure!(get(key).parse::<u64>().is_ok(), "xl info: `{key} : {}` is not a number", get(key));
    }
    ensure!(get("sharing_freed_memory") == "0" && get("outstanding_claims") == "0", "xl info: sharing/claims not 0");

    let uptime = section(console, "uptime")?;
    ensure!(uptime.first().map(String::as_str) == Some(UPTIME_HEADER), "xl uptime: header {:?}", uptime.first());
    let row: Vec<&str> = uptime.get(1).map(|l| l.split_whitespace().collect()).unwrap_or_default();
    ensure!(row.len() == 3 && row[0] == "Domain-0" && row[1] == "0" && row[2].split(':').count() == 3, "xl uptime: {uptime:?}");

    let vcpus = section(console, "vcpu-list")?;
    ensure!(vcpus.first().map(String::as_str) == Some(VCPU_HEADER), "xl vcpu-list: header {:?}", vcpus.first());
    let rows: Vec<Vec<&str>> = vcpus.iter().skip(1).map(|l| l.split_whitespace().collect()).collect();
    ensure!(rows.len() == smp as usize, "xl vcpu-list: {} rows, expected {smp}: {vcpus:?}", rows.len());
    for (v, r) in rows.iter().enumerate() {
        // Domain-0 0 <vcpu> <cpu> <state> <time> <hard> / <soft>
        ensure!(
            r.len() == 9 && r[0] == "Domain-0" && r[1] == "0" && r[2] == v.to_string() && r[3].parse::<u32>().is_ok_and(|c| c < smp) && r[7] == "/",
            "xl vcpu-list: row {v}: {r:?}"
        );
    }

    let dmesg = section(console, "dmesg")?;
    ensure!(dmesg.iter().any(|l| !l.trim().is_empty()), "xl dmesg printed nothing");
    say!("xl dmesg: {} lines", dmesg.len());

    let domid = section(console, "domid")?;
    ensure!(domid == ["0"], "xl domid Domain-0: {domid:?}");
    let domname = section(console, "domname")?;
    ensure!(domname == ["Domain-0"], "xl domname 0: {domname:?}");

    console.expect("XL-DONE", TO_STEP)?;
    let status = console.wait_exit(Duration::from_secs(30))?;
    ensure!(status.success(), "QEMU exited with {status} after XL-DONE");
    Ok(())
}
