//! PV disks (`vbd`) and network interfaces (`vif`) as Xen 4.17's libxl
//! adds and removes them (`libxl_disk.c`, `libxl_nic.c`, `libxl_device.c`),
//! with Linux's own xen-blkback and xen-netback in dom0 as the backends.
//! What the hotplug scripts `block` and `vif-bridge` do is done here
//! natively: a regular file goes on a loop device, the vif joins its
//! bridge and comes up, and `hotplug-status` says `connected`.
//!
//! Adding a device: libxl's nodes are written in one transaction
//! (`libxl__device_generic_add`), the backend is awaited in InitWait (at
//! most [`INIT_TIMEOUT`]), then the script's work is done. Removing one:
//! the backend is told `online = 0`, `state = 5` (Closing) — with the
//! frontend directory removed first when forced (a domain being destroyed)
//! — and awaited in Closed (at most [`DESTROY_TIMEOUT`]), the loop device
//! is released, and the frontend, backend and `/libxl` directories go
//! (with the parents they leave empty, as `libxl__xs_path_cleanup`).

use std::time::Duration;

use super::create::in_transaction;
use super::manage::TOKEN;
use super::xencall::{GuestMem, Xencall};
use super::xenstore::{Tx, Xs, XsError, XBT_NULL};
use super::{strerror, Backend, FileInfo, FileKind, Host};
use crate::build::xsents::XsOp;
use crate::devspec::{format_mac, parse_mac, vdev_number, DiskSpec, NicSpec, DEFAULT_BRIDGE};
use crate::devspec::{DiskFormat, DEFAULT_MTU};
use crate::domain::DomainConfig;
use crate::format::{BlockInfo, NicInfo};

/// How long a new backend has to reach InitWait (`LIBXL_INIT_TIMEOUT`).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing backend has to reach Closed (`LIBXL_DESTROY_TIMEOUT`).
pub const DESTROY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long netback may take to make `vifD.N` once in InitWait.
pub const NETIF_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a loop device may stay busy once its backend closed.
pub const LOOP_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the hotplug scripts' `block` lock (then go on).
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// Where libxl's hotplug scripts live (the `script` nodes name them).
pub const SCRIPT_DIR: &str = "/etc/xen/scripts";

/// `XenbusStateInitialising`
pub const STATE_INITIALISING: u32 = 1;
/// `XenbusStateInitWait`
pub const STATE_INIT_WAIT: u32 = 2;
/// `XenbusStateClosing`
pub const STATE_CLOSING: u32 = 5;
/// `XenbusStateClosed`
pub const STATE_CLOSED: u32 = 6;

/// A PV device kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A block device (xen-blkback).
    Vbd,
    /// A network interface (xen-netback).
    Vif,
}

impl Kind {
    /// libxl's name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Vbd => "vbd",
            Kind::Vif => "vif",
        }
    }
}

/// How hard a removal pushes (libxl's `force.flag`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Force {
    /// Wait for the frontend to let go; fail if it does not in time
    /// (`libxl_device_*_safe_remove`).
    Off,
    /// As `Off`, then `On` if the frontend does not let go in time
    /// (`libxl_device_*_remove`).
    Auto,
    /// Remove the frontend first (`libxl_device_*_destroy`, domain
    /// destruction).
    On,
}

/// `/local/domain/0/backend/<kind>/<domid>/<devid>`.
pub fn backend_path(kind: Kind, domid: u32, devid: u32) -> String {
    format!("/local/domain/0/backend/{}/{domid}/{devid}", kind.as_str())
}

/// `/local/domain/<domid>/device/<kind>/<devid>`.
pub fn frontend_path(kind: Kind, domid: u32, devid: u32) -> String {
    format!("/local/domain/{domid}/device/{}/{devid}", kind.as_str())
}

/// `/libxl/<domid>/device/<kind>/<devid>`.
pub fn libxl_device_path(kind: Kind, domid: u32, devid: u32) -> String {
    format!("/libxl/{domid}/device/{}/{devid}", kind.as_str())
}

/// `libxl__abs_path(script, XEN_SCRIPT_DIR)`.
fn script_path(s: &str) -> String {
    if s.starts_with('/') {
        s.to_string()
    } else {
        format!("{SCRIPT_DIR}/{s}")
    }
}

/// Key/value pairs of a device directory.
type Kvs = Vec<(&'static str, String)>;

/// `libxl__device_generic_add`: the `/libxl` record, the frontend (owned
/// by the domain, readable by the backend's dom0; `ro_front` nodes the
/// other way round) and the backend (owned by dom0, readable by the
/// domain), then a copy of the backend's nodes in the `/libxl` record.
pub fn device_entries(
    kind: Kind,
    domid: u32,
    devid: u32,
    back: &Kvs,
    front: &Kvs,
    ro_front: &Kvs,
) -> Vec<XsOp> {
    let (fe, be, lx) = (
        frontend_path(kind, domid, devid),
        backend_path(kind, domid, devid),
        libxl_device_path(kind, domid, devid),
    );
    let fe_perms = vec![format!("n{domid}"), "r0".to_string()];
    let be_perms = vec!["n0".to_string(), format!("r{domid}")];
    let mut v = vec![
        XsOp::Rm(lx.clone()),
        XsOp::Write(format!("{lx}/frontend"), fe.clone()),
        XsOp::Write(format!("{lx}/backend"), be.clone()),
        XsOp::Rm(fe.clone()),
        XsOp::Mkdir(fe.clone(), fe_perms.clone()),
        XsOp::Write(format!("{fe}/backend"), be.clone()),
    ];
    for (k, val) in front {
        v.push(XsOp::WritePerms(
            format!("{fe}/{k}"),
            val.clone(),
            fe_perms.clone(),
        ));
    }
    for (k, val) in ro_front {
        v.push(XsOp::WritePerms(
            format!("{fe}/{k}"),
            val.clone(),
            be_perms.clone(),
        ));
    }
    v.push(XsOp::Rm(be.clone()));
    v.push(XsOp::Mkdir(be.clone(), be_perms));
    v.push(XsOp::Write(format!("{be}/frontend"), fe));
    for (k, val) in back {
        v.push(XsOp::Write(format!("{be}/{k}"), val.clone()));
    }
    for (k, val) in back {
        v.push(XsOp::Write(format!("{lx}/{k}"), val.clone()));
    }
    v
}

/// A disk checked against dom0 (libxl's `libxl__device_disk_setdefault`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedDisk {
    /// As parsed.
    pub spec: DiskSpec,
    /// Its device number (`libxl__device_disk_dev_number` of the vdev).
    pub devid: u32,
}

impl CheckedDisk {
    fn target(&self) -> &str {
        self.spec.target.as_deref().unwrap_or_default()
    }
}

/// `device_disk_add`'s nodes for the kernel's blkback (`type = phy`).
pub fn disk_entries(domid: u32, d: &CheckedDisk) -> Vec<XsOp> {
    let s = &d.spec;
    let discard = s.discard.unwrap_or(s.readwrite);
    let mut back: Kvs = vec![
        ("params", d.target().to_string()),
        (
            "script",
            script_path(s.script.as_deref().unwrap_or("block")),
        ),
        ("frontend-id", domid.to_string()),
        ("online", "1".into()),
        ("removable", u8::from(s.removable).to_string()),
        ("bootable", "1".into()),
        ("state", STATE_INITIALISING.to_string()),
        ("dev", s.vdev.clone()),
        ("type", "phy".into()),
        ("mode", s.mode().into()),
        ("device-type", "disk".into()),
    ];
    if s.direct_io_safe {
        back.push(("direct-io-safe", "1".into()));
    }
    back.push(("discard-enable", u8::from(discard).to_string()));
    back.push(("specification", "xen".into()));
    let front: Kvs = vec![
        ("backend-id", "0".into()),
        ("state", STATE_INITIALISING.to_string()),
        ("virtual-device", d.devid.to_string()),
        ("device-type", "disk".into()),
        ("trusted", u8::from(s.trusted.unwrap_or(true)).to_string()),
    ];
    device_entries(Kind::Vbd, domid, d.devid, &back, &front, &Vec::new())
}

/// A vif with libxl's defaults applied (`libxl__device_nic_setdefault`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedNic {
    /// The device id (`handle`).
    pub devid: u32,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// The bridge it joins.
    pub bridge: String,
    /// The `script` node (what Xen's hotplug would run; done natively).
    pub script: String,
    /// `ip=`
    pub ip: Option<String>,
    /// `gatewaydev=`
    pub gatewaydev: Option<String>,
    /// The MTU.
    pub mtu: u32,
    /// `trusted`
    pub trusted: bool,
}

/// `libxl__set_xenstore_nic` plus `libxl__device_add_async`'s own nodes.
pub fn nic_entries(domid: u32, n: &ResolvedNic) -> Vec<XsOp> {
    let mac = format_mac(&n.mac);
    let mut back: Kvs = vec![
        ("frontend-id", domid.to_string()),
        ("online", "1".into()),
        ("state", STATE_INITIALISING.to_string()),
        ("script", script_path(&n.script)),
        ("mac", mac.clone()),
    ];
    if let Some(ip) = &n.ip {
        back.push(("ip", ip.clone()));
    }
    if let Some(g) = &n.gatewaydev {
        back.push(("gatewaydev", g.clone()));
    }
    if n.mtu != DEFAULT_MTU {
        back.push(("mtu", n.mtu.to_string()));
    }
    back.extend([
        ("bridge", n.bridge.clone()),
        ("handle", n.devid.to_string()),
        ("type", "vif".into()),
        // netback waits for the hotplug work before it connects.
        ("hotplug-status", String::new()),
    ]);
    let front: Kvs = vec![
        ("backend-id", "0".into()),
        ("state", STATE_INITIALISING.to_string()),
        ("handle", n.devid.to_string()),
        ("mac", mac),
        ("trusted", u8::from(n.trusted).to_string()),
    ];
    let ro_front: Kvs = vec![("mtu", n.mtu.to_string())];
    device_entries(Kind::Vif, domid, n.devid, &back, &front, &ro_front)
}

/// `libxl__xs_path_cleanup`: removes `path`, then each parent left empty.
fn path_cleanup(xs: &mut dyn Xs, t: Tx, path: &str) -> Result<(), XsError> {
    xs.rm(t, path)?;
    let mut p = path.to_string();
    while let Some(i) = p.rfind('/') {
        p.truncate(i);
        if p.is_empty() {
            break;
        }
        match xs.read(t, &p) {
            Ok(v) if v.is_empty() => {}
            _ => break,
        }
        match xs.directory(t, &p) {
            Ok(d) if d.is_empty() => {}
            _ => break,
        }
        xs.rm(t, &p)?;
    }
    Ok(())
}

/// The hotplug scripts' `canonicalise_mode`: `r`, `w` or `!`.
fn canonical_mode(m: &str) -> char {
    if !m.contains('w') {
        'r'
    } else if !m.contains('!') {
        'w'
    } else {
        '!'
    }
}

/// The block script's `do_ebusy` text.
fn ebusy_text(prefix: &str, write: bool, guest: bool) -> String {
    let (dom, when) = if guest {
        ("a guest ", "now")
    } else {
        ("the privileged ", "by a guest")
    };
    let (m1, m2) = if write {
        ("", "")
    } else {
        ("read-write ", "read-only ")
    };
    format!("{prefix}{m1}in {dom}domain,\nand so cannot be mounted {m2}{when}.")
}

/// A hotplug script's failure: its `hotplug-status` and message.
struct ScriptError {
    status: &'static str,
    msg: String,
}

fn fatal(msg: impl Into<String>) -> ScriptError {
    ScriptError {
        status: "error",
        msg: msg.into(),
    }
}

fn busy(msg: impl Into<String>) -> ScriptError {
    ScriptError {
        status: "busy",
        msg: msg.into(),
    }
}

fn logd(at: &str, domid: u32, msg: &str) -> String {
    format!("libxl: error: {at}: Domain {domid}:{msg}")
}

impl<X: Xencall + GuestMem, H: Host> Backend<X, H> {
    fn xs_get(&mut self, path: &str) -> Option<String> {
        self.host.xs_read(path).ok()
    }

    fn xs_u32(&mut self, path: &str) -> Option<u32> {
        self.xs_get(path)?.trim().parse().ok()
    }

    fn xs_dir(&mut self, path: &str) -> Vec<String> {
        self.host.xs().directory(XBT_NULL, path).unwrap_or_default()
    }

    /// libxl's disk defaults and backend choice: only what the kernel's
    /// blkback serves (a raw image or a block device in dom0), checked
    /// before anything is made. `domid` is for messages.
    pub fn check_disk(&mut self, domid: Option<u32>, d: &DiskSpec) -> Result<CheckedDisk, String> {
        let vdev = &d.vdev;
        let dom = domid.map_or(String::new(), |d| format!("Domain {d}:"));
        let unsupported =
            |what: String| format!("libxl: error: {dom}Disk vdev={vdev}: {what} is not supported");
        if d.is_cdrom {
            return Err(unsupported(
                "devtype=cdrom (an emulated cdrom drive needs a device model)".into(),
            ));
        }
        if let Some(b) = d
            .backend
            .as_deref()
            .filter(|b| *b != "0" && *b != "Domain-0")
        {
            return Err(unsupported(format!(
                "backend={b} (driver domains: dom0 serves every disk)"
            )));
        }
        if let Some(s) = d.specification.as_deref().filter(|s| *s != "xen") {
            return Err(unsupported(format!("specification={s}")));
        }
        if let Some(b) = d.backendtype.as_deref().filter(|b| *b != "phy") {
            return Err(unsupported(format!(
                "backendtype={b} (disks are served by the kernel's blkback: backendtype=phy)"
            )));
        }
        if d.colo == Some(true) {
            return Err(unsupported("colo".into()));
        }
        let format = d.format.unwrap_or(DiskFormat::Raw);
        if format != DiskFormat::Raw {
            return Err(unsupported(format!(
                "format={} (only raw images and block devices: the kernel's blkback serves them)",
                format.as_str()
            )));
        }
        let Some(devid) = vdev_number(vdev) else {
            return Err(format!(
                "libxl: error: libxl_disk.c:214:libxl__device_from_disk: {dom}Invalid or unsupported virtual disk identifier {vdev}"
            ));
        };
        let target = d.target.as_deref().unwrap_or_default();
        let info = self.host.stat(target).map_err(|e| {
            let e = e.raw_os_error().map_or(e.to_string(), strerror);
            format!(
                "libxl: error: libxl_device.c:437:libxl__device_disk_set_backend: Disk vdev={vdev} failed to stat: {target}: {e}"
            )
        })?;
        if info.kind == FileKind::Other {
            return Err(format!(
                "libxl: error: libxl_device.c:457:libxl__device_disk_set_backend: no suitable backend for disk {vdev}\n\
                 libxl: error: Disk vdev={vdev}: {target} is neither a regular file nor a block device"
            ));
        }
        Ok(CheckedDisk {
            spec: d.clone(),
            devid,
        })
    }

    /// [`Backend::check_disk`] of every disk of `cfg`, and no vdev twice.
    pub fn check_disks(&mut self, cfg: &DomainConfig) -> Result<Vec<CheckedDisk>, String> {
        let mut out: Vec<CheckedDisk> = Vec::new();
        for (i, d) in cfg.disks.iter().enumerate() {
            let failed = |e: String| {
                format!(
                    "{e}\nlibxl: error: libxl_create.c:1316:initiate_domain_create: Unable to set disk defaults for disk {i}"
                )
            };
            let c = self.check_disk(None, d).map_err(failed)?;
            if out.iter().any(|o| o.devid == c.devid) {
                return Err(failed(format!(
                    "libxl: error: libxl_disk.c:343:device_disk_add: Disk vdev={}: device {} is given twice",
                    d.vdev, c.devid
                )));
            }
            out.push(c);
        }
        Ok(out)
    }

    /// `libxl__device_nic_setdefault` (and `update_devid` for a hot-plugged
    /// one: the next free id).
    pub fn resolve_nic(&mut self, domid: u32, n: &NicSpec) -> Result<ResolvedNic, String> {
        if n.nictype.as_deref() == Some("ioemu") {
            return Err(logd(
                "libxl_nic.c:108:libxl__device_nic_setdefault",
                domid,
                "trying to create PV or PVH guest with an emulated interface",
            ));
        }
        if let Some(b) = n
            .backend
            .as_deref()
            .filter(|b| *b != "0" && *b != "Domain-0")
        {
            return Err(format!(
                "libxl: error: Domain {domid}:vif backend={b} is not supported (driver domains: dom0 serves every vif)"
            ));
        }
        let mac = match n.mac {
            Some(m) => m,
            None => {
                let mut r = [0u8; 3];
                self.host.random(&mut r);
                [0x00, 0x16, 0x3e, r[0] & 0x7f, r[1], r[2]]
            }
        };
        let devid = match n.devid {
            Some(d) => d,
            None => self
                .xs_dir(&format!("/libxl/{domid}/device/vif"))
                .iter()
                .filter_map(|d| d.parse::<u32>().ok())
                .max()
                .map_or(0, |m| m + 1),
        };
        Ok(ResolvedNic {
            devid,
            mac,
            bridge: n.bridge.clone().unwrap_or_else(|| DEFAULT_BRIDGE.into()),
            script: n.script.clone().unwrap_or_else(|| "vif-bridge".into()),
            ip: n.ip.clone(),
            gatewaydev: n.gatewaydev.clone(),
            mtu: n.mtu.unwrap_or(DEFAULT_MTU),
            trusted: n.trusted.unwrap_or(true),
        })
    }

    /// The devices of `xl create`: the disks (already checked), then the
    /// vifs, each in its backend's InitWait with the hotplug work done.
    pub fn attach_devices(
        &mut self,
        domid: u32,
        cfg: &DomainConfig,
        disks: &[CheckedDisk],
    ) -> Result<(), String> {
        for d in disks {
            self.add_disk(domid, d).map_err(|e| {
                format!(
                    "{e}\n{}",
                    logd(
                        "libxl_create.c:1670:domcreate_launch_dm",
                        domid,
                        "unable to add disk devices"
                    )
                )
            })?;
        }
        for n in &cfg.nics {
            self.add_nic(domid, n).map_err(|e| {
                format!(
                    "{e}\n{}",
                    logd(
                        "libxl_create.c:1919:domcreate_attach_devices",
                        domid,
                        "unable to add vif devices"
                    )
                )
            })?;
        }
        Ok(())
    }

    /// Writes a device's entries in one transaction, refusing one that
    /// exists (its `/libxl` record).
    fn write_device(
        &mut self,
        domid: u32,
        kind: Kind,
        devid: u32,
        ops: &[XsOp],
    ) -> Result<(), String> {
        let lx = libxl_device_path(kind, domid, devid);
        let mut exists = false;
        let r = in_transaction(self.host.xs(), |xs, t| {
            exists = xs.read(t, &lx).is_ok();
            if exists {
                return Err(XsError::Error("EEXIST".into()));
            }
            ops.iter()
                .try_for_each(|op| super::create::apply(xs, t, op))
        });
        match r {
            Ok(()) => Ok(()),
            Err(_) if exists => Err(logd(
                "libxl_device.c:1980:libxl__device_add_async",
                domid,
                "device already exists in xenstore",
            )),
            Err(e) => Err(logd(
                "libxl_device.c:148:libxl__device_generic_add",
                domid,
                &format!("writing {}: {e}", backend_path(kind, domid, devid)),
            )),
        }
    }

    /// Waits until every backend's state satisfies `done` (a missing
    /// state reads as `None`), at most `timeout`; returns the last states.
    fn wait_states(
        &mut self,
        backends: &[String],
        done: impl Fn(Option<u32>) -> bool,
        timeout: Duration,
    ) -> Vec<Option<u32>> {
        let nodes: Vec<String> = backends.iter().map(|b| format!("{b}/state")).collect();
        for n in &nodes {
            let _ = self.host.xs().watch(n, TOKEN);
        }
        let start = self.host.clock();
        let states = loop {
            let s: Vec<Option<u32>> = nodes.iter().map(|n| self.xs_u32(n)).collect();
            if s.iter().all(|&x| done(x)) || self.host.clock().saturating_sub(start) >= timeout {
                break s;
            }
            self.pause_a_little();
        };
        for n in &nodes {
            let _ = self.host.xs().unwatch(n, TOKEN);
        }
        states
    }

    /// `libxl__wait_device_connection`: the backend in InitWait.
    fn wait_init(&mut self, domid: u32, kind: Kind, devid: u32) -> Result<(), String> {
        let be = backend_path(kind, domid, devid);
        let s = self.wait_states(
            std::slice::from_ref(&be),
            |s| s == Some(STATE_INIT_WAIT),
            INIT_TIMEOUT,
        )[0];
        if s == Some(STATE_INIT_WAIT) {
            return Ok(());
        }
        let driver = match kind {
            Kind::Vbd => "xen-blkback",
            Kind::Vif => "xen-netback",
        };
        let state = s.map_or("none".to_string(), |s| s.to_string());
        Err(format!(
            "libxl: error: Domain {domid}:backend {be} did not reach InitWait (2) in {} s (state: {state}): \
             is {driver} loaded in dom0?\n{}",
            INIT_TIMEOUT.as_secs(),
            logd(
                "libxl_device.c:1163:device_backend_callback",
                domid,
                &format!("unable to add device with path {be}")
            )
        ))
    }

    /// Records a hotplug failure where the scripts do, and libxl's line.
    fn script_failed(&mut self, be: &str, e: ScriptError) -> String {
        let xs = self.host.xs();
        let _ = in_transaction(xs, |xs, t| {
            xs.write(t, &format!("{be}/hotplug-error"), &e.msg)?;
            xs.write(t, &format!("{be}/hotplug-status"), e.status)
        });
        format!(
            "libxl: error: libxl_device.c:1319:device_hotplug_child_death_cb: script: {}",
            e.msg
        )
    }

    /// `libxl_device_disk_add` for a checked disk: entries, InitWait, the
    /// block script's work. A failure leaves nothing behind.
    pub fn add_disk(&mut self, domid: u32, d: &CheckedDisk) -> Result<(), String> {
        self.write_device(domid, Kind::Vbd, d.devid, &disk_entries(domid, d))?;
        let r = self.wait_init(domid, Kind::Vbd, d.devid).and_then(|()| {
            let be = backend_path(Kind::Vbd, domid, d.devid);
            self.block_add(domid, d)
                .map_err(|e| self.script_failed(&be, e))
        });
        if r.is_err() {
            let _ = self.remove_devices(domid, &[(Kind::Vbd, d.devid)], Force::On);
        }
        r
    }

    /// `libxl_device_nic_add`: defaults, entries, InitWait, vif-bridge's
    /// work. Returns the device id. A failure leaves nothing behind.
    pub fn add_nic(&mut self, domid: u32, n: &NicSpec) -> Result<u32, String> {
        let nic = self.resolve_nic(domid, n)?;
        self.write_device(domid, Kind::Vif, nic.devid, &nic_entries(domid, &nic))?;
        let r = self.wait_init(domid, Kind::Vif, nic.devid).and_then(|()| {
            let be = backend_path(Kind::Vif, domid, nic.devid);
            self.vif_add(domid, nic.devid)
                .map_err(|e| self.script_failed(&be, e))
        });
        if r.is_err() {
            let _ = self.remove_devices(domid, &[(Kind::Vif, nic.devid)], Force::On);
        }
        r.map(|()| nic.devid)
    }

    /// The block script's `check_sharing` against the other backends: a
    /// read-write disk may be nowhere else, a read-only one nowhere
    /// read-write (the same domain aside). Returns the other backend's
    /// `physical-device` on a conflict.
    fn sharing_conflict(
        &mut self,
        domid: u32,
        devid: u32,
        info: &FileInfo,
        ours_pd: Option<&str>,
        write: bool,
    ) -> Option<String> {
        let base = "/local/domain/0/backend/vbd";
        let my_vm = self.xs_get(&format!("/local/domain/{domid}/vm"));
        for dom in self.xs_dir(base) {
            for dev in self.xs_dir(&format!("{base}/{dom}")) {
                if dom == domid.to_string() && dev == devid.to_string() {
                    continue;
                }
                let p = format!("{base}/{dom}/{dev}");
                let pd = self
                    .xs_get(&format!("{p}/physical-device"))
                    .unwrap_or_default();
                let same_file = match self.xs_get(&format!("{p}/params")) {
                    Some(params) => match self.host.stat(&params) {
                        Ok(o) => match (info.kind, o.kind) {
                            (FileKind::Block, FileKind::Block) => o.rdev == info.rdev,
                            (FileKind::Regular, FileKind::Regular) => {
                                (o.dev, o.ino) == (info.dev, info.ino)
                            }
                            _ => false,
                        },
                        Err(_) => false,
                    },
                    None => false,
                };
                let same_dev = !pd.is_empty() && ours_pd == Some(pd.as_str());
                if !same_file && !same_dev {
                    continue;
                }
                // same_vm: the same domain, or one already gone from xenstore.
                let their_vm = self.xs_get(&format!("/local/domain/{dom}/vm"));
                if their_vm.is_none() || their_vm == my_vm {
                    continue;
                }
                let theirs_w = self
                    .xs_get(&format!("{p}/mode"))
                    .is_some_and(|m| canonical_mode(&m) == 'w');
                if write || theirs_w {
                    // Named by its device numbers, or its path before it has them.
                    return Some(if pd.is_empty() { p } else { pd });
                }
            }
        }
        None
    }

    /// The block script's `add`: the sharing checks, a loop device for a
    /// regular file, then `physical-device`, `physical-device-path` and
    /// `hotplug-status = connected`.
    fn block_add(&mut self, domid: u32, d: &CheckedDisk) -> Result<(), ScriptError> {
        // As the script: the checks and the binding under `claim_lock block`.
        let _lock = self.host.lock("block", LOCK_TIMEOUT);
        let be = backend_path(Kind::Vbd, domid, d.devid);
        let lx = libxl_device_path(Kind::Vbd, domid, d.devid);
        let target = d.target().to_string();
        let write = canonical_mode(d.spec.mode()) == 'w';
        let info = self
            .host
            .stat(&target)
            .map_err(|_| fatal(format!("{target} does not exist.")))?;
        let mm = |i: &FileInfo| format!("{:x}:{:x}", i.rdev.0, i.rdev.1);
        match info.kind {
            FileKind::Block => {
                if self.mounted_in_dom0(&info, write) {
                    return Err(busy(ebusy_text(
                        &format!("Device {target} is mounted "),
                        write,
                        false,
                    )));
                }
                if self
                    .sharing_conflict(domid, d.devid, &info, Some(&mm(&info)), write)
                    .is_some()
                {
                    return Err(busy(ebusy_text(
                        &format!("Device {target} is mounted "),
                        write,
                        true,
                    )));
                }
                self.write_dev(&be, &lx, None, &target, &info)
            }
            FileKind::Regular => {
                let state = self.xs_get(&format!("{be}/state"));
                if state.as_deref() != Some("2") {
                    return Err(fatal(format!(
                        "Path closed or removed during hotplug add: {be} state: {}",
                        state.as_deref().unwrap_or("unknown")
                    )));
                }
                if write && info.mode & 0o222 == 0 {
                    return Err(busy(format!(
                        "File {target} is read-only, and so I will not\nmount it read-write in a guest domain."
                    )));
                }
                if let Some(through) = self.sharing_conflict(domid, d.devid, &info, None, write) {
                    return Err(busy(ebusy_text(
                        &format!(
                            "File {target} is loopback-mounted through {through},\nwhich is mounted "
                        ),
                        write,
                        true,
                    )));
                }
                let dev = self.host.loop_attach(&target, !write).map_err(|e| {
                    let e = e.raw_os_error().map_or(e.to_string(), strerror);
                    let ro = if write { "" } else { "-r " };
                    fatal(format!("losetup {ro}-f {target} failed: {e}"))
                })?;
                let linfo = match self.host.stat(&dev) {
                    Ok(i) if i.kind == FileKind::Block => i,
                    _ => {
                        let _ = self.host.loop_detach(&dev);
                        return Err(fatal("Backend device does not exist"));
                    }
                };
                let r = self.write_dev(&be, &lx, Some(&dev), &dev, &linfo);
                if r.is_err() {
                    let _ = self.host.loop_detach(&dev);
                }
                r
            }
            FileKind::Other => Err(fatal(format!("{target} is not a block device."))),
        }
    }

    /// Whether dom0 itself has the block device mounted (read-write, for a
    /// read-only attach): the block script's `local` case.
    fn mounted_in_dom0(&mut self, info: &FileInfo, write: bool) -> bool {
        let Ok(mounts) = self.host.read_file("/proc/mounts") else {
            return false;
        };
        let text = String::from_utf8_lossy(&mounts).into_owned();
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let (Some(src), Some(opts)) = (f.first(), f.get(3)) else {
                continue;
            };
            if !src.starts_with('/') {
                continue;
            }
            if !write && (opts.starts_with("ro,") || *opts == "ro") {
                continue;
            }
            if let Ok(m) = self.host.stat(src) {
                if m.kind == FileKind::Block && m.rdev == info.rdev {
                    return true;
                }
            }
        }
        false
    }

    /// The block script's `write_dev` (and `node` for a loop device).
    fn write_dev(
        &mut self,
        be: &str,
        lx: &str,
        node: Option<&str>,
        path: &str,
        info: &FileInfo,
    ) -> Result<(), ScriptError> {
        let mm = format!("{:x}:{:x}", info.rdev.0, info.rdev.1);
        in_transaction(self.host.xs(), |xs, t| {
            if let Some(n) = node {
                xs.write(t, &format!("{be}/node"), n)?;
                xs.write(t, &format!("{lx}/node"), n)?;
            }
            xs.write(t, &format!("{be}/physical-device"), &mm)?;
            xs.write(t, &format!("{be}/physical-device-path"), path)?;
            xs.write(t, &format!("{be}/hotplug-status"), "connected")
        })
        .map_err(|e| {
            fatal(format!(
                "Writing {be}/physical-device to xenstore failed: {e}"
            ))
        })
    }

    /// vif-bridge's `online`: the interface netback made joins the bridge
    /// with the bridge's MTU (unless the vif has its own) and comes up.
    fn vif_add(&mut self, domid: u32, devid: u32) -> Result<(), ScriptError> {
        let be = backend_path(Kind::Vif, domid, devid);
        let dev = format!("vif{domid}.{devid}");
        let start = self.host.clock();
        while !self.host.netif_exists(&dev) {
            if self.host.clock().saturating_sub(start) >= NETIF_TIMEOUT {
                return Err(fatal(format!(
                    "Could not find the interface {dev} (xen-netback makes it)"
                )));
            }
            self.host.sleep(Duration::from_millis(50));
        }
        let bridge = self.xs_get(&format!("{be}/bridge")).unwrap_or_default();
        if bridge.is_empty() {
            return Err(fatal("Could not find bridge, and none was specified"));
        }
        if !self.host.netif_exists(&bridge) {
            return Err(fatal(format!("Could not find bridge device {bridge}")));
        }
        let mtu = match self.xs_u32(&format!("{be}/mtu")) {
            Some(m) => Some(m),
            None => self.host.netif_mtu(&bridge).ok(),
        };
        if let Some(m) = mtu.filter(|&m| m > 0) {
            // `ip link set dev DEV mtu M || :`, and the frontend told.
            if self.host.netif_up(&dev, Some(m)).is_ok() {
                let fe = frontend_path(Kind::Vif, domid, devid);
                let _ = self
                    .host
                    .xs()
                    .write(XBT_NULL, &format!("{fe}/mtu"), &m.to_string());
            }
        }
        match self.host.bridge_add(&bridge, &dev) {
            Err(e) if e.raw_os_error() != Some(libc::EBUSY) => {
                let e = e.raw_os_error().map_or(e.to_string(), strerror);
                return Err(fatal(format!("brctl addif {bridge} {dev} failed: {e}")));
            }
            _ => {}
        }
        self.host.netif_up(&dev, None).map_err(|e| {
            let e = e.raw_os_error().map_or(e.to_string(), strerror);
            fatal(format!("ip link set dev {dev} up failed: {e}"))
        })?;
        self.host
            .xs()
            .write(XBT_NULL, &format!("{be}/hotplug-status"), "connected")
            .map_err(|e| {
                fatal(format!(
                    "Writing {be}/hotplug-status to xenstore failed: {e}"
                ))
            })
    }

    /// The ids of a domain's devices of `kind`: its `/libxl` records and
    /// its backends (in case one lost its record).
    pub fn device_ids(&mut self, domid: u32, kind: Kind) -> Vec<u32> {
        let mut ids: Vec<u32> = Vec::new();
        let dirs = [
            format!("/libxl/{domid}/device/{}", kind.as_str()),
            format!("/local/domain/0/backend/{}/{domid}", kind.as_str()),
        ];
        for d in dirs {
            for e in self.xs_dir(&d) {
                if let Ok(n) = e.parse::<u32>() {
                    if !ids.contains(&n) {
                        ids.push(n);
                    }
                }
            }
        }
        ids
    }

    /// libxl's `libxl__initiate_device_generic_remove` (first half) for
    /// one device: true if its backend is there to wait for. One still
    /// Initialising was never taken by a driver (which probes only those,
    /// and leaves them at once): nothing will close it, and removing its
    /// directory is all it takes.
    fn initiate_remove(&mut self, domid: u32, kind: Kind, devid: u32, force: bool) -> bool {
        let be = backend_path(kind, domid, devid);
        let fe = frontend_path(kind, domid, devid);
        let mut present = false;
        let _ = in_transaction(self.host.xs(), |xs, t| {
            if force {
                path_cleanup(xs, t, &fe)?;
            }
            let state = match xs.read(t, &format!("{be}/state")) {
                Ok(s) => s,
                Err(_) => {
                    present = false;
                    return Ok(());
                }
            };
            let state = state.trim().parse::<u32>().ok();
            present = state != Some(STATE_INITIALISING);
            xs.write(t, &format!("{be}/online"), "0")?;
            if state != Some(STATE_CLOSED) {
                xs.write(t, &format!("{be}/state"), &STATE_CLOSING.to_string())?;
            }
            Ok(())
        });
        present
    }

    /// The hotplug scripts' `remove`: the loop device released (retried
    /// while the backend still holds it), the vif out of its bridge.
    fn hotplug_remove(&mut self, domid: u32, kind: Kind, devid: u32) -> Option<String> {
        let be = backend_path(kind, domid, devid);
        match kind {
            Kind::Vbd => {
                let lx = libxl_device_path(kind, domid, devid);
                let node = self
                    .xs_get(&format!("{be}/node"))
                    .or_else(|| self.xs_get(&format!("{lx}/node")))
                    .filter(|n| !n.is_empty())?;
                let params = self
                    .xs_get(&format!("{be}/params"))
                    .or_else(|| self.xs_get(&format!("{lx}/params")));
                if !self.loop_serves(&node, params.as_deref()) {
                    return None;
                }
                let start = self.host.clock();
                loop {
                    match self.host.loop_detach(&node) {
                        Ok(()) => return None,
                        Err(e)
                            if e.raw_os_error() == Some(libc::EBUSY)
                                && self.host.clock().saturating_sub(start) < LOOP_BUSY_TIMEOUT =>
                        {
                            self.host.sleep(Duration::from_millis(100));
                        }
                        Err(e) => {
                            let e = e.raw_os_error().map_or(e.to_string(), strerror);
                            return Some(logd(
                                "libxl_device.c:1319:device_hotplug_child_death_cb",
                                domid,
                                &format!("script: losetup -d {node} failed: {e}"),
                            ));
                        }
                    }
                }
            }
            Kind::Vif => {
                let dev = format!("vif{domid}.{devid}");
                if let Some(bridge) = self.xs_get(&format!("{be}/bridge")) {
                    if self.host.netif_exists(&dev) {
                        let _ = self.host.bridge_remove(&bridge, &dev);
                    }
                }
                None
            }
        }
    }

    /// Whether loop device `node` may still be the one bound to `params`:
    /// not if sysfs shows it bound to another file (it was released and
    /// reused meanwhile). When that cannot be told, it may.
    fn loop_serves(&mut self, node: &str, params: Option<&str>) -> bool {
        let name = node.rsplit('/').next().unwrap_or_default();
        let Ok(text) = self
            .host
            .read_file(&format!("/sys/block/{name}/loop/backing_file"))
        else {
            return true;
        };
        let backing = String::from_utf8_lossy(&text).trim_end().to_string();
        let (Some(params), false) = (params, backing.ends_with(" (deleted)")) else {
            return true;
        };
        match (self.host.stat(&backing), self.host.stat(params)) {
            (Ok(a), Ok(b)) => (a.dev, a.ino) == (b.dev, b.ino),
            _ => true,
        }
    }

    /// `libxl__device_destroy`: the frontend, `/libxl` and backend
    /// directories, with the parents they leave empty.
    fn device_cleanup(&mut self, domid: u32, kind: Kind, devid: u32) -> Result<(), String> {
        let paths = [
            frontend_path(kind, domid, devid),
            libxl_device_path(kind, domid, devid),
            backend_path(kind, domid, devid),
        ];
        in_transaction(self.host.xs(), |xs, t| {
            paths.iter().try_for_each(|p| path_cleanup(xs, t, p))
        })
        .map_err(|e| {
            logd(
                "libxl_device.c:783:libxl__device_destroy",
                domid,
                &format!("removing {}: {e}", paths[2]),
            )
        })
    }

    /// Removes devices as libxl's device removal does: all are asked to
    /// close, then awaited together. Returns libxl's error lines.
    pub fn remove_devices(
        &mut self,
        domid: u32,
        devs: &[(Kind, u32)],
        force: Force,
    ) -> Result<(), String> {
        let mut force = force;
        let mut errors = Vec::new();
        let mut ask: Vec<(Kind, u32)> = devs.to_vec();
        let mut keep: Vec<(Kind, u32)> = Vec::new();
        loop {
            let waiting: Vec<(Kind, u32)> = ask
                .iter()
                .copied()
                .filter(|&(k, d)| self.initiate_remove(domid, k, d, force == Force::On))
                .collect();
            let paths: Vec<String> = waiting
                .iter()
                .map(|&(k, d)| backend_path(k, domid, d))
                .collect();
            let closed = |s: Option<u32>| s.is_none_or(|s| s == STATE_CLOSED);
            let states = self.wait_states(&paths, closed, DESTROY_TIMEOUT);
            let late: Vec<(Kind, u32)> = waiting
                .iter()
                .zip(&states)
                .filter(|(_, &s)| !closed(s))
                .map(|(&d, _)| d)
                .collect();
            if late.is_empty() {
                break;
            }
            match force {
                Force::Auto => {
                    force = Force::On;
                    ask = late;
                }
                Force::Off | Force::On => {
                    for &(k, d) in &late {
                        errors.push(logd(
                            "libxl_device.c:1163:device_backend_callback",
                            domid,
                            &format!(
                                "unable to remove device with path {}",
                                backend_path(k, domid, d)
                            ),
                        ));
                    }
                    if force == Force::Off {
                        keep = late;
                    }
                    break;
                }
            }
        }
        for &(k, d) in devs.iter().filter(|d| !keep.contains(d)) {
            errors.extend(self.hotplug_remove(domid, k, d));
            if let Err(e) = self.device_cleanup(domid, k, d) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }

    /// `libxl__devices_destroy` with force: every vbd and vif of the
    /// domain. Returns the lines libxl would log.
    pub fn destroy_devices(&mut self, domid: u32) -> Vec<String> {
        let mut devs: Vec<(Kind, u32)> = Vec::new();
        for kind in [Kind::Vbd, Kind::Vif] {
            devs.extend(self.device_ids(domid, kind).into_iter().map(|d| (kind, d)));
        }
        if devs.is_empty() {
            return Vec::new();
        }
        match self.remove_devices(domid, &devs, Force::On) {
            Ok(()) => Vec::new(),
            Err(e) => e.lines().map(String::from).collect(),
        }
    }

    /// Fills in the MACs `cfg`'s vifs got in domain `domid` where the
    /// config left them to chance (libxl records them in the domain's
    /// saved config, so a rebooted guest keeps them).
    pub fn keep_macs(&mut self, domid: u32, cfg: &mut DomainConfig) {
        for nic in cfg.nics.iter_mut().filter(|n| n.mac.is_none()) {
            let Some(devid) = nic.devid else { continue };
            let mac = libxl_device_path(Kind::Vif, domid, devid) + "/mac";
            nic.mac = self.xs_get(&mac).and_then(|m| parse_mac(&m));
        }
    }

    /// `libxl_device_disk_list` + `libxl_device_disk_getinfo`.
    pub fn disk_infos(&mut self, domid: u32) -> Vec<BlockInfo> {
        let mut out = Vec::new();
        for e in self.xs_dir(&format!("/libxl/{domid}/device/vbd")) {
            let lx = format!("/libxl/{domid}/device/vbd/{e}");
            let Some(backend) = self.xs_get(&format!("{lx}/backend")) else {
                continue;
            };
            let Some(devid) = self
                .xs_get(&format!("{lx}/dev"))
                .and_then(|v| vdev_number(&v))
            else {
                continue;
            };
            let fe = frontend_path(Kind::Vbd, domid, devid);
            let num = |b: &mut Self, k: &str| -> i32 {
                b.xs_get(&format!("{fe}/{k}"))
                    .map_or(-1, |v| super::strtoul(&v) as i32)
            };
            out.push(BlockInfo {
                devid,
                backend_id: backend_domid(&backend),
                frontend_id: domid,
                state: num(self, "state"),
                evtch: num(self, "event-channel"),
                rref: num(self, "ring-ref"),
                backend,
            });
        }
        out
    }

    /// `libxl_device_nic_list` + `libxl_device_nic_getinfo`.
    pub fn nic_infos(&mut self, domid: u32) -> Vec<NicInfo> {
        let mut out = Vec::new();
        for e in self.xs_dir(&format!("/libxl/{domid}/device/vif")) {
            let lx = format!("/libxl/{domid}/device/vif/{e}");
            let Some(backend) = self.xs_get(&format!("{lx}/backend")) else {
                continue;
            };
            let devid = self
                .xs_get(&format!("{lx}/handle"))
                .map_or(0, |h| super::strtoul(&h) as u32);
            let mac = self
                .xs_get(&format!("{lx}/mac"))
                .and_then(|m| parse_mac(&m))
                .unwrap_or_default();
            let fe = frontend_path(Kind::Vif, domid, devid);
            let num = |b: &mut Self, k: &str| -> i32 {
                b.xs_get(&format!("{fe}/{k}"))
                    .map_or(-1, |v| super::strtoul(&v) as i32)
            };
            out.push(NicInfo {
                devid,
                backend_id: backend_domid(&backend),
                mac,
                state: num(self, "state"),
                evtch: num(self, "event-channel"),
                rref_tx: num(self, "tx-ring-ref"),
                rref_rx: num(self, "rx-ring-ref"),
                backend,
            });
        }
        out
    }
}

/// The backend path's domain (`libxl__backendpath_parse_domid`).
fn backend_domid(be: &str) -> u32 {
    be.strip_prefix("/local/domain/")
        .and_then(|r| r.split('/').next())
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_messages() {
        assert_eq!(canonical_mode("w"), 'w');
        assert_eq!(canonical_mode("r"), 'r');
        assert_eq!(canonical_mode("w!"), '!');
        assert_eq!(
            ebusy_text("Device /dev/vda is mounted ", true, true),
            "Device /dev/vda is mounted in a guest domain,\nand so cannot be mounted now."
        );
        assert_eq!(
            ebusy_text("Device /dev/vda is mounted ", false, false),
            "Device /dev/vda is mounted read-write in the privileged domain,\n\
             and so cannot be mounted read-only by a guest."
        );
        assert_eq!(backend_domid("/local/domain/0/backend/vbd/3/51712"), 0);
        assert_eq!(script_path("block"), "/etc/xen/scripts/block");
        assert_eq!(script_path("/usr/lib/x"), "/usr/lib/x");
    }
}
