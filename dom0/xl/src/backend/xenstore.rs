//! xl's xenstore client: requests over xenstored's socket
//! (`/run/xenstored/socket`) or, as libxenstore falls back to, the kernel's
//! `/dev/xen/xenbus`, on one connection kept for the whole command (so
//! transactions and watches work), with the wire format of the `xenstore`
//! crate.
//!
//! Without a xenstored, dom0's `/dev/xen/xenbus` accepts a request and never
//! answers (Xen's own xl then hangs). A reader thread decodes replies and
//! watch events into a channel; the first reply may take [`TIMEOUT`], later
//! ones [`LATER_TIMEOUT`]. If none comes, xenstore counts as unreachable for
//! the rest of the process and callers fall back (see `Backend::name`).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use xen_abi::io::xs_wire::*;
use xsproto::{Decoder, Message};

/// How long the first reply may take.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// How long any later reply may take.
pub const LATER_TIMEOUT: Duration = Duration::from_secs(30);

const SOCKET: &str = "/run/xenstored/socket";
const XENBUS: &str = "/dev/xen/xenbus";

/// A transaction id; [`XBT_NULL`] is none.
pub type Tx = u32;
/// No transaction.
pub const XBT_NULL: Tx = 0;

/// Why a request got no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XsError {
    /// No xenstore to ask (no socket or device, or no answer in time).
    Unreachable,
    /// xenstored answered with an error (e.g. `ENOENT`, `EAGAIN`).
    Error(String),
}

impl XsError {
    /// Whether this is xenstored's `name` error.
    pub fn is(&self, name: &str) -> bool {
        matches!(self, XsError::Error(e) if e == name)
    }
}

impl std::fmt::Display for XsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            XsError::Unreachable => f.write_str("xenstore is not reachable"),
            XsError::Error(e) => f.write_str(e),
        }
    }
}

/// NUL-terminated strings, concatenated (a request payload).
pub fn args<S: AsRef<[u8]>>(a: &[S]) -> Vec<u8> {
    let mut v = Vec::new();
    for s in a {
        v.extend_from_slice(s.as_ref());
        v.push(0);
    }
    v
}

/// The payload's text up to its first NUL.
fn text(body: &[u8]) -> String {
    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
    String::from_utf8_lossy(&body[..end]).into_owned()
}

/// A reply message as the caller sees it.
pub fn decode(m: &Message) -> Result<Vec<u8>, XsError> {
    if m.ty == XS_ERROR {
        return Err(XsError::Error(text(&m.payload)));
    }
    Ok(m.payload.clone())
}

/// A watch event's (path, token).
pub fn watch_event(m: &Message) -> (String, String) {
    let mut parts = m.payload.split(|&b| b == 0);
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let token = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    (path, token)
}

/// libxenstore's calls, on top of a raw request.
pub trait Xs {
    /// Sends one request and returns its reply payload.
    fn request(&mut self, ty: u32, tx: Tx, payload: &[u8]) -> Result<Vec<u8>, XsError>;

    /// The next watch event (path, token), waiting up to `timeout`.
    fn wait_watch(&mut self, timeout: Duration) -> Result<Option<(String, String)>, XsError>;

    /// `xs_read`.
    fn read(&mut self, tx: Tx, path: &str) -> Result<String, XsError> {
        let body = self.request(XS_READ, tx, &args(&[path]))?;
        let v = body.strip_suffix(&[0]).unwrap_or(&body);
        Ok(String::from_utf8_lossy(v).into_owned())
    }

    /// `xs_write` (the value is sent without a NUL, as libxenstore does).
    fn write(&mut self, tx: Tx, path: &str, value: &str) -> Result<(), XsError> {
        let mut p = args(&[path]);
        p.extend_from_slice(value.as_bytes());
        self.request(XS_WRITE, tx, &p).map(drop)
    }

    /// `xs_mkdir`.
    fn mkdir(&mut self, tx: Tx, path: &str) -> Result<(), XsError> {
        self.request(XS_MKDIR, tx, &args(&[path])).map(drop)
    }

    /// `xs_rm`: a missing node is not an error (libxl ignores ENOENT).
    fn rm(&mut self, tx: Tx, path: &str) -> Result<(), XsError> {
        match self.request(XS_RM, tx, &args(&[path])) {
            Err(e) if e.is("ENOENT") => Ok(()),
            r => r.map(drop),
        }
    }

    /// `xs_set_permissions` with xenstored's strings (`n0`, `r5`, ...).
    fn set_perms(&mut self, tx: Tx, path: &str, perms: &[String]) -> Result<(), XsError> {
        let mut p = args(&[path]);
        p.extend(args(perms));
        self.request(XS_SET_PERMS, tx, &p).map(drop)
    }

    /// `xs_directory`.
    fn directory(&mut self, tx: Tx, path: &str) -> Result<Vec<String>, XsError> {
        let body = self.request(XS_DIRECTORY, tx, &args(&[path]))?;
        Ok(body
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect())
    }

    /// `xs_transaction_start`.
    fn transaction_start(&mut self) -> Result<Tx, XsError> {
        let body = self.request(XS_TRANSACTION_START, XBT_NULL, &args(&[""]))?;
        text(&body)
            .parse()
            .map_err(|_| XsError::Error("EINVAL".into()))
    }

    /// `xs_transaction_end`: `Err(Error("EAGAIN"))` means "retry".
    fn transaction_end(&mut self, tx: Tx, commit: bool) -> Result<(), XsError> {
        let c = if commit { "T" } else { "F" };
        self.request(XS_TRANSACTION_END, tx, &args(&[c])).map(drop)
    }

    /// `xs_introduce_domain`.
    fn introduce(&mut self, domid: u32, gfn: u64, port: u32) -> Result<(), XsError> {
        let a = [domid.to_string(), gfn.to_string(), port.to_string()];
        self.request(XS_INTRODUCE, XBT_NULL, &args(&a)).map(drop)
    }

    /// `xs_release_domain`.
    fn release(&mut self, domid: u32) -> Result<(), XsError> {
        self.request(XS_RELEASE, XBT_NULL, &args(&[domid.to_string()]))
            .map(drop)
    }

    /// `xs_watch` (xenstored fires it once right away).
    fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        self.request(XS_WATCH, XBT_NULL, &args(&[path, token]))
            .map(drop)
    }

    /// `xs_unwatch`.
    fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        self.request(XS_UNWATCH, XBT_NULL, &args(&[path, token]))
            .map(drop)
    }
}

trait Stream: Read + Write + Send {
    fn split(&self) -> std::io::Result<Box<dyn Read + Send>>;
}

impl Stream for std::os::unix::net::UnixStream {
    fn split(&self) -> std::io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(self.try_clone()?))
    }
}

impl Stream for std::fs::File {
    fn split(&self) -> std::io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(self.try_clone()?))
    }
}

fn open_stream() -> Option<Box<dyn Stream>> {
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

/// Decodes everything `r` sends into `tx` until it fails or the receiver
/// is gone.
fn reader(mut r: Box<dyn Read + Send>, tx: mpsc::Sender<Message>) {
    let mut dec = Decoder::new();
    let mut buf = vec![0u8; 4096 + 16];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut out = Vec::new();
        if dec.push(&buf[..n], &mut out).is_err() {
            return;
        }
        for m in out {
            if tx.send(m).is_err() {
                return;
            }
        }
    }
}

struct Conn {
    w: Box<dyn Stream>,
    rx: mpsc::Receiver<Message>,
    answered: bool,
}

/// The real client; [`XsError::Unreachable`] once it has failed to connect
/// or to get an answer.
#[derive(Default)]
pub struct Xenstore {
    conn: Option<Conn>,
    unreachable: bool,
    req_id: u32,
    events: VecDeque<(String, String)>,
}

impl Xenstore {
    fn conn(&mut self) -> Result<&mut Conn, XsError> {
        if self.unreachable {
            return Err(XsError::Unreachable);
        }
        if self.conn.is_none() {
            let w = open_stream().ok_or(XsError::Unreachable)?;
            let r = w.split().map_err(|_| XsError::Unreachable)?;
            let (tx, rx) = mpsc::channel();
            // The thread may stay blocked in read; it ends with the process.
            std::thread::spawn(move || reader(r, tx));
            self.conn = Some(Conn {
                w,
                rx,
                answered: false,
            });
        }
        Ok(self.conn.as_mut().expect("just set"))
    }

    fn down(&mut self) -> XsError {
        self.unreachable = true;
        self.conn = None;
        XsError::Unreachable
    }
}

impl Xs for Xenstore {
    fn request(&mut self, ty: u32, tx: Tx, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        self.req_id = self.req_id.wrapping_add(1);
        let id = self.req_id;
        let msg = Message::new(ty, id, tx, payload.to_vec()).encode();
        let c = self.conn()?;
        if c.w.write_all(&msg).is_err() {
            return Err(self.down());
        }
        let limit = if c.answered { LATER_TIMEOUT } else { TIMEOUT };
        let deadline = Instant::now() + limit;
        loop {
            let c = self.conn.as_mut().expect("connected");
            let left = deadline.saturating_duration_since(Instant::now());
            match c.rx.recv_timeout(left) {
                Ok(m) if m.ty == XS_WATCH_EVENT => self.events.push_back(watch_event(&m)),
                Ok(m) if m.req_id == id => {
                    c.answered = true;
                    return decode(&m);
                }
                Ok(_) => {}
                Err(_) => return Err(self.down()),
            }
        }
    }

    fn wait_watch(&mut self, timeout: Duration) -> Result<Option<(String, String)>, XsError> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        let c = self.conn()?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match c.rx.recv_timeout(left) {
                Ok(m) if m.ty == XS_WATCH_EVENT => return Ok(Some(watch_event(&m))),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => return Ok(None),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(self.down()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format() {
        let m = Message::new(XS_READ, 7, 0, args(&["/local/domain/0/name"])).encode();
        assert_eq!(&m[..16], &[2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 21, 0, 0, 0]);
        assert_eq!(&m[16..], b"/local/domain/0/name\0");
        let ok = Message::new(XS_READ, 7, 0, b"Domain-0".to_vec());
        assert_eq!(decode(&ok), Ok(b"Domain-0".to_vec()));
        let err = Message::new(XS_ERROR, 7, 0, b"ENOENT\0".to_vec());
        assert_eq!(decode(&err), Err(XsError::Error("ENOENT".into())));
        let ev = Message::new(XS_WATCH_EVENT, 0, 0, b"@releaseDomain\0tok\0".to_vec());
        assert_eq!(watch_event(&ev), ("@releaseDomain".into(), "tok".into()));
        assert_eq!(args(&["a", "bc"]), b"a\0bc\0");
        let mut huge = Message::new(XS_READ, 1, 0, Vec::new()).encode();
        huge[12..16].copy_from_slice(&5000u32.to_le_bytes());
        let mut out = Vec::new();
        assert!(Decoder::new().push(&huge, &mut out).is_err());
    }

    #[test]
    fn reader_splits_messages() {
        let mut bytes = Message::new(XS_READ, 1, 0, b"x".to_vec()).encode();
        bytes.extend(Message::new(XS_WATCH_EVENT, 0, 0, b"p\0t\0".to_vec()).encode());
        let (tx, rx) = mpsc::channel();
        reader(Box::new(std::io::Cursor::new(bytes)), tx);
        let got: Vec<Message> = rx.try_iter().collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].ty, XS_WATCH_EVENT);
    }
}
