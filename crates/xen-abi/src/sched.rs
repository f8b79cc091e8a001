//! `public/sched.h`: `sched_op(cmd, arg)` sub-ops, shutdown reasons and
//! argument structs.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::{DomId, GuestHandle};

/// Yield the vCPU (argument NULL).
pub const SCHEDOP_yield: u32 = 0;
/// Block until an event is pending (argument NULL).
pub const SCHEDOP_block: u32 = 1;
/// IN: [`SchedShutdown`].
pub const SCHEDOP_shutdown: u32 = 2;
/// IN: [`SchedPoll`].
pub const SCHEDOP_poll: u32 = 3;
/// IN: [`SchedRemoteShutdown`].
pub const SCHEDOP_remote_shutdown: u32 = 4;
/// IN: [`SchedShutdown`]: record a reason without shutting down.
pub const SCHEDOP_shutdown_code: u32 = 5;
/// IN: [`SchedWatchdog`].
pub const SCHEDOP_watchdog: u32 = 6;
/// IN: [`SchedPinOverride`].
pub const SCHEDOP_pin_override: u32 = 7;

// Shutdown reasons (`sched_shutdown.reason`).
pub const SHUTDOWN_poweroff: u32 = 0;
pub const SHUTDOWN_reboot: u32 = 1;
pub const SHUTDOWN_suspend: u32 = 2;
pub const SHUTDOWN_crash: u32 = 3;
pub const SHUTDOWN_watchdog: u32 = 4;
pub const SHUTDOWN_soft_reset: u32 = 5;
pub const SHUTDOWN_MAX: u32 = 5;

/// `SCHEDOP_shutdown` / `SCHEDOP_shutdown_code`.
#[doc(alias = "sched_shutdown")]
#[doc(alias = "sched_shutdown_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SchedShutdown {
    /// IN: `SHUTDOWN_*`.
    pub reason: u32,
}
layout!(SchedShutdown, 4, 4; reason @ 0);

/// `SCHEDOP_poll`: block until one of `ports` is pending or `timeout`.
#[doc(alias = "sched_poll")]
#[doc(alias = "sched_poll_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SchedPoll {
    /// IN: handle to `evtchn_port_t[nr_ports]`.
    pub ports: GuestHandle,
    /// IN.
    pub nr_ports: u32,
    /// Implicit C padding.
    pub _pad0: u32,
    /// IN: absolute system time (ns); 0 = no timeout.
    pub timeout: u64,
}
layout!(SchedPoll, 24, 8; ports @ 0, nr_ports @ 8, timeout @ 16);

/// `SCHEDOP_remote_shutdown` (privileged).
#[doc(alias = "sched_remote_shutdown")]
#[doc(alias = "sched_remote_shutdown_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SchedRemoteShutdown {
    /// IN: domain to shut down.
    pub domain_id: DomId,
    /// Implicit C padding.
    pub _pad0: u16,
    /// IN: `SHUTDOWN_*`.
    pub reason: u32,
}
layout!(SchedRemoteShutdown, 8, 4; domain_id @ 0, reason @ 4);

/// `SCHEDOP_watchdog`: `id` 0 creates a watchdog (id returned); otherwise
/// pokes it with a new `timeout` (s) or, with `timeout` 0, destroys it.
#[doc(alias = "sched_watchdog")]
#[doc(alias = "sched_watchdog_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SchedWatchdog {
    /// IN.
    pub id: u32,
    /// IN: seconds.
    pub timeout: u32,
}
layout!(SchedWatchdog, 8, 4; id @ 0, timeout @ 4);

/// `SCHEDOP_pin_override` (hardware domain).
#[doc(alias = "sched_pin_override")]
#[doc(alias = "sched_pin_override_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SchedPinOverride {
    /// IN: pCPU to pin to; negative undoes the override.
    pub pcpu: i32,
}
layout!(SchedPinOverride, 4, 4; pcpu @ 0);
