//! Watches: a (path, token) pair per connection; an `XS_WATCH_EVENT` with the
//! changed path and the token is sent whenever the path or anything below it
//! is created, modified, removed or has its perms changed.
//!
//! Rules (xenstored's `fire_watches`):
//! - A [`Change`] is either non-exact (fires watches on the path and all its
//!   ancestors) or exact (fires only watches on that very path: descendants
//!   of a removed node, and the special `@...` events).
//! - A watch registered with a relative path reports paths relative to the
//!   connection's home (`/local/domain/<id>`).
//! - An unprivileged connection only sees changes to nodes it may read: the
//!   node itself, its parent, or, for a perm change, the old perms.

use crate::path::{self, is_child};
use crate::perms::{Caller, Perms};
use crate::wire::Message;
use crate::Errno;

/// Something that happened to a node, to be matched against watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Absolute path, or a special `@...` name.
    pub path: String,
    /// Only watches on exactly this path fire.
    pub exact: bool,
    /// A connection needs read access through one of these to see the change.
    pub perms: Vec<Perms>,
}

impl Change {
    /// A special event (`@introduceDomain`, `@releaseDomain`).
    pub fn special(name: &str, perms: Perms) -> Change {
        Change {
            path: name.to_owned(),
            exact: true,
            perms: vec![perms],
        }
    }

    /// xenstored's `watch_permitted`.
    pub fn visible_to(&self, caller: &Caller) -> bool {
        caller.privileged || self.perms.iter().any(|p| p.can_read(caller))
    }
}

/// One registered watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    /// Canonical (absolute or `@...`) path.
    pub path: String,
    pub token: Vec<u8>,
    /// Home prefix stripped from reported paths, for relative watches.
    pub relative_to: Option<String>,
}

impl Watch {
    pub fn matches(&self, change: &Change) -> bool {
        if change.exact {
            change.path == self.path
        } else {
            is_child(&change.path, &self.path)
        }
    }

    /// The path as reported to this watch's owner.
    pub fn report<'a>(&self, path: &'a str) -> &'a str {
        match &self.relative_to {
            Some(home) => match path.strip_prefix(home.as_str()) {
                Some(rest) => rest.strip_prefix('/').unwrap_or(rest),
                None => path,
            },
            None => path,
        }
    }

    /// The event for this watch.
    pub fn event(&self, path: &str) -> Option<Message> {
        Message::watch_event(self.report(path), &self.token)
    }
}

/// The watches of one connection.
#[derive(Clone, Debug, Default)]
pub struct WatchList(Vec<Watch>);

impl WatchList {
    /// Registers a watch; a duplicate (path, token) is `EEXIST`.
    pub fn add(&mut self, watch: Watch) -> Result<(), Errno> {
        if self
            .0
            .iter()
            .any(|w| w.path == watch.path && w.token == watch.token)
        {
            return Err(Errno::EEXIST);
        }
        self.0.push(watch);
        Ok(())
    }

    /// Removes the watch on canonical `path` with `token`, else `ENOENT`.
    pub fn remove(&mut self, path: &str, token: &[u8]) -> Result<(), Errno> {
        let i = self
            .0
            .iter()
            .position(|w| w.path == path && w.token == token)
            .ok_or(Errno::ENOENT)?;
        self.0.remove(i);
        Ok(())
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Watch> {
        self.0.iter()
    }

    /// Events for `change` as seen by `caller` (none if it may not see it).
    pub fn events<'a>(
        &'a self,
        change: &'a Change,
        caller: &Caller,
    ) -> impl Iterator<Item = Message> + 'a {
        let visible = change.visible_to(caller);
        self.0
            .iter()
            .filter(move |w| visible && w.matches(change))
            .filter_map(|w| w.event(&change.path))
    }
}

/// Builds the watch for a WATCH request path: relative paths are made
/// absolute for `domid` and remembered as relative. `max_path_len` as in
/// [`path::is_valid`].
pub fn new_watch(
    domid: crate::DomId,
    path: &str,
    token: &[u8],
    max_path_len: usize,
) -> Result<Watch, Errno> {
    if path::is_special(path) {
        if path.len() > xen_abi::io::xs_wire::XENSTORE_REL_PATH_MAX {
            return Err(Errno::EINVAL);
        }
        return Ok(Watch {
            path: path.to_owned(),
            token: token.to_vec(),
            relative_to: None,
        });
    }
    let canonical = path::canonicalize(domid, path);
    if !path::is_valid(&canonical, max_path_len) {
        return Err(Errno::EINVAL);
    }
    Ok(Watch {
        path: canonical,
        token: token.to_vec(),
        relative_to: (!path.starts_with('/')).then(|| path::domain_path(domid)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perms::Access;

    #[test]
    fn matching_and_reporting() {
        let w = new_watch(5, "device", b"tok", 2048).unwrap();
        assert_eq!(w.path, "/local/domain/5/device");
        let ch = |p: &str, exact| Change {
            path: p.into(),
            exact,
            perms: vec![Perms::new(5, Access::None)],
        };
        assert!(w.matches(&ch("/local/domain/5/device/vbd/1", false)));
        assert!(w.matches(&ch("/local/domain/5/device", true)));
        assert!(!w.matches(&ch("/local/domain/5/device/vbd", true)));
        assert!(!w.matches(&ch("/local/domain/5/devices", false)));
        assert_eq!(w.report("/local/domain/5/device/vbd"), "device/vbd");
        let abs = new_watch(5, "/local/domain/5/device", b"t", 2048).unwrap();
        assert_eq!(
            abs.report("/local/domain/5/device/vbd"),
            "/local/domain/5/device/vbd"
        );
        let mut l = WatchList::default();
        l.add(w.clone()).unwrap();
        assert_eq!(l.add(w), Err(Errno::EEXIST));
        let c = ch("/local/domain/5/device/x", false);
        assert_eq!(l.events(&c, &Caller::domu(5)).count(), 1);
        assert_eq!(l.events(&c, &Caller::domu(6)).count(), 0);
        assert_eq!(
            l.remove("/local/domain/5/device", b"nope"),
            Err(Errno::ENOENT)
        );
        assert_eq!(l.remove("/local/domain/5/device", b"tok"), Ok(()));
        assert!(new_watch(5, "bad path", b"t", 2048).is_err());
        assert!(new_watch(5, "", b"t", 2048).is_err());
    }
}
