//! Domain bookkeeping in the engine: introduction, release, domain exceptions
//! (`check_domains`), `XS_RESUME`, and the per-domain memory quota.

mod common;

use common::H;
use xenstore::{Action, DomState, Errno, Quotas, Request, Server};

fn introduce(h: &mut H, d: u16) {
    h.ok(
        0,
        &Request::Introduce {
            domid: d,
            gfn: 0x39001,
            evtchn: 3,
        },
    );
    h.s.take_actions();
}

fn release_events(out: &[(xenstore::ConnId, xenstore::Message)]) -> usize {
    H::events(out, 0)
        .iter()
        .filter(|(p, _)| p == "@releaseDomain")
        .count()
}

#[test]
fn check_domains_follows_xenstored() {
    let mut h = H::default();
    h.libxl_domain(5);
    h.libxl_domain(6);
    introduce(&mut h, 5);
    introduce(&mut h, 6);
    h.ok(
        0,
        &Request::Watch {
            path: "@releaseDomain",
            token: b"R",
        },
    );
    let running = |_| DomState::Running;
    assert_eq!(release_events(&h.s.check_domains(running)), 0);
    // A shutdown is announced once, for any number of domains.
    let out = h.s.check_domains(|_| DomState::Shutdown);
    assert_eq!(release_events(&out), 1);
    assert_eq!(
        release_events(&h.s.check_domains(|_| DomState::Shutdown)),
        0
    );
    assert!(h.s.take_actions().is_empty());
    // XS_RESUME re-arms one domain.
    h.ok(0, &Request::Resume(5));
    assert_eq!(
        release_events(&h.s.check_domains(|_| DomState::Shutdown)),
        1
    );
    // Dying: released (one event each), the daemon is asked to unmap; dom0 never.
    let out = h.s.check_domains(|d| {
        if d == 6 {
            DomState::Dying
        } else {
            DomState::Running
        }
    });
    assert_eq!(release_events(&out), 1);
    assert_eq!(h.s.take_actions(), [Action::ReleaseDomain { domid: 6 }]);
    assert!(!h.s.is_introduced(6));
    assert_eq!(h.s.domains().collect::<Vec<_>>(), [0, 5]);
    let out = h.s.check_domains(|_| DomState::Dying);
    assert_eq!(release_events(&out), 1);
    assert_eq!(h.s.take_actions(), [Action::ReleaseDomain { domid: 5 }]);
    assert!(h.s.is_introduced(0));
    assert_eq!(h.s.domains().collect::<Vec<_>>(), [0]);
    // Their connections and nodes are gone / dom0's.
    assert_eq!(h.s.conn_domid(common::conn(5)), None);
    assert_eq!(h.s.store().entries(5), 0);
}

#[test]
fn reintroduction_clears_shutdown() {
    let mut h = H::default();
    introduce(&mut h, 5);
    h.ok(
        0,
        &Request::Watch {
            path: "@releaseDomain",
            token: b"R",
        },
    );
    assert_eq!(
        release_events(&h.s.check_domains(|_| DomState::Shutdown)),
        1
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
        release_events(&h.s.check_domains(|_| DomState::Shutdown)),
        1
    );
}

#[test]
fn ignored_connection_loses_watches_and_transactions() {
    let mut h = H::default();
    h.libxl_domain(5);
    introduce(&mut h, 5);
    h.ok(
        5,
        &Request::Watch {
            path: "data",
            token: b"t",
        },
    );
    let tx = h.tx_start(5);
    assert_eq!(h.s.watch_count(5), 1);
    h.s.ignore(common::conn(5));
    assert_eq!(h.s.watch_count(5), 0);
    assert_eq!(h.tx_end(5, tx, true), Err(Errno::ENOENT));
    assert!(h.s.is_introduced(5));
    assert_eq!(h.s.conn_domid(common::conn(5)), Some(5));
}

#[test]
fn memory_quota() {
    let q = Quotas {
        max_memory: 8 * 1024,
        ..Quotas::default()
    };
    let mut h = H::new(Server::new(q));
    h.libxl_domain(5);
    introduce(&mut h, 5);
    let tx = h.tx_start(5);
    let big = "x".repeat(1500);
    let mut failed = None;
    for i in 0..20 {
        let p = format!("data/m{i}");
        if let Err(e) = h.res_tx(
            5,
            tx,
            &Request::Write {
                path: &p,
                value: big.as_bytes(),
            },
        ) {
            failed = Some((i, e));
            break;
        }
    }
    let (i, e) = failed.expect("memory quota never hit");
    assert_eq!(e, Errno::ENOMEM);
    assert!((4..8).contains(&i), "hit after {i} writes");
    assert!(h.s.memory(5) >= 8 * 1024);
    assert_eq!(h.res(5, &Request::TransactionStart), Err(Errno::ENOMEM));
    assert_eq!(
        h.res(
            5,
            &Request::Watch {
                path: "data",
                token: b"t"
            }
        ),
        Err(Errno::ENOMEM)
    );
    // Reads and writes outside transactions go on; ending the transaction frees it all.
    h.write(5, "data/plain", "1").unwrap();
    h.tx_end(5, tx, false).unwrap();
    assert_eq!(h.s.memory(5), 0);
    h.tx_start(5);
    // Dom0 is not limited.
    let tx0 = h.tx_start(0);
    for i in 0..20 {
        let p = format!("/d0/m{i}");
        h.res_tx(
            0,
            tx0,
            &Request::Write {
                path: &p,
                value: big.as_bytes(),
            },
        )
        .unwrap();
    }
}
