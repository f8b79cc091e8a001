//! The daemon: domains found through xenstore watches and the hypervisor's domain list,
//! one console each, and one `poll` loop over xenstore, the event-channel device and the
//! consoles' ptys.
//!
//! As C xenconsoled (`tools/console/daemon/io.c`):
//! - `@introduceDomain` and `@releaseDomain` (token `domlist`) make it list the domains
//!   (`XEN_SYSCTL_getdomaininfolist`): a new domain (id >= 1, not dying) gets a watch on
//!   `/local/domain/N/console` (token `domN`); a dying or vanished one is shut down: its
//!   ring unmapped, its port unbound, its pty and log closed.
//! - On every `domN` event, the console is (re)connected once `console/ring-ref` and
//!   `console/port` exist (and `console/type`, if present, is `xenconsoled`): the ring page
//!   foreign-mapped (else its grant `GNTTAB_RESERVED_CONSOLE`), the port bound, a pty
//!   created and its path written to `console/tty`, the log `guest-NAME.log` opened.
//! - Each event from a guest drains its whole `out` ring into the log and the pty buffer,
//!   then notifies it. More than 30 events in 200 ms leave its port masked until the
//!   period ends (rate limit). Pty input goes into `in` as room allows, then a notify.
//! - With `--log=hv|all`, the hypervisor's console ring is appended to `hypervisor.log` at
//!   start and on every `VIRQ_CON_RING`.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use xen_abi::event_channel::VIRQ_CON_RING;
use xen_abi::grant_table::GNTTAB_RESERVED_CONSOLE;
use xen_sys::{Evtchn, Gntdev, HypercallDev, Privcmd};
use xenstore::DomId;
use xenstored::client::{Client, Event, Mode};
use xenstored::log;
use xenstored::sys::{self as xsys, PollFd};
use xenstored::xen::{domain_list, RingPage};

use crate::console::Console;
use crate::logfile::{guest_log_path, LogFile};
use crate::opts::{Opts, DEFAULT_LOG_FILE, DEFAULT_PID_FILE, USAGE};
use crate::outbuf::OutBuf;
use crate::sys::{self, Pty};

/// Events allowed per period before a console's port stays masked (C's
/// `RATE_LIMIT_ALLOWANCE`).
const RATE_LIMIT_ALLOWANCE: u32 = 30;
/// The period (C's `RATE_LIMIT_PERIOD`).
const RATE_LIMIT_PERIOD: Duration = Duration::from_millis(200);
/// Bytes of hypervisor console read per sysctl.
const HV_CHUNK: u32 = 16 * 1024;
/// Without `VIRQ_CON_RING`, how often the hypervisor's console is polled.
const HV_POLL: Duration = Duration::from_secs(2);
/// The watch token of the domain list (C's).
const DOMLIST: &str = "domlist";

/// A connected console: its mapping, ports, pty.
struct Conn {
    console: Console<RingPage>,
    /// The gfn mapped, or None for a grant mapping.
    ring_ref: Option<u64>,
    local_port: Option<u32>,
    remote_port: Option<u32>,
}

struct Domain {
    domid: DomId,
    conn: Option<Conn>,
    pty: Option<Pty>,
    log: Option<LogFile>,
    /// `console/limit`, if set.
    limit: Option<usize>,
    events: u32,
    next_period: Instant,
    /// Its port is masked by the rate limit.
    masked: bool,
    /// Ring resets logged so far (logged while few).
    resets_logged: u64,
}

struct HvLog {
    log: LogFile,
    index: u32,
    port: Option<u32>,
    next_poll: Instant,
}

pub struct Daemon {
    opts: Opts,
    xs: Client,
    privcmd: Privcmd,
    bufdev: Option<HypercallDev>,
    gntdev: Option<std::rc::Rc<Gntdev>>,
    evtchn: Evtchn,
    domains: BTreeMap<DomId, Domain>,
    ports: HashMap<u32, DomId>,
    hv: Option<HvLog>,
}

fn console_path(domid: DomId) -> String {
    format!("/local/domain/{domid}/console")
}

/// A xenstore value as a number (C's `%u` / `%i` through sscanf: leading digits).
fn number<T: std::str::FromStr>(v: &[u8]) -> Option<T> {
    let s = String::from_utf8_lossy(v);
    let t = s.trim();
    let end = t.bytes().take_while(u8::is_ascii_digit).count();
    t[..end].parse().ok()
}

impl Daemon {
    /// Connects to xenstore and the hypervisor, sets the watches, opens the logs.
    pub fn start(opts: Opts) -> Result<Daemon, String> {
        let mut xs =
            Client::open(Mode::Auto).map_err(|e| format!("failed to contact xenstore ({e}); is it running?"))?;
        xs.watch("@introduceDomain", DOMLIST).map_err(|e| format!("xenstore watch on @introduceDomain fails: {e}"))?;
        xs.watch("@releaseDomain", DOMLIST).map_err(|e| format!("xenstore watch on @releaseDomain fails: {e}"))?;
        let privcmd = Privcmd::open().map_err(|e| format!("failed to contact hypervisor: {e}"))?;
        let evtchn = Evtchn::open().map_err(|e| e.to_string())?;
        let mut d = Daemon {
            bufdev: HypercallDev::open().ok(),
            opts,
            xs,
            privcmd,
            gntdev: None,
            evtchn,
            domains: BTreeMap::new(),
            ports: HashMap::new(),
            hv: None,
        };
        if d.opts.log_guest || d.opts.log_hv {
            std::fs::create_dir_all(&d.opts.log_dir)
                .map_err(|e| format!("log directory {}: {e}", d.opts.log_dir.display()))?;
        }
        if d.opts.log_hv {
            d.open_hv_log()?;
        }
        Ok(d)
    }

    fn open_hv_log(&mut self) -> Result<(), String> {
        let path = self.opts.log_dir.join("hypervisor.log");
        let log = LogFile::open(&path, self.opts.time_hv, self.opts.replace_escape)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let port = match self.evtchn.bind_virq(VIRQ_CON_RING) {
            Ok(p) => Some(p),
            Err(e) => {
                log!("{e}: polling the hypervisor's console every {HV_POLL:?}");
                None
            }
        };
        self.hv = Some(HvLog { log, index: 0, port, next_poll: Instant::now() + HV_POLL });
        // The boot messages, even if VIRQ_CON_RING is not pending.
        self.read_hv();
        Ok(())
    }

    /// Appends what the hypervisor's console ring gained (`xc_readconsolering`,
    /// incremental).
    fn read_hv(&mut self) {
        let Some(hv) = &mut self.hv else { return };
        for _ in 0..64 {
            match self.privcmd.readconsole(hv.index, true, false, HV_CHUNK, self.bufdev.as_ref()) {
                Ok((data, index)) => {
                    hv.index = index;
                    if data.is_empty() {
                        break;
                    }
                    if let Err(e) = hv.log.write(&data) {
                        log!("writing {}: {e}", hv.log.path().display());
                    }
                    if data.len() < HV_CHUNK as usize {
                        break;
                    }
                }
                Err(e) => {
                    log!("{e}");
                    break;
                }
            }
        }
        hv.next_poll = Instant::now() + HV_POLL;
    }

    /// Serves until xenstore or the event-channel device fails.
    pub fn run(&mut self) -> Result<(), String> {
        self.enum_domains();
        loop {
            let pending = self.xs.take_events();
            for ev in pending {
                self.handle_xs(&ev);
            }
            if sys::take_hup() {
                self.reopen_logs();
            }
            let now = Instant::now();
            self.rate_limit_tick(now);

            let mut fds = vec![PollFd::new(self.xs.fd(), xsys::POLLIN), PollFd::new(self.evtchn.fd(), xsys::POLLIN)];
            let mut ptys = Vec::new();
            for d in self.domains.values_mut() {
                let (Some(pty), Some(c)) = (&d.pty, &mut d.conn) else { continue };
                let mut ev = 0;
                if c.local_port.is_some() && c.console.in_space() > 0 {
                    ev |= xsys::POLLIN;
                }
                if !c.console.out.is_empty() {
                    ev |= xsys::POLLOUT;
                }
                if ev != 0 {
                    fds.push(PollFd::new(pty.master.as_raw_fd(), ev));
                    ptys.push(d.domid);
                }
            }
            let timeout = self.poll_timeout(now);
            xsys::poll(&mut fds, timeout).map_err(|e| format!("poll: {e}"))?;

            if fds[0].revents & (xsys::POLLERR | xsys::POLLHUP | xsys::POLLNVAL) != 0
                && fds[0].revents & xsys::POLLIN == 0
            {
                return Err("lost the connection to xenstore".into());
            }
            if fds[0].revents & xsys::POLLIN != 0 {
                let evs = self.xs.read_events().map_err(|e| format!("xenstore: {e}"))?;
                for ev in evs {
                    self.handle_xs(&ev);
                }
            }
            if fds[1].revents != 0 {
                self.evtchn_events().map_err(|e| e.to_string())?;
            }
            for (f, domid) in fds[2..].iter().zip(ptys) {
                if f.revents & xsys::POLLIN != 0 {
                    self.pty_input(domid);
                }
                if f.revents & (xsys::POLLOUT | xsys::POLLERR | xsys::POLLHUP) != 0 {
                    self.pty_output(domid);
                }
            }
            if self.hv.as_ref().is_some_and(|h| h.port.is_none() && Instant::now() >= h.next_poll) {
                self.read_hv();
            }
        }
    }

    fn poll_timeout(&self, now: Instant) -> i32 {
        let mut next: Option<Instant> = self.domains.values().filter(|d| d.masked).map(|d| d.next_period).min();
        if let Some(h) = self.hv.as_ref().filter(|h| h.port.is_none()) {
            next = Some(next.map_or(h.next_poll, |n| n.min(h.next_poll)));
        }
        match next {
            None => -1,
            Some(t) => t.saturating_duration_since(now).as_millis().clamp(1, i32::MAX as u128) as i32,
        }
    }

    /// Starts a new period for every console whose period ended; a console that was rate
    /// limited gets its port unmasked (C's `console_evtchn_unmask`).
    fn rate_limit_tick(&mut self, now: Instant) {
        let mut unmask = Vec::new();
        for d in self.domains.values_mut() {
            if now + Duration::from_millis(5) > d.next_period {
                d.next_period = now + RATE_LIMIT_PERIOD;
                if d.masked {
                    d.masked = false;
                    if let Some(p) = d.conn.as_ref().and_then(|c| c.local_port) {
                        unmask.push(p);
                    }
                }
                d.events = 0;
            }
        }
        if !unmask.is_empty() {
            if let Err(e) = self.evtchn.unmask(&unmask) {
                log!("{e}");
            }
            // Output that arrived while masked.
            let doms: Vec<DomId> = unmask.iter().filter_map(|p| self.ports.get(p).copied()).collect();
            for d in doms {
                self.service(d);
            }
        }
    }

    fn handle_xs(&mut self, ev: &Event) {
        if ev.token == DOMLIST.as_bytes() {
            self.enum_domains();
        } else if let Some(domid) =
            std::str::from_utf8(&ev.token).ok().and_then(|t| t.strip_prefix("dom")).and_then(|n| n.parse().ok())
        {
            // Watches may fire for domains just removed.
            if self.domains.contains_key(&domid) {
                self.connect(domid);
            }
        }
    }

    /// C's `enum_domains`: new domains get a console, dying and vanished ones lose theirs.
    fn enum_domains(&mut self) {
        let list = match domain_list(&self.privcmd, self.bufdev.as_ref()) {
            Ok(l) => l,
            Err(e) => {
                log!("listing domains: {e}");
                return;
            }
        };
        let mut seen = Vec::new();
        for info in list.iter().filter(|i| i.domain >= 1 && i.domain < xen_abi::xen::DOMID_FIRST_RESERVED) {
            let dying = info.flags & xen_abi::domctl::XEN_DOMINF_dying != 0;
            if dying {
                if self.domains.contains_key(&info.domain) {
                    self.remove_domain(info.domain, "dying");
                }
            } else {
                seen.push(info.domain);
                if !self.domains.contains_key(&info.domain) {
                    self.add_domain(info.domain);
                }
            }
        }
        let gone: Vec<DomId> = self.domains.keys().copied().filter(|d| !seen.contains(d)).collect();
        for d in gone {
            self.remove_domain(d, "gone");
        }
    }

    fn add_domain(&mut self, domid: DomId) {
        if let Err(e) = self.xs.watch(&console_path(domid), &format!("dom{domid}")) {
            log!("domain {domid}: watching {}: {e}", console_path(domid));
            return;
        }
        if self.opts.verbose {
            log!("new domain {domid}");
        }
        self.domains.insert(
            domid,
            Domain {
                domid,
                conn: None,
                pty: None,
                log: None,
                limit: None,
                events: 0,
                next_period: Instant::now() + RATE_LIMIT_PERIOD,
                masked: false,
                resets_logged: 0,
            },
        );
        self.connect(domid);
    }

    /// C's `shutdown_domain` + `cleanup_domain`: unwatch, unbind, unmap, close pty and log.
    fn remove_domain(&mut self, domid: DomId, why: &str) {
        let Some(mut d) = self.domains.remove(&domid) else { return };
        let _ = self.xs.unwatch(&console_path(domid), &format!("dom{domid}"));
        if let Some(c) = d.conn.take() {
            self.close_conn(domid, c, d.log.as_mut());
        }
        d.pty = None;
        d.log = None;
        log!("domain {domid} {why}: console closed");
    }

    fn close_conn(&mut self, domid: DomId, mut c: Conn, log: Option<&mut LogFile>) {
        // Output still in the ring goes to the log first.
        if c.local_port.is_some() {
            c.console.drain(log);
        }
        if let Some(p) = c.local_port {
            self.ports.remove(&p);
            if let Err(e) = self.evtchn.unbind(p) {
                log!("domain {domid}: {e}");
            }
        }
        drop(c.console);
    }

    fn gntdev(&mut self) -> io::Result<std::rc::Rc<Gntdev>> {
        if self.gntdev.is_none() {
            self.gntdev = Some(std::rc::Rc::new(Gntdev::open()?));
        }
        Ok(self.gntdev.clone().expect("just opened"))
    }

    /// C's `console_create_ring`: (re)connects a console from its xenstore nodes.
    fn connect(&mut self, domid: DomId) {
        if let Err(e) = self.try_connect(domid) {
            log!("domain {domid}: console: {e}");
        }
    }

    fn try_connect(&mut self, domid: DomId) -> Result<(), String> {
        let base = console_path(domid);
        let read = |xs: &mut Client, leaf: &str| xs.read(0, &format!("{base}/{leaf}")).ok();
        let (Some(ring_ref), Some(port)) = (read(&mut self.xs, "ring-ref"), read(&mut self.xs, "port")) else {
            return Ok(()); // not (yet) set up
        };
        let ring_ref: u64 = number(&ring_ref).ok_or("bad console/ring-ref")?;
        let remote_port: u32 = number(&port).ok_or("bad console/port")?;
        if let Some(t) = read(&mut self.xs, "type") {
            if t != b"xenconsoled" {
                return Ok(());
            }
        }
        let limit = read(&mut self.xs, "limit").and_then(|v| number::<usize>(&v));

        // A changed ring-ref of a foreign mapping means a new page (C remaps).
        let stale = self.domains[&domid].conn.as_ref().is_some_and(|c| c.ring_ref.is_some_and(|r| r != ring_ref));
        if stale {
            let d = self.domains.get_mut(&domid).expect("known");
            let c = d.conn.take().expect("checked");
            let mut log = d.log.take();
            self.close_conn(domid, c, log.as_mut());
            self.domains.get_mut(&domid).expect("known").log = log;
        }
        if self.domains[&domid].conn.is_none() {
            let (page, mapped_ref) = self.map_console(domid, ring_ref)?;
            let max = if self.opts.discard_overflow { limit.unwrap_or(OutBuf::DEFAULT_MAX) } else { OutBuf::MAX_MAX };
            let conn =
                Conn { console: Console::new(page, max), ring_ref: mapped_ref, local_port: None, remote_port: None };
            self.domains.get_mut(&domid).expect("known").conn = Some(conn);
        }

        // The port: rebound when it changed.
        let bound = self.domains[&domid]
            .conn
            .as_ref()
            .is_some_and(|c| c.local_port.is_some() && c.remote_port == Some(remote_port));
        if !bound {
            let old = self.domains.get_mut(&domid).and_then(|d| d.conn.as_mut()).and_then(|c| c.local_port.take());
            if let Some(p) = old {
                self.ports.remove(&p);
                let _ = self.evtchn.unbind(p);
            }
            let local = self.evtchn.bind_interdomain(domid, remote_port).map_err(|e| e.to_string())?;
            let c = self.domains.get_mut(&domid).and_then(|d| d.conn.as_mut()).expect("mapped above");
            c.local_port = Some(local);
            c.remote_port = Some(remote_port);
            self.ports.insert(local, domid);
        }

        if self.domains[&domid].pty.is_none() {
            let pty = Pty::open().map_err(|e| format!("creating a pty: {e}"))?;
            self.xs
                .write(0, &format!("{base}/tty"), pty.path.as_bytes())
                .map_err(|e| format!("writing {base}/tty: {e}"))?;
            log!("domain {domid}: console on {}", pty.path);
            self.domains.get_mut(&domid).expect("known").pty = Some(pty);
        }
        let d = self.domains.get_mut(&domid).expect("known");
        d.limit = limit;
        if self.opts.discard_overflow {
            if let (Some(l), Some(c)) = (limit, d.conn.as_mut()) {
                c.console.out.set_max(l);
            }
        }
        if self.opts.log_guest && d.log.is_none() {
            let log = self.open_guest_log(domid);
            self.domains.get_mut(&domid).expect("known").log = log;
        }
        // Output the guest wrote before we were listening.
        self.service(domid);
        Ok(())
    }

    /// The ring page: foreign mapping of `ring_ref`, else the console's reserved grant.
    fn map_console(&mut self, domid: DomId, ring_ref: u64) -> Result<(RingPage, Option<u64>), String> {
        let ferr = match self.privcmd.map_foreign(domid, ring_ref) {
            Ok(p) => return Ok((RingPage::new(p), Some(ring_ref))),
            Err(e) => e,
        };
        let g = self.gntdev().map_err(|e| format!("{ferr}; {e}"))?;
        match g.map(domid, GNTTAB_RESERVED_CONSOLE) {
            Ok((p, index)) => Ok((RingPage::granted(p, g, index), None)),
            Err(e) => Err(format!("{ferr}; grant fallback: {e}")),
        }
    }

    fn open_guest_log(&mut self, domid: DomId) -> Option<LogFile> {
        let name = self.xs.read(0, &format!("/local/domain/{domid}/name")).ok();
        let path = guest_log_path(&self.opts.log_dir, name.as_deref(), domid);
        match LogFile::open(&path, self.opts.time_guest, self.opts.replace_escape) {
            Ok(l) => Some(l),
            Err(e) => {
                log!("domain {domid}: log {}: {e}", path.display());
                None
            }
        }
    }

    fn reopen_logs(&mut self) {
        if self.opts.log_guest {
            let ids: Vec<DomId> = self.domains.iter().filter(|(_, d)| d.conn.is_some()).map(|(&id, _)| id).collect();
            for id in ids {
                let log = self.open_guest_log(id);
                if let Some(d) = self.domains.get_mut(&id) {
                    d.log = log;
                }
            }
        }
        if let Some(hv) = &mut self.hv {
            match LogFile::open(hv.log.path(), self.opts.time_hv, self.opts.replace_escape) {
                Ok(l) => hv.log = l,
                Err(e) => log!("{}: {e}", hv.log.path().display()),
            }
        }
    }

    fn evtchn_events(&mut self) -> io::Result<()> {
        let ports = self.evtchn.pending()?;
        let mut unmask = Vec::new();
        for p in ports {
            if self.hv.as_ref().is_some_and(|h| h.port == Some(p)) {
                self.read_hv();
                unmask.push(p);
                continue;
            }
            let Some(&domid) = self.ports.get(&p) else {
                unmask.push(p);
                continue;
            };
            self.service(domid);
            let Some(d) = self.domains.get_mut(&domid) else { continue };
            d.events += 1;
            if d.events < RATE_LIMIT_ALLOWANCE {
                unmask.push(p);
            } else {
                d.masked = true;
            }
        }
        if !unmask.is_empty() {
            self.evtchn.unmask(&unmask)?;
        }
        Ok(())
    }

    /// Drains the guest's output (log, pty buffer), writes what the pty takes, notifies.
    fn service(&mut self, domid: DomId) {
        let Some(d) = self.domains.get_mut(&domid) else { return };
        let Some(c) = d.conn.as_mut() else { return };
        let Some(port) = c.local_port else { return };
        let r = c.console.drain(d.log.as_mut());
        if let Some(e) = &r.bad {
            if d.resets_logged < 8 {
                d.resets_logged += 1;
                log!("domain {domid}: {e}; ring reset");
            }
        }
        if let Some(e) = &r.log_error {
            log!("domain {domid}: writing its log: {e}");
        }
        if r.bytes > 0 || r.bad.is_some() {
            if let Err(e) = self.evtchn.notify(port) {
                log!("domain {domid}: {e}");
            }
        }
        self.pty_output(domid);
    }

    /// Pty input into the guest's `in` ring, as much as fits.
    fn pty_input(&mut self, domid: DomId) {
        let Some(d) = self.domains.get_mut(&domid) else { return };
        let (Some(pty), Some(c)) = (&mut d.pty, &mut d.conn) else { return };
        let Some(port) = c.local_port else { return };
        let space = c.console.in_space();
        if space == 0 {
            return;
        }
        let mut buf = [0u8; 1024];
        match pty.master.read(&mut buf[..space.min(1024)]) {
            Ok(0) => {}
            Ok(n) => {
                if let Ok(k) = c.console.input(&buf[..n]) {
                    if k > 0 {
                        let _ = self.evtchn.notify(port);
                    }
                }
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
            // EIO: no slave open (cannot happen while we hold ours); anything else: the
            // pty is broken, make a new one.
            Err(e) => self.recreate_pty(domid, &e),
        }
    }

    /// Queued output to the pty, as much as it takes now (never blocking).
    fn pty_output(&mut self, domid: DomId) {
        let Some(d) = self.domains.get_mut(&domid) else { return };
        let (Some(pty), Some(c)) = (&mut d.pty, &mut d.conn) else { return };
        let r = c.console.out.drain_into(|b| match pty.master.write(b) {
            Ok(n) => Ok(n),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(0),
            Err(e) => Err(e),
        });
        if let Err(e) = r {
            c.console.out.clear();
            self.recreate_pty(domid, &e);
        }
    }

    fn recreate_pty(&mut self, domid: DomId, why: &io::Error) {
        log!("domain {domid}: pty: {why}; making a new one");
        if let Some(d) = self.domains.get_mut(&domid) {
            d.pty = None;
        }
        self.connect(domid);
    }
}

/// Runs xenconsoled with `args` (after argv[0]); returns the exit status.
pub fn main(args: &[String]) -> i32 {
    let _ = xenstored::daemon::LOG_NAME.set("xenconsoled");
    let o = match Opts::parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xenconsoled: {e}");
            return libc::EINVAL;
        }
    };
    if o.help {
        println!("{USAGE}");
        return 0;
    }
    if o.version {
        println!("Xen Console Daemon 3.0 (ferrovisor)");
        return 0;
    }
    sys::raise_fd_limit(u64::from(xen_abi::xen::DOMID_FIRST_RESERVED) * 4 + 1000);
    if o.interactive {
        if let Some(f) = &o.log_file {
            if let Err(e) = xenstored::daemon::redirect_stderr(f) {
                eprintln!("xenconsoled: {e}");
                return 1;
            }
        }
        let pid = match o.pid_file.as_ref().map(write_pid_file).transpose() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("xenconsoled: {e}");
                return 1;
            }
        };
        let r = serve(o, None);
        drop(pid);
        return r;
    }
    // Background: the parent returns once the child is connected to xenstore (so that
    // scripts can start xenconsoled and rely on it), with 0, or 1 and the reason.
    let (mut rx, tx) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xenconsoled: pipe: {e}");
            return 1;
        }
    };
    match xsys::fork() {
        Err(e) => {
            eprintln!("xenconsoled: fork: {e}");
            1
        }
        Ok(Some(_)) => {
            drop(tx);
            let mut msg = String::new();
            let _ = rx.read_to_string(&mut msg);
            if msg.starts_with("ok") {
                0
            } else {
                eprintln!(
                    "xenconsoled: {}",
                    if msg.is_empty() { "the daemon died while starting" } else { msg.trim_end() }
                );
                1
            }
        }
        Ok(None) => {
            drop(rx);
            let _ = xsys::setsid();
            let _ = std::env::set_current_dir("/");
            if let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") {
                let _ = xsys::dup2(null.as_raw_fd(), 0);
                let _ = xsys::dup2(null.as_raw_fd(), 1);
            }
            let mut tx = tx;
            let log_file = o.log_file.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_LOG_FILE));
            if let Err(e) = xenstored::daemon::redirect_stderr(&log_file) {
                let _ = write!(tx, "{e}");
                return 1;
            }
            let pid_path = o.pid_file.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_PID_FILE));
            let pid = match write_pid_file(&pid_path) {
                Ok(f) => f,
                Err(e) => {
                    let _ = write!(tx, "{e}");
                    return 1;
                }
            };
            let r = serve(o, Some(tx));
            drop(pid);
            r
        }
    }
}

/// Creates and locks the pid file (one xenconsoled at a time) and writes our pid; the
/// returned file keeps the lock.
fn write_pid_file(path: &PathBuf) -> Result<File, String> {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| format!("pid file {}: {e}", path.display()))?;
    sys::lock_file(&f).map_err(|e| format!("pid file {}: {e} (is another xenconsoled running?)", path.display()))?;
    f.set_len(0)
        .and_then(|_| writeln!(f, "{}", xsys::getpid()))
        .map_err(|e| format!("pid file {}: {e}", path.display()))?;
    Ok(f)
}

fn serve(o: Opts, ready: Option<std::io::PipeWriter>) -> i32 {
    if let Err(e) = sys::catch_sighup() {
        log!("{e}");
    }
    let mut d = match Daemon::start(o) {
        Ok(d) => d,
        Err(e) => {
            log!("{e}");
            if let Some(mut p) = ready {
                let _ = write!(p, "{e}");
            }
            return 1;
        }
    };
    log!("serving consoles");
    if let Some(mut p) = ready {
        let _ = p.write_all(b"ok");
    }
    match d.run() {
        Ok(()) => 0,
        Err(e) => {
            log!("fatal: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xenstore_numbers() {
        assert_eq!(number::<u64>(b"12345"), Some(12345));
        assert_eq!(number::<u32>(b"7\n"), Some(7));
        assert_eq!(number::<u32>(b"9x"), Some(9));
        assert_eq!(number::<u32>(b"x"), None);
        assert_eq!(number::<u32>(b""), None);
        assert_eq!(number::<u32>(b"99999999999"), None);
    }
}
