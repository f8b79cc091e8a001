//! Node permissions: an owner plus an ACL, as strings `n|r|w|b<domid>`.
//!
//! The first entry names the owner (who has full access) and gives the
//! access of every domain not listed later. Domain 0 (the privileged domain)
//! has full access everywhere (xenstored's `perm_for_conn`).

use core::fmt;

use crate::{DomId, Errno};

/// The access one ACL entry grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// `n`
    None,
    /// `r`
    Read,
    /// `w`
    Write,
    /// `b` (read and write)
    Both,
}

impl Access {
    fn letter(self) -> char {
        match self {
            Access::None => 'n',
            Access::Read => 'r',
            Access::Write => 'w',
            Access::Both => 'b',
        }
    }

    fn bits(self) -> u8 {
        match self {
            Access::None => 0,
            Access::Read => READ,
            Access::Write => WRITE,
            Access::Both => READ | WRITE,
        }
    }
}

/// Permission bits as computed for a caller (`XS_PERM_*`).
pub const READ: u8 = 1;
pub const WRITE: u8 = 2;
pub const OWNER: u8 = 4;
pub const ALL: u8 = READ | WRITE | OWNER;

/// One ACL entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Perm {
    pub domid: DomId,
    pub access: Access,
}

impl Perm {
    pub const fn new(access: Access, domid: DomId) -> Perm {
        Perm { domid, access }
    }

    /// Parses `n5`, `r0`, `b12`, `w3` (decimal domid).
    pub fn parse(s: &[u8]) -> Result<Perm, Errno> {
        let (&letter, digits) = s.split_first().ok_or(Errno::EINVAL)?;
        let access = match letter {
            b'n' => Access::None,
            b'r' => Access::Read,
            b'w' => Access::Write,
            b'b' => Access::Both,
            _ => return Err(Errno::EINVAL),
        };
        Ok(Perm::new(access, parse_domid(digits)?))
    }
}

impl fmt::Display for Perm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.access.letter(), self.domid)
    }
}

/// Parses a decimal domid (`0..=65535`), strictly.
pub fn parse_domid(s: &[u8]) -> Result<DomId, Errno> {
    if s.is_empty() || s.len() > 5 || !s.iter().all(u8::is_ascii_digit) {
        return Err(Errno::EINVAL);
    }
    core::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(Errno::EINVAL)
}

/// Who is asking: the connection's domain, whether it is privileged (dom0),
/// and the domain it may act for (`XS_SET_TARGET`, device-model stubdoms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub domid: DomId,
    pub privileged: bool,
    pub target: Option<DomId>,
}

impl Caller {
    /// Dom0 and its tools.
    pub const DOM0: Caller = Caller {
        domid: 0,
        privileged: true,
        target: None,
    };

    /// An unprivileged guest.
    pub const fn domu(domid: DomId) -> Caller {
        Caller {
            domid,
            privileged: false,
            target: None,
        }
    }

    fn is(&self, domid: DomId) -> bool {
        self.domid == domid || self.target == Some(domid)
    }
}

/// A node's permissions: never empty, the first entry is the owner.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Perms(Vec<Perm>);

impl Perms {
    /// `owner` with `others` as the default access for unlisted domains.
    pub fn new(owner: DomId, others: Access) -> Perms {
        Perms(vec![Perm::new(others, owner)])
    }

    /// From a list of entries; `None` if empty.
    pub fn from_vec(perms: Vec<Perm>) -> Option<Perms> {
        (!perms.is_empty()).then_some(Perms(perms))
    }

    /// Adds an ACL entry (builder style).
    pub fn with(mut self, access: Access, domid: DomId) -> Perms {
        self.0.push(Perm::new(access, domid));
        self
    }

    pub fn owner(&self) -> DomId {
        self.0[0].domid
    }

    pub fn set_owner(&mut self, domid: DomId) {
        self.0[0].domid = domid;
    }

    pub fn entries(&self) -> &[Perm] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Parses NUL-separated perm strings (`SET_PERMS` arguments).
    pub fn parse<'a>(strings: impl IntoIterator<Item = &'a [u8]>) -> Result<Perms, Errno> {
        let v = strings
            .into_iter()
            .map(Perm::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Perms::from_vec(v).ok_or(Errno::EINVAL)
    }

    /// The `GET_PERMS` reply payload: each entry NUL-terminated.
    pub fn to_payload(&self) -> Vec<u8> {
        self.0
            .iter()
            .flat_map(|p| format!("{p}\0").into_bytes())
            .collect()
    }

    /// `perm_for_conn`: the `READ|WRITE|OWNER` bits `caller` has.
    pub fn access(&self, caller: &Caller) -> u8 {
        if caller.privileged || caller.is(self.owner()) {
            return ALL;
        }
        self.0[1..]
            .iter()
            .find(|p| caller.is(p.domid))
            .unwrap_or(&self.0[0])
            .access
            .bits()
    }

    pub fn can_read(&self, caller: &Caller) -> bool {
        self.access(caller) & READ != 0
    }

    /// Drops every reference to `domid`: ownership goes to dom0 and ACL
    /// entries naming it are removed (xenstored's XSA-322 handling, so a
    /// later domain reusing the id inherits nothing). Returns true if changed.
    pub fn forget(&mut self, domid: DomId) -> bool {
        let before = self.0.len();
        let owner = self.0[0];
        self.0.retain(|p| p.domid != domid);
        let mut changed = self.0.len() != before;
        if owner.domid == domid {
            self.0.insert(0, Perm::new(owner.access, 0));
            changed = true;
        }
        changed
    }
}

impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let p = Perms::parse([&b"n0"[..], b"r5", b"b7", b"w65535"]).unwrap();
        assert_eq!(p.to_string(), "n0 r5 b7 w65535");
        assert_eq!(p.to_payload(), b"n0\0r5\0b7\0w65535\0");
        for bad in [&b""[..], b"x1", b"r", b"r-1", b"r65536", b"r1a", b"r 1"] {
            assert_eq!(Perm::parse(bad), Err(Errno::EINVAL), "{bad:?}");
        }
        assert_eq!(Perms::parse(core::iter::empty()), Err(Errno::EINVAL));
    }

    #[test]
    fn access_rules() {
        let p = Perms::new(0, Access::None)
            .with(Access::Read, 5)
            .with(Access::Write, 6);
        assert_eq!(p.access(&Caller::DOM0), ALL);
        assert_eq!(p.access(&Caller::domu(5)), READ);
        assert_eq!(p.access(&Caller::domu(6)), WRITE);
        assert_eq!(p.access(&Caller::domu(7)), 0);
        let owned = Perms::new(5, Access::Read);
        assert_eq!(owned.access(&Caller::domu(5)), ALL);
        assert_eq!(owned.access(&Caller::domu(9)), READ);
        let dm = Caller {
            target: Some(5),
            ..Caller::domu(9)
        };
        assert_eq!(owned.access(&dm), ALL);
    }

    #[test]
    fn forget_domain() {
        let mut p = Perms::new(5, Access::Read)
            .with(Access::Both, 5)
            .with(Access::Read, 6);
        assert!(p.forget(5));
        assert_eq!(p.to_string(), "r0 r6");
        assert!(!p.forget(9));
    }
}
