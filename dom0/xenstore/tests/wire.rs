//! Wire format: encoding, incremental decoding, request round trips.

use xen_abi::io::xs_wire::*;
use xenstore::perms::Access;
use xenstore::{Decoder, Errno, Message, Perms, Request, WireError};

#[test]
fn header_layout() {
    let m = Message::new(XS_WRITE, 0x11223344, 7, b"/a\0v".to_vec());
    let b = m.encode();
    assert_eq!(b.len(), 20);
    assert_eq!(&b[0..4], &XS_WRITE.to_le_bytes());
    assert_eq!(&b[4..8], &0x11223344u32.to_le_bytes());
    assert_eq!(&b[8..12], &7u32.to_le_bytes());
    assert_eq!(&b[12..16], &4u32.to_le_bytes());
    assert_eq!(&b[16..], b"/a\0v");
}

#[test]
fn decoder_any_chunking() {
    let msgs: Vec<Message> = (0..20u32)
        .map(|i| Message::new(i % 23, i, i * 3, vec![b'x'; (i as usize * 37) % 300]))
        .chain([
            Message::new(XS_READ, 1, 0, vec![]),
            Message::new(XS_READ, 2, 0, vec![0; XENSTORE_PAYLOAD_MAX]),
        ])
        .collect();
    let bytes: Vec<u8> = msgs.iter().flat_map(Message::encode).collect();
    for chunk in [1, 2, 3, 7, 15, 16, 17, 100, 1024, bytes.len()] {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for c in bytes.chunks(chunk) {
            d.push(c, &mut out).unwrap();
        }
        assert_eq!(out, msgs, "chunk {chunk}");
        assert!(d.is_idle());
    }
}

#[test]
fn oversize_kills_the_connection() {
    let mut hdr = Message::new(XS_WRITE, 1, 0, vec![]).encode();
    hdr[12..16].copy_from_slice(&(XENSTORE_PAYLOAD_MAX as u32 + 1).to_le_bytes());
    let mut d = Decoder::new();
    let mut out = Vec::new();
    let good = Message::new(XS_READ, 9, 0, b"/\0".to_vec()).encode();
    assert_eq!(
        d.push(&[good, hdr].concat(), &mut out),
        Err(WireError::Oversize(4097))
    );
    // Messages before the bad header were still delivered.
    assert_eq!(out.len(), 1);
}

#[test]
fn replies() {
    let req = Message::new(XS_READ, 5, 3, b"/x\0".to_vec());
    assert_eq!(
        Message::ok(&req),
        Message::new(XS_READ, 5, 3, b"OK\0".to_vec())
    );
    let e = Message::error(&req, Errno::ENOENT);
    assert_eq!(
        (e.ty, e.req_id, e.tx_id, &e.payload[..]),
        (XS_ERROR, 5, 3, &b"ENOENT\0"[..])
    );
    assert_eq!(e.errno(), Some(Errno::ENOENT));
    assert_eq!(Message::error(&req, Errno(12345)).payload, b"EINVAL\0");
    assert_eq!(
        Message::reply(&req, vec![0; XENSTORE_PAYLOAD_MAX + 1]).errno(),
        Some(Errno::E2BIG)
    );
    let w = Message::watch_event("device/vbd", b"ffff8880").unwrap();
    assert_eq!(
        (w.ty, w.req_id, w.tx_id, &w.payload[..]),
        (XS_WATCH_EVENT, 0, 0, &b"device/vbd\0ffff8880\0"[..])
    );
    assert!(Message::watch_event("/p", &[b't'; XENSTORE_PAYLOAD_MAX]).is_none());
    for e in XSD_ERRORS {
        assert_eq!(
            Errno::from_name(e.errstring.as_bytes()),
            Some(Errno(e.errnum))
        );
        assert_eq!(Errno(e.errnum).name(), e.errstring);
    }
}

#[test]
fn request_round_trips() {
    let perms = Perms::new(5, Access::None).with(Access::Read, 0);
    let reqs = [
        Request::Control(vec![b"print", b"hello"]),
        Request::Directory("device"),
        Request::Read("/local/domain/0/name"),
        Request::GetPerms("/"),
        Request::Watch {
            path: "control/shutdown",
            token: b"ffff0000",
        },
        Request::Unwatch {
            path: "@releaseDomain",
            token: b"t",
        },
        Request::TransactionStart,
        Request::TransactionEnd(true),
        Request::TransactionEnd(false),
        Request::Introduce {
            domid: 3,
            gfn: 0x39000,
            evtchn: 5,
        },
        Request::Release(3),
        Request::GetDomainPath(65535),
        Request::Write {
            path: "a",
            value: b"",
        },
        Request::Write {
            path: "a",
            value: b"with\0nul",
        },
        Request::Mkdir("/x"),
        Request::Rm("/x"),
        Request::SetPerms { path: "/x", perms },
        Request::IsDomainIntroduced(3),
        Request::Resume(3),
        Request::SetTarget {
            domid: 4,
            target: 3,
        },
        Request::ResetWatches,
        Request::DirectoryPart {
            path: "/",
            offset: 120,
        },
    ];
    for r in reqs {
        let m = r.to_message(1, 2);
        let wire = m.encode();
        let mut out = Vec::new();
        Decoder::new().push(&wire, &mut out).unwrap();
        assert_eq!(out, std::slice::from_ref(&m));
        assert_eq!(Request::parse(m.ty, &m.payload), Ok(r.clone()), "{r:?}");
    }
    // What Linux sends.
    assert_eq!(
        Request::parse(XS_WRITE, b"control/feature-poweroff\x001"),
        Ok(Request::Write {
            path: "control/feature-poweroff",
            value: b"1"
        })
    );
    assert_eq!(
        Request::parse(XS_TRANSACTION_START, b"\0"),
        Ok(Request::TransactionStart)
    );
}
