//! Watch firing rules: what fires, for whom, and how paths are reported.

mod common;

use common::H;
use xenstore::{Errno, Request};

fn ev(p: &str, t: &str) -> (String, String) {
    (p.to_string(), t.to_string())
}

fn watch(h: &mut H, domid: u16, path: &str, token: &str) -> Vec<(String, String)> {
    let (r, out) = h.send(
        domid,
        &Request::Watch {
            path,
            token: token.as_bytes(),
        },
    );
    assert_eq!(r.payload, b"OK\0");
    H::events(&out, domid)
}

#[test]
fn initial_event_and_relative_paths() {
    let mut h = H::default();
    h.libxl_domain(5);
    // Fired at once, even for a missing path, with the path as given.
    assert_eq!(watch(&mut h, 5, "device", "tok"), [ev("device", "tok")]);
    assert_eq!(
        watch(&mut h, 5, "nonexistent/x", "t2"),
        [ev("nonexistent/x", "t2")]
    );
    assert_eq!(
        watch(&mut h, 0, "/local/domain/5/device", "abs"),
        [ev("/local/domain/5/device", "abs")]
    );
    // Later events: relative for the relative watch, absolute for the other.
    let (_, out) = h.send(
        0,
        &Request::Write {
            path: "/local/domain/5/device/vif/1/state",
            value: b"1",
        },
    );
    assert_eq!(H::events(&out, 5), [ev("device/vif/1/state", "tok")]);
    assert_eq!(
        H::events(&out, 0),
        [ev("/local/domain/5/device/vif/1/state", "abs")]
    );
    // Duplicates and unwatch.
    assert_eq!(
        h.err(
            5,
            &Request::Watch {
                path: "device",
                token: b"tok"
            }
        ),
        Errno::EEXIST
    );
    // Same path, absolute spelling, same token: a duplicate too.
    assert_eq!(
        h.err(
            5,
            &Request::Watch {
                path: "/local/domain/5/device",
                token: b"tok"
            }
        ),
        Errno::EEXIST
    );
    h.ok(
        5,
        &Request::Unwatch {
            path: "device",
            token: b"tok",
        },
    );
    assert_eq!(
        h.err(
            5,
            &Request::Unwatch {
                path: "device",
                token: b"tok"
            }
        ),
        Errno::ENOENT
    );
    let (_, out) = h.send(
        0,
        &Request::Write {
            path: "/local/domain/5/device/vif/1/state",
            value: b"2",
        },
    );
    assert!(H::events(&out, 5).is_empty());
    assert_eq!(
        h.err(
            5,
            &Request::Watch {
                path: "bad path",
                token: b"x"
            }
        ),
        Errno::EINVAL
    );
}

#[test]
fn what_fires() {
    let mut h = H::default();
    h.write(0, "/a/b/c", "").unwrap();
    h.write(0, "/ab", "").unwrap();
    watch(&mut h, 0, "/a", "A");
    watch(&mut h, 0, "/a/b/c", "C");
    watch(&mut h, 0, "/a/b/c/d/e", "E");
    let fire = |h: &mut H, r: Request| H::events(&h.send(0, &r).1, 0);
    // Create, modify below: ancestors' watches fire with the changed path.
    assert_eq!(
        fire(
            &mut h,
            Request::Write {
                path: "/a/b/x",
                value: b""
            }
        ),
        [ev("/a/b/x", "A")]
    );
    assert_eq!(
        fire(
            &mut h,
            Request::Write {
                path: "/a/b/c",
                value: b"1"
            }
        ),
        [ev("/a/b/c", "A"), ev("/a/b/c", "C")]
    );
    // Creating a deep path fires watches on the new intermediate nodes.
    assert_eq!(
        fire(
            &mut h,
            Request::Write {
                path: "/a/b/c/d/e/f",
                value: b""
            }
        ),
        [
            ev("/a/b/c/d/e/f", "A"),
            ev("/a/b/c/d/e/f", "C"),
            ev("/a/b/c/d/e/f", "E")
        ]
    );
    // A sibling with a common prefix does not fire /a.
    assert!(fire(
        &mut h,
        Request::Write {
            path: "/ab",
            value: b"1"
        }
    )
    .is_empty());
    // MKDIR of an existing node fires nothing; of a new one, fires.
    assert!(fire(&mut h, Request::Mkdir("/a/b")).is_empty());
    assert_eq!(fire(&mut h, Request::Mkdir("/a/m")), [ev("/a/m", "A")]);
    // Perm change.
    let perms = xenstore::Perms::new(0, xenstore::Access::Read);
    assert_eq!(
        fire(
            &mut h,
            Request::SetPerms {
                path: "/a/m",
                perms
            }
        ),
        [ev("/a/m", "A")]
    );
    // Removing an ancestor fires the watches below it (exact) and above it.
    let mut got = fire(&mut h, Request::Rm("/a/b/c"));
    got.sort();
    assert_eq!(
        got,
        [ev("/a/b/c", "A"), ev("/a/b/c", "C"), ev("/a/b/c/d/e", "E")]
    );
    // Nothing fires for failed operations.
    assert!(fire(&mut h, Request::Rm("/zz/top")).is_empty());
    // A watch on / sees everything except special events.
    watch(&mut h, 0, "/", "ROOT");
    assert_eq!(
        fire(
            &mut h,
            Request::Write {
                path: "/q",
                value: b""
            }
        ),
        [ev("/q", "ROOT")]
    );
    let (_, out) = h.send(
        0,
        &Request::Introduce {
            domid: 9,
            gfn: 1,
            evtchn: 1,
        },
    );
    assert!(H::events(&out, 0).is_empty());
}

#[test]
fn permission_filtering() {
    let mut h = H::default();
    h.libxl_domain(5);
    h.libxl_domain(6);
    // Domain 6 may watch domain 5's keys, but only gets the initial event.
    assert_eq!(
        watch(&mut h, 6, "/local/domain/5/data", "spy"),
        [ev("/local/domain/5/data", "spy")]
    );
    watch(&mut h, 5, "data", "own");
    let (_, out) = h.send(
        5,
        &Request::Write {
            path: "data/secret",
            value: b"42",
        },
    );
    assert!(H::events(&out, 6).is_empty());
    assert_eq!(H::events(&out, 5), [ev("data/secret", "own")]);
    // Readable through the parent: a node domain 6 cannot read itself, in a
    // directory it can read, still notifies it.
    h.set_perms(5, "data", "n5 r6").unwrap();
    h.set_perms(5, "data/secret", "n5").unwrap();
    let (_, out) = h.send(
        5,
        &Request::Write {
            path: "data/secret",
            value: b"43",
        },
    );
    assert_eq!(
        H::events(&out, 6),
        [ev("/local/domain/5/data/secret", "spy")]
    );
    // Losing access by a perm change: the old perms still let it see that.
    h.set_perms(5, "data/secret", "n5 r6").unwrap();
    h.set_perms(5, "data", "n5").unwrap();
    let (_, out) = h.send(
        5,
        &Request::SetPerms {
            path: "data/secret",
            perms: xenstore::Perms::new(5, xenstore::Access::None),
        },
    );
    assert_eq!(
        H::events(&out, 6),
        [ev("/local/domain/5/data/secret", "spy")]
    );
    let (_, out) = h.send(
        5,
        &Request::Write {
            path: "data/secret",
            value: b"44",
        },
    );
    assert!(H::events(&out, 6).is_empty());
    // Dom0 sees everything.
    watch(&mut h, 0, "/local/domain/5", "dom0");
    let (_, out) = h.send(5, &Request::Rm("data/secret"));
    assert_eq!(
        H::events(&out, 0),
        [ev("/local/domain/5/data/secret", "dom0")]
    );
}

#[test]
fn special_watches() {
    let mut h = H::default();
    assert_eq!(
        watch(&mut h, 0, "@introduceDomain", "I"),
        [ev("@introduceDomain", "I")]
    );
    watch(&mut h, 0, "@releaseDomain", "R");
    assert_eq!(
        watch(&mut h, 5, "@releaseDomain", "R5"),
        [ev("@releaseDomain", "R5")]
    );
    let (_, out) = h.send(
        0,
        &Request::Introduce {
            domid: 7,
            gfn: 1,
            evtchn: 1,
        },
    );
    assert_eq!(H::events(&out, 0), [ev("@introduceDomain", "I")]);
    // Unprivileged watchers need read access to the special path.
    let (_, out) = h.send(0, &Request::Release(7));
    assert_eq!(H::events(&out, 0), [ev("@releaseDomain", "R")]);
    assert!(H::events(&out, 5).is_empty());
    h.set_perms(0, "@releaseDomain", "n0 r5").unwrap();
    h.ok(
        0,
        &Request::Introduce {
            domid: 7,
            gfn: 1,
            evtchn: 1,
        },
    );
    let out = h.s.domain_gone(7);
    assert_eq!(H::events(&out, 5), [ev("@releaseDomain", "R5")]);
    assert_eq!(
        H::events(&h.s.domain_shutdown(), 0),
        [ev("@releaseDomain", "R")]
    );
}

#[test]
fn reset_and_disconnect() {
    let mut h = H::default();
    watch(&mut h, 0, "/x", "t");
    h.ok(0, &Request::ResetWatches);
    let (_, out) = h.send(
        0,
        &Request::Write {
            path: "/x",
            value: b"",
        },
    );
    assert!(out.is_empty());
    watch(&mut h, 0, "/x", "t");
    h.s.disconnect(common::conn(0));
    let (_, out) = h.send(
        0,
        &Request::Write {
            path: "/x",
            value: b"1",
        },
    );
    assert!(out.is_empty());
}
