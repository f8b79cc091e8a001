//! xenconsoled for dom0, as Xen's (`tools/console/daemon`): each guest's PV console ring
//! (`xencons_interface`) to a pty (`console/tty`) and optionally a log file, and the
//! hypervisor's console to `hypervisor.log`.
//!
//! - [`ring`]: the console ring page, hostile indices handled; [`console`]: draining a
//!   guest's output into its log and pty buffer; [`outbuf`]: that bounded buffer;
//!   [`logfile`]: log files and timestamps — all host-tested.
//! - [`daemon`]: the event loop (xenstore through `xenstored`'s client, the devices
//!   through [`xen_sys`]); [`opts`]: the command line; [`sys`]: ptys, signals, the pid lock.
//!
//! `xencommons` (next to this crate's Cargo.toml) is the start script of dom0's daemons:
//! `xencommons start|stop|restart|status`, for busybox sh.
#![deny(unsafe_code)]

pub mod console;
pub mod daemon;
pub mod logfile;
pub mod opts;
pub mod outbuf;
pub mod ring;
pub mod sys;
