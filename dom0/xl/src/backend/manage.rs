//! Managing existing domains: destroy (libxl's `libxl__destroy_domid`),
//! pause/unpause, shutdown/reboot through the PV control node, waiting for
//! domains to stop, the console, and what `xl list -l` shows.

use std::time::Duration;

use xen_abi::domctl::*;
use xen_abi::errno::EAGAIN;

use super::xc;
use super::xencall::{Errno, GuestMem, Xencall};
use super::xenstore::{Xs, XBT_NULL};
use super::{strerror, Backend, Host, Pump};
use crate::build::xsents::{dom_path, libxl_path};
use crate::cli::ConsoleType;
use crate::format::{format_uuid, DomainDetails};
use crate::monitor::{wait_step, Observed, Waiting, WAIT_LIMIT_SECS};
use crate::run::{HvError, HvResult};

/// Tries of `destroydomain` while Xen answers `EAGAIN` (it is releasing
/// the domain's resources in steps).
pub const DESTROY_TRIES: u32 = 100_000;
/// How long the guest has to acknowledge `control/shutdown` (libxl's 60 s).
pub const ACK_SECS: u64 = 60;
/// How long `xl console` waits for xenconsoled to give the domain a pty.
pub const TTY_WAIT_SECS: u64 = 5;
/// The token of xl's own watches.
pub const TOKEN: &str = "xl";
/// Fired by xenstored when a domain shuts down or goes away.
pub const RELEASE_DOMAIN: &str = "@releaseDomain";

/// libxl's `LOGD(ERROR, domid, ...)` line.
fn logd(file_line_fn: &str, domid: u32, msg: &str) -> String {
    format!("libxl: error: {file_line_fn}: Domain {domid}:{msg}")
}

/// The tail libxl prints when `libxl_domain_destroy` fails, and xl's line.
fn destroy_failed(domid: u32, rc: i32) -> String {
    format!(
        "{}\n{}\ndestroy failed (rc={rc})",
        logd(
            "libxl_domain.c:1137:domain_destroy_callback",
            domid,
            "Unable to destroy guest"
        ),
        logd(
            "libxl_domain.c:1064:domain_destroy_cb",
            domid,
            "Destruction of domain failed"
        )
    )
}

/// What `getdomaininfo` flags say.
pub fn observe_info(i: Option<&XenDomctlGetdomaininfo>) -> Observed {
    match i {
        None => Observed::Gone,
        Some(i) if i.flags & XEN_DOMINF_dying != 0 => Observed::Gone,
        Some(i) if i.flags & XEN_DOMINF_shutdown != 0 => {
            Observed::Shutdown((i.flags >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask)
        }
        Some(_) => Observed::Running,
    }
}

impl<X: Xencall + GuestMem, H: Host> Backend<X, H> {
    /// The domain's state; a failing hypercall reads as "gone" only if the
    /// domain is really not there (`ESRCH`).
    pub fn observe(&mut self, domid: u32) -> Result<Observed, Errno> {
        let x = self.xc().map_err(|_| libc::ENODEV)?;
        Ok(observe_info(xc::getdomaininfo(x, domid)?.as_ref()))
    }

    /// libxl's destroy of an existing domain: pause it, remove its devices
    /// (forced: backends closed, loop devices released), its xenstore
    /// entries, `destroydomain` (retried on `EAGAIN`), then release it from
    /// xenstored. Returns libxl's error lines on failure; xenstore problems
    /// are reported but do not stop the destruction.
    pub fn teardown(&mut self, domid: u32) -> Result<(), String> {
        let mut notes = Vec::new();
        let x = self.xc().map_err(HvError::message)?;
        if let Err(e) = xc::domctl_noarg(x, XEN_DOMCTL_pausedomain, domid) {
            let msg = format!("xc_domain_pause failed: {}", strerror(e));
            notes.push(logd(
                "libxl_domain.c:1219:destroy_domid_pci_done",
                domid,
                &msg,
            ));
        }
        notes.extend(self.destroy_devices(domid));
        notes.extend(self.remove_entries(domid));
        self.host.mark_domid_recent(domid);
        let x = self.xc().map_err(HvError::message)?;
        let mut tries = 0;
        loop {
            match xc::domctl_noarg(x, XEN_DOMCTL_destroydomain, domid) {
                Ok(()) => break,
                Err(EAGAIN) if tries < DESTROY_TRIES => tries += 1,
                Err(e) => {
                    let msg = format!("xc_domain_destroy failed: {}", strerror(e));
                    notes.push(logd(
                        "libxl_domain.c:1617:domain_destroy_domid_cb",
                        domid,
                        &msg,
                    ));
                    return Err(notes.join("\n"));
                }
            }
        }
        // Only now, with the domain dying: xenstored's @releaseDomain then
        // tells the console daemon to let go of the domain's pages (which
        // is what lets the hypervisor free them).
        let _ = self.host.xs().release(domid);
        if !notes.is_empty() {
            self.host.eprint(&format!("{}\n", notes.join("\n")));
        }
        Ok(())
    }

    /// `devices_destroy_cb`'s xenstore part; the lines
    /// libxl would log for what failed.
    fn remove_entries(&mut self, domid: u32) -> Vec<String> {
        let mut notes = Vec::new();
        let dom = dom_path(domid);
        let xs = self.host.xs();
        let mut rm = |xs: &mut dyn Xs, p: &str, log: bool| {
            if let Err(e) = xs.rm(XBT_NULL, p) {
                if log {
                    let msg = format!("xs_rm failed for {p}: {e}");
                    notes.push(logd("libxl_domain.c:1538:devices_destroy_cb", domid, &msg));
                }
            }
        };
        if let Ok(vm) = xs.read(XBT_NULL, &format!("{dom}/vm")) {
            if !vm.is_empty() {
                rm(xs, &vm, true);
            }
        }
        rm(xs, &dom, true);
        rm(xs, &libxl_path(domid), false);
        notes
    }

    /// `xl destroy`: Xen's messages when the domain does not exist.
    pub fn destroy_cmd(&mut self, domid: u32) -> HvResult<()> {
        let x = self.xc()?;
        match xc::getdomaininfo(x, domid) {
            Ok(Some(_)) => {}
            Ok(None) => {
                let l = logd(
                    "libxl_domain.c:1183:libxl__destroy_domid",
                    domid,
                    "Non-existant domain",
                );
                return Err(HvError::Failed(format!(
                    "{l}\n{}",
                    destroy_failed(domid, -21)
                )));
            }
            Err(e) => {
                let msg = format!("Getting domain info list: {}", strerror(e));
                let l = logd("libxl_domain.c:354:libxl_domain_info", domid, &msg);
                return Err(HvError::Failed(format!(
                    "{l}\n{}",
                    destroy_failed(domid, -3)
                )));
            }
        }
        self.teardown(domid)
            .map_err(|e| HvError::Failed(format!("{e}\n{}", destroy_failed(domid, -3))))
    }

    /// `xl pause` / `xl unpause`.
    pub fn pause_cmd(&mut self, domid: u32, pause: bool) -> HvResult<()> {
        let x = self.xc()?;
        let (cmd, what, at) = if pause {
            (
                XEN_DOMCTL_pausedomain,
                "Pausing domain",
                "libxl_domain.c:587:libxl_domain_pause",
            )
        } else {
            (
                XEN_DOMCTL_unpausedomain,
                "Unpausing domain",
                "libxl_domain.c:688:domain_unpause_done",
            )
        };
        xc::domctl_noarg(x, cmd, domid)
            .map_err(|e| HvError::Failed(logd(at, domid, &format!("{what}: {}", strerror(e)))))
    }

    /// One domain of `xl shutdown` / `xl reboot`: ask through
    /// `control/shutdown` and wait for the guest's acknowledgement, or, if
    /// the guest runs no PV control (no `control/feature-<cmd>`) and
    /// `fallback`, shut it down from outside.
    pub fn request_shutdown(
        &mut self,
        domid: u32,
        reboot: bool,
        fallback: bool,
    ) -> Result<(), String> {
        let (what, cmd, button) = if reboot {
            ("reboot", "reboot", "reset")
        } else {
            ("shutdown", "poweroff", "power")
        };
        let verb = if reboot { "Rebooting" } else { "Shutting down" };
        self.host.eprint(&format!("{verb} domain {domid}\n"));
        if self.observe(domid).ok() == Some(Observed::Gone) {
            return Err(format!(
                "libxl: error: libxl_dom.c:37:libxl__domain_type: unable to get domain type for domid={domid}\n\
                 {what} failed (rc=-3)"
            ));
        }
        let control = format!("{}/control", dom_path(domid));
        let feature = self.host.xs_read(&format!("{control}/feature-{cmd}"));
        if !feature.is_ok_and(|v| !v.is_empty() && v != "0") {
            if !fallback {
                return Err(format!(
                    "PV control interface not available: external graceful {what} not possible.\n\
                     Use \"-F\" to fallback to ACPI {button} event.\n{what} failed (rc=-10)"
                ));
            }
            self.host.eprint(&format!(
                "PV control interface not available: sending ACPI {button} button event.\n"
            ));
            let reason = if reboot { 1 } else { 0 };
            let x = self.xc().map_err(HvError::message)?;
            return xc::remote_shutdown(x, domid, reason).map_err(|e| {
                format!("libxl: error: Domain {domid}:SCHEDOP_remote_shutdown: {}\n{what} failed (rc=-3)", strerror(e))
            });
        }
        let node = format!("{control}/shutdown");
        super::create::in_transaction(self.host.xs(), |xs, t| xs.write(t, &node, cmd)).map_err(
            |e| format!("libxl: error: Domain {domid}:writing {node}: {e}\n{what} failed (rc=-3)"),
        )?;
        self.wait_ack(domid, &node)
            .map_err(|rc| format!("libxl: error: libxl_domain.c:854:pvcontrol_cb: guest didn't acknowledge control request: {rc}\n{what} failed (rc={rc})"))
    }

    /// libxl's `pvcontrol_cb`: done when the guest empties (or removes) the
    /// node, or has stopped anyway; `Err(rc)` after [`ACK_SECS`].
    fn wait_ack(&mut self, domid: u32, node: &str) -> Result<(), i32> {
        let _ = self.host.xs().watch(node, TOKEN);
        let start = self.host.now();
        let acked = loop {
            let v = self.host.xs_read(node);
            if v.as_deref().map_or(true, str::is_empty) && v != Err(super::XsError::Unreachable) {
                break true;
            }
            if self.observe(domid).is_ok_and(|o| o != Observed::Running) {
                break true;
            }
            if self.host.now().saturating_sub(start) >= ACK_SECS {
                break false;
            }
            self.pause_a_little();
        };
        let _ = self.host.xs().unwatch(node, TOKEN);
        if acked {
            Ok(())
        } else {
            Err(-9)
        }
    }

    /// Waits up to a second for any watch to fire (or just a second
    /// without xenstore).
    pub fn pause_a_little(&mut self) {
        let second = Duration::from_secs(1);
        let before = self.host.clock();
        let fired = matches!(self.host.xs().wait_watch(second), Ok(Some(_)));
        // Without xenstore (an error, or no wait at all) this must not spin.
        if !fired && self.host.clock().saturating_sub(before) < second / 2 {
            self.host.sleep(second);
        }
    }

    /// xl's `wait_for_domain_deaths` for `-w`: the lines it prints as the
    /// domains stop; an error if one takes longer than [`WAIT_LIMIT_SECS`].
    pub fn wait_stopped(&mut self, domids: &[u32], reboot: bool, wait: u32) -> Result<(), String> {
        self.host
            .eprint(&format!("Waiting for {} domains\n", domids.len()));
        let _ = self.host.xs().watch(RELEASE_DOMAIN, TOKEN);
        let mut states: Vec<Waiting> = vec![Waiting::default(); domids.len()];
        let start = self.host.now();
        loop {
            let now = self.host.now();
            for (i, &d) in domids.iter().enumerate() {
                if states[i].done {
                    continue;
                }
                let obs = self.observe(d).unwrap_or(Observed::Running);
                let (lines, st) = wait_step(d, obs, reboot, wait, states[i], now);
                for l in lines {
                    self.host.eprint(&format!("{l}\n"));
                }
                states[i] = st;
            }
            if states.iter().all(|s| s.done) {
                return Ok(());
            }
            if now.saturating_sub(start) >= WAIT_LIMIT_SECS {
                let left: Vec<String> = domids
                    .iter()
                    .zip(&states)
                    .filter(|(_, s)| !s.done)
                    .map(|(d, _)| d.to_string())
                    .collect();
                return Err(format!("Timed out waiting for domain {}", left.join(", ")));
            }
            self.pause_a_little();
        }
    }

    /// `xl console`: waits for xenconsoled's pty in xenstore, then relays
    /// until Ctrl-], or until the domain or its console is gone.
    pub fn console_cmd(&mut self, domid: u32, ty: Option<ConsoleType>, num: i32) -> HvResult<()> {
        if domid == 0 {
            return Err(HvError::Failed("Can't specify Domain-0".into()));
        }
        let path = self.tty_node(domid, ty, num);
        let tty = self.wait_tty(domid, &path).ok_or_else(|| {
            HvError::Failed(
                "xenconsole: Could not read tty from store: No such file or directory".into(),
            )
        })?;
        let mut session = self
            .host
            .open_console(&tty)
            .map_err(|e| HvError::Failed(format!("xenconsole: Could not open tty `{tty}': {e}")))?;
        let mut last_check = self.host.now();
        loop {
            let step = session
                .pump(Duration::from_secs(1))
                .map_err(|e| HvError::Failed(format!("xenconsole: {e}")))?;
            // Liveness is checked when idle, and at most once a second
            // while output flows.
            let check = match step {
                Pump::Escape => return Ok(()),
                Pump::PtyGone => {
                    self.host.sleep(Duration::from_millis(200));
                    match self.current_tty(domid, &path) {
                        Some(t) if session.reopen(&t).is_ok() => {}
                        _ => return Ok(()),
                    }
                    false
                }
                Pump::Idle => true,
                Pump::Data => self.host.now() != last_check,
            };
            if check {
                last_check = self.host.now();
                if self.current_tty(domid, &path).is_none() {
                    return Ok(());
                }
            }
        }
    }

    /// Where xenconsoled publishes the pty of a console (xenconsole's
    /// choice: a serial console that does not exist means the PV one).
    fn tty_node(&mut self, domid: u32, ty: Option<ConsoleType>, num: i32) -> String {
        let dom = dom_path(domid);
        let pv = |num: i32| match num {
            0 => format!("{dom}/console/tty"),
            n => format!("{dom}/device/console/{n}/tty"),
        };
        match ty {
            Some(ConsoleType::Vuart) => format!("{dom}/vuart/0/tty"),
            Some(ConsoleType::Serial) => {
                let serial = format!("{dom}/serial/{num}/tty");
                match self.host.xs_read(&serial) {
                    Ok(_) => serial,
                    Err(_) => pv(num),
                }
            }
            None | Some(ConsoleType::Pv) => pv(num),
        }
    }

    /// The pty path while the domain lives and has one.
    fn current_tty(&mut self, domid: u32, path: &str) -> Option<String> {
        if !matches!(
            self.observe(domid),
            Ok(Observed::Running | Observed::Shutdown(_))
        ) {
            return None;
        }
        self.host.xs_read(path).ok().filter(|t| !t.is_empty())
    }

    /// xenconsole's `get_pty_fd(..., 5)`.
    fn wait_tty(&mut self, domid: u32, path: &str) -> Option<String> {
        let _ = self.host.xs().watch(path, TOKEN);
        let start = self.host.now();
        let tty = loop {
            if let Some(t) = self.current_tty(domid, path) {
                break Some(t);
            }
            if self.host.now().saturating_sub(start) >= TTY_WAIT_SECS {
                break None;
            }
            self.pause_a_little();
        };
        let _ = self.host.xs().unwatch(path, TOKEN);
        tty
    }

    /// `xl list -l`'s view of a domain: xenstore's entries where libxl
    /// wrote them, the hypervisor's numbers otherwise.
    pub fn details(&mut self, domid: u32) -> HvResult<DomainDetails> {
        let x = self.xc()?;
        let info = xc::getdomaininfo(x, domid)
            .map_err(|e| HvError::Failed(format!("libxl_domain_info failed: {}", strerror(e))))?
            .ok_or_else(|| HvError::Failed(format!("Domain {domid} does not exist")))?;
        let dom = dom_path(domid);
        let xs = self.host.xs();
        let num = |xs: &mut dyn Xs, k: &str| -> Option<u64> {
            xs.read(XBT_NULL, &format!("{dom}/{k}")).ok()?.parse().ok()
        };
        let max_memkb = num(xs, "memory/static-max").unwrap_or(info.max_pages * 4);
        let target_memkb = num(xs, "memory/target").unwrap_or(info.tot_pages * 4);
        let cpus = xs
            .directory(XBT_NULL, &format!("{dom}/cpu"))
            .unwrap_or_default();
        let avail = cpus
            .iter()
            .filter(|c| {
                xs.read(XBT_NULL, &format!("{dom}/cpu/{c}/availability"))
                    .is_ok_and(|v| v == "online")
            })
            .count() as u32;
        let max_vcpus = if cpus.is_empty() {
            info.max_vcpu_id.wrapping_add(1)
        } else {
            cpus.len() as u32
        };
        let ty = xs.read(XBT_NULL, &format!("{}/type", libxl_path(domid)));
        Ok(DomainDetails {
            domid,
            name: self.name(domid),
            domain_type: ty.unwrap_or_else(|_| "pvh".into()),
            uuid: format_uuid(&info.handle),
            max_vcpus,
            avail_vcpus: if cpus.is_empty() {
                info.nr_online_vcpus
            } else {
                avail
            },
            max_memkb,
            target_memkb,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations() {
        let mut i = XenDomctlGetdomaininfo {
            flags: XEN_DOMINF_running,
            ..Default::default()
        };
        assert_eq!(observe_info(None), Observed::Gone);
        assert_eq!(observe_info(Some(&i)), Observed::Running);
        i.flags = XEN_DOMINF_shutdown | (3 << 16);
        assert_eq!(observe_info(Some(&i)), Observed::Shutdown(3));
        i.flags |= XEN_DOMINF_dying;
        assert_eq!(observe_info(Some(&i)), Observed::Gone);
    }
}
