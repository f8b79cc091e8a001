//! A Linux domU's xenbus boot sequence (§1.2 step 7) over a real ring page,
//! against a store populated as libxl does (§4.1), then a shutdown request.

mod common;

use common::{conn, names, H};
use xen_abi::io::xs_wire::*;
use xenstore::ring::DomainRing;
use xenstore::{Decoder, Message, Request, Server};

const DOMID: u16 = 5;

/// Both ends of domain 5's ring plus dom0's tool connection.
struct World {
    h: H,
    ring: DomainRing<Vec<u8>>,
    server_dec: Decoder,
    guest_dec: Decoder,
    guest_inbox: Vec<Message>,
    next_req: u32,
}

impl World {
    fn new() -> World {
        let mut h = H::new(Server::default());
        h.libxl_domain(DOMID);
        h.ok(
            0,
            &Request::Introduce {
                domid: DOMID,
                gfn: 0x39001,
                evtchn: 1,
            },
        );
        let ring = DomainRing::new(vec![0; 4096]);
        World {
            h,
            ring,
            server_dec: Decoder::new(),
            guest_dec: Decoder::new(),
            guest_inbox: Vec::new(),
            next_req: 0,
        }
    }

    /// xenstored's side: drain the request ring, handle, answer on the ring.
    fn serve(&mut self) {
        let mut buf = [0u8; 1024];
        let mut msgs = Vec::new();
        loop {
            let n = self.ring.read_requests(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            self.server_dec.push(&buf[..n], &mut msgs).unwrap();
        }
        for m in msgs {
            let out = self.h.s.handle(conn(DOMID), DOMID, &m);
            self.deliver(out);
        }
    }

    fn deliver(&mut self, out: Vec<(xenstore::ConnId, Message)>) {
        for (to, m) in out {
            if to == conn(DOMID) {
                let bytes = m.encode();
                assert_eq!(self.ring.write_responses(&bytes).unwrap(), bytes.len());
                let mut buf = [0u8; 1024];
                let n = self.ring.read_responses(&mut buf).unwrap();
                self.guest_dec
                    .push(&buf[..n], &mut self.guest_inbox)
                    .unwrap();
            }
        }
    }

    /// The guest's side: send one request, wait for its reply; watch events
    /// stay in the inbox.
    fn call(&mut self, tx: u32, r: Request) -> Message {
        self.next_req += 1;
        let id = self.next_req;
        assert_eq!(
            self.ring.write_requests(&r.to_message(id, tx).encode()),
            Ok(r.to_message(id, tx).encode().len())
        );
        self.serve();
        let i = self
            .guest_inbox
            .iter()
            .position(|m| m.ty != XS_WATCH_EVENT && m.req_id == id)
            .expect("reply");
        self.guest_inbox.remove(i)
    }

    fn ok(&mut self, tx: u32, r: Request) -> Vec<u8> {
        let m = self.call(tx, r.clone());
        assert!(m.errno().is_none(), "{r:?}: {:?}", m.errno());
        m.payload
    }

    fn events(&mut self) -> Vec<(String, String)> {
        let (ev, rest): (Vec<_>, Vec<_>) = self
            .guest_inbox
            .drain(..)
            .partition(|m| m.ty == XS_WATCH_EVENT);
        self.guest_inbox = rest;
        ev.iter()
            .map(|m| {
                (
                    String::from_utf8_lossy(m.strings()[0]).into(),
                    String::from_utf8_lossy(m.strings()[1]).into(),
                )
            })
            .collect()
    }
}

#[test]
fn linux_domu_boot_and_shutdown() {
    let mut w = World::new();
    // xs_reset_watches: supported, so reset.
    assert_eq!(
        w.ok(
            0,
            Request::Read("control/platform-feature-xs_reset_watches")
        ),
        b"1"
    );
    assert_eq!(w.ok(0, Request::ResetWatches), b"OK\0");
    // Watches, each answered by OK and an initial event.
    let watches = [
        ("device", "ffff000002c1e0a0"),
        ("control/shutdown", "ffff800008b2c1d0"),
        ("control/sysrq", "ffff800008b2c1f8"),
        ("memory/target", "ffff800008b31c28"),
        ("cpu", "ffff800008b31c50"),
    ];
    for (path, token) in watches {
        assert_eq!(
            w.ok(
                0,
                Request::Watch {
                    path,
                    token: token.as_bytes()
                }
            ),
            b"OK\0"
        );
        assert_eq!(w.events(), [(path.to_string(), token.to_string())]);
    }
    for f in ["poweroff", "reboot", "suspend"] {
        w.ok(
            0,
            Request::Write {
                path: &format!("control/feature-{f}"),
                value: b"1",
            },
        );
    }
    // Our own writes below watched "device"/"control/shutdown" do not fire;
    // control/feature-* is not watched.
    assert!(w.events().is_empty());
    // Frontend enumeration.
    assert_eq!(
        names(&w.ok(0, Request::Directory("device"))),
        ["vbd", "vif"]
    );
    assert_eq!(names(&w.ok(0, Request::Directory("device/vbd"))), ["51712"]);
    assert_eq!(w.ok(0, Request::Read("device/vbd/51712/state")), b"1");
    let be = w.ok(0, Request::Read("device/vbd/51712/backend"));
    assert_eq!(be, b"/local/domain/0/backend/vbd/5/51712");
    let be = String::from_utf8(be).unwrap();
    // The frontend may read the backend's directory and watch its state.
    assert_eq!(w.ok(0, Request::Read(&format!("{be}/state"))), b"1");
    w.ok(
        0,
        Request::Watch {
            path: &format!("{be}/state"),
            token: b"be",
        },
    );
    assert_eq!(w.events().len(), 1);
    // Frontend publishes its ring in a transaction, as blkfront does.
    let t: u32 = String::from_utf8_lossy(&w.ok(0, Request::TransactionStart))
        .trim_end_matches('\0')
        .parse()
        .unwrap();
    for (k, v) in [
        ("ring-ref", "8"),
        ("event-channel", "4"),
        ("protocol", "arm-abi"),
        ("state", "3"),
    ] {
        w.ok(
            t,
            Request::Write {
                path: &format!("device/vbd/51712/{k}"),
                value: v.as_bytes(),
            },
        );
    }
    w.ok(t, Request::TransactionEnd(true));
    // Its own watch on "device" sees its own state changes.
    assert!(w
        .events()
        .iter()
        .any(|(p, _)| p == "device/vbd/51712/state"));
    // The guest may not touch the backend.
    assert!(w
        .call(
            0,
            Request::Write {
                path: &format!("{be}/state"),
                value: b"4"
            }
        )
        .errno()
        .is_some());
    // Dom0's backend moves to Connected: the guest's watch fires.
    let (_, out) = w.h.send(
        0,
        &Request::Write {
            path: &format!("{be}/state"),
            value: b"4",
        },
    );
    w.deliver(out);
    assert_eq!(w.events(), [(format!("{be}/state"), "be".to_string())]);
    // Balloon target change.
    let (_, out) = w.h.send(
        0,
        &Request::Write {
            path: "/local/domain/5/memory/target",
            value: b"262144",
        },
    );
    w.deliver(out);
    assert_eq!(
        w.events(),
        [("memory/target".to_string(), "ffff800008b31c28".to_string())]
    );

    // `xl shutdown`: the toolstack writes control/shutdown; Linux reads and
    // clears it in a transaction.
    let (_, out) = w.h.send(
        0,
        &Request::Write {
            path: "/local/domain/5/control/shutdown",
            value: b"poweroff",
        },
    );
    w.deliver(out);
    assert_eq!(
        w.events(),
        [(
            "control/shutdown".to_string(),
            "ffff800008b2c1d0".to_string()
        )]
    );
    let t: u32 = String::from_utf8_lossy(&w.ok(0, Request::TransactionStart))
        .trim_end_matches('\0')
        .parse()
        .unwrap();
    assert_eq!(w.ok(t, Request::Read("control/shutdown")), b"poweroff");
    w.ok(
        t,
        Request::Write {
            path: "control/shutdown",
            value: b"",
        },
    );
    assert_eq!(w.ok(t, Request::TransactionEnd(true)), b"OK\0");
    assert_eq!(
        w.h.read(0, "/local/domain/5/control/shutdown").unwrap(),
        b""
    );
    // Domain 5 never learns about other domains.
    assert!(w
        .call(0, Request::Directory("/local/domain"))
        .errno()
        .is_some());
    assert!(w
        .call(0, Request::Read("/local/domain/0/backend/vif/5/0/state"))
        .errno()
        .is_none());
}
