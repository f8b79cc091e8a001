//! xenstored for dom0 and the `xenstore` client, over the [`xenstore`] engine.
//!
//! - [`daemon`]: the daemon's options, start-up and event loop (the tools' unix socket).
//! - [`engine`]: its connections and domains (rings, quotas, introduce/release, domain
//!   exceptions) over a [`engine::Platform`]; [`xen`]: the real platform.
//! - [`client`], [`cli`]: the client connection and the `xenstore`/`xenstore-*` commands.
//! - [`queue`]: bounded per-connection output; [`escape`]: the tools' value quoting.
//! - [`sys`]: the process system calls needing `unsafe` (poll, fork).
#![deny(unsafe_code)]

/// Logs a line through [`daemon::log`] (stderr, or the log file stderr was pointed at).
#[macro_export]
macro_rules! log {
    ($($a:tt)*) => { $crate::daemon::log(format_args!($($a)*)) };
}

pub mod daemon;
pub mod engine;
pub mod xen;
pub mod cli;
pub mod client;
pub mod escape;
pub mod queue;
pub mod sys;
