//! The daemon's engine serving domUs, over a fake hypervisor: guests' pages are byte buffers
//! the tests also write as the guest would, event channels are counters, the domain list is
//! a map the tests edit.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::rc::Rc;

use xen_abi::domctl::{XEN_DOMINF_dying, XEN_DOMINF_running, XEN_DOMINF_shutdown};
use xen_abi::io::xs_wire::*;
use xenstore::perms::Access;
use xenstore::ring::{DomainRing, SharedPage};
use xenstore::{path, Caller, ConnId, Decoder, DomId, Errno, Message, Perms, Quotas, Request, Server};
use xenstored::engine::{Engine, Platform};

const STORE_GFN: u64 = 0x39001;
const VIRQ_PORT: u32 = 999;

/// A guest page shared by the engine and the test.
#[derive(Clone)]
struct FakePage(Rc<RefCell<Vec<u8>>>);

impl SharedPage for FakePage {
    fn load_u32(&self, offset: usize) -> u32 {
        self.0.borrow().load_u32(offset)
    }
    fn store_u32(&mut self, offset: usize, value: u32) {
        self.0.borrow_mut().store_u32(offset, value);
    }
    fn read(&self, offset: usize, buf: &mut [u8]) {
        self.0.borrow().read(offset, buf);
    }
    fn write(&mut self, offset: usize, data: &[u8]) {
        self.0.borrow_mut().write(offset, data);
    }
}

#[derive(Default)]
struct FakeXen {
    /// Existing domains: their store page and `XEN_DOMINF_*` flags.
    pages: HashMap<DomId, Rc<RefCell<Vec<u8>>>>,
    flags: BTreeMap<DomId, u32>,
    /// Local port -> (domain, remote port).
    bound: BTreeMap<u32, (DomId, u32)>,
    next_port: u32,
    notified: Vec<u32>,
}

impl FakeXen {
    fn add_domain(&mut self, d: DomId) -> Rc<RefCell<Vec<u8>>> {
        let page = Rc::new(RefCell::new(vec![0u8; 4096]));
        self.pages.insert(d, page.clone());
        self.flags.insert(d, XEN_DOMINF_running);
        page
    }
}

impl Platform for FakeXen {
    type Page = FakePage;

    fn map_ring(&mut self, domid: DomId, gfn: u64) -> io::Result<FakePage> {
        match self.pages.get(&domid) {
            Some(p) if gfn == STORE_GFN => Ok(FakePage(p.clone())),
            Some(_) => Err(io::Error::from_raw_os_error(libc::EINVAL)),
            None => Err(io::Error::from_raw_os_error(libc::ESRCH)),
        }
    }

    fn bind_interdomain(&mut self, domid: DomId, remote_port: u32) -> io::Result<u32> {
        if !self.flags.contains_key(&domid) {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        self.next_port += 1;
        self.bound.insert(self.next_port, (domid, remote_port));
        Ok(self.next_port)
    }

    fn unbind(&mut self, port: u32) -> io::Result<()> {
        self.bound.remove(&port).map(drop).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
    }

    fn notify(&mut self, port: u32) -> io::Result<()> {
        assert!(self.bound.contains_key(&port), "notify on unbound port {port}");
        self.notified.push(port);
        Ok(())
    }

    fn domain_flags(&mut self) -> io::Result<BTreeMap<DomId, u32>> {
        Ok(self.flags.clone())
    }
}

/// The engine, one dom0 tool connection, and guests.
struct T {
    e: Engine<FakeXen>,
    tool: ConnId,
    tool_dec: Decoder,
    guest_dec: HashMap<DomId, Decoder>,
    pending_tool: Vec<Message>,
    req: u32,
}

impl T {
    fn new() -> T {
        T::with_quotas(Quotas::default())
    }

    fn with_quotas(q: Quotas) -> T {
        xenstored::daemon::LOG_CAPTURED.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut e = Engine::new(Server::new(q), FakeXen { next_port: 10, ..FakeXen::default() });
        e.set_virq_port(VIRQ_PORT);
        let tool = e.add_stream(0);
        T { e, tool, tool_dec: Decoder::new(), guest_dec: HashMap::new(), pending_tool: Vec::new(), req: 0 }
    }

    /// A domain as libxl leaves it before `XS_INTRODUCE`: its home readable by it, `name`,
    /// `data` owned by it, `control/shutdown` writable by it.
    fn create_domain(&mut self, n: DomId) -> Rc<RefCell<Vec<u8>>> {
        let page = self.e.platform.add_domain(n);
        let st = self.e.server.store_mut();
        let home = path::domain_path(n);
        let ro = Perms::new(0, Access::None).with(Access::Read, n);
        st.write(&Caller::DOM0, &home, b"").unwrap();
        st.set_perms(&Caller::DOM0, &home, ro.clone()).unwrap();
        st.write(&Caller::DOM0, &format!("{home}/name"), format!("guest{n}").as_bytes()).unwrap();
        st.write(&Caller::DOM0, &format!("{home}/data"), b"").unwrap();
        st.set_perms(&Caller::DOM0, &format!("{home}/data"), Perms::new(n, Access::None)).unwrap();
        st.write(&Caller::DOM0, &format!("{home}/control/shutdown"), b"").unwrap();
        st.set_perms(
            &Caller::DOM0,
            &format!("{home}/control/shutdown"),
            Perms::new(n, Access::None).with(Access::Read, 0),
        )
        .unwrap();
        page
    }

    fn next_req(&mut self) -> u32 {
        self.req += 1;
        self.req
    }

    /// A request from the dom0 tool; returns its reply (events are kept for `tool_events`).
    fn tool(&mut self, r: &Request) -> Message {
        let id = self.next_req();
        let m = r.to_message(id, 0);
        self.e.stream_input(self.tool, &m.encode()).unwrap();
        self.e.flush_rings();
        let msgs = self.tool_msgs();
        let reply: Vec<&Message> = msgs.iter().filter(|m| m.req_id == id && m.ty != XS_WATCH_EVENT).collect();
        assert_eq!(reply.len(), 1, "{msgs:?}");
        reply[0].clone()
    }

    fn tool_ok(&mut self, r: &Request) -> Vec<u8> {
        let m = self.tool(r);
        assert_ne!(m.ty, XS_ERROR, "{r:?}: {:?}", String::from_utf8_lossy(&m.payload));
        m.payload
    }

    /// Everything queued for the tool so far.
    fn tool_msgs(&mut self) -> Vec<Message> {
        let mut bytes = Vec::new();
        let q = self.e.out_queue(self.tool).unwrap();
        q.drain_into(|b| {
            bytes.extend_from_slice(b);
            Ok::<_, ()>(b.len())
        })
        .unwrap();
        let mut out = Vec::new();
        self.tool_dec.push(&bytes, &mut out).unwrap();
        self.pending_tool.extend(out.iter().filter(|m| m.ty == XS_WATCH_EVENT).cloned());
        out
    }

    fn introduce(&mut self, n: DomId) -> Message {
        self.tool(&Request::Introduce { domid: n, gfn: STORE_GFN, evtchn: 7 })
    }

    fn page(&self, n: DomId) -> Rc<RefCell<Vec<u8>>> {
        self.e.platform.pages[&n].clone()
    }

    /// Guest `n` queues a request and notifies; returns its req_id.
    fn guest_send(&mut self, n: DomId, r: &Request) -> u32 {
        let id = self.next_req();
        let bytes = r.to_message(id, 0).encode();
        let mut rest = &bytes[..];
        for _ in 0..16 {
            let k = DomainRing::new(FakePage(self.page(n))).write_requests(rest).unwrap();
            rest = &rest[k..];
            self.kick(n);
            if rest.is_empty() {
                return id;
            }
        }
        panic!("request ring of dom{n} stays full")
    }

    /// Guest `n`'s event channel fires.
    fn kick(&mut self, n: DomId) {
        let port = self.e.ring_port(n).expect("introduced");
        self.e.event(port);
        self.e.run_busy();
        self.e.flush_rings();
    }

    /// What guest `n` finds in its response ring (it then notifies, as Linux does).
    fn guest_recv(&mut self, n: DomId) -> Vec<Message> {
        let mut ring = DomainRing::new(FakePage(self.page(n)));
        let mut buf = vec![0u8; 4096];
        let k = ring.read_responses(&mut buf).unwrap();
        let mut out = Vec::new();
        self.guest_dec.entry(n).or_default().push(&buf[..k], &mut out).unwrap();
        if k > 0 {
            self.kick(n);
        }
        out
    }

    /// Guest `n`'s request and its reply (events before it are dropped).
    fn guest(&mut self, n: DomId, r: &Request) -> Result<Vec<u8>, Errno> {
        let id = self.guest_send(n, r);
        let msgs = self.guest_recv(n);
        let reply = msgs
            .iter()
            .find(|m| m.req_id == id && m.ty != XS_WATCH_EVENT)
            .unwrap_or_else(|| panic!("no reply: {msgs:?}"));
        reply.errno().map_or(Ok(reply.payload.clone()), Err)
    }
}

// `tool_msgs` keeps the tool's events here for `tool_events`.
impl T {
    fn tool_events(&mut self) -> Vec<(String, String)> {
        self.tool_msgs();
        std::mem::take(&mut self.pending_tool).iter().map(event).collect()
    }
}

fn event(m: &Message) -> (String, String) {
    let s = m.strings();
    (String::from_utf8_lossy(s[0]).into_owned(), String::from_utf8_lossy(s[1]).into_owned())
}

fn watch<'a>(path: &'a str, token: &'a str) -> Request<'a> {
    Request::Watch { path, token: token.as_bytes() }
}

fn write<'a>(path: &'a str, value: &'a str) -> Request<'a> {
    Request::Write { path, value: value.as_bytes() }
}

#[test]
fn introduce_maps_and_release_unmaps() {
    let mut t = T::new();
    let page = t.create_domain(1);
    t.tool_ok(&watch("@introduceDomain", "I"));
    t.tool_ok(&watch("@releaseDomain", "R"));
    t.tool_events();
    assert_eq!(t.introduce(1).payload, b"OK\0");
    assert_eq!(t.tool_events(), [("@introduceDomain".into(), "I".into())]);
    // The page is mapped (the engine holds it), the guest's port bound.
    assert_eq!(Rc::strong_count(&page), 3);
    let port = t.e.ring_port(1).unwrap();
    assert_eq!(t.e.platform.bound[&port], (1, 7));
    assert_eq!(t.tool_ok(&Request::IsDomainIntroduced(1)), b"T\0");
    assert_eq!(t.tool_ok(&Request::GetDomainPath(1)), b"/local/domain/1\0");
    // The guest is served as domain 1.
    assert_eq!(t.guest(1, &Request::Read("name")).unwrap(), b"guest1");
    assert_eq!(t.guest(1, &Request::GetDomainPath(1)).unwrap(), b"/local/domain/1\0");
    assert_eq!(t.guest(1, &Request::Release(1)), Err(Errno::EACCES));
    assert_eq!(t.guest(1, &Request::Introduce { domid: 1, gfn: STORE_GFN, evtchn: 7 }), Err(Errno::EACCES));
    t.tool_ok(&Request::Resume(1));
    t.tool_ok(&Request::Release(1));
    assert_eq!(t.tool_events(), [("@releaseDomain".into(), "R".into())]);
    assert_eq!(Rc::strong_count(&page), 2);
    assert!(t.e.platform.bound.is_empty());
    assert_eq!(t.e.ring_port(1), None);
    assert_eq!(t.tool_ok(&Request::IsDomainIntroduced(1)), b"F\0");
    assert_eq!(t.tool(&Request::Release(1)).errno(), Some(Errno::ENOENT));
    // Introducible again; the released domain's perms were forgotten (a new domain with
    // its id inherits nothing until the toolstack grants it again).
    assert_eq!(t.introduce(1).payload, b"OK\0");
    assert_eq!(t.guest(1, &Request::Read("name")), Err(Errno::EACCES));
    t.tool_ok(&Request::SetPerms { path: "/local/domain/1", perms: Perms::new(0, Access::None).with(Access::Read, 1) });
    t.tool_ok(&Request::SetPerms {
        path: "/local/domain/1/name",
        perms: Perms::new(0, Access::None).with(Access::Read, 1),
    });
    assert_eq!(t.guest(1, &Request::Read("name")).unwrap(), b"guest1");
}

#[test]
fn introduce_errors() {
    let mut t = T::new();
    t.tool_ok(&watch("@introduceDomain", "I"));
    t.tool_events();
    // No such domain: the mapping fails, that is the answer, nothing fires.
    let r = t.introduce(9);
    assert_eq!(r.ty, XS_ERROR);
    assert!(t.tool_events().is_empty());
    assert_eq!(t.tool_ok(&Request::IsDomainIntroduced(9)), b"F\0");
    // Bad arguments.
    for p in [&b"1\0"[..], b"1\x002\0", b"1\x00x\x003\0", b"1\x002\x000\0", b"x\x002\x003\0"] {
        let m = Message::new(XS_INTRODUCE, 1, 0, p.to_vec());
        t.e.stream_input(t.tool, &m.encode()).unwrap();
        let msgs = t.tool_msgs();
        assert_eq!(msgs.last().unwrap().errno(), Some(Errno::EINVAL), "{p:?}");
    }
    assert_eq!(t.tool(&Request::Introduce { domid: 0x7ff0, gfn: 1, evtchn: 1 }).errno(), Some(Errno::EINVAL));
    // A port the domain cannot give: binding fails, the page is unmapped again.
    let page = t.create_domain(2);
    t.e.platform.flags.remove(&2);
    assert_eq!(t.introduce(2).ty, XS_ERROR);
    assert_eq!(Rc::strong_count(&page), 2);
    assert!(t.e.platform.bound.is_empty());
    assert!(t.tool_events().is_empty());
    // A wrong gfn.
    t.e.platform.flags.insert(2, XEN_DOMINF_running);
    assert_eq!(t.tool(&Request::Introduce { domid: 2, gfn: 5, evtchn: 7 }).errno(), Some(Errno::EINVAL));
    assert!(t.e.platform.bound.is_empty());
}

#[test]
fn reintroduction_rebinds_and_resets() {
    let mut t = T::new();
    t.create_domain(1);
    t.introduce(1);
    t.guest(1, &watch("data", "w")).unwrap();
    t.guest_recv(1);
    let old = t.e.ring_port(1).unwrap();
    // The same domain again (same page): OK, a new port, watches and transactions gone,
    // no second @introduceDomain.
    t.tool_ok(&watch("@introduceDomain", "I"));
    t.tool_events();
    let r = t.tool(&Request::Introduce { domid: 1, gfn: STORE_GFN, evtchn: 8 });
    assert_eq!(r.payload, b"OK\0");
    assert!(t.tool_events().is_empty());
    let new = t.e.ring_port(1).unwrap();
    assert_ne!(old, new);
    assert_eq!(t.e.platform.bound.get(&new), Some(&(1, 8)));
    assert!(!t.e.platform.bound.contains_key(&old));
    t.guest_dec.remove(&1);
    assert_eq!(t.guest(1, &Request::Unwatch { path: "data", token: b"w" }), Err(Errno::ENOENT));
    // A guest waiting for a reconnection is told it is connected.
    let page = t.page(1);
    DomainRing::new(FakePage(page.clone())).set_connection(XENSTORE_RECONNECT);
    t.tool_ok(&Request::Introduce { domid: 1, gfn: STORE_GFN, evtchn: 9 });
    assert_eq!(DomainRing::new(FakePage(page)).connection(), XENSTORE_CONNECTED);
    // Domain 0 introduced again keeps being served (its ring, if any, rebinds).
    t.tool(&Request::Introduce { domid: 0, gfn: 0, evtchn: 3 });
    assert_eq!(t.tool_ok(&Request::Read("/local/domain/1/name")), b"guest1");
}

#[test]
fn domus_cannot_touch_each_other() {
    let mut t = T::new();
    t.create_domain(1);
    t.create_domain(2);
    t.introduce(1);
    t.introduce(2);
    // B keeps a private node; A cannot read it, list it, or write B's nodes.
    t.guest(2, &write("data/secret", "42")).unwrap();
    assert_eq!(t.guest(2, &Request::Read("/local/domain/2/data/secret")).unwrap(), b"42");
    for r in [
        Request::Read("/local/domain/2/data/secret"),
        Request::Read("/local/domain/2/name"),
        Request::Directory("/local/domain/2"),
        Request::GetPerms("/local/domain/2/data"),
    ] {
        assert_eq!(t.guest(1, &r), Err(Errno::EACCES), "{r:?}");
    }
    for r in [
        write("/local/domain/2/data/secret", "x"),
        write("/local/domain/2/data/new", "x"),
        write("/local/domain/2/name", "x"),
        Request::Rm("/local/domain/2/data"),
        Request::Mkdir("/local/domain/2/x"),
    ] {
        assert_eq!(t.guest(1, &r), Err(Errno::EACCES), "{r:?}");
    }
    assert_eq!(t.tool_ok(&Request::Read("/local/domain/2/data/secret")), b"42");
    assert_eq!(t.tool_ok(&Request::Read("/local/domain/2/name")), b"guest2");
    // A's own data: writable, readable, owned by A; its home is read-only to it.
    assert_eq!(t.guest(1, &write("data/x", "mine")), Ok(b"OK\0".to_vec()));
    assert_eq!(t.guest(1, &Request::Read("/local/domain/1/data/x")).unwrap(), b"mine");
    assert_eq!(t.tool_ok(&Request::GetPerms("/local/domain/1/data/x")), b"n1\0");
    assert_eq!(t.guest(1, &write("name", "evil")), Err(Errno::EACCES));
    assert_eq!(t.guest(1, &write("/tool/x", "1")), Err(Errno::EACCES));
    // A's watch on B's home registers (watches are not checked) but only its own initial
    // event fires: B's private writes are invisible to A.
    let id = t.guest_send(1, &watch("/local/domain/2", "spy"));
    let msgs = t.guest_recv(1);
    assert!(msgs.iter().any(|m| m.req_id == id && m.ty == XS_WATCH));
    assert_eq!(msgs.iter().filter(|m| m.ty == XS_WATCH_EVENT).count(), 1);
    t.guest(1, &watch("data", "own")).unwrap();
    t.guest_recv(1);
    t.guest(2, &write("data/secret", "43")).unwrap();
    t.guest(2, &Request::Rm("data/secret")).unwrap();
    t.tool_ok(&write("/local/domain/2/control/shutdown", "poweroff"));
    assert!(t.guest_recv(1).is_empty(), "A saw B's changes");
    // ... while A's own change fires its own watch, with a relative path.
    let id = t.guest_send(1, &write("data/y", "1"));
    let msgs = t.guest_recv(1);
    assert!(msgs.iter().any(|m| m.req_id == id));
    let evs: Vec<_> = msgs.iter().filter(|m| m.ty == XS_WATCH_EVENT).map(event).collect();
    assert_eq!(evs, [("data/y".to_string(), "own".to_string())]);
    // A node B shares with A read-only is visible to A, not writable.
    t.tool_ok(&write("/local/domain/2/data/shared", "s"));
    t.tool_ok(&Request::SetPerms {
        path: "/local/domain/2/data/shared",
        perms: Perms::new(2, Access::None).with(Access::Read, 1),
    });
    assert_eq!(t.guest(1, &Request::Read("/local/domain/2/data/shared")).unwrap(), b"s");
    assert_eq!(t.guest(1, &write("/local/domain/2/data/shared", "t")), Err(Errno::EACCES));
}

#[test]
fn special_watches_for_domus() {
    let mut t = T::new();
    t.create_domain(1);
    t.create_domain(2);
    t.introduce(1);
    // A domU's watch on @releaseDomain gets its initial event, then nothing without read
    // access to the special path.
    t.guest(1, &watch("@releaseDomain", "r")).unwrap();
    t.guest(1, &watch("@introduceDomain", "i")).unwrap();
    t.guest_recv(1);
    t.introduce(2);
    t.tool_ok(&Request::Release(2));
    assert!(t.guest_recv(1).is_empty());
    t.tool_ok(&Request::SetPerms { path: "@releaseDomain", perms: Perms::new(0, Access::None).with(Access::Read, 1) });
    t.introduce(2);
    t.tool_ok(&Request::Release(2));
    let evs: Vec<_> = t.guest_recv(1).iter().map(event).collect();
    assert_eq!(evs, [("@releaseDomain".to_string(), "r".to_string())]);
}

#[test]
fn hostile_rings_are_put_aside() {
    let mut t = T::new();
    for n in 1..=3 {
        t.create_domain(n);
        t.introduce(n);
    }
    t.guest(1, &watch("data", "w")).unwrap();
    t.guest(1, &Request::TransactionStart).unwrap();
    // dom1: its request producer runs 5000 bytes ahead.
    let p1 = t.page(1);
    DomainRing::new(FakePage(p1.clone())).reset();
    p1.borrow_mut().store_u32(2052, 5000); // req_prod
    t.kick(1);
    assert!(t.e.is_ignored(1));
    assert_eq!(DomainRing::new(FakePage(p1.clone())).error(), XENSTORE_ERROR_RINGIDX);
    // Put aside: further events do nothing, its watch is gone.
    p1.borrow_mut().store_u32(2048 + 4, 0);
    t.kick(1);
    t.tool_ok(&write("/local/domain/1/data/z", "1"));
    assert!(t.guest_recv(1).is_empty());
    // dom2: a header announcing a too-big payload.
    let mut bad = Message::new(XS_READ, 1, 0, Vec::new()).encode();
    bad[12..16].copy_from_slice(&5000u32.to_le_bytes());
    DomainRing::new(FakePage(t.page(2))).write_requests(&bad).unwrap();
    t.kick(2);
    assert!(t.e.is_ignored(2));
    assert_eq!(DomainRing::new(FakePage(t.page(2))).error(), XENSTORE_ERROR_PROTO);
    // dom3: a response consumer ahead of the producer.
    t.page(3).borrow_mut().store_u32(2048 + 8, 77); // rsp_cons
    t.guest_send(3, &Request::Read("name"));
    assert!(t.e.is_ignored(3));
    // dom0 and the others are still served; a put-aside domain is still introduced and
    // still released when it dies.
    assert_eq!(t.tool_ok(&Request::Read("/local/domain/1/name")), b"guest1");
    t.create_domain(4);
    t.introduce(4);
    assert_eq!(t.guest(4, &Request::Read("name")).unwrap(), b"guest4");
    assert_eq!(t.tool_ok(&Request::IsDomainIntroduced(1)), b"T\0");
    t.e.platform.flags.remove(&1);
    t.e.event(VIRQ_PORT);
    assert_eq!(t.tool_ok(&Request::IsDomainIntroduced(1)), b"F\0");
    assert_eq!(Rc::strong_count(&p1), 2);
    // Re-introduction gives a put-aside domain a fresh start.
    t.tool_ok(&Request::Introduce { domid: 2, gfn: STORE_GFN, evtchn: 7 });
    assert!(!t.e.is_ignored(2));
    t.guest_dec.remove(&2);
    assert_eq!(t.guest(2, &Request::Read("name")).unwrap(), b"guest2");
}

/// Random page contents and indices from a guest never panic the engine nor make it loop,
/// and never stop it serving another domain.
#[test]
fn random_ring_garbage() {
    let mut t = T::new();
    t.create_domain(1);
    t.create_domain(2);
    t.introduce(1);
    t.introduce(2);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..2000 {
        let p = t.page(1);
        {
            let mut b = p.borrow_mut();
            for _ in 0..(rnd() % 8) {
                let off = (rnd() % 2064) as usize & !3;
                let v = match rnd() % 4 {
                    0 => rnd() as u32,
                    1 => (rnd() % 2048) as u32,
                    2 => b.load_u32(2048 + 4 * (rnd() % 4) as usize).wrapping_add((rnd() % 64) as u32),
                    _ => 0,
                };
                b.store_u32(off, v);
            }
        }
        t.kick(1);
        if round % 100 == 0 {
            t.tool_ok(&Request::Introduce { domid: 1, gfn: STORE_GFN, evtchn: 7 });
            assert_eq!(t.guest(2, &Request::Read("name")).unwrap(), b"guest2");
        }
    }
}

#[test]
fn dom_exc_announces_shutdown_and_releases_the_dead() {
    let mut t = T::new();
    let p1 = t.create_domain(1);
    let p2 = t.create_domain(2);
    t.introduce(1);
    t.introduce(2);
    t.tool_ok(&watch("@releaseDomain", "R"));
    t.tool_events();
    let r = || ("@releaseDomain".to_string(), "R".to_string());
    // Nothing changed: nothing fires.
    t.e.event(VIRQ_PORT);
    assert!(t.tool_events().is_empty());
    // dom1 shuts down: one event, once.
    t.e.platform.flags.insert(1, XEN_DOMINF_shutdown);
    t.e.event(VIRQ_PORT);
    assert_eq!(t.tool_events(), [r()]);
    t.e.event(VIRQ_PORT);
    assert!(t.tool_events().is_empty());
    assert_eq!(t.tool_ok(&Request::IsDomainIntroduced(1)), b"T\0");
    assert_eq!(Rc::strong_count(&p1), 3);
    // XS_RESUME re-arms it.
    t.tool_ok(&Request::Resume(1));
    t.e.event(VIRQ_PORT);
    assert_eq!(t.tool_events(), [r()]);
    // Dying: released at once, page unmapped, port unbound.
    t.e.platform.flags.insert(1, XEN_DOMINF_shutdown | XEN_DOMINF_dying);
    t.e.event(VIRQ_PORT);
    assert_eq!(t.tool_events(), [r()]);
    assert_eq!(Rc::strong_count(&p1), 2);
    assert_eq!(t.e.ring_port(1), None);
    assert_eq!(t.e.platform.bound.values().filter(|(d, _)| *d == 1).count(), 0);
    assert_eq!(t.tool_ok(&Request::IsDomainIntroduced(1)), b"F\0");
    // Gone from the list altogether (destroyed before we looked): the same.
    t.e.platform.flags.remove(&2);
    t.e.event(VIRQ_PORT);
    assert_eq!(t.tool_events(), [r()]);
    assert_eq!(Rc::strong_count(&p2), 2);
    assert!(t.e.platform.bound.is_empty());
    // Its nodes are dom0's now; dom0 itself is never released.
    assert_eq!(t.tool_ok(&Request::GetPerms("/local/domain/2/data")), b"n0\0");
    t.e.event(VIRQ_PORT);
    assert!(t.tool_events().is_empty());
    assert_eq!(t.tool_ok(&Request::IsDomainIntroduced(0)), b"T\0");
}

#[test]
fn outstanding_requests_are_bounded() {
    let mut t = T::new();
    t.create_domain(1);
    t.introduce(1);
    // Replies that do not fit the response ring pile up; at 20 the engine stops reading.
    let big = "v".repeat(1500);
    t.tool_ok(&write("/local/domain/1/data/big", &big));
    let n = 40;
    let mut bytes = Vec::new();
    for i in 0..n {
        bytes.extend(Request::Read("data/big").to_message(1000 + i, 0).encode());
    }
    assert!(bytes.len() <= XENSTORE_RING_SIZE);
    DomainRing::new(FakePage(t.page(1))).write_requests(&bytes).unwrap();
    let port = t.e.ring_port(1).unwrap();
    t.e.event(port);
    for _ in 0..10 {
        t.e.run_busy();
    }
    let unread = DomainRing::new(FakePage(t.page(1))).pending_requests().unwrap();
    assert!(unread > 0, "all requests read despite the outstanding quota");
    assert!(unread < bytes.len());
    // As the guest takes its replies, the rest is served.
    let mut got = 0;
    for _ in 0..200 {
        got += t.guest_recv(1).iter().filter(|m| m.ty == XS_READ && m.payload == big.as_bytes()).count();
        if got == n as usize {
            break;
        }
    }
    assert_eq!(got, n as usize);
}

#[test]
fn quotas_hold_for_domus() {
    // dom1 owns `data` and `control/shutdown`, and may own 5 more nodes.
    let mut t = T::with_quotas(Quotas { max_entries: 7, max_watches: 3, max_transactions: 2, ..Quotas::default() });
    t.create_domain(1);
    t.introduce(1);
    for i in 0..5 {
        t.guest(1, &write(&format!("data/{i}"), "x")).unwrap();
    }
    assert_eq!(t.guest(1, &write("data/5", "x")), Err(Errno::ENOSPC));
    for i in 0..3 {
        t.guest(1, &watch(&format!("data/{i}"), "w")).unwrap();
        t.guest_recv(1);
    }
    assert_eq!(t.guest(1, &watch("data/4", "w")), Err(Errno::E2BIG));
    t.guest(1, &Request::TransactionStart).unwrap();
    t.guest(1, &Request::TransactionStart).unwrap();
    assert_eq!(t.guest(1, &Request::TransactionStart), Err(Errno::ENOSPC));
    assert_eq!(t.guest(1, &write(&"x".repeat(3000), "x")), Err(Errno::EINVAL));
    assert_eq!(t.guest(1, &write("data/0", &"x".repeat(2100))), Err(Errno::ENOSPC));
    // dom0 is not limited.
    for i in 0..10 {
        t.tool_ok(&write(&format!("/local/domain/1/data/d{i}"), "x"));
    }
}
