//! Every operation, its error codes, the permission matrix and quotas.

mod common;

use common::{names, H};
use xen_abi::io::xs_wire::*;
use xenstore::perms::Access;
use xenstore::{Action, Errno, Message, Perms, Quotas, Request, Server};

fn h5() -> H {
    let mut h = H::default();
    h.libxl_domain(5);
    h.libxl_domain(6);
    h
}

#[test]
fn fresh_store() {
    let mut h = H::default();
    assert_eq!(h.dir(0, "/").unwrap(), ["tool"]);
    assert_eq!(h.dir(0, "/tool").unwrap(), ["xenstored"]);
    assert_eq!(h.ok(0, &Request::GetPerms("/")), b"n0\0");
    assert_eq!(h.err(5, &Request::Read("/")), Errno::EACCES);
}

#[test]
fn read_write_mkdir() {
    let mut h = H::default();
    assert_eq!(h.read(0, "/a"), Err(Errno::ENOENT));
    h.write(0, "/a/b/c", "v").unwrap();
    assert_eq!(h.read(0, "/a/b/c").unwrap(), b"v");
    assert_eq!(h.read(0, "/a/b").unwrap(), b"");
    assert_eq!(h.dir(0, "/a").unwrap(), ["b"]);
    // Binary value with NULs, not terminated.
    h.ok(
        0,
        &Request::Write {
            path: "/bin",
            value: b"\0x\0\xff",
        },
    );
    assert_eq!(h.read(0, "/bin").unwrap(), b"\0x\0\xff");
    // Empty value.
    h.write(0, "/a/b/c", "").unwrap();
    assert_eq!(h.read(0, "/a/b/c").unwrap(), b"");
    // Relative paths for dom0 are under /local/domain/0.
    h.write(0, "rel", "1").unwrap();
    assert_eq!(h.read(0, "/local/domain/0/rel").unwrap(), b"1");
    // MKDIR: creates, and existing is fine (value kept).
    h.ok(0, &Request::Mkdir("/m/n"));
    h.write(0, "/m/n", "keep").unwrap();
    h.ok(0, &Request::Mkdir("/m/n"));
    assert_eq!(h.read(0, "/m/n").unwrap(), b"keep");
    // Children listed in creation order.
    for c in ["z", "a", "m"] {
        h.write(0, &format!("/order/{c}"), "").unwrap();
    }
    assert_eq!(h.dir(0, "/order").unwrap(), ["z", "a", "m"]);
}

#[test]
fn malformed_requests() {
    let mut h = H::default();
    let raw = |ty, p: &[u8]| Message::new(ty, 0, 0, p.to_vec());
    for (ty, p) in [
        (XS_READ, &b"/a"[..]),     // no NUL
        (XS_READ, b"/a\0/b\0"),    // two args
        (XS_READ, b""),            // nothing
        (XS_WRITE, b"/a"),         // no NUL after path
        (XS_WATCH, b"/a\0"),       // missing token
        (XS_WATCH, b"/a\0t\0x\0"), // extra arg
        (XS_TRANSACTION_END, b"X\0"),
        (XS_SET_PERMS, b"/a\0"),     // no perms
        (XS_SET_PERMS, b"/a\0q5\0"), // bad perm
        (XS_GET_DOMAIN_PATH, b"abc\0"),
        (XS_GET_DOMAIN_PATH, b"70000\0"),
        (XS_INTRODUCE, b"1\0\0"),
        (XS_INTRODUCE, b"1\x002\x000\0"), // port 0
        (XS_DIRECTORY_PART, b"/\0"),
        (XS_CONTROL, b""),
        (XS_READ, b"/\xff\0"), // not UTF-8
        (XS_READ, b"/a b\0"),  // bad character
        (XS_READ, b"/a/\0"),   // trailing slash
        (XS_READ, b"//\0"),
        (XS_WRITE, b"\0v"), // empty relative path
    ] {
        let (m, _) = h.send_msg(0, &raw(ty, p));
        assert_eq!(m.errno(), Some(Errno::EINVAL), "{ty} {p:?}");
    }
    for ty in [
        XS_WATCH_EVENT,
        XS_ERROR,
        20,
        XS_TYPE_COUNT,
        0xffff,
        u32::MAX,
    ] {
        let (m, _) = h.send_msg(0, &raw(ty, b"/\0"));
        assert_eq!(m.errno(), Some(Errno::ENOSYS), "{ty}");
        assert_eq!(m.payload, b"ENOSYS\0");
    }
    // Path length: 2048 after the domain prefix.
    let long = format!("/local/domain/5/{}", "x".repeat(2048));
    h.write(0, &long, "").unwrap();
    assert_eq!(h.write(0, &format!("{long}x"), ""), Err(Errno::EINVAL));
}

#[test]
fn rm_rules() {
    let mut h = H::default();
    h.write(0, "/a/b/c", "1").unwrap();
    h.write(0, "/a/d", "2").unwrap();
    h.ok(0, &Request::Rm("/a/b"));
    assert_eq!(h.read(0, "/a/b/c"), Err(Errno::ENOENT));
    assert_eq!(h.dir(0, "/a").unwrap(), ["d"]);
    // Missing node with existing parent: fine. Missing parent: ENOENT.
    h.ok(0, &Request::Rm("/a/nope"));
    assert_eq!(h.err(0, &Request::Rm("/x/y")), Errno::ENOENT);
    assert_eq!(h.err(0, &Request::Rm("/")), Errno::EINVAL);
    h.ok(0, &Request::Rm("/a"));
    assert_eq!(h.dir(0, "/").unwrap(), ["tool"]);
    assert_eq!(h.s.store().entries(0), 3);
}

#[test]
fn directory_part_pages_and_e2big() {
    let mut h = H::default();
    let all: Vec<String> = (0..300)
        .map(|i| format!("child-with-a-longish-name-{i:04}"))
        .collect();
    for c in &all {
        h.write(0, &format!("/big/{c}"), "").unwrap();
    }
    // The full list exceeds a message.
    assert_eq!(h.err(0, &Request::Directory("/big")), Errno::E2BIG);
    let mut got = Vec::new();
    let mut offset = 0;
    let mut gen = None;
    loop {
        let p = h.ok(
            0,
            &Request::DirectoryPart {
                path: "/big",
                offset,
            },
        );
        assert!(p.len() <= XENSTORE_PAYLOAD_MAX);
        let mut s = names(&p);
        let g = s.remove(0);
        assert_eq!(*gen.get_or_insert(g.clone()), g);
        let done = s.last().is_some_and(String::is_empty);
        if done {
            s.pop();
        }
        offset += s.iter().map(|n| n.len() + 1).sum::<usize>();
        got.extend(s);
        if done {
            break;
        }
    }
    assert_eq!(got, all);
    // Past the end: generation and an empty string.
    let p = h.ok(
        0,
        &Request::DirectoryPart {
            path: "/big",
            offset: 1 << 20,
        },
    );
    assert_eq!(names(&p)[1], "");
    assert_eq!(
        h.err(
            5,
            &Request::DirectoryPart {
                path: "/big",
                offset: 0
            }
        ),
        Errno::EACCES
    );
}

#[test]
fn permission_matrix() {
    let mut h = h5();
    let name = "/local/domain/5/name"; // n0 r5
    let data = "/local/domain/5/data"; // n5
    let fe = "/local/domain/5/device/vbd/51712/state"; // n5 r0
    let be = "/local/domain/0/backend/vbd/5/51712/state"; // n0 r5

    // dom0: everything.
    for p in [name, data, fe, be] {
        h.read(0, p).unwrap();
        h.write(0, p, "x").unwrap();
    }
    // Owner domU: reads its read-only keys, may not write them.
    assert_eq!(h.read(5, "name").unwrap(), b"x");
    assert_eq!(h.write(5, "name", "evil"), Err(Errno::EACCES));
    assert_eq!(h.read(5, be).unwrap(), b"x");
    assert_eq!(h.write(5, be, "4"), Err(Errno::EACCES));
    h.write(5, "data", "mine").unwrap();
    h.write(5, fe, "3").unwrap();
    // ...and may not create keys in its read-only home.
    assert_eq!(h.write(5, "newkey", "1"), Err(Errno::EACCES));
    assert_eq!(h.err(5, &Request::Mkdir("newdir")), Errno::EACCES);
    assert_eq!(h.err(5, &Request::Rm("name")), Errno::EACCES);
    // Another domU sees nothing of domain 5, not even whether keys exist.
    for p in [
        name,
        data,
        fe,
        be,
        "/local/domain/5/nonexistent",
        "/local/domain/5",
    ] {
        assert_eq!(h.read(6, p), Err(Errno::EACCES), "{p}");
        assert_eq!(h.write(6, p, "x"), Err(Errno::EACCES), "{p}");
        assert_eq!(h.err(6, &Request::GetPerms(p)), Errno::EACCES, "{p}");
        assert_eq!(h.err(6, &Request::Directory(p)), Errno::EACCES, "{p}");
        assert_eq!(h.err(6, &Request::Rm(p)), Errno::EACCES, "{p}");
        assert_eq!(h.err(6, &Request::Mkdir(p)), Errno::EACCES, "{p}");
    }
    assert_eq!(
        h.write(6, "/local/domain/5/data/x", "1"),
        Err(Errno::EACCES)
    );
    // Missing keys: ENOENT where the parent is readable.
    assert_eq!(h.read(5, "nonexistent"), Err(Errno::ENOENT));
    assert_eq!(h.read(6, "nonexistent"), Err(Errno::ENOENT));
    assert_eq!(h.read(5, "/nope"), Err(Errno::EACCES));
    // A read-only ACL entry for a third domain.
    h.write(0, "/shared/info", "hello").unwrap();
    h.set_perms(0, "/shared", "n0 r6").unwrap();
    h.set_perms(0, "/shared/info", "n0 r6").unwrap();
    assert_eq!(h.read(6, "/shared/info").unwrap(), b"hello");
    assert_eq!(h.write(6, "/shared/info", "x"), Err(Errno::EACCES));
    assert_eq!(h.read(5, "/shared/info"), Err(Errno::EACCES));
    // Write-only entry.
    h.set_perms(0, "/shared/info", "n0 w5").unwrap();
    h.write(5, "/shared/info", "from5").unwrap();
    assert_eq!(h.read(5, "/shared/info"), Err(Errno::EACCES));
    assert_eq!(h.read(0, "/shared/info").unwrap(), b"from5");
}

#[test]
fn ownership_and_set_perms() {
    let mut h = h5();
    // A domU owns what it creates; perms otherwise copied from the parent.
    h.write(5, "data/a/b", "1").unwrap();
    assert_eq!(h.ok(5, &Request::GetPerms("data/a/b")), b"n5\0");
    h.write(5, "device/vbd/51712/ring-ref", "8").unwrap();
    assert_eq!(
        h.ok(5, &Request::GetPerms("device/vbd/51712/ring-ref")),
        b"n5\0r0\0"
    );
    // Dom0 creating below keeps the parent's owner.
    h.write(0, "/local/domain/5/data/from0", "1").unwrap();
    assert_eq!(
        h.ok(0, &Request::GetPerms("/local/domain/5/data/from0")),
        b"n5\0"
    );
    assert_eq!(h.ok(5, &Request::GetPerms("name")), b"n0\0r5\0");

    // Owner may change the ACL but not give the node away.
    h.set_perms(5, "data/a", "n5 r6").unwrap();
    assert_eq!(h.read(6, "/local/domain/5/data/a").unwrap(), b"");
    assert_eq!(h.set_perms(5, "data/a", "n6"), Err(Errno::EPERM));
    assert_eq!(
        h.set_perms(6, "/local/domain/5/data/a", "n5 b6"),
        Err(Errno::EACCES)
    );
    assert_eq!(h.set_perms(5, "name", "n5"), Err(Errno::EACCES));
    // Dom0 may give nodes away; node counts follow the owner.
    let before = h.s.store().entries(6);
    h.set_perms(0, "/local/domain/5/data/a", "n6").unwrap();
    assert_eq!(h.s.store().entries(6), before + 1);
    h.write(6, "/local/domain/5/data/a", "6 owns it").unwrap();
    // Too many ACL entries for a domU.
    assert_eq!(
        h.set_perms(5, "data/a/b", "n5 r1 r2 r3 r4 r6"),
        Err(Errno::ENOSPC)
    );
    h.set_perms(0, "/local/domain/5/data", "n5 r1 r2 r3 r4 r6 r7")
        .unwrap();
}

#[test]
fn quotas() {
    let q = Quotas {
        max_entries: 40,
        ..Quotas::default()
    };
    let mut h = H::new(Server::new(q));
    h.libxl_domain(5);
    let have = h.s.store().entries(5);
    let room = 40 - have;
    for i in 0..room {
        h.write(5, &format!("data/k{i}"), "").unwrap();
    }
    assert_eq!(h.write(5, "data/one-more", ""), Err(Errno::ENOSPC));
    // A multi-level create is all-or-nothing.
    h.ok(5, &Request::Rm("data/k0"));
    assert_eq!(h.write(5, "data/x/y", ""), Err(Errno::ENOSPC));
    assert_eq!(h.read(5, "data/x"), Err(Errno::ENOENT));
    // Dom0 is not limited, even writing into the domain's space.
    h.write(0, "/local/domain/5/data/by-dom0", "").unwrap();

    // Node size: a domU cannot write a 2 KiB value; dom0 can write 4000 B.
    let mut h = h5();
    let big = "v".repeat(2100);
    assert_eq!(h.write(5, "data/big", &big), Err(Errno::ENOSPC));
    h.write(5, "data/ok", &"v".repeat(1900)).unwrap();
    h.write(0, "/big", &"v".repeat(4000)).unwrap();
    // Payload limit (header len) is the wire's business: see wire tests.

    // Watches: 128 per domain, then E2BIG.
    for i in 0..128 {
        h.ok(
            5,
            &Request::Watch {
                path: "data",
                token: format!("t{i}").as_bytes(),
            },
        );
    }
    assert_eq!(
        h.err(
            5,
            &Request::Watch {
                path: "data",
                token: b"x"
            }
        ),
        Errno::E2BIG
    );
    // Transactions: 10 per connection, then ENOSPC.
    for _ in 0..10 {
        h.tx_start(5);
    }
    assert_eq!(h.err(5, &Request::TransactionStart), Errno::ENOSPC);
    for _ in 0..20 {
        h.tx_start(0);
    }
}

#[test]
fn transaction_node_limit() {
    let q = Quotas {
        max_tx_nodes: 16,
        ..Quotas::default()
    };
    let mut h = H::new(Server::new(q));
    h.libxl_domain(5);
    let t = h.tx_start(5);
    let mut failed = None;
    for i in 0..64 {
        match h.res_tx(5, t, &Request::Read(&format!("data/n{i}"))) {
            Err(Errno::ENOENT) => {}
            other => {
                failed = Some((i, other.unwrap_err()));
                break;
            }
        }
    }
    let (i, e) = failed.expect("limit reached");
    assert_eq!(e, Errno::ENOSPC);
    assert!(i < 20);
    // The transaction can still be ended.
    h.tx_end(5, t, false).unwrap();
}

#[test]
fn domain_management() {
    let mut h = h5();
    assert_eq!(h.ok(5, &Request::GetDomainPath(7)), b"/local/domain/7\0");
    assert_eq!(h.ok(0, &Request::IsDomainIntroduced(0)), b"T\0");
    assert_eq!(h.ok(0, &Request::IsDomainIntroduced(5)), b"F\0");
    assert_eq!(h.ok(0, &Request::IsDomainIntroduced(0x7ff0)), b"T\0");
    // Privileged-only operations.
    for r in [
        Request::IsDomainIntroduced(5),
        Request::Introduce {
            domid: 5,
            gfn: 1,
            evtchn: 2,
        },
        Request::Release(5),
        Request::Resume(5),
        Request::SetTarget {
            domid: 5,
            target: 6,
        },
        Request::Control(vec![b"check"]),
    ] {
        assert_eq!(h.err(5, &r), Errno::EACCES, "{r:?}");
    }
    h.ok(
        0,
        &Request::Introduce {
            domid: 5,
            gfn: 0x39001,
            evtchn: 3,
        },
    );
    assert_eq!(
        h.s.take_actions(),
        [Action::MapDomain {
            domid: 5,
            gfn: 0x39001,
            evtchn: 3
        }]
    );
    assert_eq!(h.ok(0, &Request::IsDomainIntroduced(5)), b"T\0");
    h.ok(0, &Request::Resume(5));
    assert_eq!(h.err(0, &Request::Resume(9)), Errno::ENOENT);
    assert_eq!(h.err(0, &Request::Resume(0)), Errno::EINVAL);
    // Re-introduction rebinds and drops the domain's watches.
    h.ok(
        5,
        &Request::Watch {
            path: "data",
            token: b"t",
        },
    );
    h.ok(
        0,
        &Request::Introduce {
            domid: 5,
            gfn: 0x39001,
            evtchn: 4,
        },
    );
    assert_eq!(
        h.s.take_actions(),
        [Action::Rebind {
            domid: 5,
            evtchn: 4
        }]
    );
    assert_eq!(
        h.err(
            5,
            &Request::Unwatch {
                path: "data",
                token: b"t"
            }
        ),
        Errno::ENOENT
    );
    assert_eq!(
        h.err(
            0,
            &Request::Introduce {
                domid: 0x7ff0,
                gfn: 1,
                evtchn: 1
            }
        ),
        Errno::EINVAL
    );

    // SET_TARGET: domain 6 (a device model) acts for 5.
    h.ok(
        0,
        &Request::Introduce {
            domid: 6,
            gfn: 1,
            evtchn: 5,
        },
    );
    assert_eq!(
        h.err(
            0,
            &Request::SetTarget {
                domid: 6,
                target: 9
            }
        ),
        Errno::ENOENT
    );
    h.ok(
        0,
        &Request::SetTarget {
            domid: 6,
            target: 5,
        },
    );
    h.write(6, "/local/domain/5/data/dm", "1").unwrap();
    assert_eq!(h.read(6, "/local/domain/5/name").unwrap(), b"guest5");

    // Release: the domain's nodes go to dom0, its ACL entries vanish.
    h.ok(0, &Request::Release(5));
    assert!(h
        .s
        .take_actions()
        .contains(&Action::ReleaseDomain { domid: 5 }));
    assert_eq!(h.ok(0, &Request::IsDomainIntroduced(5)), b"F\0");
    assert_eq!(h.err(0, &Request::Release(5)), Errno::ENOENT);
    assert_eq!(h.err(0, &Request::Release(0)), Errno::EINVAL);
    assert_eq!(h.ok(0, &Request::GetPerms("/local/domain/5/data")), b"n0\0");
    assert_eq!(h.ok(0, &Request::GetPerms("/local/domain/5/name")), b"n0\0");
    assert_eq!(h.s.store().entries(5), 0);
    // A new domain 5 inherits nothing.
    assert_eq!(h.read(5, "/local/domain/5/name"), Err(Errno::EACCES));
}

#[test]
fn control() {
    let mut h = H::default();
    assert_eq!(h.ok(0, &Request::Control(vec![b"check"])), b"OK\0");
    assert!(h
        .ok(0, &Request::Control(vec![b"quota"]))
        .starts_with(b"nodes: 1000"));
    assert_eq!(
        h.err(0, &Request::Control(vec![b"live-update"])),
        Errno::EINVAL
    );
}

#[test]
fn special_perms() {
    let mut h = h5();
    assert_eq!(h.set_perms(5, "@releaseDomain", "n5"), Err(Errno::EACCES));
    assert_eq!(h.set_perms(0, "@bogus", "n0"), Err(Errno::EINVAL));
    h.set_perms(0, "@releaseDomain", "n0 r5").unwrap();
    assert_eq!(
        h.s.store().special_perms("@releaseDomain"),
        Some(&Perms::new(0, Access::None).with(Access::Read, 5))
    );
    assert_eq!(h.read(0, "@releaseDomain"), Err(Errno::EINVAL));
}
