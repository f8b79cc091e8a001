//! Xenstore for the dom0 toolstack: the wire protocol, the store with its
//! permissions, transactions and watches, and a connection-agnostic request
//! engine ([`Server`]) that a xenstored daemon drives.
//!
//! Layers, bottom up:
//! - [`wire`]: messages (16-byte header + payload), an incremental decoder,
//!   request parsing/encoding and replies.
//! - [`ring`]: the `xenstore_domain_interface` shared page, over a
//!   [`ring::SharedPage`] trait (a mapped guest page in xenstored, a `Vec` in tests).
//! - [`path`], [`perms`]: Xen's path rules and permission ACLs.
//! - [`store`]: the node tree with xenstored's permission checks and quotas.
//! - [`txn`], [`watch`]: transactions (generation counts) and watches.
//! - [`server`]: `Server::handle(conn, domid, msg)` → replies and watch events.
//!
//! Behaviour follows C xenstored of Xen 4.17 (`tools/xenstore/xenstored_*.c`);
//! deviations are called out where they occur.
#![forbid(unsafe_code)]

pub mod error;
pub mod path;
pub mod perms;
pub mod ring;
pub mod server;
pub mod store;
pub mod txn;
pub mod watch;
pub mod wire;

pub use error::Errno;
pub use perms::{Access, Caller, Perm, Perms};
pub use server::{Action, ConnId, DomState, Server};
pub use store::{Quotas, Store};
pub use wire::{Decoder, Message, Request, WireError};

/// A domain id (`domid_t`).
pub type DomId = xen_abi::xen::DomId;
