//! PV device specifications as Xen 4.17's xl reads them: the disk-spec
//! syntax (libxlutil's flex scanner `libxlu_disk_l.l`, see
//! xl-disk-configuration(5)), the vif syntax (xl's `parse_nic_config`),
//! and libxl's virtual-device numbering (`libxl__device_disk_dev_number`,
//! xen-vbd-interface(7)).
//!
//! The disk scanner is re-implemented rule by rule with flex's choice of
//! the longest match (the first rule on a tie), so a spec xl accepts is
//! accepted here with the same meaning, and one it rejects gets the same
//! messages: `SOURCE: config parsing error in disk specification: MSG:
//! near `TEXT' in `SPEC'`.

use std::fmt;

/// A disk image format (`format=`, or a deprecated `raw:`/`qcow2:` prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskFormat {
    /// `raw` (also the default)
    Raw,
    /// `qcow`
    Qcow,
    /// `qcow2`
    Qcow2,
    /// `vhd`
    Vhd,
    /// `qed`
    Qed,
    /// `empty` (an empty cdrom drive)
    Empty,
}

impl DiskFormat {
    /// libxl's name of the format.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow => "qcow",
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Vhd => "vhd",
            DiskFormat::Qed => "qed",
            DiskFormat::Empty => "empty",
        }
    }
}

/// One parsed `disk` entry (libxl's `libxl_device_disk` as xl fills it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskSpec {
    /// `target` (the image or block device; `None` only for a cdrom).
    pub target: Option<String>,
    /// `format` (`None` until resolved: [`parse_disk`] makes it `Raw`).
    pub format: Option<DiskFormat>,
    /// `vdev` as written (`xvda`, `hdc`, `51712`, ...).
    pub vdev: String,
    /// `access`: read-write unless `r`/`ro` (or a cdrom).
    pub readwrite: bool,
    /// `devtype=cdrom` / `cdrom`
    pub is_cdrom: bool,
    /// Set for a cdrom.
    pub removable: bool,
    /// `backend=` (a driver domain's name)
    pub backend: Option<String>,
    /// `backendtype=` (`phy`, `tap`, `qdisk`, `standalone`)
    pub backendtype: Option<String>,
    /// `specification=` (`xen`, `virtio`)
    pub specification: Option<String>,
    /// `script=` (or a deprecated `iscsi:`-style prefix: `block-iscsi`)
    pub script: Option<String>,
    /// `direct-io-safe`
    pub direct_io_safe: bool,
    /// `discard` / `no-discard` (default: discard when read-write)
    pub discard: Option<bool>,
    /// `colo` / `no-colo`
    pub colo: Option<bool>,
    /// `trusted` / `untrusted` (default trusted)
    pub trusted: Option<bool>,
}

impl DiskSpec {
    /// The `mode` node libxl writes.
    pub fn mode(&self) -> &'static str {
        if self.readwrite {
            "w"
        } else {
            "r"
        }
    }
}

/// The disk spec(s) could not be parsed: the lines xl prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskSpecError {
    /// Each message, as `xlu__disk_err` prints it (no newline).
    pub messages: Vec<String>,
}

impl fmt::Display for DiskSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.messages.join("\n"))
    }
}

impl std::error::Error for DiskSpecError {}

/// The scanner's state across the specs of one disk (`DiskParseContext`).
struct Ctx<'a> {
    source: &'a str,
    spec: &'a str,
    disk: DiskSpec,
    vdev: Option<String>,
    had_depr_prefix: bool,
    access_set: bool,
    err: bool,
    messages: Vec<String>,
}

impl Ctx<'_> {
    /// `xlu__disk_err`.
    fn err(&mut self, erroneous: Option<&str>, message: &str) {
        let near = erroneous.map_or(String::new(), |e| format!(": near `{e}'"));
        self.messages.push(format!(
            "{}: config parsing error in disk specification: {message}{near} in `{}'",
            self.source, self.spec
        ));
        self.err = true;
    }

    /// `savestring`: an empty value may be overwritten, a set one not.
    fn save(&mut self, what: &str, slot: Slot, value: &str) {
        let cur = match slot {
            Slot::Target => &mut self.disk.target,
            Slot::Vdev => &mut self.vdev,
            Slot::Backend => &mut self.disk.backend,
            Slot::Script => &mut self.disk.script,
            Slot::Colo => {
                return;
            }
        };
        if cur.as_deref().is_some_and(|c| !c.is_empty()) {
            self.err(Some(value), &format!("{what} respecified"));
            return;
        }
        *cur = Some(value.to_string());
    }

    fn set_access(&mut self, s: &str) {
        match s {
            "r" | "ro" => self.disk.readwrite = false,
            "rw" | "w" | "" => self.disk.readwrite = true,
            _ => self.err(Some(s), "unknown value for access"),
        }
    }

    fn set_format(&mut self, s: &str) {
        let f = match s {
            "" | "raw" => DiskFormat::Raw,
            "qcow" => DiskFormat::Qcow,
            "qcow2" => DiskFormat::Qcow2,
            "vhd" => DiskFormat::Vhd,
            "empty" => DiskFormat::Empty,
            "qed" => DiskFormat::Qed,
            _ => return self.err(Some(s), "unknown value for format"),
        };
        match self.disk.format {
            Some(cur) if cur != f => self.err(Some(s), "format respecified"),
            _ => self.disk.format = Some(f),
        }
    }

    /// An enum-like string (`DSET`): respecifying another value is an error.
    fn set_enum(&mut self, s: &str, allowed: &[&str], what: &str, member: &str) {
        if !allowed.contains(&s) {
            return self.err(Some(s), &format!("unknown value for {what}"));
        }
        let slot = if what == "backendtype" {
            &mut self.disk.backendtype
        } else {
            &mut self.disk.specification
        };
        match slot {
            Some(cur) if cur != s => self.err(Some(s), &format!("{member} respecified")),
            _ => *slot = Some(s.to_string()),
        }
    }

    /// `vdev_and_devtype`: `<vdev>:<devtype>`; false if no colon.
    fn vdev_and_devtype(&mut self, s: &str) -> bool {
        let Some(i) = s.rfind(':') else { return false };
        self.save("vdev", Slot::Vdev, &s[..i]);
        match &s[i + 1..] {
            "cdrom" => self.disk.is_cdrom = true,
            "disk" => self.disk.is_cdrom = false,
            other => self.err(Some(other), "unknown deprecated type"),
        }
        true
    }

    /// The positional-parameter rule; false to stop scanning.
    fn positional(&mut self, text: &str) -> bool {
        if self.err {
            // previous errors may just lead to subsequent ones
        } else if self.disk.target.is_none() {
            self.save("target", Slot::Target, text);
        } else if !self.had_depr_prefix && self.disk.format.is_none() {
            if self.disk.target.as_deref() == Some("") && self.vdev_and_devtype(text) {
                self.disk.format = Some(DiskFormat::Empty);
            } else {
                self.set_format(text);
            }
        } else if self.vdev.is_none() {
            if !self.vdev_and_devtype(text) {
                self.save("vdev", Slot::Vdev, text);
            }
        } else if !self.access_set {
            self.access_set = true;
            self.set_access(text);
        } else {
            self.err(Some(text), "too many positional parameters");
            return false;
        }
        true
    }
}

#[derive(Clone, Copy)]
enum Slot {
    Target,
    Vdev,
    Backend,
    Script,
    Colo,
}

/// What a scanner rule does with its text.
#[derive(Clone, Copy)]
enum Rule {
    Space,
    Format,
    Cdrom,
    DevtypeCdrom,
    DevtypeDisk,
    DevtypeBad,
    Access,
    Backend,
    Backendtype,
    Specification,
    Vdev,
    Script,
    DirectIo,
    Discard(bool),
    Colo(bool),
    ColoString,
    ColoPort,
    Trusted(bool),
    Target,
    Unknown,
    FormatPrefix,
    ScriptPrefix,
    IgnoredPrefix,
    BadPrefix,
    Positional,
}

/// `[^,]*,?` after `prefix` (a `key=value` rule), or `,?` after a flag.
fn keyword(s: &str, prefix: &str, value: bool) -> Option<usize> {
    let rest = s.strip_prefix(prefix)?;
    let n = if value {
        rest.find(',').unwrap_or(rest.len())
    } else {
        0
    };
    let comma = usize::from(rest[n..].starts_with(','));
    Some(prefix.len() + n + comma)
}

/// Up to the next newline (what flex's `.*` matches).
fn to_eol(s: &str) -> usize {
    s.find('\n').unwrap_or(s.len())
}

/// A deprecated `name:` prefix whose pattern ends in `/.*`: matches `name:`
/// (the text), counting the whole line for the longest-match choice.
fn prefix_rule(s: &str, names: &[&str]) -> Option<(usize, usize)> {
    names.iter().find_map(|n| {
        let p = format!("{n}:");
        s.starts_with(&p).then(|| (to_eol(s), p.len()))
    })
}

/// The longest match at the start of `s`: (rule, length counted, length
/// consumed). `None` for flex's catch-all `.` (a lexical error).
fn best_match(s: &str) -> Option<(Rule, usize)> {
    let b = s.as_bytes();
    let mut best: Option<(Rule, usize, usize)> = None;
    let mut offer = |rule: Rule, counted: usize, consumed: usize| {
        if counted > best.map_or(0, |x| x.1) {
            best = Some((rule, counted, consumed));
        }
    };
    // [ \t\n]+/([^ \t\n].*)?
    let ws = b
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t' | b'\n'))
        .count();
    if ws > 0 {
        offer(Rule::Space, ws + to_eol(&s[ws..]), ws);
    }
    let kw: &[(&str, bool, Rule)] = &[
        ("format=", true, Rule::Format),
        ("cdrom", false, Rule::Cdrom),
        ("devtype=cdrom", false, Rule::DevtypeCdrom),
        ("devtype=disk", false, Rule::DevtypeDisk),
        ("devtype=", true, Rule::DevtypeBad),
        ("access=", true, Rule::Access),
        ("backend=", true, Rule::Backend),
        ("backendtype=", true, Rule::Backendtype),
        ("specification=", true, Rule::Specification),
        ("vdev=", true, Rule::Vdev),
        ("script=", true, Rule::Script),
        ("direct-io-safe", false, Rule::DirectIo),
        ("discard", false, Rule::Discard(true)),
        ("no-discard", false, Rule::Discard(false)),
        ("colo", false, Rule::Colo(true)),
        ("no-colo", false, Rule::Colo(false)),
        ("colo-host=", true, Rule::ColoString),
        ("colo-port=", true, Rule::ColoPort),
        ("colo-export=", true, Rule::ColoString),
        ("active-disk=", true, Rule::ColoString),
        ("hidden-disk=", true, Rule::ColoString),
        ("trusted", false, Rule::Trusted(true)),
        ("untrusted", false, Rule::Trusted(false)),
    ];
    for &(p, value, rule) in kw {
        if let Some(n) = keyword(s, p, value) {
            offer(rule, n, n);
        }
    }
    if s.starts_with("target=") {
        let n = to_eol(s);
        offer(Rule::Target, n, n);
    }
    // [a-z][-a-z0-9]*=[^,],?
    if b.first().is_some_and(u8::is_ascii_lowercase) {
        let name = 1 + b[1..]
            .iter()
            .take_while(|&&c| c == b'-' || c.is_ascii_lowercase() || c.is_ascii_digit())
            .count();
        if b.get(name) == Some(&b'=') {
            if let Some(&c) = b.get(name + 1) {
                if c != b',' && c != b'\n' {
                    let cl = s[name + 1..].chars().next().map_or(1, char::len_utf8);
                    let mut n = name + 1 + cl;
                    if b.get(n) == Some(&b',') {
                        n += 1;
                    }
                    offer(Rule::Unknown, n, n);
                }
            }
        }
    }
    for (names, rule) in [
        (&["raw", "qcow", "qcow2", "vhd"][..], Rule::FormatPrefix),
        (&["iscsi", "nbd", "enbd", "drbd"][..], Rule::ScriptPrefix),
        (
            &["tapdisk", "tap", "tap2", "aio", "ioemu", "file", "phy"][..],
            Rule::IgnoredPrefix,
        ),
    ] {
        if let Some((counted, consumed)) = prefix_rule(s, names) {
            offer(rule, counted, consumed);
        }
    }
    // [a-z][a-z0-9]*:/([^a-z0-9].*)?
    if b.first().is_some_and(u8::is_ascii_lowercase) {
        let name = 1 + b[1..]
            .iter()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            .count();
        if b.get(name) == Some(&b':') {
            let rest = &s[name + 1..];
            let tail = match rest.as_bytes().first() {
                Some(&c) if c != b'\n' && !c.is_ascii_lowercase() && !c.is_ascii_digit() => {
                    to_eol(rest)
                }
                _ => 0,
            };
            offer(Rule::BadPrefix, name + 1 + tail, name + 1);
        }
    }
    // [^=,]*,|[^=,]+,?
    let n = s.find(['=', ',']).unwrap_or(s.len());
    let comma = usize::from(s[n..].starts_with(','));
    if n + comma > 0 {
        offer(Rule::Positional, n + comma, n + comma);
    }
    best.map(|(r, _, consumed)| (r, consumed))
}

/// Removes one trailing `delim` (`STRIP`).
fn strip(t: &str, delim: char) -> &str {
    t.strip_suffix(delim).unwrap_or(t)
}

/// The value after the first `=` (`FROMEQUALS`).
fn from_equals(t: &str) -> &str {
    t.split_once('=').map_or("", |x| x.1)
}

/// Scans one spec into `c`; false when scanning stopped on an error.
fn scan(c: &mut Ctx, spec: &str) {
    let mut pos = 0;
    while pos < spec.len() {
        let s = &spec[pos..];
        let Some((rule, n)) = best_match(s) else {
            // `.` then `<LEXERR>.*`: the offending character and the rest.
            let rest = &s[..to_eol(s).max(s.chars().next().map_or(1, char::len_utf8))];
            c.err(Some(rest), "bad disk syntax");
            return;
        };
        let text = &s[..n];
        pos += n;
        let t = strip(text, ',');
        match rule {
            Rule::Space => {}
            Rule::Format => c.set_format(from_equals(t)),
            Rule::Cdrom | Rule::DevtypeCdrom => c.disk.is_cdrom = true,
            Rule::DevtypeDisk => c.disk.is_cdrom = false,
            Rule::DevtypeBad => c.err(Some(text), "unknown value for type"),
            Rule::Access => c.set_access(from_equals(t)),
            Rule::Backend => c.save("backend", Slot::Backend, from_equals(t)),
            Rule::Backendtype => c.set_enum(
                from_equals(t),
                &["phy", "tap", "qdisk", "standalone"],
                "backendtype",
                "backend",
            ),
            Rule::Specification => c.set_enum(
                from_equals(t),
                &["xen", "virtio"],
                "specification",
                "specification",
            ),
            Rule::Vdev => c.save("vdev", Slot::Vdev, from_equals(t)),
            Rule::Script => c.save("script", Slot::Script, from_equals(t)),
            Rule::DirectIo => c.disk.direct_io_safe = true,
            Rule::Discard(on) => c.disk.discard = Some(on),
            Rule::Colo(on) => c.disk.colo = Some(on),
            Rule::ColoString => c.save("colo", Slot::Colo, from_equals(t)),
            Rule::ColoPort => {
                let v = from_equals(t);
                if crate::config::c_strtol(v.as_bytes()).0.unwrap_or(0) as i32 == 0 {
                    c.err(Some(v), "unknown value for colo_port");
                }
            }
            Rule::Trusted(on) => c.disk.trusted = Some(on),
            Rule::Target => c.save("target", Slot::Target, from_equals(t)),
            Rule::Unknown => c.err(Some(text), "unknown parameter"),
            Rule::FormatPrefix => {
                c.had_depr_prefix = true;
                c.set_format(strip(text, ':'));
            }
            Rule::ScriptPrefix => {
                c.had_depr_prefix = true;
                let script = format!("block-{}", strip(text, ':'));
                c.save("script", Slot::Script, &script);
            }
            Rule::IgnoredPrefix => c.had_depr_prefix = true,
            Rule::BadPrefix => {
                c.err(Some(text), "unknown deprecated disk prefix");
                return;
            }
            Rule::Positional => {
                if !c.positional(t) {
                    return;
                }
            }
        }
    }
}

/// `xlu_disk_parse`: one disk from one or more spec strings (`xl
/// block-attach` passes each argument as a spec). `source` names the
/// config file (`command line` for `block-attach`).
pub fn parse_disk(source: &str, specs: &[&str]) -> Result<DiskSpec, DiskSpecError> {
    let mut c = Ctx {
        source,
        spec: specs.last().copied().unwrap_or_default(),
        disk: DiskSpec {
            readwrite: true,
            ..Default::default()
        },
        vdev: None,
        had_depr_prefix: false,
        access_set: false,
        err: false,
        messages: Vec::new(),
    };
    for spec in specs {
        c.spec = spec;
        scan(&mut c, spec);
        if c.err {
            return Err(DiskSpecError {
                messages: c.messages,
            });
        }
    }
    let d = &mut c.disk;
    if d.format.is_none() {
        d.format = Some(DiskFormat::Raw);
    }
    if d.is_cdrom {
        d.removable = true;
        d.readwrite = false;
        if d.target.as_deref().unwrap_or_default().is_empty() {
            d.format = Some(DiskFormat::Empty);
        }
    }
    if c.vdev.is_none() {
        c.err(None, "no vdev specified");
    } else if c.disk.target.is_none() && !c.disk.removable {
        c.err(None, "no target specified (and device not removable)");
    }
    if c.err {
        return Err(DiskSpecError {
            messages: c.messages,
        });
    }
    c.disk.vdev = c.vdev.unwrap_or_default();
    Ok(c.disk)
}

/// `device_virtdisk_matches`: `<prefix><letters>[<partition>]`, the
/// letters read as a bijective base-26 number (`a` = 0, `aa` = 26).
fn virtdisk(vdev: &str, prefix: &str, max_index: i64, max_part: u64) -> Option<(i64, i64)> {
    let rest = vdev.strip_prefix(prefix)?;
    let mut index: i64 = -1;
    let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    for c in rest.bytes().take(letters) {
        index = (index + 1) * 26 + i64::from(c - b'a');
        if index > max_index {
            return None;
        }
    }
    // libxl lets `xvd` alone through as disk -1; no device has that name.
    if index < 0 {
        return None;
    }
    let part = &rest[letters..];
    if part.is_empty() {
        return Some((index, 0));
    }
    if part.starts_with('0') || !part.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let p: u64 = part.parse().ok()?;
    (p <= max_part).then_some((index, p as i64))
}

/// C `strtoul(s, &end, 0)` of a whole string: `None` unless every
/// character was used (an empty string is 0, as libxl lets it be).
fn strtoul_whole(s: &str) -> Option<u64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.is_empty() {
        return s.is_empty().then_some(0);
    }
    let (digits, radix) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (h, 16)
    } else if t.len() > 1 && t.starts_with('0') {
        (&t[1..], 8)
    } else {
        (t, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// `libxl__device_disk_dev_number`: the device number (the `devid` and
/// `virtual-device`) of a vdev name, as xen-vbd-interface(7) assigns them:
/// `xvdX` below 16 disks and 16 partitions `202<<8 | disk<<4 | part`,
/// beyond that `1<<28 | disk<<8 | part`; `dNpM` the same; `hdX` and `sdX`
/// their Linux numbers; a plain number as itself.
pub fn vdev_number(vdev: &str) -> Option<u32> {
    let dnp = || -> Option<(i64, i64)> {
        let rest = vdev.strip_prefix('d')?;
        let (d, p) = rest.split_once('p')?;
        let ok = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
        if !ok(d) || !ok(p) {
            return None;
        }
        let (d, p): (i64, i64) = (d.parse().ok()?, p.parse().ok()?);
        (d < 1 << 20 && p < 256).then_some((d, p))
    };
    if let Some((disk, part)) = dnp().or_else(|| virtdisk(vdev, "xvd", (1 << 20) - 1, 255)) {
        let n = if disk <= 15 && part <= 15 {
            (202 << 8) | (disk << 4) | part
        } else {
            (1 << 28) | (disk << 8) | part
        };
        return Some(n as u32);
    }
    if let Some(n) = strtoul_whole(vdev) {
        return (n <= i32::MAX as u64).then_some(n as u32);
    }
    if let Some((disk, part)) = virtdisk(vdev, "hd", 3, 63) {
        let major = if disk < 2 { 3 } else { 22 };
        return Some(((major << 8) | ((disk & 1) << 6) | part) as u32);
    }
    if let Some((disk, part)) = virtdisk(vdev, "sd", 15, 15) {
        return Some(((8 << 8) | (disk << 4) | part) as u32);
    }
    None
}

/// One parsed `vif` entry (libxl's `libxl_device_nic` as xl fills it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NicSpec {
    /// `devid=` (xl sets the list index for config entries).
    pub devid: Option<u32>,
    /// `mac=` (libxl picks `00:16:3e:xx:xx:xx` at random if unset).
    pub mac: Option<[u8; 6]>,
    /// `bridge=` (libxl's default `xenbr0`)
    pub bridge: Option<String>,
    /// `ip=`
    pub ip: Option<String>,
    /// `script=` (libxl's default `vif-bridge`)
    pub script: Option<String>,
    /// `type=`: `vif` or `ioemu`
    pub nictype: Option<String>,
    /// `vifname=` (accepted; the interface keeps netback's name)
    pub vifname: Option<String>,
    /// `model=` (ignored: no emulated NICs)
    pub model: Option<String>,
    /// `mtu=` (default 1500)
    pub mtu: Option<u32>,
    /// `backend=` (a driver domain's name)
    pub backend: Option<String>,
    /// `gatewaydev=` / `netdev=`
    pub gatewaydev: Option<String>,
    /// `rate=` (accepted, not enforced)
    pub rate: Option<String>,
    /// `trusted` / `untrusted`
    pub trusted: Option<bool>,
}

/// libxl's default MTU.
pub const DEFAULT_MTU: u32 = 1500;
/// libxl's default bridge.
pub const DEFAULT_BRIDGE: &str = "xenbr0";

/// xl's `parse_ulong`.
fn parse_ulong(s: &str) -> Result<u32, String> {
    let digits: String = s
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse::<u32>()
        .map_err(|_| format!("xl: failed to convert \"{s}\" to number"))
}

/// xl's `mac=` parsing: six `strtoul(.., 16)` fields, each followed by one
/// separator character of any kind.
pub fn parse_mac_xl(s: &str) -> Option<[u8; 6]> {
    let b = s.as_bytes();
    let mut mac = [0u8; 6];
    let mut i = 0;
    for m in &mut mac {
        let start = i;
        let mut v: u64 = 0;
        while i < b.len() && b[i].is_ascii_hexdigit() {
            v = v.saturating_mul(16).saturating_add(u64::from((b[i] as char).to_digit(16)?));
            i += 1;
        }
        if i == start || v > 255 {
            return None;
        }
        *m = v as u8;
        i += 1;
    }
    Some(mac)
}

/// libxl's `libxl__parse_mac`: six hex pairs separated by single characters.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let b = s.as_bytes();
    let mut mac = [0u8; 6];
    for (i, m) in mac.iter_mut().enumerate() {
        let pair = b.get(i * 3..i * 3 + 2)?;
        let txt = std::str::from_utf8(pair).ok()?;
        *m = u8::from_str_radix(txt, 16).ok()?;
    }
    Some(mac)
}

/// `LIBXL_MAC_FMT`.
pub fn format_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

impl NicSpec {
    /// xl's `parse_nic_config` for one `key=value` token: `Ok(Some(msg))`
    /// for what xl only prints, `Err(msg)` where xl's parse fails.
    pub fn apply(&mut self, token: &str) -> Result<Option<String>, String> {
        let (key, value) = match token.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (token, None),
        };
        let s = |v: &str| Some(v.to_string());
        match (key, value) {
            ("type", Some(v)) => {
                if v != "vif" && v != "ioemu" {
                    return Err("Invalid parameter `type'.".into());
                }
                self.nictype = s(v);
            }
            ("mac", Some(v)) => {
                self.mac = Some(parse_mac_xl(v).ok_or("Invalid parameter `mac'.")?);
            }
            ("bridge", Some(v)) => self.bridge = s(v),
            ("netdev", Some(v)) => {
                self.gatewaydev = s(v);
                return Ok(Some(
                    "the netdev parameter is deprecated, please use gatewaydev instead".into(),
                ));
            }
            ("gatewaydev", Some(v)) => self.gatewaydev = s(v),
            ("ip", Some(v)) => self.ip = s(v),
            ("script", Some(v)) => self.script = s(v),
            ("backend", Some(v)) => self.backend = s(v),
            ("vifname", Some(v)) => self.vifname = s(v),
            ("model", Some(v)) => self.model = s(v),
            ("rate", Some(v)) => self.rate = s(v),
            ("accel", Some(_)) => {
                return Ok(Some(
                    "the accel parameter for vifs is currently not supported".into(),
                ))
            }
            ("devid", Some(v)) => self.devid = Some(parse_ulong(v)?),
            ("mtu", Some(v)) => self.mtu = Some(parse_ulong(v)?),
            (k, Some(_)) if k.starts_with("colo_") || k == "forwarddev" => {}
            ("trusted", None) => self.trusted = Some(true),
            ("untrusted", None) => self.trusted = Some(false),
            _ => return Err(format!("unrecognized argument `{token}'")),
        }
        Ok(None)
    }

    /// A `vif` list entry of a config file: comma-separated tokens (empty
    /// ones skipped, leading spaces dropped); xl prints each problem and
    /// goes on, so they come back as messages.
    pub fn parse_config(spec: &str, index: u32) -> (NicSpec, Vec<String>) {
        let mut nic = NicSpec {
            devid: Some(index),
            ..Default::default()
        };
        let mut msgs = Vec::new();
        for tok in spec.split(',').filter(|t| !t.is_empty()) {
            match nic.apply(tok.trim_start_matches(' ')) {
                Ok(Some(m)) | Err(m) => msgs.push(m),
                Ok(None) => {}
            }
        }
        (nic, msgs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(spec: &str) -> DiskSpec {
        parse_disk("vm.cfg", &[spec]).unwrap_or_else(|e| panic!("{spec}: {e}"))
    }

    fn bad(spec: &str) -> String {
        parse_disk("vm.cfg", &[spec]).unwrap_err().to_string()
    }

    /// Found by the xlcfg fuzz target: a MAC field too long for a u64 is
    /// refused (as strtoul's ULONG_MAX is), not an overflow.
    #[test]
    fn mac_with_a_huge_field() {
        assert_eq!(parse_mac_xl("00163333333333333333333333::3e:00:00:00"), None);
        assert_eq!(parse_mac_xl("00:16:3e:00:00:12"), Some([0, 0x16, 0x3e, 0, 0, 0x12]));
    }

    fn disk(target: &str, vdev: &str, rw: bool) -> DiskSpec {
        DiskSpec {
            target: Some(target.into()),
            format: Some(DiskFormat::Raw),
            vdev: vdev.into(),
            readwrite: rw,
            ..Default::default()
        }
    }

    #[test]
    fn the_documented_equivalent_forms() {
        let want = disk("/dev/vg/guest-volume", "hda", true);
        for s in [
            "/dev/vg/guest-volume,,hda",
            "/dev/vg/guest-volume,raw,hda,rw",
            "format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume",
            "raw:/dev/vg/guest-volume,hda,w",
        ] {
            assert_eq!(ok(s), want, "{s}");
        }
        let cd = DiskSpec {
            is_cdrom: true,
            removable: true,
            ..disk("/root/image.iso", "hdc", false)
        };
        for s in [
            "/root/image.iso,,hdc,cdrom",
            "/root/image.iso,,hdc,,cdrom",
            "/root/image.iso,raw,hdc,devtype=cdrom",
            "format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso",
            "raw:/root/image.iso,hdc:cdrom,ro",
        ] {
            assert_eq!(ok(s), cd, "{s}");
        }
        // xend's empty cdrom.
        let e = ok(",hdc:cdrom,r");
        assert_eq!(
            (e.target.as_deref(), e.format, e.vdev.as_str(), e.is_cdrom),
            (Some(""), Some(DiskFormat::Empty), "hdc", true)
        );
    }

    #[test]
    fn the_syntaxes_xl_users_write() {
        assert_eq!(
            ok("phy:/dev/loop0,xvda,w"),
            disk("/dev/loop0", "xvda", true)
        );
        assert_eq!(
            ok("file:/img/a.img,xvdb,r"),
            disk("/img/a.img", "xvdb", false)
        );
        assert_eq!(
            ok("/img/vm1.img,raw,xvda,rw"),
            disk("/img/vm1.img", "xvda", true)
        );
        assert_eq!(
            ok("vdev=xvdb,access=ro,target=/img/ro.img"),
            disk("/img/ro.img", "xvdb", false)
        );
        let s = ok("tap:aio:/img/x.img,xvdc,w");
        assert_eq!(s, disk("/img/x.img", "xvdc", true));
        let s = ok("/dev/vda,raw,xvda,w,backendtype=phy,script=block,discard,untrusted");
        assert_eq!(s.backendtype.as_deref(), Some("phy"));
        assert_eq!(s.script.as_deref(), Some("block"));
        assert_eq!((s.discard, s.trusted), (Some(true), Some(false)));
        let s = ok("nbd:host:1234,xvdd,r");
        assert_eq!(s.script.as_deref(), Some("block-nbd"));
        assert_eq!(s.target.as_deref(), Some("host:1234"));
        assert_eq!(ok("/a,qcow2,xvda").format, Some(DiskFormat::Qcow2));
        assert!(ok("/a,,xvda,,devtype=cdrom").is_cdrom);
        // Leading blanks go; an access of "" is rw.
        let d = ok("  /a ,  , xvde,");
        assert!(d.readwrite);
        // Blanks inside a positional parameter stay (flex's pattern has them).
        assert_eq!(
            (d.target.as_deref(), d.vdev.as_str()),
            (Some("/a "), "xvde")
        );
        // block-attach: one disk from several arguments.
        let d = parse_disk("command line", &["/img/e.img", "raw", "xvdc", "r"]).unwrap();
        assert_eq!(d, disk("/img/e.img", "xvdc", false));
    }

    #[test]
    fn malformed_specs_get_xls_messages() {
        let pre = "vm.cfg: config parsing error in disk specification: ";
        // `target=` swallows the rest of the spec, so it must come last.
        assert_eq!(
            bad("target=/img/ro.img,vdev=xvdb"),
            format!("{pre}no vdev specified in `target=/img/ro.img,vdev=xvdb'")
        );
        assert_eq!(bad("/a"), format!("{pre}no vdev specified in `/a'"));
        assert_eq!(
            bad("vdev=xvda"),
            format!("{pre}no target specified (and device not removable) in `vdev=xvda'")
        );
        assert_eq!(
            bad("/a,raw,xvda,w,extra"),
            format!("{pre}too many positional parameters: near `extra' in `/a,raw,xvda,w,extra'")
        );
        assert_eq!(
            bad("/a,ext4,xvda"),
            format!("{pre}unknown value for format: near `ext4' in `/a,ext4,xvda'")
        );
        assert_eq!(
            bad("/a,raw,xvda,rx"),
            format!("{pre}unknown value for access: near `rx' in `/a,raw,xvda,rx'")
        );
        assert_eq!(
            bad("foo:/a,xvda"),
            format!("{pre}unknown deprecated disk prefix: near `foo:' in `foo:/a,xvda'")
        );
        assert_eq!(
            bad("/a,,xvda,colour=red"),
            format!("{pre}unknown parameter: near `colour=r' in `/a,,xvda,colour=red'")
        );
        assert_eq!(
            bad("/a,,xvda,devtype=floppy"),
            format!(
                "{pre}unknown value for type: near `devtype=floppy' in `/a,,xvda,devtype=floppy'"
            )
        );
        assert_eq!(
            bad("/a,,xvda,=w"),
            format!("{pre}bad disk syntax: near `=w' in `/a,,xvda,=w'")
        );
        assert_eq!(
            bad("vdev=xvda,vdev=xvdb,/a"),
            format!("{pre}vdev respecified: near `xvdb' in `vdev=xvda,vdev=xvdb,/a'")
        );
        assert_eq!(
            bad("/a,,xvda,backendtype=nfs"),
            format!("{pre}unknown value for backendtype: near `nfs' in `/a,,xvda,backendtype=nfs'")
        );
        assert_eq!(
            bad("/a,,hdc:floppy"),
            format!("{pre}unknown deprecated type: near `floppy' in `/a,,hdc:floppy'")
        );
        // Several errors in one spec are all reported.
        let e = parse_disk("vm.cfg", &["a=b,c=d"]).unwrap_err();
        assert_eq!(e.messages.len(), 2);
    }

    #[test]
    fn vdev_numbers_follow_xen_vbd_interface() {
        let n = |s| vdev_number(s);
        assert_eq!(n("xvda"), Some(51712));
        assert_eq!(n("xvdb"), Some(51728));
        assert_eq!(n("xvdc"), Some(51744));
        assert_eq!(n("xvda1"), Some(51713));
        assert_eq!(n("xvdp15"), Some((202 << 8) | (15 << 4) | 15));
        assert_eq!(n("xvdq"), Some((1 << 28) | (16 << 8)));
        assert_eq!(n("xvdaa"), Some((1 << 28) | (26 << 8)));
        assert_eq!(n("xvda16"), Some((1 << 28) | 16));
        assert_eq!(n("d0p0"), Some(51712));
        assert_eq!(n("d3p2"), Some(51712 + 48 + 2));
        assert_eq!(n("51712"), Some(51712));
        assert_eq!(n("0xca00"), Some(51712));
        assert_eq!(n("hda"), Some(3 << 8));
        assert_eq!(n("hdb1"), Some((3 << 8) | 64 | 1));
        assert_eq!(n("hdc"), Some(22 << 8));
        assert_eq!(n("sda"), Some(8 << 8));
        assert_eq!(n("sdb2"), Some((8 << 8) | 16 | 2));
        for bad in [
            "xvd", "xvda0", "xvda256", "hde", "sdq", "vda", "xvdA", "-1", "d1p",
        ] {
            assert_eq!(n(bad), None, "{bad}");
        }
    }

    /// Whatever the spec, the parsers answer (as the fuzz target wants).
    #[test]
    fn arbitrary_specs_never_panic() {
        let alphabet: Vec<char> = "abcdefghipqrstvwxyz0123456789,=:/ \t\n-_.é€"
            .chars()
            .collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let words = [
            "target=",
            "vdev=",
            "format=",
            "access=",
            "raw:",
            "phy:",
            "xvda",
            "cdrom",
            "devtype=",
            "backendtype=",
            "colo-port=",
            "iscsi:",
            "aio:",
            ",",
            ",,",
            "hd",
            "d1p",
            "script=",
        ];
        for _ in 0..20_000 {
            let mut spec = String::new();
            for _ in 0..(next() % 8) {
                if next() % 2 == 0 {
                    spec.push_str(words[(next() % words.len() as u64) as usize]);
                } else {
                    for _ in 0..(next() % 6) {
                        spec.push(alphabet[(next() % alphabet.len() as u64) as usize]);
                    }
                }
            }
            if let Ok(d) = parse_disk("f", &[&spec]) {
                assert!(d.format.is_some(), "{spec:?}");
            }
            let _ = vdev_number(&spec);
            let _ = NicSpec::parse_config(&spec, 0);
            let _ = parse_mac_xl(&spec);
            let _ = parse_mac(&spec);
        }
    }

    #[test]
    fn vif_specs() {
        let (n, m) = NicSpec::parse_config("mac=00:16:3e:00:00:02,bridge=xenbr0", 0);
        assert!(m.is_empty());
        assert_eq!(n.mac, Some([0, 0x16, 0x3e, 0, 0, 2]));
        assert_eq!((n.bridge.as_deref(), n.devid), (Some("xenbr0"), Some(0)));
        let (n, m) = NicSpec::parse_config(
            "type=vif, ip=192.0.2.2,,script=vif-bridge,vifname=web,model=e1000,mtu=9000,devid=3",
            1,
        );
        assert!(m.is_empty(), "{m:?}");
        assert_eq!(n.ip.as_deref(), Some("192.0.2.2"));
        assert_eq!((n.mtu, n.devid), (Some(9000), Some(3)));
        assert_eq!(n.vifname.as_deref(), Some("web"));
        let (n, m) = NicSpec::parse_config("mac=00:16:3e:zz,colour=red,type=e1000", 0);
        assert_eq!(
            m,
            [
                "Invalid parameter `mac'.",
                "unrecognized argument `colour=red'",
                "Invalid parameter `type'."
            ]
        );
        assert_eq!(n.mac, None);
        assert_eq!(
            format_mac(&[0, 0x16, 0x3e, 0xa, 0xbc, 0xff]),
            "00:16:3e:0a:bc:ff"
        );
        assert_eq!(
            parse_mac("00:16:3e:0a:bc:ff"),
            Some([0, 0x16, 0x3e, 0xa, 0xbc, 0xff])
        );
        assert_eq!(parse_mac("00:16:3e"), None);
    }
}
