//! Hostile-client fuzzing with a xorshift generator: random requests from
//! several domains, random bytes into the decoder, random ring indices.
//! Nothing may panic, every request gets exactly one well-formed reply, and
//! the tree stays consistent.

mod common;

use std::collections::HashMap;

use common::conn;
use xen_abi::io::xs_wire::*;
use xenstore::ring::DomainRing;
use xenstore::{path, Decoder, Message, Quotas, Server};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

const PIECES: &[&str] = &[
    "",
    "/",
    "/local/domain/5",
    "/local/domain/6",
    "/local/domain/0/backend",
    "data",
    "device/vbd/51712",
    "a",
    "b/c",
    "x/y/z",
    "@releaseDomain",
    "@introduceDomain",
    "control/shutdown",
    "/tool",
    "..",
    "a b",
    "n0",
    "r5",
    "b6",
    "w7",
    "T",
    "F",
    "5",
    "6",
    "0",
    "1",
    "65535",
    "99999",
    "-1",
    "0x10",
];

const NAMES: &[&str] = &[
    "data", "device", "vbd", "51712", "a", "b", "c", "state", "control", "shutdown", "x",
];

fn random_path(r: &mut Rng) -> String {
    let mut p = String::from(*r.pick(&[
        "",
        "/",
        "/local/domain/5/",
        "/local/domain/6/",
        "/local/domain/7/",
        "/tool/",
    ]));
    for i in 0..1 + r.below(4) {
        if i > 0 {
            p.push('/');
        }
        let piece = if r.below(10) == 0 {
            r.pick(PIECES)
        } else {
            r.pick(NAMES)
        };
        p.push_str(piece.trim_matches('/'));
    }
    if r.below(30) == 0 {
        p.extend((0..r.below(60)).map(|i| if i % 2 == 0 { '/' } else { 'd' }));
    }
    p
}

/// Mostly well-formed requests with random arguments, sometimes garbage.
fn random_payload(r: &mut Rng, ty: u32) -> Vec<u8> {
    if r.below(8) == 0 {
        let mut p = Vec::new();
        for _ in 0..r.below(5) {
            match r.below(3) {
                0 => p.extend((0..r.below(64)).map(|_| r.next() as u8)),
                _ => p.extend(r.pick(PIECES).bytes()),
            }
            if r.below(4) != 0 {
                p.push(0);
            }
        }
        return p;
    }
    let dom = |r: &mut Rng| r.pick(&["0", "5", "6", "7", "8", "9"]).to_string();
    let args: Vec<String> = match ty {
        XS_WRITE => {
            let value: Vec<u8> = (0..r.below(3000) * r.below(2))
                .map(|_| b'a' + r.below(26) as u8)
                .collect();
            return [random_path(r).as_bytes(), b"\0", &value].concat();
        }
        XS_SET_PERMS => std::iter::once(random_path(r))
            .chain(
                (0..1 + r.below(6)).map(|_| format!("{}{}", r.pick(&["n", "r", "w", "b"]), dom(r))),
            )
            .collect(),
        XS_WATCH | XS_UNWATCH => vec![random_path(r), r.pick(&["t1", "t2", "tok"]).to_string()],
        XS_TRANSACTION_END => vec![r.pick(&["T", "F"]).to_string()],
        XS_INTRODUCE => vec![
            dom(r),
            (r.next() % 0x100000).to_string(),
            (1 + r.below(20)).to_string(),
        ],
        XS_RELEASE | XS_RESUME | XS_IS_DOMAIN_INTRODUCED | XS_GET_DOMAIN_PATH => vec![dom(r)],
        XS_SET_TARGET => vec![dom(r), dom(r)],
        XS_DIRECTORY_PART => vec![random_path(r), r.below(200).to_string()],
        XS_CONTROL => vec![r
            .pick(&["check", "quota", "help", "print", "bogus"])
            .to_string()],
        _ => vec![random_path(r)],
    };
    args.into_iter()
        .flat_map(|a| a.into_bytes().into_iter().chain([0]))
        .collect()
}

fn check_tree(s: &Server) {
    let st = s.store();
    let mut owned: HashMap<u16, i64> = HashMap::new();
    for (p, n) in st.iter() {
        *owned.entry(n.perms.owner()).or_default() += 1;
        if p != "/" {
            let parent = st
                .node(path::parent(p))
                .unwrap_or_else(|| panic!("orphan {p}"));
            let name = path::basename(p);
            assert_eq!(
                parent.children.iter().filter(|c| *c == name).count(),
                1,
                "{p}"
            );
        }
        for c in &n.children {
            assert!(
                st.node(&path::join(p, c)).is_some(),
                "dangling child {c} of {p}"
            );
        }
    }
    for (d, n) in owned {
        assert_eq!(st.entries(d), n, "entries of {d}");
    }
}

#[test]
fn random_requests() {
    let q = Quotas {
        max_entries: 200,
        ..Quotas::default()
    };
    let mut s = Server::new(q);
    let mut h = common::H::new(Server::default());
    h.libxl_domain(5);
    h.libxl_domain(6);
    // Move the populated store into a server with small quotas.
    *s.store_mut() = std::mem::take(h.s.store_mut());
    s.store_mut().quotas = Quotas {
        max_entries: 200,
        ..Quotas::default()
    };

    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let domids = [0u16, 0, 5, 5, 6, 7];
    let mut tx_ids: HashMap<u16, Vec<u32>> = HashMap::new();
    for i in 0..40_000u32 {
        let domid = *r.pick(&domids);
        let ty = match r.below(10) {
            0 => r.next() as u32 % 40,
            _ => *r.pick(&[
                XS_READ,
                XS_WRITE,
                XS_MKDIR,
                XS_RM,
                XS_DIRECTORY,
                XS_DIRECTORY_PART,
                XS_GET_PERMS,
                XS_SET_PERMS,
                XS_WATCH,
                XS_UNWATCH,
                XS_TRANSACTION_START,
                XS_TRANSACTION_END,
                XS_INTRODUCE,
                XS_RELEASE,
                XS_RESET_WATCHES,
                XS_GET_DOMAIN_PATH,
                XS_CONTROL,
                XS_IS_DOMAIN_INTRODUCED,
                XS_SET_TARGET,
                XS_RESUME,
            ]),
        };
        let ids = tx_ids.entry(domid).or_default();
        let tx = match r.below(7) {
            0 | 1 => ids.get(r.below(ids.len().max(1))).copied().unwrap_or(0),
            2 => r.next() as u32 % 4,
            _ => 0,
        };
        let payload = random_payload(&mut r, ty);
        let msg = Message::new(ty, i, tx, payload);
        let out = s.handle(conn(domid), domid, &msg);
        let (to, reply) = &out[0];
        assert_eq!(*to, conn(domid));
        assert_eq!((reply.req_id, reply.tx_id), (i, tx));
        assert!(reply.ty == ty || reply.ty == XS_ERROR);
        for (_, m) in &out {
            assert!(m.payload.len() <= XENSTORE_PAYLOAD_MAX);
        }
        if ty == XS_TRANSACTION_START && reply.ty == ty {
            let id = String::from_utf8_lossy(&reply.payload)
                .trim_end_matches('\0')
                .parse()
                .unwrap();
            tx_ids.entry(domid).or_default().push(id);
        }
        s.take_actions();
        if i % 1000 == 0 {
            check_tree(&s);
        }
    }
    check_tree(&s);
    // Unprivileged domains stayed within quota.
    for d in [5, 6, 7] {
        assert!(
            s.store().entries(d) <= 200 + 30,
            "dom{d}: {}",
            s.store().entries(d)
        );
    }
}

#[test]
fn random_bytes_into_decoder_and_ring() {
    let mut r = Rng(12345);
    for _ in 0..2000 {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        let bytes: Vec<u8> = (0..r.below(300)).map(|_| r.next() as u8).collect();
        for c in bytes.chunks(1 + r.below(40)) {
            if d.push(c, &mut out).is_err() {
                break;
            }
        }
        assert!(out.iter().all(|m| m.payload.len() <= XENSTORE_PAYLOAD_MAX));
    }
    let mut ring = DomainRing::new(vec![0u8; 4096]);
    let mut buf = [0u8; 2048];
    for _ in 0..20_000 {
        let mut page = ring.into_page();
        // The guest scribbles anywhere, indices included.
        let off = 2048 + r.below(16) * 4;
        page[off..off + 4].copy_from_slice(&(r.next() as u32).to_ne_bytes());
        ring = DomainRing::new(page);
        let len = r.below(2048);
        let moved = [
            ring.read_requests(&mut buf),
            ring.write_responses(&buf[..len]),
        ];
        for n in moved.into_iter().flatten() {
            assert!(n <= 1024);
        }
    }
}
