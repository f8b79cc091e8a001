//! The typed domain configuration xl builds from an xl.cfg file
//! (`tools/xl/xl_parse.c: parse_config_data` plus libxl's defaults).

use std::fmt;

use crate::config::{Config, GetError, Value};
use crate::devspec::{parse_disk, DiskSpec, DiskSpecError, NicSpec};

/// libxl's domain types. On Arm xl defaults to PVH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainType {
    /// `type = "pv"` / `builder = "generic"`
    Pv,
    /// `type = "pvh"` (the Arm default)
    Pvh,
    /// `type = "hvm"` / `builder = "hvm"`
    Hvm,
}

impl DomainType {
    /// libxl's name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            DomainType::Pv => "pv",
            DomainType::Pvh => "pvh",
            DomainType::Hvm => "hvm",
        }
    }
}

/// What to do when the guest powers off, reboots, crashes, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `destroy`
    Destroy,
    /// `restart`
    Restart,
    /// `rename-restart`
    RenameRestart,
    /// `preserve`
    Preserve,
    /// `coredump-destroy`
    CoredumpDestroy,
    /// `coredump-restart`
    CoredumpRestart,
    /// `soft-reset`
    SoftReset,
}

impl Action {
    const ALL: [Action; 7] = [
        Action::Destroy,
        Action::Restart,
        Action::RenameRestart,
        Action::Preserve,
        Action::CoredumpDestroy,
        Action::CoredumpRestart,
        Action::SoftReset,
    ];

    /// xl's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Destroy => "destroy",
            Action::Restart => "restart",
            Action::RenameRestart => "rename-restart",
            Action::Preserve => "preserve",
            Action::CoredumpDestroy => "coredump-destroy",
            Action::CoredumpRestart => "coredump-restart",
            Action::SoftReset => "soft-reset",
        }
    }

    /// Exact (case-sensitive) match, as xl's `parse_action_on_shutdown`.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// A resolved domain configuration (after xl's and libxl's defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainConfig {
    /// `name` (required)
    pub name: String,
    /// `type` / `builder` (default PVH on Arm)
    pub domain_type: DomainType,
    /// `memory` in KiB (libxl's target_memkb; default = max_memkb)
    pub target_memkb: u64,
    /// `maxmem` in KiB (default = memory, or 32 MiB if neither is given)
    pub max_memkb: u64,
    /// `vcpus`: vCPUs online at boot (default 1)
    pub vcpus: u32,
    /// `maxvcpus` (default = vcpus)
    pub max_vcpus: u32,
    /// `kernel`
    pub kernel: Option<String>,
    /// `ramdisk`
    pub ramdisk: Option<String>,
    /// The kernel command line built from `cmdline`, `root` and `extra`.
    pub cmdline: Option<String>,
    /// `on_poweroff` (default destroy)
    pub on_poweroff: Action,
    /// `on_reboot` (default restart)
    pub on_reboot: Action,
    /// `on_watchdog` (default destroy)
    pub on_watchdog: Action,
    /// `on_crash` (default destroy)
    pub on_crash: Action,
    /// `on_soft_reset` (default soft-reset)
    pub on_soft_reset: Action,
    /// `disk`, raw specification strings
    pub disk: Vec<String>,
    /// `vif`, raw specification strings
    pub vif: Vec<String>,
    /// `disk`, parsed
    pub disks: Vec<DiskSpec>,
    /// `vif`, parsed (devid = list index unless given)
    pub nics: Vec<NicSpec>,
}

/// The configuration parsed but cannot describe a domain. Display gives the
/// message xl prints (for type problems: libxlu's `file:line:` message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainConfigError {
    /// A key has the wrong shape or is not a valid number
    /// (`file:line: parameter `memory' is not a valid number`). xl itself
    /// only warns and ignores the key here; we refuse the config.
    Type(String),
    /// `Domain name must be specified.`
    NoName,
    /// `Invalid domain type X.`
    InvalidType(String),
    /// `Contradicting "builder" and "type" options specified.`
    ContradictingBuilder,
    /// `xl: maxvcpus < vcpus`
    MaxVcpusLessThanVcpus,
    /// A `disk` entry xl's disk-spec parser rejects (its messages).
    Disk(DiskSpecError),
    /// `Unknown on_poweroff action "X" specified`
    UnknownAction {
        /// the key, e.g. `on_poweroff`
        key: &'static str,
        /// the value given
        value: String,
    },
}

impl fmt::Display for DomainConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainConfigError::Type(m) => f.write_str(m),
            DomainConfigError::NoName => f.write_str("Domain name must be specified."),
            DomainConfigError::InvalidType(t) => write!(f, "Invalid domain type {t}."),
            DomainConfigError::ContradictingBuilder => {
                f.write_str("Contradicting \"builder\" and \"type\" options specified.")
            }
            DomainConfigError::MaxVcpusLessThanVcpus => f.write_str("xl: maxvcpus < vcpus"),
            DomainConfigError::Disk(e) => write!(f, "{e}"),
            DomainConfigError::UnknownAction { key, value } => {
                write!(f, "Unknown {key} action \"{value}\" specified")
            }
        }
    }
}

impl std::error::Error for DomainConfigError {}

/// A resolved configuration and the warnings met on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The domain configuration.
    pub config: DomainConfig,
    /// Warnings (`file:line: warning: ...`, and xl's own
    /// `Warning: ignoring root= and extra= in favour of cmdline=`).
    pub warnings: Vec<String>,
}

/// Keys this toolstack interprets.
pub const SUPPORTED_KEYS: &[&str] = &[
    "name",
    "type",
    "builder",
    "memory",
    "maxmem",
    "vcpus",
    "maxvcpus",
    "kernel",
    "ramdisk",
    "cmdline",
    "root",
    "extra",
    "on_poweroff",
    "on_reboot",
    "on_watchdog",
    "on_crash",
    "on_soft_reset",
    "disk",
    "vif",
];

/// Other keys Xen 4.17's xl reads (accepted, ignored with a warning).
pub const XL_KEYS: &[&str] = &[
    "acpi",
    "acpi_firmware",
    "acpi_laptop_slate",
    "acpi_s3",
    "acpi_s4",
    "altp2m",
    "altp2mhvm",
    "apic",
    "bios",
    "bios_path_override",
    "boot",
    "bootloader",
    "bootloader_args",
    "cap",
    "channel",
    "cpu_weight",
    "cpuid",
    "cpus",
    "cpus_soft",
    "device_model",
    "device_model_args",
    "device_model_args_hvm",
    "device_model_args_pv",
    "device_model_override",
    "device_model_stubdomain_override",
    "device_model_stubdomain_seclabel",
    "device_model_user",
    "device_model_version",
    "device_tree",
    "display",
    "dm_restrict",
    "driver_domain",
    "dtdev",
    "e820_host",
    "extratime",
    "firmware",
    "firmware_override",
    "gfx_passthru",
    "gic_version",
    "hap",
    "hdtype",
    "hpet",
    "init_seclabel",
    "iomem",
    "ioports",
    "irqs",
    "keymap",
    "latency",
    "localtime",
    "max_event_channels",
    "max_grant_frames",
    "max_grant_version",
    "max_maptrack_frames",
    "mca_caps",
    "mmio_hole",
    "ms_vm_genid",
    "msr_relaxed",
    "nestedhvm",
    "nographic",
    "nomigrate",
    "nx",
    "oos",
    "opengl",
    "p9",
    "pae",
    "passthrough",
    "pci",
    "pci_msitranslate",
    "pci_permissive",
    "pci_power_mgmt",
    "pci_seize",
    "period",
    "pool",
    "pvcalls",
    "pvshim",
    "pvshim_cmdline",
    "pvshim_extra",
    "pvshim_path",
    "rdm",
    "rdm_mem_boundary",
    "rtc_timeoffset",
    "sdl",
    "seclabel",
    "serial",
    "shadow_memory",
    "slice",
    "smbios_firmware",
    "soundhw",
    "spice",
    "spice_clipboard_sharing",
    "spice_image_compression",
    "spice_streaming_video",
    "spiceagent_mouse",
    "spicedisable_ticketing",
    "spicehost",
    "spicepasswd",
    "spiceport",
    "spicetls_port",
    "spiceusbredirection",
    "spicevdagent",
    "stdvga",
    "stubdomain_cmdline",
    "stubdomain_kernel",
    "stubdomain_memory",
    "stubdomain_ramdisk",
    "tee",
    "timer_mode",
    "tsc_mode",
    "usb",
    "usbctrl",
    "usbdev",
    "usbdevice",
    "usbversion",
    "uuid",
    "vdispl",
    "vendor_device",
    "vfb",
    "vga",
    "videoram",
    "vif2",
    "viridian",
    "vkb",
    "vkb_device",
    "vmtrace_buf_kb",
    "vnc",
    "vncdisplay",
    "vnclisten",
    "vncpasswd",
    "vncunused",
    "vncviewer",
    "vnuma",
    "vpmu",
    "vpt_align",
    "vsnd",
    "vtpm",
    "vuart",
    "xauthority",
    "xen_platform_pci",
    "xend_suspend_evtchn_compat",
];

/// The most vCPUs a guest may have (Xen's GUEST_MAX_VCPUS on Arm).
pub const MAX_VCPUS: i64 = 128;

fn strip_warning(m: &str) -> String {
    m.replacen(": warning: ", ": ", 1)
}

/// A lookup that may be absent; shape/number problems become errors.
fn opt<T>(r: Result<T, GetError>) -> Result<Option<T>, DomainConfigError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(GetError::NotFound) => Ok(None),
        Err(e) => Err(DomainConfigError::Type(strip_warning(
            e.message().unwrap_or_default(),
        ))),
    }
}

/// `strncmp(buf, name, strlen(buf)) == 0`: xl accepts any prefix of the
/// type name, including the empty string.
fn is_prefix_of(buf: &str, name: &str) -> bool {
    name.as_bytes().starts_with(buf.as_bytes())
}

fn string_list(cfg: &Config, key: &str) -> Result<Vec<String>, DomainConfigError> {
    let Some(items) = opt(cfg.get_list(key))? else {
        return Ok(Vec::new());
    };
    let line = cfg.get(key).map_or(0, |s| s.line);
    items
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            Value::List(_) => Err(DomainConfigError::Type(format!(
                "{}:{}: parameter `{}' has a list where a string is expected",
                cfg.source(),
                line,
                key
            ))),
        })
        .collect()
}

/// xl's `parse_cmdline`: `cmdline` wins (with a warning if `root`/`extra`
/// are also given); otherwise `root=<root> <extra>`, `root=<root>` or
/// `<extra>`.
pub fn build_cmdline(
    cmdline: Option<&str>,
    root: Option<&str>,
    extra: Option<&str>,
    warnings: &mut Vec<String>,
) -> Option<String> {
    if let Some(c) = cmdline {
        if root.is_some() || extra.is_some() {
            warnings.push("Warning: ignoring root= and extra= in favour of cmdline=".to_string());
        }
        return Some(c.to_string());
    }
    match (root, extra) {
        (Some(r), Some(e)) => Some(format!("root={r} {e}")),
        (Some(r), None) => Some(format!("root={r}")),
        (None, Some(e)) => Some(e.to_string()),
        (None, None) => None,
    }
}

impl DomainConfig {
    /// Resolves a parsed config the way `xl create` does.
    pub fn from_config(cfg: &Config) -> Result<Resolved, DomainConfigError> {
        let mut warnings = Vec::new();
        for (key, line) in cfg.keys() {
            if SUPPORTED_KEYS.contains(&key) {
                continue;
            }
            if XL_KEYS.contains(&key) {
                warnings.push(format!(
                    "{}:{}: warning: parameter `{}' is not supported yet and was ignored",
                    cfg.source(),
                    line,
                    key
                ));
            } else {
                warnings.push(format!(
                    "{}:{}: warning: unknown parameter `{}' ignored",
                    cfg.source(),
                    line,
                    key
                ));
            }
        }

        let mut domain_type = None;
        if let Some(t) = opt(cfg.get_string("type"))? {
            domain_type = Some(if is_prefix_of(t, "hvm") {
                DomainType::Hvm
            } else if is_prefix_of(t, "pv") {
                DomainType::Pv
            } else if is_prefix_of(t, "pvh") {
                DomainType::Pvh
            } else {
                return Err(DomainConfigError::InvalidType(t.to_string()));
            });
        }
        if let Some(b) = opt(cfg.get_string("builder"))? {
            let bt = if is_prefix_of(b, "hvm") {
                DomainType::Hvm
            } else if is_prefix_of(b, "generic") {
                DomainType::Pv
            } else {
                return Err(DomainConfigError::InvalidType(b.to_string()));
            };
            if domain_type.is_some_and(|t| t != bt) {
                return Err(DomainConfigError::ContradictingBuilder);
            }
            domain_type = Some(bt);
        }
        let domain_type = domain_type.unwrap_or(DomainType::Pvh);

        let name = match cfg.get_string("name") {
            Ok(n) => n.to_string(),
            Err(GetError::NotFound) => return Err(DomainConfigError::NoName),
            Err(e) => {
                return Err(DomainConfigError::Type(strip_warning(
                    e.message().unwrap_or_default(),
                )))
            }
        };

        let kib_max = i64::MAX / 1024;
        let memory = opt(cfg.get_bounded_long("memory", 0, kib_max))?;
        let maxmem = opt(cfg.get_bounded_long("maxmem", 0, kib_max))?;
        let vcpus = opt(cfg.get_bounded_long("vcpus", 1, MAX_VCPUS))?;
        let maxvcpus = opt(cfg.get_bounded_long("maxvcpus", 1, MAX_VCPUS))?;

        // xl: max defaults to target; libxl: both default to 32 MiB.
        let target = memory.map(|m| m as u64 * 1024);
        let max_memkb = maxmem
            .map(|m| m as u64 * 1024)
            .or(target)
            .unwrap_or(32 * 1024);
        let target_memkb = target.unwrap_or(max_memkb);

        let (vcpus, max_vcpus) = match (vcpus, maxvcpus) {
            (Some(v), Some(m)) => (v, m),
            (Some(v), None) => (v, v),
            // libxl: avail_vcpus defaults to vCPU 0 only.
            (None, Some(m)) => (1, m),
            (None, None) => (1, 1),
        };
        if max_vcpus < vcpus {
            return Err(DomainConfigError::MaxVcpusLessThanVcpus);
        }

        let action = |key: &'static str, default: Action| -> Result<Action, DomainConfigError> {
            match opt(cfg.get_string(key))? {
                None => Ok(default),
                Some(v) => Action::parse(v).ok_or_else(|| DomainConfigError::UnknownAction {
                    key,
                    value: v.to_string(),
                }),
            }
        };
        let on_poweroff = action("on_poweroff", Action::Destroy)?;
        let on_reboot = action("on_reboot", Action::Restart)?;
        let on_watchdog = action("on_watchdog", Action::Destroy)?;
        let on_crash = action("on_crash", Action::Destroy)?;
        let on_soft_reset = action("on_soft_reset", Action::SoftReset)?;

        let kernel = opt(cfg.get_string("kernel"))?.map(str::to_string);
        let ramdisk = opt(cfg.get_string("ramdisk"))?.map(str::to_string);
        let c = opt(cfg.get_string("cmdline"))?;
        let r = opt(cfg.get_string("root"))?;
        let e = opt(cfg.get_string("extra"))?;
        let cmdline = build_cmdline(c, r, e, &mut warnings);

        let disk = string_list(cfg, "disk")?;
        let vif = string_list(cfg, "vif")?;
        let disks = disk
            .iter()
            .map(|d| parse_disk(cfg.source(), &[d]))
            .collect::<Result<Vec<_>, _>>()
            .map_err(DomainConfigError::Disk)?;
        let mut nics = Vec::new();
        for (i, v) in vif.iter().enumerate() {
            let (nic, msgs) = NicSpec::parse_config(v, i as u32);
            warnings.extend(msgs);
            nics.push(nic);
        }

        Ok(Resolved {
            config: DomainConfig {
                name,
                domain_type,
                target_memkb,
                max_memkb,
                vcpus: vcpus as u32,
                max_vcpus: max_vcpus as u32,
                kernel,
                ramdisk,
                cmdline,
                on_poweroff,
                on_reboot,
                on_watchdog,
                on_crash,
                on_soft_reset,
                disk,
                vif,
                disks,
                nics,
            },
            warnings,
        })
    }

    /// The resolved configuration as JSON, shaped like the `c_info` /
    /// `b_info` / `on_*` parts of what `xl create -n` prints (libxl's
    /// `libxl_domain_config` JSON), limited to the keys modelled here.
    pub fn to_json(&self) -> String {
        let mut o = String::new();
        o.push_str("{\n    \"c_info\": {\n");
        o.push_str(&format!(
            "        \"type\": \"{}\",\n",
            self.domain_type.as_str()
        ));
        o.push_str(&format!("        \"name\": {}\n", json_str(&self.name)));
        o.push_str("    },\n    \"b_info\": {\n");
        o.push_str(&format!("        \"max_vcpus\": {},\n", self.max_vcpus));
        o.push_str(&format!("        \"avail_vcpus\": [\n{}\n        ],\n", {
            (0..self.vcpus)
                .map(|i| format!("            {i}"))
                .collect::<Vec<_>>()
                .join(",\n")
        }));
        o.push_str(&format!("        \"max_memkb\": {},\n", self.max_memkb));
        o.push_str(&format!("        \"target_memkb\": {}", self.target_memkb));
        for (k, v) in [
            ("kernel", &self.kernel),
            ("cmdline", &self.cmdline),
            ("ramdisk", &self.ramdisk),
        ] {
            if let Some(v) = v {
                o.push_str(&format!(",\n        \"{k}\": {}", json_str(v)));
            }
        }
        o.push_str(&format!(
            ",\n        \"type.{}\": {{\n\n        }}\n    }},\n",
            self.domain_type.as_str()
        ));
        for (k, v) in [("disks", &self.disk), ("nics", &self.vif)] {
            if !v.is_empty() {
                o.push_str(&format!("    \"{k}\": [\n"));
                let items: Vec<String> = v
                    .iter()
                    .map(|s| format!("        {}", json_str(s)))
                    .collect();
                o.push_str(&items.join(",\n"));
                o.push_str("\n    ],\n");
            }
        }
        o.push_str(&format!(
            "    \"on_poweroff\": \"{}\",\n",
            self.on_poweroff.as_str()
        ));
        o.push_str(&format!(
            "    \"on_reboot\": \"{}\",\n",
            self.on_reboot.as_str()
        ));
        o.push_str(&format!(
            "    \"on_watchdog\": \"{}\",\n",
            self.on_watchdog.as_str()
        ));
        o.push_str(&format!(
            "    \"on_crash\": \"{}\",\n",
            self.on_crash.as_str()
        ));
        o.push_str(&format!(
            "    \"on_soft_reset\": \"{}\"\n}}\n",
            self.on_soft_reset.as_str()
        ));
        o
    }
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}
