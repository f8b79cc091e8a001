//! The per-domain monitor (xl's `create_domain` after daemonizing): waits
//! for the domain to stop, then applies its `on_*` action, building it again
//! for a restart. Watches `@releaseDomain` and polls `getdomaininfo` every
//! second as a fallback.

use std::time::Duration;

use super::manage::{RELEASE_DOMAIN, TOKEN};
use super::xencall::{GuestMem, Xencall};
use super::{Backend, Host};
use crate::domain::DomainConfig;
use crate::monitor::{action_for, decide, Decision, Observed};

/// xl's pause before building a rebooting domain again.
pub const RESTART_DELAY: Duration = Duration::from_secs(2);

impl<X: Xencall + GuestMem, H: Host> Backend<X, H> {
    fn log(&mut self, line: &str) {
        self.host.eprint(&format!("{line}\n"));
    }

    fn waiting(&mut self, cfg: &DomainConfig, domid: u32) {
        let pid = self.host.pid();
        self.log(&format!(
            "Waiting for domain {} (domid {domid}) to die [pid {pid}]",
            cfg.name
        ));
    }

    /// Watches `domid` (built from `cfg`) until it is gone or preserved,
    /// restarting it as configured. Returns the exit status.
    pub fn monitor(&mut self, domid: u32, cfg: &DomainConfig) -> i32 {
        let mut domid = domid;
        let mut cfg = cfg.clone();
        let cfg = &mut cfg;
        self.waiting(cfg, domid);
        let _ = self.host.xs().watch(RELEASE_DOMAIN, TOKEN);
        loop {
            match self.observe(domid) {
                Ok(Observed::Running) => self.pause_a_little(),
                Ok(Observed::Gone) => {
                    self.log(&format!("Domain {domid} has been destroyed."));
                    return 0;
                }
                Ok(Observed::Shutdown(reason)) => match self.stopped(domid, reason, cfg) {
                    Some(new) => {
                        domid = new;
                        self.waiting(cfg, domid);
                    }
                    None => return 0,
                },
                Err(e) => {
                    self.log(&format!(
                        "Domain {domid}, failed to get event, quitting (rc={})",
                        -e
                    ));
                    return 1;
                }
            }
        }
    }

    /// xl's `handle_domain_death` and restart: the new domain's id if it
    /// was built again, `None` when monitoring ends.
    fn stopped(&mut self, domid: u32, reason: u32, cfg: &mut DomainConfig) -> Option<u32> {
        self.log(&format!(
            "Domain {domid} has shut down, reason code {reason} {reason:#x}"
        ));
        let (action, lines) = action_for(cfg, reason);
        for l in lines {
            self.log(&l);
        }
        let decision = decide(action);
        let uuid = match self.xc() {
            Ok(x) => super::xc::getdomaininfo(x, domid)
                .ok()
                .flatten()
                .map(|i| i.handle),
            Err(_) => None,
        };
        // A restarted guest keeps the MACs libxl gave its vifs.
        self.keep_macs(domid, cfg);
        if decision != Decision::Preserve {
            self.log(&format!(
                "Domain {domid} needs to be cleaned up: destroying the domain"
            ));
            if let Err(e) = self.teardown(domid) {
                self.log(&e);
            }
        }
        if decision != Decision::Restart {
            self.log("Done. Exiting now");
            return None;
        }
        self.log("Done. Rebooting now");
        self.host.sleep(RESTART_DELAY);
        match self.build_as(cfg, false, uuid) {
            Ok(new) => Some(new),
            Err(e) => {
                self.log(&e);
                None
            }
        }
    }
}
