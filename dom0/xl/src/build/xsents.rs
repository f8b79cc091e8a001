//! The xenstore entries of a new domain, in the order and with the
//! permissions libxl gives them (`libxl__domain_make`, `libxl__build_post`,
//! `libxl__device_console_add`), as a list of operations applied in one
//! transaction. Permissions are xenstored's strings: the first names the
//! owner (with what everyone else may do), the others grant access.

use xen_abi::arch_arm::{CONSOLE_PFN_OFFSET, GUEST_MAGIC_BASE, XENSTORE_PFN_OFFSET};

use super::PAGE_SHIFT;
use crate::domain::DomainConfig;

/// One xenstore operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XsOp {
    /// `XS_RM path` (a missing node is fine).
    Rm(String),
    /// `XS_MKDIR path` then `XS_SET_PERMS path perms`.
    Mkdir(String, Vec<String>),
    /// `XS_WRITE path value` (a new node inherits its parent's perms).
    Write(String, String),
    /// `XS_WRITE` then `XS_SET_PERMS`.
    WritePerms(String, String, Vec<String>),
}

/// `roperm`: owned by dom0, readable by the domain.
pub fn roperm(domid: u32) -> Vec<String> {
    vec!["n0".into(), format!("r{domid}")]
}

/// `rwperm`: owned by the domain (which may then write it).
pub fn rwperm(domid: u32) -> Vec<String> {
    vec![format!("n{domid}")]
}

/// `noperm`: dom0 only.
pub fn noperm() -> Vec<String> {
    vec!["n0".into()]
}

/// Xen's `LIBXL_XENCONSOLE_LIMIT`.
pub const CONSOLE_LIMIT: u64 = 1_048_576;

/// Guest frame of the console ring.
pub const CONSOLE_GFN: u64 = (GUEST_MAGIC_BASE >> PAGE_SHIFT) + CONSOLE_PFN_OFFSET;
/// Guest frame of the xenstore ring.
pub const STORE_GFN: u64 = (GUEST_MAGIC_BASE >> PAGE_SHIFT) + XENSTORE_PFN_OFFSET;

/// What the entries record about the built domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDomain<'a> {
    /// Its id.
    pub domid: u32,
    /// The resolved configuration.
    pub config: &'a DomainConfig,
    /// Its UUID, formatted.
    pub uuid: String,
    /// Unbound ports in the domain for dom0: console and xenstore.
    pub console_port: u32,
    /// See `console_port`.
    pub store_port: u32,
    /// `start_time` as libxl writes it: seconds, a dot, centiseconds.
    pub start_time: String,
}

/// `/local/domain/<domid>`.
pub fn dom_path(domid: u32) -> String {
    format!("/local/domain/{domid}")
}

/// `/vm/<uuid>`.
pub fn vm_path(uuid: &str) -> String {
    format!("/vm/{uuid}")
}

/// `/libxl/<domid>`.
pub fn libxl_path(domid: u32) -> String {
    format!("/libxl/{domid}")
}

/// Every operation, in order.
pub fn entries(d: &NewDomain) -> Vec<XsOp> {
    let mut v = domain_make(d);
    v.extend(build_post(d));
    v.extend(console(d));
    v
}

/// `libxl__domain_make`: the directories and their permissions.
fn domain_make(d: &NewDomain) -> Vec<XsOp> {
    let (id, dom, vm, lx) = (
        d.domid,
        dom_path(d.domid),
        vm_path(&d.uuid),
        libxl_path(d.domid),
    );
    let sub = |s: &str| format!("{dom}/{s}");
    let mut v = vec![
        XsOp::Rm(dom.clone()),
        XsOp::Mkdir(dom.clone(), roperm(id)),
        XsOp::Rm(vm.clone()),
        XsOp::Mkdir(vm.clone(), roperm(id)),
        XsOp::Rm(lx.clone()),
        XsOp::Mkdir(lx.clone(), noperm()),
        XsOp::Mkdir(format!("{lx}/device"), noperm()),
        XsOp::Write(sub("vm"), vm.clone()),
        XsOp::Write(sub("name"), d.config.name.clone()),
        XsOp::Mkdir(sub("cpu"), roperm(id)),
        XsOp::Mkdir(sub("memory"), roperm(id)),
        XsOp::Mkdir(sub("device"), roperm(id)),
        XsOp::Mkdir(sub("device/suspend/event-channel"), rwperm(id)),
        XsOp::Mkdir(sub("control"), roperm(id)),
    ];
    for rw in [
        "control/shutdown",
        "control/feature-poweroff",
        "control/feature-reboot",
        "control/feature-suspend",
        "control/sysrq",
        "data",
        "drivers",
        "feature",
        "attr",
        "error",
    ] {
        v.push(XsOp::Mkdir(sub(rw), rwperm(id)));
    }
    v.extend([
        XsOp::Write(format!("{vm}/uuid"), d.uuid.clone()),
        XsOp::Write(format!("{vm}/name"), d.config.name.clone()),
        XsOp::Write(
            sub("control/platform-feature-multiprocessor-suspend"),
            "1".into(),
        ),
        XsOp::Write(sub("control/platform-feature-xs_reset_watches"), "1".into()),
        XsOp::Write(format!("{lx}/type"), d.config.domain_type.as_str().into()),
    ]);
    v
}

/// `libxl__build_post`: memory, ids, the xenstore ring, vCPUs, start time.
fn build_post(d: &NewDomain) -> Vec<XsOp> {
    let dom = dom_path(d.domid);
    let w = |k: &str, val: String| XsOp::Write(format!("{dom}/{k}"), val);
    let mut v = vec![
        w("memory/static-max", d.config.max_memkb.to_string()),
        w("memory/target", d.config.target_memkb.to_string()),
        w("memory/videoram", "0".into()),
        w("domid", d.domid.to_string()),
        w("store/port", d.store_port.to_string()),
        w("store/ring-ref", STORE_GFN.to_string()),
    ];
    for i in 0..d.config.max_vcpus {
        let state = if i < d.config.vcpus {
            "online"
        } else {
            "offline"
        };
        v.push(w(&format!("cpu/{i}/availability"), state.into()));
    }
    v.push(XsOp::Write(
        format!("{}/start_time", vm_path(&d.uuid)),
        d.start_time.clone(),
    ));
    v
}

/// `libxl__device_console_add` for console 0: the frontend directory is
/// dom0's (the domain may not change where its console goes), `backend-id`
/// the domain's.
fn console(d: &NewDomain) -> Vec<XsOp> {
    let id = d.domid;
    let c = format!("{}/console", dom_path(id));
    let ro = |k: &str, val: String| XsOp::WritePerms(format!("{c}/{k}"), val, roperm(id));
    vec![
        XsOp::Rm(c.clone()),
        XsOp::Mkdir(c.clone(), roperm(id)),
        XsOp::WritePerms(
            format!("{c}/backend-id"),
            "0".into(),
            vec![format!("n{id}"), "r0".into()],
        ),
        ro("limit", CONSOLE_LIMIT.to_string()),
        ro("type", "xenconsoled".into()),
        ro("output", "pty".into()),
        ro("tty", String::new()),
        ro("port", d.console_port.to_string()),
        ro("ring-ref", CONSOLE_GFN.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn cfg() -> DomainConfig {
        let c = Config::parse(
            "t",
            b"name=\"vm\"\nmemory=128\nmaxmem=256\nvcpus=2\nmaxvcpus=3\n",
        )
        .unwrap();
        DomainConfig::from_config(&c).unwrap().config
    }

    fn value<'a>(ops: &'a [XsOp], path: &str) -> Option<&'a str> {
        ops.iter().rev().find_map(|o| match o {
            XsOp::Write(p, v) | XsOp::WritePerms(p, v, _) if p == path => Some(v.as_str()),
            _ => None,
        })
    }

    #[test]
    fn what_libxl_writes() {
        let c = cfg();
        let d = NewDomain {
            domid: 3,
            config: &c,
            uuid: "00112233-4455-6677-8899-aabbccddeeff".into(),
            console_port: 1,
            store_port: 2,
            start_time: "1700000000.25".into(),
        };
        let ops = entries(&d);
        let v = |p: &str| value(&ops, p);
        assert_eq!(v("/local/domain/3/name"), Some("vm"));
        assert_eq!(v("/local/domain/3/domid"), Some("3"));
        assert_eq!(
            v("/local/domain/3/vm"),
            Some("/vm/00112233-4455-6677-8899-aabbccddeeff")
        );
        assert_eq!(v("/local/domain/3/memory/static-max"), Some("262144"));
        assert_eq!(v("/local/domain/3/memory/target"), Some("131072"));
        assert_eq!(v("/local/domain/3/cpu/0/availability"), Some("online"));
        assert_eq!(v("/local/domain/3/cpu/1/availability"), Some("online"));
        assert_eq!(v("/local/domain/3/cpu/2/availability"), Some("offline"));
        assert_eq!(v("/local/domain/3/cpu/3/availability"), None);
        assert_eq!(v("/local/domain/3/console/ring-ref"), Some("233472"));
        assert_eq!(v("/local/domain/3/console/port"), Some("1"));
        assert_eq!(v("/local/domain/3/console/limit"), Some("1048576"));
        assert_eq!(v("/local/domain/3/console/type"), Some("xenconsoled"));
        assert_eq!(v("/local/domain/3/console/output"), Some("pty"));
        assert_eq!(v("/local/domain/3/store/ring-ref"), Some("233473"));
        assert_eq!(v("/local/domain/3/store/port"), Some("2"));
        assert_eq!(
            v("/local/domain/3/control/platform-feature-multiprocessor-suspend"),
            Some("1")
        );
        assert_eq!(
            v("/vm/00112233-4455-6677-8899-aabbccddeeff/name"),
            Some("vm")
        );
        assert_eq!(
            v("/vm/00112233-4455-6677-8899-aabbccddeeff/start_time"),
            Some("1700000000.25")
        );
        assert_eq!(v("/libxl/3/type"), Some("pvh"));
        // The domain's own directory: dom0's, readable by it; what it writes: its own.
        assert_eq!(
            ops[1],
            XsOp::Mkdir("/local/domain/3".into(), vec!["n0".into(), "r3".into()])
        );
        for rw in ["control/shutdown", "data", "device/suspend/event-channel"] {
            assert!(
                ops.contains(&XsOp::Mkdir(
                    format!("/local/domain/3/{rw}"),
                    vec!["n3".into()]
                )),
                "{rw}"
            );
        }
        assert!(ops.contains(&XsOp::Mkdir("/local/domain/3/device".into(), roperm(3))));
    }
}
