//! Decisions about a domain that stopped: what the per-domain monitor does
//! with it (xl's `handle_domain_death`), and when `xl shutdown -w` /
//! `xl reboot -w` stop waiting. Pure functions of what the hypervisor
//! reports, so they are tested without one.

use crate::domain::{Action, DomainConfig};

/// A domain as `getdomaininfo` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Exists and has not shut down.
    Running,
    /// Shut down with this reason (`SHUTDOWN_*`), not yet dying.
    Shutdown(u32),
    /// Dying, or no longer listed: libxl's "death".
    Gone,
}

/// The monitor's answer to a shut-down domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Leave it as it is and stop monitoring (`preserve`, or a suspend).
    Preserve,
    /// Destroy it and stop monitoring.
    Destroy,
    /// Destroy it and build it again from the same config.
    Restart,
}

/// Reasons libxl knows (`libxl_shutdown_reason`).
pub const REASON_POWEROFF: u32 = 0;
/// See [`REASON_POWEROFF`].
pub const REASON_REBOOT: u32 = 1;
/// See [`REASON_POWEROFF`].
pub const REASON_SUSPEND: u32 = 2;
/// See [`REASON_POWEROFF`].
pub const REASON_CRASH: u32 = 3;
/// See [`REASON_POWEROFF`].
pub const REASON_WATCHDOG: u32 = 4;
/// See [`REASON_POWEROFF`].
pub const REASON_SOFT_RESET: u32 = 5;

/// The configured action for a shutdown reason, and the lines xl logs on
/// the way (`Action for shutdown reason code ...`).
pub fn action_for(cfg: &DomainConfig, reason: u32) -> (Option<Action>, Vec<String>) {
    let action = match reason {
        REASON_POWEROFF => cfg.on_poweroff,
        REASON_REBOOT => cfg.on_reboot,
        REASON_SUSPEND => return (None, vec!["Domain has suspended.".into()]),
        REASON_CRASH => cfg.on_crash,
        REASON_WATCHDOG => cfg.on_watchdog,
        REASON_SOFT_RESET => cfg.on_soft_reset,
        _ => {
            let msg = format!("Unknown shutdown reason code {reason}. Destroying domain.");
            let act = format!("Action for shutdown reason code {reason} is destroy");
            return (Some(Action::Destroy), vec![msg, act]);
        }
    };
    let line = format!(
        "Action for shutdown reason code {reason} is {}",
        action.as_str()
    );
    (Some(action), vec![line])
}

/// What the monitor does: core dumps are not taken (the `coredump-*`
/// actions act as their plain forms); `rename-restart` and `soft-reset`
/// restart under the same name.
pub fn decide(action: Option<Action>) -> Decision {
    match action {
        None | Some(Action::Preserve) => Decision::Preserve,
        Some(Action::Destroy | Action::CoredumpDestroy) => Decision::Destroy,
        Some(
            Action::Restart | Action::RenameRestart | Action::CoredumpRestart | Action::SoftReset,
        ) => Decision::Restart,
    }
}

/// How long `shutdown -w` waits, after the shutdown, for the domain to be
/// destroyed before taking it as preserved.
pub const PRESERVE_GRACE_SECS: u64 = 10;
/// The most `-w` waits for one domain.
pub const WAIT_LIMIT_SECS: u64 = 300;

/// Where a `-w` wait is for one domain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Waiting {
    /// When (seconds) the shutdown was first seen.
    pub shut_down_at: Option<u64>,
    /// Done waiting.
    pub done: bool,
}

/// One observation of a waited-for domain: the lines to print (xl's) and
/// the new state. `wait` counts the `-w` flags: once waits for the shutdown
/// (for `shutdown`, also for the monitor to destroy the domain, unless it
/// stays shut down for [`PRESERVE_GRACE_SECS`]); twice waits for the
/// destruction, as xl.
pub fn wait_step(
    domid: u32,
    obs: Observed,
    reboot: bool,
    wait: u32,
    st: Waiting,
    now: u64,
) -> (Vec<String>, Waiting) {
    let mut out = Vec::new();
    let mut st = st;
    match obs {
        Observed::Running => {}
        Observed::Gone => {
            out.push(format!("Domain {domid} has been destroyed"));
            st.done = true;
        }
        Observed::Shutdown(reason) => {
            if st.shut_down_at.is_none() {
                out.push(format!(
                    "Domain {domid} has been shut down, reason code {reason}"
                ));
                if wait >= 2 {
                    out.push(format!("Domain {domid} continue waiting for death"));
                }
                st.shut_down_at = Some(now);
            }
            let since = now.saturating_sub(st.shut_down_at.unwrap_or(now));
            st.done = wait == 1 && (reboot || since >= PRESERVE_GRACE_SECS);
        }
    }
    (out, st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn cfg(extra: &str) -> DomainConfig {
        let text = format!("name=\"vm\"\n{extra}");
        let c = Config::parse("t", text.as_bytes()).unwrap();
        DomainConfig::from_config(&c).unwrap().config
    }

    #[test]
    fn defaults_as_xl() {
        let c = cfg("");
        let d = |r| decide(action_for(&c, r).0);
        assert_eq!(d(REASON_POWEROFF), Decision::Destroy);
        assert_eq!(d(REASON_REBOOT), Decision::Restart);
        assert_eq!(d(REASON_CRASH), Decision::Destroy);
        assert_eq!(d(REASON_WATCHDOG), Decision::Destroy);
        assert_eq!(d(REASON_SUSPEND), Decision::Preserve);
        assert_eq!(d(REASON_SOFT_RESET), Decision::Restart);
        assert_eq!(d(77), Decision::Destroy);
        assert_eq!(
            action_for(&c, REASON_REBOOT).1,
            ["Action for shutdown reason code 1 is restart"]
        );
        assert_eq!(
            action_for(&c, 77).1[0],
            "Unknown shutdown reason code 77. Destroying domain."
        );
    }

    #[test]
    fn configured_actions() {
        let c =
            cfg("on_poweroff=\"preserve\"\non_reboot=\"destroy\"\non_crash=\"rename-restart\"\n");
        assert_eq!(
            decide(action_for(&c, REASON_POWEROFF).0),
            Decision::Preserve
        );
        assert_eq!(decide(action_for(&c, REASON_REBOOT).0), Decision::Destroy);
        assert_eq!(decide(action_for(&c, REASON_CRASH).0), Decision::Restart);
        let c = cfg("on_crash=\"coredump-restart\"\non_poweroff=\"coredump-destroy\"\n");
        assert_eq!(decide(action_for(&c, REASON_CRASH).0), Decision::Restart);
        assert_eq!(decide(action_for(&c, REASON_POWEROFF).0), Decision::Destroy);
        assert_eq!(
            action_for(&c, REASON_CRASH).1,
            ["Action for shutdown reason code 3 is coredump-restart"]
        );
    }

    #[test]
    fn shutdown_wait() {
        let s0 = Waiting::default();
        // Still running: nothing.
        assert_eq!(
            wait_step(3, Observed::Running, false, 1, s0, 0),
            (vec![], s0)
        );
        // Shut down, then destroyed by the monitor.
        let (l, s) = wait_step(3, Observed::Shutdown(0), false, 1, s0, 5);
        assert_eq!(l, ["Domain 3 has been shut down, reason code 0"]);
        assert!(!s.done);
        let (l, s2) = wait_step(3, Observed::Shutdown(0), false, 1, s, 9);
        assert!(l.is_empty() && !s2.done);
        let (l, s3) = wait_step(3, Observed::Gone, false, 1, s2, 10);
        assert_eq!(l, ["Domain 3 has been destroyed"]);
        assert!(s3.done);
        // Preserved: done after the grace period.
        let (_, s4) = wait_step(3, Observed::Shutdown(0), false, 1, s, 15);
        assert!(s4.done);
        // Reboot: the shutdown is enough.
        let (l, s) = wait_step(4, Observed::Shutdown(1), true, 1, s0, 0);
        assert_eq!(l, ["Domain 4 has been shut down, reason code 1"]);
        assert!(s.done);
        // -ww: only death counts.
        let (l, s) = wait_step(4, Observed::Shutdown(1), true, 2, s0, 0);
        assert_eq!(l[1], "Domain 4 continue waiting for death");
        assert!(!s.done);
        let (_, s) = wait_step(4, Observed::Shutdown(1), true, 2, s, 1000);
        assert!(!s.done);
    }
}
