//! A xenstore client connection: xenstored's unix socket, or the kernel's xenbus device
//! (`/dev/xen/xenbus`, which forwards over dom0's ring to whichever xenstored serves it).
//! Both carry the same wire messages. Like libxenstore's `xs_open`, the socket is
//! tried first and the device is the fallback.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use xen_abi::io::xs_wire::*;
use xenstore::{Decoder, Errno, Message};

use crate::sys;

/// Xen's default run directory of xenstored (`XEN_RUN_STORED`).
pub const RUN_DIR: &str = "/run/xenstored";
/// Linux's xenbus device (the kernel's own xenstore connection, shared with user space).
pub const DEVICE: &str = "/dev/xen/xenbus";

/// xenstored's socket: `$XENSTORED_PATH`, else `$XENSTORED_RUNDIR/socket`, else
/// `/run/xenstored/socket` (libxenstore's `xenstore_daemon_path`).
pub fn socket_path() -> PathBuf {
    socket_path_from(std::env::var_os("XENSTORED_PATH"), std::env::var_os("XENSTORED_RUNDIR"))
}

pub fn socket_path_from(path: Option<std::ffi::OsString>, rundir: Option<std::ffi::OsString>) -> PathBuf {
    match (path, rundir) {
        (Some(p), _) if !p.is_empty() => p.into(),
        (_, Some(d)) if !d.is_empty() => PathBuf::from(d).join("socket"),
        _ => PathBuf::from(RUN_DIR).join("socket"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The socket, else the device.
    Auto,
    /// The socket only (`-s`).
    Socket,
    /// The kernel's device only (`-D`).
    Device,
}

#[derive(Debug)]
pub enum Error {
    /// xenstored answered `XS_ERROR`.
    Xs(Errno),
    Io(io::Error),
    /// Malformed or unexpected traffic, or no answer in time.
    Protocol(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Xs(e) => write!(f, "{e}"),
            Error::Io(e) => write!(f, "{e}"),
            Error::Protocol(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl Error {
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Xs(e) => Some(*e),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

enum Transport {
    Socket(UnixStream),
    Device(File),
}

impl Transport {
    fn fd(&self) -> RawFd {
        match self {
            Transport::Socket(s) => s.as_raw_fd(),
            Transport::Device(f) => f.as_raw_fd(),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Transport::Socket(s) => s.write_all(data),
            // One write per message: the kernel takes a message whole.
            Transport::Device(f) => f.write_all(data),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Socket(s) => s.read(buf),
            Transport::Device(f) => f.read(buf),
        }
    }
}

/// A watch event: the path that changed and the watch's token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub path: String,
    pub token: Vec<u8>,
}

pub struct Client {
    io: Transport,
    /// What it is connected to, for messages.
    pub what: String,
    dec: Decoder,
    /// Decoded, not yet looked at.
    inbox: VecDeque<Message>,
    events: VecDeque<Event>,
    next_req: u32,
    /// How long to wait for a reply.
    pub timeout: Duration,
}

impl Client {
    pub fn open(mode: Mode) -> Result<Client> {
        let path = socket_path();
        // XENSTORED_PATH may name the device itself, as libxenstore allows.
        let is_dev = std::fs::metadata(&path).is_ok_and(|m| m.file_type().is_char_device());
        let socket = || -> Result<Client> {
            let s = UnixStream::connect(&path)
                .map_err(sys::ctx(format_args!("connect to xenstored at {}", path.display())))?;
            Ok(Client::new(Transport::Socket(s), path.display().to_string()))
        };
        let device = |p: PathBuf| -> Result<Client> {
            let f = OpenOptions::new().read(true).write(true).open(&p).map_err(sys::ctx(format_args!("open {}", p.display())))?;
            Ok(Client::new(Transport::Device(f), p.display().to_string()))
        };
        match mode {
            _ if is_dev => device(path.clone()),
            Mode::Socket => socket(),
            Mode::Device => device(DEVICE.into()),
            Mode::Auto => socket().or_else(|e| device(DEVICE.into()).map_err(|_| e)),
        }
    }

    fn new(io: Transport, what: String) -> Client {
        Client { io, what, dec: Decoder::new(), inbox: VecDeque::new(), events: VecDeque::new(), next_req: 1, timeout: Duration::from_secs(30) }
    }

    /// Sends one request and waits for its reply (watch events meanwhile are kept).
    pub fn call(&mut self, ty: u32, tx: u32, payload: Vec<u8>) -> Result<Vec<u8>> {
        let req_id = self.next_req;
        self.next_req = self.next_req.wrapping_add(1);
        let msg = Message::new(ty, req_id, tx, payload);
        self.io.write_all(&msg.encode())?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let Some(m) = self.receive(Some(deadline))? else {
                return Err(Error::Protocol(format!("no reply from {} within {:?}", self.what, self.timeout)));
            };
            if m.ty == XS_WATCH_EVENT {
                self.queue_event(&m);
                continue;
            }
            if m.req_id != req_id {
                return Err(Error::Protocol(format!("reply for request {} while waiting for {req_id}", m.req_id)));
            }
            if let Some(e) = m.errno() {
                return Err(Error::Xs(e));
            }
            if m.ty != ty {
                return Err(Error::Protocol(format!("reply of type {} to a request of type {ty}", m.ty)));
            }
            return Ok(m.payload);
        }
    }

    fn queue_event(&mut self, m: &Message) {
        let s = m.strings();
        if let [path, token, ..] = s[..] {
            self.events.push_back(Event { path: String::from_utf8_lossy(path).into_owned(), token: token.to_vec() });
        }
    }

    /// The next message, or None at the deadline.
    fn receive(&mut self, deadline: Option<Instant>) -> Result<Option<Message>> {
        loop {
            if let Some(m) = self.inbox.pop_front() {
                return Ok(Some(m));
            }
            let ms = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    left.as_millis().clamp(1, i32::MAX as u128) as i32
                }
            };
            let mut pfd = [sys::PollFd::new(self.io.fd(), sys::POLLIN)];
            if sys::poll(&mut pfd, ms)? == 0 {
                continue;
            }
            let mut buf = [0u8; 4096];
            let n = match self.io.read(&mut buf) {
                Ok(0) => return Err(Error::Protocol(format!("{} closed the connection", self.what))),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e.into()),
            };
            let mut out = Vec::new();
            self.dec.push(&buf[..n], &mut out).map_err(|e| Error::Protocol(e.to_string()))?;
            self.inbox.extend(out);
        }
    }

    /// The next watch event, waiting up to `timeout` (forever if None).
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<Event>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(Some(e));
            }
            match self.receive(deadline)? {
                None => return Ok(None),
                Some(m) if m.ty == XS_WATCH_EVENT => self.queue_event(&m),
                Some(m) => return Err(Error::Protocol(format!("unexpected message type {} (req {})", m.ty, m.req_id))),
            }
        }
    }

    /// The connection's descriptor, to poll for readability (then [`Client::read_events`]).
    pub fn fd(&self) -> RawFd {
        self.io.fd()
    }

    /// Watch events received while waiting for replies, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.events.drain(..).collect()
    }

    /// One read of what has arrived (call it when [`Client::fd`] polls readable, so that it
    /// does not block), then every watch event received so far. Messages other than events
    /// (there are none outside [`Client::call`]) are dropped.
    pub fn read_events(&mut self) -> Result<Vec<Event>> {
        let mut buf = [0u8; 4096];
        match self.io.read(&mut buf) {
            Ok(0) => return Err(Error::Protocol(format!("{} closed the connection", self.what))),
            Ok(n) => {
                let mut out = Vec::new();
                self.dec.push(&buf[..n], &mut out).map_err(|e| Error::Protocol(e.to_string()))?;
                self.inbox.extend(out);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
        while let Some(m) = self.inbox.pop_front() {
            if m.ty == XS_WATCH_EVENT {
                self.queue_event(&m);
            }
        }
        Ok(self.take_events())
    }

    /// `XS_GET_DOMAIN_PATH`.
    pub fn domain_path(&mut self, domid: u16) -> Result<String> {
        let p = self.call(XS_GET_DOMAIN_PATH, 0, args(&[domid.to_string().as_bytes()]))?;
        Ok(strings(&p).into_iter().next().unwrap_or_default())
    }

    pub fn read(&mut self, tx: u32, path: &str) -> Result<Vec<u8>> {
        self.call(XS_READ, tx, args(&[path.as_bytes()]))
    }

    pub fn write(&mut self, tx: u32, path: &str, value: &[u8]) -> Result<()> {
        self.call(XS_WRITE, tx, [path.as_bytes(), b"\0", value].concat()).map(drop)
    }

    pub fn directory(&mut self, tx: u32, path: &str) -> Result<Vec<String>> {
        let p = self.call(XS_DIRECTORY, tx, args(&[path.as_bytes()]))?;
        Ok(strings(&p))
    }

    pub fn mkdir(&mut self, tx: u32, path: &str) -> Result<()> {
        self.call(XS_MKDIR, tx, args(&[path.as_bytes()])).map(drop)
    }

    pub fn rm(&mut self, tx: u32, path: &str) -> Result<()> {
        self.call(XS_RM, tx, args(&[path.as_bytes()])).map(drop)
    }

    pub fn get_perms(&mut self, tx: u32, path: &str) -> Result<Vec<String>> {
        let p = self.call(XS_GET_PERMS, tx, args(&[path.as_bytes()]))?;
        Ok(strings(&p))
    }

    pub fn set_perms(&mut self, tx: u32, path: &str, perms: &[String]) -> Result<()> {
        let mut a: Vec<&[u8]> = vec![path.as_bytes()];
        a.extend(perms.iter().map(|p| p.as_bytes()));
        self.call(XS_SET_PERMS, tx, args(&a)).map(drop)
    }

    pub fn watch(&mut self, path: &str, token: &str) -> Result<()> {
        self.call(XS_WATCH, 0, args(&[path.as_bytes(), token.as_bytes()])).map(drop)
    }

    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<()> {
        self.call(XS_UNWATCH, 0, args(&[path.as_bytes(), token.as_bytes()])).map(drop)
    }

    /// Starts a transaction; returns its id.
    pub fn start(&mut self) -> Result<u32> {
        let p = self.call(XS_TRANSACTION_START, 0, b"\0".to_vec())?;
        let s = strings(&p);
        s.first()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| Error::Protocol(format!("bad transaction id {:?}", String::from_utf8_lossy(&p))))
    }

    /// Ends transaction `tx`: commit (`EAGAIN` on conflict) or abort.
    pub fn end(&mut self, tx: u32, commit: bool) -> Result<()> {
        self.call(XS_TRANSACTION_END, tx, args(&[if commit { b"T" } else { b"F" }])).map(drop)
    }
}

/// NUL-terminated arguments.
fn args(a: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for s in a {
        v.extend_from_slice(s);
        v.push(0);
    }
    v
}

fn strings(p: &[u8]) -> Vec<String> {
    xenstore::wire::strings(p).into_iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_overrides() {
        assert_eq!(socket_path_from(None, None), PathBuf::from("/run/xenstored/socket"));
        assert_eq!(socket_path_from(None, Some("/tmp/xs".into())), PathBuf::from("/tmp/xs/socket"));
        assert_eq!(socket_path_from(Some("/x/sock".into()), Some("/tmp/xs".into())), PathBuf::from("/x/sock"));
        assert_eq!(socket_path_from(Some("".into()), None), PathBuf::from("/run/xenstored/socket"));
    }

    #[test]
    fn arg_encoding() {
        assert_eq!(args(&[b"/a", b"tok"]), b"/a\0tok\0");
        assert_eq!(strings(b"a\0bc\0"), ["a", "bc"]);
    }
}
