//! Transactions: isolation, conflicts (EAGAIN), abort, ids and errors.

mod common;

use common::H;
use xenstore::{Errno, Request};

#[test]
fn commit_without_conflict() {
    let mut h = H::default();
    h.write(0, "/a/x", "0").unwrap();
    let t = h.tx_start(0);
    assert_ne!(t, 0);
    assert_eq!(h.res_tx(0, t, &Request::Read("/a/x")).unwrap(), b"0");
    h.res_tx(
        0,
        t,
        &Request::Write {
            path: "/a/x",
            value: b"1",
        },
    )
    .unwrap();
    h.res_tx(
        0,
        t,
        &Request::Write {
            path: "/a/new/deep",
            value: b"2",
        },
    )
    .unwrap();
    // Seen inside, not outside.
    assert_eq!(h.res_tx(0, t, &Request::Read("/a/x")).unwrap(), b"1");
    assert_eq!(
        h.res_tx(0, t, &Request::Directory("/a")).unwrap(),
        b"x\0new\0"
    );
    assert_eq!(h.read(0, "/a/x").unwrap(), b"0");
    assert_eq!(h.read(0, "/a/new"), Err(Errno::ENOENT));
    // Unrelated outside changes do not conflict.
    h.write(0, "/elsewhere", "z").unwrap();
    assert_eq!(h.tx_end(0, t, true).unwrap(), b"OK\0");
    assert_eq!(h.read(0, "/a/x").unwrap(), b"1");
    assert_eq!(h.read(0, "/a/new/deep").unwrap(), b"2");
    // The id is gone.
    assert_eq!(h.tx_end(0, t, true), Err(Errno::ENOENT));
    assert_eq!(h.res_tx(0, t, &Request::Read("/a/x")), Err(Errno::ENOENT));
}

#[test]
fn conflicts_give_eagain() {
    let mut h = H::default();
    h.write(0, "/c/x", "0").unwrap();
    // Read, then someone else writes: EAGAIN, and nothing is applied.
    let t = h.tx_start(0);
    h.res_tx(0, t, &Request::Read("/c/x")).unwrap();
    h.res_tx(
        0,
        t,
        &Request::Write {
            path: "/c/y",
            value: b"1",
        },
    )
    .unwrap();
    h.write(5, "/c/x", "other").unwrap_err(); // dom5 cannot: no conflict from it
    h.write(0, "/c/x", "1").unwrap();
    assert_eq!(h.tx_end(0, t, true), Err(Errno::EAGAIN));
    assert_eq!(h.read(0, "/c/y"), Err(Errno::ENOENT));
    // Read-only transactions conflict too.
    let t = h.tx_start(0);
    h.res_tx(0, t, &Request::Read("/c/x")).unwrap();
    h.ok(0, &Request::Rm("/c/x"));
    assert_eq!(h.tx_end(0, t, true), Err(Errno::EAGAIN));
    // A missing node that appears meanwhile.
    let t = h.tx_start(0);
    assert_eq!(
        h.res_tx(0, t, &Request::Read("/c/later")),
        Err(Errno::ENOENT)
    );
    h.write(0, "/c/later", "now").unwrap();
    assert_eq!(h.tx_end(0, t, true), Err(Errno::EAGAIN));
    // Two transactions writing the same node: first commit wins.
    let (t1, t2) = (h.tx_start(0), h.tx_start(0));
    assert_ne!(t1, t2);
    h.res_tx(
        0,
        t1,
        &Request::Write {
            path: "/c/later",
            value: b"t1",
        },
    )
    .unwrap();
    h.res_tx(
        0,
        t2,
        &Request::Write {
            path: "/c/later",
            value: b"t2",
        },
    )
    .unwrap();
    h.tx_end(0, t1, true).unwrap();
    assert_eq!(h.tx_end(0, t2, true), Err(Errno::EAGAIN));
    assert_eq!(h.read(0, "/c/later").unwrap(), b"t1");
    // Disjoint transactions both commit.
    h.write(0, "/d1/k", "").unwrap();
    h.write(0, "/d2/k", "").unwrap();
    let (t1, t2) = (h.tx_start(0), h.tx_start(0));
    h.res_tx(
        0,
        t1,
        &Request::Write {
            path: "/d1/k",
            value: b"1",
        },
    )
    .unwrap();
    h.res_tx(
        0,
        t2,
        &Request::Write {
            path: "/d2/k",
            value: b"2",
        },
    )
    .unwrap();
    h.tx_end(0, t2, true).unwrap();
    h.tx_end(0, t1, true).unwrap();
}

#[test]
fn abort_and_rm_inside() {
    let mut h = H::default();
    h.write(0, "/r/a/b", "1").unwrap();
    let t = h.tx_start(0);
    h.res_tx(0, t, &Request::Rm("/r/a")).unwrap();
    assert_eq!(h.res_tx(0, t, &Request::Read("/r/a/b")), Err(Errno::ENOENT));
    assert_eq!(h.res_tx(0, t, &Request::Directory("/r")).unwrap(), b"");
    h.tx_end(0, t, false).unwrap();
    assert_eq!(h.read(0, "/r/a/b").unwrap(), b"1");
    let t = h.tx_start(0);
    h.res_tx(0, t, &Request::Rm("/r/a")).unwrap();
    h.tx_end(0, t, true).unwrap();
    assert_eq!(h.read(0, "/r/a"), Err(Errno::ENOENT));
    assert_eq!(h.s.store().entries(0), 4); // /, /tool, /tool/xenstored, /r
}

#[test]
fn errors() {
    let mut h = H::default();
    assert_eq!(h.tx_end(0, 0, true), Err(Errno::ENOENT));
    assert_eq!(h.res_tx(0, 77, &Request::Read("/")), Err(Errno::ENOENT));
    let t = h.tx_start(0);
    assert_eq!(
        h.res_tx(0, t, &Request::TransactionStart),
        Err(Errno::EBUSY)
    );
    let bad = xenstore::Message::new(
        xen_abi::io::xs_wire::XS_TRANSACTION_END,
        0,
        t,
        b"maybe\0".to_vec(),
    );
    assert_eq!(h.send_msg(0, &bad).0.errno(), Some(Errno::EINVAL));
    // Transactions belong to their connection.
    assert_eq!(h.tx_end(5, t, true), Err(Errno::ENOENT));
    // WATCH ignores the transaction id.
    assert_eq!(
        h.res_tx(
            0,
            999,
            &Request::Watch {
                path: "/",
                token: b"t"
            }
        )
        .unwrap(),
        b"OK\0"
    );
    // RESET_WATCHES also drops transactions.
    h.ok(0, &Request::ResetWatches);
    assert_eq!(h.tx_end(0, t, true), Err(Errno::ENOENT));
}

#[test]
fn watches_fire_on_commit_only() {
    let mut h = H::default();
    h.ok(
        0,
        &Request::Watch {
            path: "/w",
            token: b"t",
        },
    );
    let t = h.tx_start(0);
    let (_, out) = h.send_tx(
        0,
        t,
        &Request::Write {
            path: "/w/a",
            value: b"1",
        },
    );
    assert!(out.is_empty());
    let (_, out) = h.send_tx(0, t, &Request::TransactionEnd(true));
    assert_eq!(H::events(&out, 0), [("/w/a".to_string(), "t".to_string())]);
    // Aborted or failed transactions fire nothing.
    let t = h.tx_start(0);
    h.res_tx(
        0,
        t,
        &Request::Write {
            path: "/w/b",
            value: b"1",
        },
    )
    .unwrap();
    let (_, out) = h.send_tx(0, t, &Request::TransactionEnd(false));
    assert!(out.is_empty());
}

#[test]
fn domu_quota_in_transaction() {
    let q = xenstore::Quotas {
        max_entries: 30,
        ..Default::default()
    };
    let mut h = H::new(xenstore::Server::new(q));
    h.libxl_domain(5);
    let room = 30 - h.s.store().entries(5);
    let t = h.tx_start(5);
    for i in 0..room {
        h.res_tx(
            5,
            t,
            &Request::Write {
                path: &format!("data/k{i}"),
                value: b"",
            },
        )
        .unwrap();
    }
    assert_eq!(
        h.res_tx(
            5,
            t,
            &Request::Write {
                path: "data/more",
                value: b""
            }
        ),
        Err(Errno::ENOSPC)
    );
    h.tx_end(5, t, true).unwrap();
    assert_eq!(h.s.store().entries(5), 30);
}
