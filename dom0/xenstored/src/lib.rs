//! xenstored for dom0 and the `xenstore` client, over the [`xenstore`] engine.
//!
//! - [`daemon`]: the daemon (dom0's kernel ring, the tools' unix socket, guest rings).
//! - [`client`], [`cli`]: the client connection and the `xenstore`/`xenstore-*` commands.
//! - [`queue`]: bounded per-connection output; [`escape`]: the tools' value quoting.
//! - [`sys`]: the process system calls needing `unsafe` (poll, fork); the ring page over [`xen_sys`].
#![deny(unsafe_code)]

pub mod daemon;
pub mod cli;
pub mod client;
pub mod escape;
pub mod queue;
pub mod sys;
