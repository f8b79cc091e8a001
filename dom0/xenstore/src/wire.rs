//! The wire protocol: a 16-byte `xsd_sockmsg` header and up to
//! `XENSTORE_PAYLOAD_MAX` payload bytes, the same on a domain's ring and on
//! xenstored's unix socket.
//!
//! Request payloads are NUL-terminated strings, except `XS_WRITE`, whose
//! value follows the path's NUL unterminated. Successful replies without
//! data carry `"OK\0"`; errors are `XS_ERROR` with the errno name and a NUL.

use core::fmt;

use xen_abi::io::xs_wire::*;
use zerocopy::{FromBytes, IntoBytes};

use crate::perms::{parse_domid, Perms};
use crate::{DomId, Errno};

/// Header size.
pub const HEADER_LEN: usize = core::mem::size_of::<XsdSockmsg>();

/// A fatal framing error: the connection must be dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// The header announces a payload above `XENSTORE_PAYLOAD_MAX`.
    Oversize(u32),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Oversize(len) => write!(
                f,
                "xenstore payload of {len} bytes exceeds {XENSTORE_PAYLOAD_MAX}"
            ),
        }
    }
}

impl std::error::Error for WireError {}

/// One message (request, reply or watch event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// `XS_*`.
    pub ty: u32,
    pub req_id: u32,
    pub tx_id: u32,
    pub payload: Vec<u8>,
}

impl Message {
    pub fn new(ty: u32, req_id: u32, tx_id: u32, payload: impl Into<Vec<u8>>) -> Message {
        Message {
            ty,
            req_id,
            tx_id,
            payload: payload.into(),
        }
    }

    /// Header plus payload, ready for a ring or socket.
    pub fn encode(&self) -> Vec<u8> {
        let hdr = XsdSockmsg {
            type_: self.ty,
            req_id: self.req_id,
            tx_id: self.tx_id,
            len: self.payload.len() as u32,
        };
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        out.extend_from_slice(hdr.as_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// A reply to `req` (type, req_id and tx_id echoed). A payload above the
    /// maximum becomes `E2BIG`, as in xenstored's `send_reply`.
    pub fn reply(req: &Message, payload: impl Into<Vec<u8>>) -> Message {
        let payload = payload.into();
        if payload.len() > XENSTORE_PAYLOAD_MAX {
            return Message::error(req, Errno::E2BIG);
        }
        Message::new(req.ty, req.req_id, req.tx_id, payload)
    }

    /// `"OK\0"`.
    pub fn ok(req: &Message) -> Message {
        Message::reply(req, &b"OK\0"[..])
    }

    /// `XS_ERROR` with the errno name.
    pub fn error(req: &Message, err: Errno) -> Message {
        let mut payload = err.name().as_bytes().to_vec();
        payload.push(0);
        Message::new(XS_ERROR, req.req_id, req.tx_id, payload)
    }

    /// `XS_WATCH_EVENT` (`path\0token\0`, req_id = tx_id = 0); `None` if it
    /// would not fit in a message (xenstored drops such events too).
    pub fn watch_event(path: &str, token: &[u8]) -> Option<Message> {
        let mut payload = Vec::with_capacity(path.len() + token.len() + 2);
        payload.extend_from_slice(path.as_bytes());
        payload.push(0);
        payload.extend_from_slice(token);
        payload.push(0);
        (payload.len() <= XENSTORE_PAYLOAD_MAX).then(|| Message::new(XS_WATCH_EVENT, 0, 0, payload))
    }

    /// The errno of an `XS_ERROR` reply.
    pub fn errno(&self) -> Option<Errno> {
        (self.ty == XS_ERROR).then(|| Errno::from_name(&self.payload).unwrap_or(Errno::EINVAL))
    }

    /// The NUL-terminated strings of the payload (bytes after the last NUL
    /// are ignored, as in xenstored's `get_strings`).
    pub fn strings(&self) -> Vec<&[u8]> {
        strings(&self.payload)
    }
}

/// NUL-terminated strings of `payload`; trailing unterminated bytes ignored.
pub fn strings(payload: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = payload.split(|&b| b == 0).collect();
    v.pop(); // after the last NUL (or the whole payload if none)
    v
}

/// Incremental decoder: accepts bytes in arbitrary chunks and yields whole
/// messages. Holds at most one header and one maximum-size payload.
#[derive(Debug, Default)]
pub struct Decoder {
    hdr: [u8; HEADER_LEN],
    hdr_len: usize,
    current: Option<Message>,
    want: usize,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Consumes all of `data`, appending complete messages to `out`. After an
    /// error the decoder (and the connection) is unusable.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Message>) -> Result<(), WireError> {
        while !data.is_empty() {
            match self.current.as_mut() {
                None => {
                    let n = (HEADER_LEN - self.hdr_len).min(data.len());
                    self.hdr[self.hdr_len..self.hdr_len + n].copy_from_slice(&data[..n]);
                    self.hdr_len += n;
                    data = &data[n..];
                    if self.hdr_len == HEADER_LEN {
                        self.hdr_len = 0;
                        self.start()?;
                    }
                }
                Some(msg) => {
                    let n = (self.want - msg.payload.len()).min(data.len());
                    msg.payload.extend_from_slice(&data[..n]);
                    data = &data[n..];
                }
            }
            self.finish(out);
        }
        self.finish(out);
        Ok(())
    }

    /// Bytes still missing from the header or payload being received (a header's worth
    /// when idle): reading no more than this keeps a reader at message granularity.
    pub fn needed(&self) -> usize {
        match &self.current {
            Some(m) => self.want - m.payload.len(),
            None => HEADER_LEN - self.hdr_len,
        }
    }

    /// True if no partial message is buffered.
    pub fn is_idle(&self) -> bool {
        self.hdr_len == 0 && self.current.is_none()
    }

    fn start(&mut self) -> Result<(), WireError> {
        // The buffer has exactly the header's size, so this cannot fail.
        let h = XsdSockmsg::read_from_bytes(&self.hdr[..]).unwrap_or_default();
        if h.len as usize > XENSTORE_PAYLOAD_MAX {
            return Err(WireError::Oversize(h.len));
        }
        self.want = h.len as usize;
        self.current = Some(Message {
            ty: h.type_,
            req_id: h.req_id,
            tx_id: h.tx_id,
            payload: Vec::with_capacity(self.want),
        });
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<Message>) {
        if self
            .current
            .as_ref()
            .is_some_and(|m| m.payload.len() == self.want)
        {
            out.extend(self.current.take());
        }
    }
}

/// A parsed request. Paths are as sent (possibly relative).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    Control(Vec<&'a [u8]>),
    Directory(&'a str),
    Read(&'a str),
    GetPerms(&'a str),
    Watch {
        path: &'a str,
        token: &'a [u8],
    },
    Unwatch {
        path: &'a str,
        token: &'a [u8],
    },
    TransactionStart,
    /// `true` = commit, `false` = abort.
    TransactionEnd(bool),
    Introduce {
        domid: DomId,
        gfn: u64,
        evtchn: u32,
    },
    Release(DomId),
    GetDomainPath(DomId),
    Write {
        path: &'a str,
        value: &'a [u8],
    },
    Mkdir(&'a str),
    Rm(&'a str),
    SetPerms {
        path: &'a str,
        perms: Perms,
    },
    IsDomainIntroduced(DomId),
    Resume(DomId),
    SetTarget {
        domid: DomId,
        target: DomId,
    },
    ResetWatches,
    DirectoryPart {
        path: &'a str,
        offset: usize,
    },
}

fn utf8(s: &[u8]) -> Result<&str, Errno> {
    core::str::from_utf8(s).map_err(|_| Errno::EINVAL)
}

/// xenstored's `onearg`: exactly one NUL, at the end.
fn onearg(p: &[u8]) -> Result<&[u8], Errno> {
    match p.iter().position(|&b| b == 0) {
        Some(i) if i + 1 == p.len() => Ok(&p[..i]),
        _ => Err(Errno::EINVAL),
    }
}

fn number<T: core::str::FromStr>(s: &[u8]) -> Result<T, Errno> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return Err(Errno::EINVAL);
    }
    utf8(s)?.parse().map_err(|_| Errno::EINVAL)
}

/// C `atoi` on unsigned input: leading digits, else 0 (saturating).
fn atoi(s: &[u8]) -> usize {
    s.iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0usize, |n, &d| {
            n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
        })
}

impl<'a> Request<'a> {
    /// Parses a request payload. Unknown or reply-only types give `ENOSYS`,
    /// malformed arguments `EINVAL`.
    pub fn parse(ty: u32, p: &'a [u8]) -> Result<Request<'a>, Errno> {
        let path = |p| onearg(p).and_then(utf8);
        let domid = |p| onearg(p).and_then(parse_domid);
        let s = strings(p);
        Ok(match ty {
            XS_CONTROL if !s.is_empty() => Request::Control(s),
            XS_CONTROL => return Err(Errno::EINVAL),
            XS_DIRECTORY => Request::Directory(path(p)?),
            XS_READ => Request::Read(path(p)?),
            XS_GET_PERMS => Request::GetPerms(path(p)?),
            XS_MKDIR => Request::Mkdir(path(p)?),
            XS_RM => Request::Rm(path(p)?),
            XS_WATCH | XS_UNWATCH => {
                let [path, token] = s[..] else {
                    return Err(Errno::EINVAL);
                };
                let path = utf8(path)?;
                if ty == XS_WATCH {
                    Request::Watch { path, token }
                } else {
                    Request::Unwatch { path, token }
                }
            }
            XS_TRANSACTION_START => Request::TransactionStart,
            XS_TRANSACTION_END => match onearg(p)? {
                b"T" => Request::TransactionEnd(true),
                b"F" => Request::TransactionEnd(false),
                _ => return Err(Errno::EINVAL),
            },
            XS_INTRODUCE => {
                let [d, gfn, port, ..] = s[..] else {
                    return Err(Errno::EINVAL);
                };
                let evtchn: u32 = number(port)?;
                if evtchn == 0 {
                    return Err(Errno::EINVAL);
                }
                Request::Introduce {
                    domid: parse_domid(d)?,
                    gfn: number(gfn)?,
                    evtchn,
                }
            }
            XS_RELEASE => Request::Release(domid(p)?),
            XS_GET_DOMAIN_PATH => Request::GetDomainPath(domid(p)?),
            XS_IS_DOMAIN_INTRODUCED => Request::IsDomainIntroduced(domid(p)?),
            XS_RESUME => Request::Resume(domid(p)?),
            XS_WRITE => {
                let path = *s.first().ok_or(Errno::EINVAL)?;
                Request::Write {
                    path: utf8(path)?,
                    value: &p[path.len() + 1..],
                }
            }
            XS_SET_PERMS => {
                let (path, perms) = s.split_first().ok_or(Errno::EINVAL)?;
                Request::SetPerms {
                    path: utf8(path)?,
                    perms: Perms::parse(perms.iter().copied())?,
                }
            }
            XS_SET_TARGET => {
                let [d, t, ..] = s[..] else {
                    return Err(Errno::EINVAL);
                };
                Request::SetTarget {
                    domid: parse_domid(d)?,
                    target: parse_domid(t)?,
                }
            }
            XS_RESET_WATCHES => Request::ResetWatches,
            XS_DIRECTORY_PART => {
                let [path, off] = s[..] else {
                    return Err(Errno::EINVAL);
                };
                Request::DirectoryPart {
                    path: utf8(path)?,
                    offset: atoi(off),
                }
            }
            _ => return Err(Errno::ENOSYS),
        })
    }

    /// The message type.
    pub fn ty(&self) -> u32 {
        match self {
            Request::Control(_) => XS_CONTROL,
            Request::Directory(_) => XS_DIRECTORY,
            Request::Read(_) => XS_READ,
            Request::GetPerms(_) => XS_GET_PERMS,
            Request::Watch { .. } => XS_WATCH,
            Request::Unwatch { .. } => XS_UNWATCH,
            Request::TransactionStart => XS_TRANSACTION_START,
            Request::TransactionEnd(_) => XS_TRANSACTION_END,
            Request::Introduce { .. } => XS_INTRODUCE,
            Request::Release(_) => XS_RELEASE,
            Request::GetDomainPath(_) => XS_GET_DOMAIN_PATH,
            Request::Write { .. } => XS_WRITE,
            Request::Mkdir(_) => XS_MKDIR,
            Request::Rm(_) => XS_RM,
            Request::SetPerms { .. } => XS_SET_PERMS,
            Request::IsDomainIntroduced(_) => XS_IS_DOMAIN_INTRODUCED,
            Request::Resume(_) => XS_RESUME,
            Request::SetTarget { .. } => XS_SET_TARGET,
            Request::ResetWatches => XS_RESET_WATCHES,
            Request::DirectoryPart { .. } => XS_DIRECTORY_PART,
        }
    }

    /// The request payload (what a client sends).
    pub fn payload(&self) -> Vec<u8> {
        fn args<S: AsRef<[u8]>>(a: impl IntoIterator<Item = S>) -> Vec<u8> {
            a.into_iter()
                .flat_map(|s| s.as_ref().iter().copied().chain([0]).collect::<Vec<_>>())
                .collect()
        }
        let s = |x: &str| args([x]);
        match self {
            Request::Control(a) => args(a.iter()),
            Request::Directory(p)
            | Request::Read(p)
            | Request::GetPerms(p)
            | Request::Mkdir(p)
            | Request::Rm(p) => s(p),
            Request::Watch { path, token } | Request::Unwatch { path, token } => {
                args([path.as_bytes(), token])
            }
            Request::TransactionStart | Request::ResetWatches => s(""),
            Request::TransactionEnd(c) => s(if *c { "T" } else { "F" }),
            Request::Introduce { domid, gfn, evtchn } => {
                args([domid.to_string(), gfn.to_string(), evtchn.to_string()])
            }
            Request::Release(d)
            | Request::GetDomainPath(d)
            | Request::IsDomainIntroduced(d)
            | Request::Resume(d) => s(&d.to_string()),
            Request::Write { path, value } => [path.as_bytes(), b"\0", value].concat(),
            Request::SetPerms { path, perms } => [s(path), perms.to_payload()].concat(),
            Request::SetTarget { domid, target } => args([domid.to_string(), target.to_string()]),
            Request::DirectoryPart { path, offset } => args([path.to_string(), offset.to_string()]),
        }
    }

    /// The whole request message.
    pub fn to_message(&self, req_id: u32, tx_id: u32) -> Message {
        Message::new(self.ty(), req_id, tx_id, self.payload())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_split() {
        assert_eq!(strings(b"a\0bc\0"), vec![&b"a"[..], b"bc"]);
        assert_eq!(strings(b"a\0bc"), vec![&b"a"[..]]);
        assert!(strings(b"").is_empty());
        assert_eq!(strings(b"\0"), vec![&b""[..]]);
    }

    #[test]
    fn onearg_rules() {
        assert_eq!(onearg(b"x\0"), Ok(&b"x"[..]));
        assert_eq!(onearg(b"\0"), Ok(&b""[..]));
        for bad in [&b""[..], b"x", b"x\0y", b"x\0\0"] {
            assert_eq!(onearg(bad), Err(Errno::EINVAL));
        }
    }

    #[test]
    fn atoi_like_c() {
        assert_eq!(atoi(b"12x"), 12);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(atoi(b"99999999999999999999999999"), usize::MAX);
    }
}
