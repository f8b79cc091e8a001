//! The xenstore wire protocol as a guest (or a local tool) can send it:
//! the incremental decoder fed random chunks, request parsing, and the
//! shared ring with guest-written indices.
//!
//! Properties: decoding does not depend on how the bytes are chunked; the
//! messages decoded re-encode to exactly the bytes consumed; payloads stay
//! within XENSTORE_PAYLOAD_MAX; a parsed request re-encoded by
//! `Request::payload` parses to the same request; ring transfers are
//! bounded by the ring and the buffer.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use xen_abi::io::xs_wire::{XENSTORE_PAYLOAD_MAX, XENSTORE_RING_SIZE};
use xenstore::ring::DomainRing;
use xenstore::wire::HEADER_LEN;
use xenstore::{Decoder, Message, Request};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    chunks: Vec<u8>,
    ring_ops: Vec<(u8, u16, u32)>,
    bytes: &'a [u8],
}

fuzz_target!(|data: &[u8]| {
    let u = Unstructured::new(data);
    let Ok(i) = Input::arbitrary_take_rest(u) else { return };
    let bytes = i.bytes;

    // Whole.
    let mut whole = Decoder::new();
    let mut a = Vec::new();
    let ra = whole.push(bytes, &mut a);
    // Chunked as the fuzzer says.
    let mut chunked = Decoder::new();
    let mut b = Vec::new();
    let mut rest = bytes;
    let mut rb = Ok(());
    let mut sizes = i.chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (usize::from(*sizes.next().unwrap_or(&255)) + 1).min(rest.len());
        rb = chunked.push(&rest[..n], &mut b);
        rest = &rest[n..];
        if rb.is_err() {
            break;
        }
    }
    assert_eq!(ra.is_err(), rb.is_err(), "chunking changed the verdict");
    assert_eq!(a, b, "chunking changed the messages");
    let mut encoded = Vec::new();
    for m in &a {
        assert!(m.payload.len() <= XENSTORE_PAYLOAD_MAX);
        encoded.extend(m.encode());
    }
    assert!(bytes.starts_with(&encoded), "re-encoding differs from the input");
    if ra.is_ok() {
        let left = bytes.len() - encoded.len();
        assert_eq!(whole.is_idle(), left == 0);
        assert!(left < HEADER_LEN + XENSTORE_PAYLOAD_MAX);
    }

    // Request parsing, for every type, of every payload decoded and of the raw bytes.
    for m in a.iter().map(|m| (m.ty, &m.payload[..])).chain((0..24).map(|t| (t, bytes))) {
        let (ty, p) = m;
        let _ = xenstore::wire::strings(p);
        if let Ok(r) = Request::parse(ty, p) {
            assert_eq!(r.ty(), ty);
            let again = r.payload();
            let r2 = Request::parse(ty, &again).unwrap_or_else(|e| panic!("{r:?} re-encoded as {again:?}: {e:?}"));
            assert_eq!(r, r2, "payload {p:?} re-encoded as {again:?}");
            let msg = r.to_message(7, 9);
            assert_eq!((msg.ty, msg.req_id, msg.tx_id), (ty, 7, 9));
        }
        let msg = Message::new(ty, 1, 2, p.to_vec());
        let _ = (msg.errno(), msg.strings());
        if let Some(ev) = Message::watch_event(&String::from_utf8_lossy(p), p) {
            assert!(ev.payload.len() <= XENSTORE_PAYLOAD_MAX);
        }
    }

    // The shared ring page with guest-controlled indices and contents.
    let mut page = vec![0u8; 4096];
    for (k, b) in bytes.iter().take(4096).enumerate() {
        page[k] = *b;
    }
    let mut ring = DomainRing::new(page);
    let mut buf = vec![0u8; 4096];
    for &(op, len, val) in i.ring_ops.iter().take(64) {
        let len = usize::from(len) % 4097;
        match op % 6 {
            0 => {
                if let Ok(n) = ring.read_requests(&mut buf[..len]) {
                    assert!(n <= len.min(XENSTORE_RING_SIZE));
                }
            }
            1 => {
                if let Ok(n) = ring.write_responses(&bytes[..len.min(bytes.len())]) {
                    assert!(n <= len.min(XENSTORE_RING_SIZE));
                }
            }
            2 => {
                if let Ok(n) = ring.write_requests(&bytes[..len.min(bytes.len())]) {
                    assert!(n <= len.min(XENSTORE_RING_SIZE));
                }
            }
            3 => {
                if let Ok(n) = ring.read_responses(&mut buf[..len]) {
                    assert!(n <= len.min(XENSTORE_RING_SIZE));
                }
            }
            4 => {
                // The guest rewrites an index (or anything in the page tail).
                let mut p = ring.into_page();
                let off = 2048 + (usize::from(len) % 512) * 4;
                if off + 4 <= p.len() {
                    p[off..off + 4].copy_from_slice(&val.to_ne_bytes());
                }
                ring = DomainRing::new(p);
            }
            _ => {
                if val & 1 == 0 {
                    ring.reset();
                } else {
                    ring.set_error(val);
                }
            }
        }
    }
});
