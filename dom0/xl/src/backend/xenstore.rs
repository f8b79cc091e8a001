//! Just enough of a xenstore client for xl's read-only commands: `XS_READ`
//! through xenstored's socket (`/run/xenstored/socket`) or, as libxenstore
//! falls back to, the kernel's `/dev/xen/xenbus`.
//!
//! Without a xenstored, dom0's `/dev/xen/xenbus` accepts a request and never
//! answers (Xen's own xl then hangs). This client waits [`TIMEOUT`] for the
//! first answer; if none comes, xenstore counts as unreachable for the rest
//! of the process and callers fall back (see `Host::domain_name`).

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

/// `XS_READ` (`xs_wire.h`).
pub const XS_READ: u32 = 2;
/// `XS_ERROR`: the payload is an errno name such as `ENOENT`.
pub const XS_ERROR: u32 = 16;
/// Largest payload xenstored sends (`XENSTORE_PAYLOAD_MAX`).
pub const PAYLOAD_MAX: usize = 4096;
/// How long a reply may take.
pub const TIMEOUT: Duration = Duration::from_secs(2);

const SOCKET: &str = "/run/xenstored/socket";
const XENBUS: &str = "/dev/xen/xenbus";

/// Why a read got no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XsError {
    /// No xenstore to ask (no socket or device, or no answer in time).
    Unreachable,
    /// xenstored answered with an error (e.g. `ENOENT`).
    Error(String),
}

/// The `struct xsd_sockmsg` header and payload of a request.
pub fn request(ty: u32, req_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(16 + payload.len());
    for w in [ty, req_id, 0, payload.len() as u32] {
        m.extend_from_slice(&w.to_le_bytes());
    }
    m.extend_from_slice(payload);
    m
}

/// `XS_READ path`.
pub fn read_request(path: &str, req_id: u32) -> Vec<u8> {
    let mut p = path.as_bytes().to_vec();
    p.push(0);
    request(XS_READ, req_id, &p)
}

/// Reads one reply from `r`: (type, payload).
pub fn read_reply(r: &mut dyn Read) -> std::io::Result<(u32, Vec<u8>)> {
    let mut h = [0u8; 16];
    r.read_exact(&mut h)?;
    let w = |i: usize| u32::from_le_bytes(h[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
    let len = w(3) as usize;
    if len > PAYLOAD_MAX {
        return Err(std::io::Error::other("xenstore reply too long"));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok((w(0), body))
}

/// Decodes an `XS_READ` reply.
pub fn decode_read(ty: u32, body: &[u8]) -> Result<String, XsError> {
    if ty == XS_ERROR {
        let name = body.split(|&b| b == 0).next().unwrap_or_default();
        return Err(XsError::Error(String::from_utf8_lossy(name).into_owned()));
    }
    let v = body.strip_suffix(&[0]).unwrap_or(body);
    Ok(String::from_utf8_lossy(v).into_owned())
}

trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

fn connect() -> Option<Box<dyn Conn>> {
    if let Ok(s) = std::os::unix::net::UnixStream::connect(SOCKET) {
        return Some(Box::new(s));
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(XENBUS)
        .ok()?;
    Some(Box::new(f))
}

/// A xenstore client; [`XsError::Unreachable`] once it has failed to connect
/// or to get an answer.
#[derive(Default)]
pub struct Xenstore {
    unreachable: bool,
    req_id: u32,
}

impl Xenstore {
    /// `xs_read(XBT_NULL, path)`.
    pub fn read(&mut self, path: &str) -> Result<String, XsError> {
        if self.unreachable {
            return Err(XsError::Unreachable);
        }
        self.req_id = self.req_id.wrapping_add(1);
        let msg = read_request(path, self.req_id);
        let (tx, rx) = mpsc::channel();
        // The device may never answer: ask from a thread, wait a bounded time
        // (a thread stuck in read ends with the process).
        std::thread::spawn(move || {
            let r = (|| {
                let mut c = connect()?;
                c.write_all(&msg).ok()?;
                read_reply(&mut c).ok()
            })();
            let _ = tx.send(r);
        });
        match rx.recv_timeout(TIMEOUT) {
            Ok(Some((ty, body))) => decode_read(ty, &body),
            _ => {
                self.unreachable = true;
                Err(XsError::Unreachable)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format() {
        let m = read_request("/local/domain/0/name", 7);
        assert_eq!(&m[..16], &[2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 21, 0, 0, 0]);
        assert_eq!(&m[16..], b"/local/domain/0/name\0");
        let mut reply = request(XS_READ, 7, b"Domain-0");
        let (ty, body) = read_reply(&mut &reply[..]).unwrap();
        assert_eq!(decode_read(ty, &body), Ok("Domain-0".to_string()));
        reply = request(XS_ERROR, 7, b"ENOENT\0");
        let (ty, body) = read_reply(&mut &reply[..]).unwrap();
        assert_eq!(decode_read(ty, &body), Err(XsError::Error("ENOENT".into())));
        let mut huge = request(XS_READ, 1, b"");
        huge[12..16].copy_from_slice(&5000u32.to_le_bytes());
        assert!(read_reply(&mut &huge[..]).is_err());
    }
}
