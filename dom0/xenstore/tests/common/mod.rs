//! Shared test harness: a server, request helpers and a libxl-like domain.
#![allow(dead_code)]

use xenstore::perms::Access;
use xenstore::{Caller, ConnId, DomId, Errno, Message, Perms, Request, Server, Store};

/// Connection id used for a domain's ring in these tests.
pub fn conn(domid: DomId) -> ConnId {
    ConnId::from(domid) + 1000
}

pub struct H {
    pub s: Server,
    req: u32,
}

impl Default for H {
    fn default() -> Self {
        H::new(Server::default())
    }
}

impl H {
    pub fn new(s: Server) -> H {
        H { s, req: 0 }
    }

    /// Sends `r` from `domid`'s connection; returns the reply and the rest.
    pub fn send_tx(
        &mut self,
        domid: DomId,
        tx: u32,
        r: &Request,
    ) -> (Message, Vec<(ConnId, Message)>) {
        self.send_msg(domid, &r.to_message(0, tx))
    }

    pub fn send_msg(&mut self, domid: DomId, msg: &Message) -> (Message, Vec<(ConnId, Message)>) {
        self.req += 1;
        let msg = Message {
            req_id: self.req,
            ..msg.clone()
        };
        let mut out = self.s.handle(conn(domid), domid, &msg);
        let (to, reply) = out.remove(0);
        assert_eq!(to, conn(domid));
        assert_eq!((reply.req_id, reply.tx_id), (msg.req_id, msg.tx_id));
        assert!(reply.ty == msg.ty || reply.ty == xen_abi::io::xs_wire::XS_ERROR);
        (reply, out)
    }

    pub fn send(&mut self, domid: DomId, r: &Request) -> (Message, Vec<(ConnId, Message)>) {
        self.send_tx(domid, 0, r)
    }

    /// Result of a request: payload or errno.
    pub fn res_tx(&mut self, domid: DomId, tx: u32, r: &Request) -> Result<Vec<u8>, Errno> {
        let (m, _) = self.send_tx(domid, tx, r);
        m.errno().map_or(Ok(m.payload), Err)
    }

    pub fn res(&mut self, domid: DomId, r: &Request) -> Result<Vec<u8>, Errno> {
        self.res_tx(domid, 0, r)
    }

    pub fn ok(&mut self, domid: DomId, r: &Request) -> Vec<u8> {
        self.res(domid, r)
            .unwrap_or_else(|e| panic!("{r:?} from {domid}: {e}"))
    }

    pub fn err(&mut self, domid: DomId, r: &Request) -> Errno {
        self.res(domid, r)
            .expect_err(&format!("{r:?} from {domid} should fail"))
    }

    pub fn read(&mut self, domid: DomId, path: &str) -> Result<Vec<u8>, Errno> {
        self.res(domid, &Request::Read(path))
    }

    pub fn write(&mut self, domid: DomId, path: &str, value: &str) -> Result<(), Errno> {
        self.res(
            domid,
            &Request::Write {
                path,
                value: value.as_bytes(),
            },
        )
        .map(|p| assert_eq!(p, b"OK\0"))
    }

    pub fn set_perms(&mut self, domid: DomId, path: &str, perms: &str) -> Result<(), Errno> {
        let perms = Perms::parse(perms.split(' ').map(str::as_bytes)).unwrap();
        self.res(domid, &Request::SetPerms { path, perms })
            .map(drop)
    }

    pub fn dir(&mut self, domid: DomId, path: &str) -> Result<Vec<String>, Errno> {
        self.res(domid, &Request::Directory(path))
            .map(|p| names(&p))
    }

    pub fn tx_start(&mut self, domid: DomId) -> u32 {
        let p = self.ok(domid, &Request::TransactionStart);
        std::str::from_utf8(&p[..p.len() - 1])
            .unwrap()
            .parse()
            .unwrap()
    }

    pub fn tx_end(&mut self, domid: DomId, tx: u32, commit: bool) -> Result<Vec<u8>, Errno> {
        self.res_tx(domid, tx, &Request::TransactionEnd(commit))
    }

    /// Watch events in `out` for `to`, as (path, token).
    pub fn events(out: &[(ConnId, Message)], to: DomId) -> Vec<(String, String)> {
        out.iter()
            .filter(|(c, m)| *c == conn(to) && m.ty == xen_abi::io::xs_wire::XS_WATCH_EVENT)
            .map(|(_, m)| {
                let s = m.strings();
                (
                    String::from_utf8(s[0].to_vec()).unwrap(),
                    String::from_utf8(s[1].to_vec()).unwrap(),
                )
            })
            .collect()
    }

    /// Populates domain `n` as libxl does (§4.1/§4.2): a vbd and a vif
    /// served by dom0.
    pub fn libxl_domain(&mut self, n: DomId) {
        let d = format!("/local/domain/{n}");
        let st = self.s.store_mut();
        let w = |st: &mut Store, p: &str, v: &str| {
            st.write(&Caller::DOM0, p, v.as_bytes()).unwrap();
        };
        let chmod = |st: &mut Store, p: &str, perms: &Perms| {
            st.set_perms(&Caller::DOM0, p, perms.clone()).unwrap();
        };
        let ro = Perms::new(0, Access::None).with(Access::Read, n);
        let own = Perms::new(n, Access::None);
        w(st, &d, "");
        chmod(st, &d, &ro);
        for (p, v) in [
            ("name", format!("guest{n}")),
            ("domid", n.to_string()),
            ("vm", format!("/vm/0000-{n}")),
            ("memory/static-max", "524288".into()),
            ("memory/target", "524288".into()),
            ("memory/videoram", "-1".into()),
            ("cpu/0/availability", "online".into()),
            ("store/port", "1".into()),
            ("store/ring-ref", "233473".into()),
            ("console/port", "2".into()),
            ("console/ring-ref", "233472".into()),
            ("console/type", "xenconsoled".into()),
            ("console/output", "pty".into()),
            ("console/limit", "1048576".into()),
            ("console/tty", "/dev/pts/3".into()),
            (
                "control/platform-feature-multiprocessor-suspend",
                "1".into(),
            ),
            ("control/platform-feature-xs_reset_watches", "1".into()),
        ] {
            w(st, &format!("{d}/{p}"), &v);
        }
        for p in [
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
            "device",
        ] {
            let p = format!("{d}/{p}");
            w(st, &p, "");
            chmod(st, &p, &own);
        }
        let fe_perms = Perms::new(n, Access::None).with(Access::Read, 0);
        let be_perms = Perms::new(0, Access::None).with(Access::Read, n);
        let devices = [
            (
                "vbd",
                "51712",
                [("virtual-device", "51712"), ("device-type", "disk")],
            ),
            ("vif", "0", [("mac", "00:16:3e:00:00:01"), ("handle", "0")]),
        ];
        for (ty, id, extra) in devices {
            let fe = format!("{d}/device/{ty}/{id}");
            let be = format!("/local/domain/0/backend/{ty}/{n}/{id}");
            w(st, &fe, "");
            chmod(st, &fe, &fe_perms);
            w(st, &be, "");
            chmod(st, &be, &be_perms);
            for (k, v) in [
                ("backend", be.as_str()),
                ("backend-id", "0"),
                ("state", "1"),
            ]
            .into_iter()
            .chain(extra)
            {
                w(st, &format!("{fe}/{k}"), v);
            }
            for (k, v) in [
                ("frontend", fe.as_str()),
                ("frontend-id", &n.to_string()),
                ("online", "1"),
                ("state", "1"),
            ] {
                w(st, &format!("{be}/{k}"), v);
            }
        }
        w(st, &format!("/vm/0000-{n}/name"), &format!("guest{n}"));
    }
}

/// NUL-separated names of a DIRECTORY reply.
pub fn names(payload: &[u8]) -> Vec<String> {
    xenstore::wire::strings(payload)
        .into_iter()
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect()
}
