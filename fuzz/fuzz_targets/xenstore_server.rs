//! Xenstore's request engine under random request sequences from several
//! domains and connections (dom0 tools, guests, a guest acting for another
//! through XS_SET_TARGET), transactions included.
//!
//! Checked after each request: exactly one reply, to the sender, echoing
//! req_id/tx_id, of the request's type or XS_ERROR, payloads within
//! XENSTORE_PAYLOAD_MAX; a domU never gets the value, children or ACL of a
//! node it cannot read (outside a transaction: the node exists and its
//! perms grant the caller READ; inside one: the same, or the caller itself
//! wrote that path in the transaction); the tree stays consistent (no
//! orphans, no dangling children, per-owner entry counts right).
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use xen_abi::io::xs_wire::*;
use xenstore::perms::Access;
use xenstore::{path, Caller, ConnId, DomId, Message, Perms, Quotas, Request, Server};

const DOMS: [DomId; 5] = [0, 5, 6, 7, 0x7ff0];

const PIECES: &[&str] = &[
    "", "/", "/local/domain/5", "/local/domain/6", "/local/domain/7", "/local/domain/0",
    "/local/domain/5/secret", "/local/domain/6/shared", "/local/domain/0/backend", "/vm", "/tool",
    "data", "secret", "shared", "a", "b/c", "control/shutdown", "@releaseDomain",
    "@introduceDomain", "..", "x y", "/local/domain/5/data/x", "/local/domain/6/data",
];
const DOMSTR: &[&str] = &["0", "5", "6", "7", "8", "32752", "65535", "x", ""];

#[derive(Arbitrary, Debug)]
enum Arg {
    Piece(u8),
    Dom(u8),
    Perm(u8, u8),
    Num(u32),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Req {
    sender: u8,
    conn: u8,
    ty: u8,
    tx: u8,
    args: Vec<Arg>,
    raw: Option<Vec<u8>>,
}

const TYPES: &[u32] = &[
    XS_READ, XS_WRITE, XS_MKDIR, XS_RM, XS_DIRECTORY, XS_DIRECTORY_PART, XS_GET_PERMS,
    XS_SET_PERMS, XS_WATCH, XS_UNWATCH, XS_TRANSACTION_START, XS_TRANSACTION_END, XS_INTRODUCE,
    XS_RELEASE, XS_RESET_WATCHES, XS_GET_DOMAIN_PATH, XS_CONTROL, XS_IS_DOMAIN_INTRODUCED,
    XS_SET_TARGET, XS_RESUME,
];

fn payload(args: &[Arg]) -> Vec<u8> {
    let mut p = Vec::new();
    for a in args.iter().take(6) {
        match a {
            Arg::Piece(i) => p.extend(PIECES[usize::from(*i) % PIECES.len()].bytes()),
            Arg::Dom(i) => p.extend(DOMSTR[usize::from(*i) % DOMSTR.len()].bytes()),
            Arg::Perm(k, d) => {
                p.push(b"nrwbx"[usize::from(*k) % 5]);
                p.extend(DOMSTR[usize::from(*d) % DOMSTR.len()].bytes());
            }
            Arg::Num(n) => p.extend(n.to_string().bytes()),
            Arg::Raw(r) => p.extend(r.iter().take(64)),
        }
        p.push(0);
    }
    p
}

struct Mirror {
    /// Introduced domains and their XS_SET_TARGET target.
    domains: BTreeMap<DomId, Option<DomId>>,
    /// Open transactions per connection, with the paths written in them.
    txns: BTreeMap<ConnId, BTreeMap<u32, BTreeSet<String>>>,
    conn_dom: BTreeMap<ConnId, DomId>,
}

fn setup() -> Server {
    let mut s = Server::new(Quotas { max_entries: 60, max_watches: 8, max_transactions: 3, ..Quotas::default() });
    let st = s.store_mut();
    for n in [5u16, 6, 7] {
        let d = path::domain_path(n);
        st.write(&Caller::DOM0, &d, b"").unwrap();
        st.set_perms(&Caller::DOM0, &d, Perms::new(0, Access::None).with(Access::Read, n)).unwrap();
        for p in ["data", "control/shutdown", "secret", "shared"] {
            let full = format!("{d}/{p}");
            st.write(&Caller::DOM0, &full, format!("{p} of {n}").as_bytes()).unwrap();
            st.set_perms(&Caller::DOM0, &full, Perms::new(n, Access::None)).unwrap();
        }
    }
    // dom5's secret is its own; dom6 shares one node read-only with dom7.
    st.set_perms(&Caller::DOM0, "/local/domain/6/shared", Perms::new(6, Access::None).with(Access::Read, 7)).unwrap();
    st.write(&Caller::DOM0, "/local/domain/0/backend/vbd/5/51712/params", b"/dev/secret").unwrap();
    st.write(&Caller::DOM0, "/vm/0000-5/image", b"kernel").unwrap();
    s
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut s = setup();
    let mut m = Mirror { domains: BTreeMap::from([(0, None)]), txns: BTreeMap::new(), conn_dom: BTreeMap::new() };
    let mut req_id = 0u32;
    while !u.is_empty() && req_id < 200 {
        req_id += 1;
        let Ok(r) = Req::arbitrary(&mut u) else { break };
        if ferrovisor_fuzz::debug() {
            eprintln!("{r:?}");
        }
        let domid = DOMS[usize::from(r.sender) % DOMS.len()];
        let conn = ConnId::from(domid) * 4 + ConnId::from(r.conn % 3);
        // A connection keeps the domid it was first registered with.
        let domid = *m.conn_dom.entry(conn).or_insert(domid);
        let ty = if r.ty >= 240 { u32::from(r.ty - 240) + 15 } else { TYPES[usize::from(r.ty) % TYPES.len()] };
        let open: Vec<u32> = m.txns.get(&conn).map(|t| t.keys().copied().collect()).unwrap_or_default();
        let tx = match r.tx % 8 {
            0..=3 => 0,
            4..=6 if !open.is_empty() => open[usize::from(r.tx) % open.len()],
            _ => u32::from(r.tx) % 5,
        };
        let p = r.raw.clone().unwrap_or_else(|| payload(&r.args));
        let msg = Message::new(ty, req_id, tx, p.clone());
        let out = s.handle(conn, domid, &msg);

        let (to, reply) = &out[0];
        assert_eq!(*to, conn);
        assert_eq!((reply.req_id, reply.tx_id), (req_id, tx));
        assert!(reply.ty == ty || reply.ty == XS_ERROR, "reply type {} to {ty}", reply.ty);
        for (_, o) in &out {
            assert!(o.payload.len() <= XENSTORE_PAYLOAD_MAX);
        }
        let ok = reply.ty != XS_ERROR;
        if domid != 0 && ok {
            check_leak(&s, &m, conn, domid, ty, tx, &p, &reply.payload);
        }
        mirror(&mut s, &mut m, conn, domid, ty, tx, &p, ok, &reply.payload);
        s.take_actions();
        check_tree(&s);
    }
});

/// Did a domU just receive data of a node it may not read?
#[allow(clippy::too_many_arguments)]
fn check_leak(s: &Server, m: &Mirror, conn: ConnId, domid: DomId, ty: u32, tx: u32, p: &[u8], reply: &[u8]) {
    let path = match Request::parse(ty, p) {
        Ok(Request::Read(p) | Request::Directory(p) | Request::GetPerms(p)) => p,
        Ok(Request::DirectoryPart { path, .. }) => path,
        _ => return,
    };
    let canon = path::canonicalize(domid, path);
    let caller = Caller { domid, privileged: false, target: m.domains.get(&domid).copied().flatten() };
    let readable = s.store().node(&canon).is_some_and(|n| n.perms.can_read(&caller));
    if tx == 0 {
        assert!(readable, "dom{domid} got {reply:?} of {canon} (type {ty}) without READ");
        if ty == XS_READ {
            assert_eq!(reply, &s.store().node(&canon).unwrap().value[..], "XS_READ of {canon}");
        }
    } else {
        let mine = m.txns.get(&conn).and_then(|t| t.get(&tx)).is_some_and(|w| {
            w.iter().any(|x| x == &canon || x.starts_with(&format!("{canon}/")) || canon == "/")
        });
        assert!(readable || mine, "dom{domid} got {reply:?} of {canon} (type {ty}, tx {tx}) without READ");
    }
}

#[allow(clippy::too_many_arguments)]
fn mirror(s: &mut Server, m: &mut Mirror, conn: ConnId, domid: DomId, ty: u32, tx: u32, p: &[u8], ok: bool, reply: &[u8]) {
    let req = Request::parse(ty, p);
    // Paths written inside a transaction (whatever the outcome).
    if tx != 0 {
        let written = match &req {
            Ok(Request::Write { path, .. }) | Ok(Request::SetPerms { path, .. }) => Some(*path),
            Ok(Request::Mkdir(path)) | Ok(Request::Rm(path)) => Some(*path),
            _ => None,
        };
        if let (Some(w), Some(t)) = (written, m.txns.get_mut(&conn).and_then(|t| t.get_mut(&tx))) {
            t.insert(path::canonicalize(domid, w));
        }
    }
    if !ok {
        return;
    }
    match req {
        Ok(Request::TransactionStart) => {
            let id: u32 = String::from_utf8_lossy(reply).trim_end_matches('\0').parse().expect("tx id");
            assert!(m.txns.entry(conn).or_default().insert(id, BTreeSet::new()).is_none(), "tx id {id} reused");
        }
        Ok(Request::TransactionEnd(_)) => {
            m.txns.get_mut(&conn).and_then(|t| t.remove(&tx)).expect("ended an unknown transaction");
        }
        Ok(Request::ResetWatches) => {
            m.txns.remove(&conn);
        }
        Ok(Request::Introduce { domid: d, .. }) => {
            if m.domains.contains_key(&d) {
                // Re-introduction drops that domain's transactions.
                for (c, cd) in &m.conn_dom {
                    if *cd == d {
                        m.txns.remove(c);
                    }
                }
            } else {
                m.domains.insert(d, None);
            }
        }
        Ok(Request::Release(d)) => {
            m.domains.remove(&d);
            for t in m.domains.values_mut() {
                if *t == Some(d) {
                    *t = None;
                }
            }
            let gone: Vec<ConnId> = m.conn_dom.iter().filter(|(_, cd)| **cd == d).map(|(c, _)| *c).collect();
            for c in gone {
                m.txns.remove(&c);
                m.conn_dom.remove(&c);
            }
        }
        Ok(Request::SetTarget { domid: d, target }) => {
            *m.domains.get_mut(&d).expect("SET_TARGET of an unknown domain succeeded") = Some(target);
        }
        _ => {}
    }
    let _ = s;
}

fn check_tree(s: &Server) {
    let st = s.store();
    let mut owned: BTreeMap<DomId, i64> = BTreeMap::new();
    for (p, n) in st.iter() {
        *owned.entry(n.perms.owner()).or_default() += 1;
        if p != "/" {
            let parent = st.node(path::parent(p)).unwrap_or_else(|| panic!("orphan {p}"));
            let name = path::basename(p);
            assert_eq!(parent.children.iter().filter(|c| *c == name).count(), 1, "{p}");
        }
        for c in &n.children {
            assert!(st.node(&path::join(p, c)).is_some(), "dangling child {c} of {p}");
        }
    }
    for (d, n) in owned {
        assert_eq!(st.entries(d), n, "entries of dom{d}");
    }
}
