//! The `xl` toolstack: xl.cfg parsing and the subcommands' logic, matching
//! Xen 4.17's `xl` (syntax, messages, output formats, exit codes).
//!
//! * [`config`]: the xl.cfg grammar (libxlutil's parser, quirks included)
//! * [`devspec`]: disk and vif specifications, virtual-device numbers
//! * [`domain`]: the typed [`domain::DomainConfig`] `xl create` builds
//! * [`cli`]: global options, subcommand lookup, per-command options
//! * [`format`]: `xl list` / `info` / `uptime` / `vcpu-list` output
//! * [`run`]: executes a command against a [`run::Hypervisor`]
//! * [`backend`]: the [`run::Hypervisor`] of dom0: hypercalls through
//!   `/dev/xen/privcmd` (`unsafe` only in [`backend::sys`]), xenstore, the
//!   domain builder, PV disks and vifs, destroy, shutdown, console and the
//!   per-domain monitor
//! * [`build`]: the builder's pure parts (Image header, memory layout,
//!   device tree, xenstore entries)
//! * [`monitor`]: what happens to a domain that stopped
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod backend;
pub mod build;
pub mod cli;
mod cmdtable;
pub mod config;
pub mod devspec;
pub mod domain;
pub mod format;
pub mod monitor;
pub mod run;
