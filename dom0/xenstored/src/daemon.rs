//! xenstored: options, start-up and the event loop around [`xenstore::Server`].
//!
//! Connections:
//! - dom0's kernel: the ring page Linux allocated at boot (`/dev/xen/xenbus_backend`: mmap
//!   gives the page, `IOCTL_XENBUS_BACKEND_EVTCHN` its unbound port, which is bound
//!   interdomain to (domain 0, that port) and notified once: Linux's xenbus waits for that
//!   first event before probing), as C xenstored's `dom0_init` does;
//! - tools: the unix socket (domid 0);
//! - guests: `XS_INTRODUCE` maps grant `GNTTAB_RESERVED_XENSTORE` of the domain through
//!   gntdev (else the given gfn through privcmd) and binds its port.
//!
//! One thread, one `poll` over the event-channel device, the listener and the sockets.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

use xen_abi::grant_table::GNTTAB_RESERVED_XENSTORE;
use xen_abi::io::xs_wire::{XENSTORE_ERROR_RINGIDX, XS_INTRODUCE, XS_WATCH_EVENT};
use xenstore::perms::Caller;
use xenstore::ring::DomainRing;
use xenstore::{Action, ConnId, Decoder, DomId, Errno, Message, Quotas, Server};

use crate::queue::OutQueue;
use crate::sys::{self, Evtchn, Gntdev, Page, PollFd, Privcmd, XenbusBackend};

pub const USAGE: &str = "\
usage: xenstored [options]

  -F, --pid-file FILE     write the daemon's pid to FILE
  -N, --no-fork           stay in the foreground (log to stderr unless -L)
  -L, --log-file FILE     log here (default when forking: /var/log/xen/xenstored.log)
  -D, --no-domain-init    do not serve dom0's kernel ring (socket only)
  -V, --verbose           log every request
      --socket PATH       listen here (default: $XENSTORED_PATH, else
                          $XENSTORED_RUNDIR/socket, else /run/xenstored/socket)
  quotas for unprivileged domains, as C xenstored's options:
  -E, --entry-nb N        nodes per domain (1000)
  -S, --entry-size N      bytes per node (2048)
  -W, --watch-nb N        watches per domain (128)
  -t, --transaction N     open transactions per connection (10)
  -A, --perm-nb N         perms per node (5)
  -M, --path-max N        relative path length (2048)
  -h, --help

Started in the background, it exits (the parent) once the socket listens and dom0's ring
is served, with status 0, or 1 and the reason on stderr.";

#[derive(Clone, Debug, PartialEq)]
pub struct Opts {
    pub pid_file: Option<PathBuf>,
    pub fork: bool,
    pub log_file: Option<PathBuf>,
    pub domain_init: bool,
    pub verbose: bool,
    pub socket: PathBuf,
    pub quotas: Quotas,
    pub help: bool,
}

impl Opts {
    /// Parses the arguments after argv[0]; `socket` is the default socket path.
    pub fn parse(args: &[String], socket: PathBuf) -> Result<Opts, String> {
        let mut o = Opts {
            pid_file: None,
            fork: true,
            log_file: None,
            domain_init: true,
            verbose: false,
            socket,
            quotas: Quotas::default(),
            help: false,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (name, inline) = match a.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
                _ => (a.as_str(), None),
            };
            let mut value = || -> Result<String, String> {
                inline.clone().or_else(|| it.next().cloned()).ok_or_else(|| format!("{name} needs a value"))
            };
            fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
                v.parse().map_err(|_| format!("{name}: bad number `{v}`"))
            }
            match name {
                "-F" | "--pid-file" => o.pid_file = Some(value()?.into()),
                "-N" | "--no-fork" => o.fork = false,
                "-L" | "--log-file" => o.log_file = Some(value()?.into()),
                "-D" | "--no-domain-init" => o.domain_init = false,
                "-V" | "--verbose" => o.verbose = true,
                "--socket" => o.socket = value()?.into(),
                "-E" | "--entry-nb" => o.quotas.max_entries = num(name, value()?)?,
                "-S" | "--entry-size" => o.quotas.max_node_size = num(name, value()?)?,
                "-W" | "--watch-nb" => o.quotas.max_watches = num(name, value()?)?,
                "-t" | "--transaction" => o.quotas.max_transactions = num(name, value()?)?,
                "-A" | "--perm-nb" => o.quotas.max_perms = num(name, value()?)?,
                "-M" | "--path-max" => o.quotas.max_path_len = num(name, value()?)?,
                "-h" | "--help" => o.help = true,
                _ => return Err(format!("unknown option `{a}` (see --help)")),
            }
        }
        Ok(o)
    }
}

/// Appends timestamped lines to the log (stderr, or the file stderr was pointed at).
pub fn log(msg: std::fmt::Arguments<'_>) {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let _ = writeln!(io::stderr(), "xenstored[{}] {}.{:03}: {msg}", sys::getpid(), t.as_secs(), t.subsec_millis());
}

macro_rules! log {
    ($($a:tt)*) => { $crate::daemon::log(format_args!($($a)*)) };
}

/// The nodes xen-init-dom0 writes at boot (its `/vm/<uuid>` and libxl's JSON stub are
/// left out: nothing here reads them).
pub const DOM0_NODES: &[(&str, &str)] = &[("/local/domain/0/domid", "0"), ("/local/domain/0/name", "Domain-0")];

/// Fills a fresh store as C xenstored + xen-init-dom0 leave it.
pub fn populate(server: &mut Server) -> Result<(), Errno> {
    for (path, value) in DOM0_NODES {
        server.store_mut().write(&Caller::DOM0, path, value.as_bytes())?;
    }
    Ok(())
}

enum Io {
    Socket(UnixStream),
    Ring(Ring),
}

struct Ring {
    ring: DomainRing<Page>,
    /// Local port bound to the domain's.
    port: u32,
    /// gntdev index of the mapping (None: dom0's own page, or a foreign mapping).
    grant: Option<u64>,
    /// Bad indices were seen: the connection is ignored from then on.
    broken: bool,
}

struct Conn {
    domid: DomId,
    io: Io,
    dec: Decoder,
    out: OutQueue,
}

pub struct Daemon {
    server: Server,
    verbose: bool,
    listener: UnixListener,
    evtchn: Option<Evtchn>,
    gntdev: Option<Gntdev>,
    privcmd: Option<Privcmd>,
    conns: BTreeMap<ConnId, Conn>,
    ports: HashMap<u32, ConnId>,
    next_id: ConnId,
}

/// Ring bytes read per go.
const RING_CHUNK: usize = 1024;

impl Daemon {
    /// Sets everything up; after this returns, tools can connect and dom0's kernel has been
    /// told that xenstored runs.
    pub fn start(o: &Opts) -> Result<Daemon, String> {
        let mut server = Server::new(o.quotas.clone());
        populate(&mut server).map_err(|e| format!("populating /local/domain/0: {e}"))?;
        let listener = listen(&o.socket).map_err(|e| format!("socket {}: {e}", o.socket.display()))?;
        let mut d = Daemon {
            server,
            verbose: o.verbose,
            listener,
            evtchn: None,
            gntdev: None,
            privcmd: None,
            conns: BTreeMap::new(),
            ports: HashMap::new(),
            next_id: 1,
        };
        if o.domain_init {
            d.dom0_init().map_err(|e| format!("serving dom0's xenstore ring: {e}"))?;
        } else {
            d.evtchn = Evtchn::open().ok();
        }
        Ok(d)
    }

    /// C xenstored's `dom0_init`: dom0's kernel ring.
    fn dom0_init(&mut self) -> io::Result<()> {
        let evtchn = Evtchn::open()?;
        let xb = XenbusBackend::open()?;
        let remote = xb.evtchn()?;
        let page = sys::Page(xb.map()?);
        let port = evtchn.bind_interdomain(0, remote)?;
        log!("dom0: ring mapped, kernel port {remote} bound as local port {port}");
        let id = self.new_id();
        self.server.connect(id, 0);
        let ring = Ring { ring: DomainRing::new(page), port, grant: None, broken: false };
        self.conns.insert(id, Conn { domid: 0, io: Io::Ring(ring), dec: Decoder::new(), out: OutQueue::new() });
        self.ports.insert(port, id);
        // Linux's xenbus_probe waits for this first event.
        evtchn.notify(port)?;
        self.evtchn = Some(evtchn);
        // Requests the kernel may have queued before we came are served now.
        self.service_ring(id);
        Ok(())
    }

    fn new_id(&mut self) -> ConnId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Serves until a fatal error (of poll or the event-channel device).
    pub fn run(&mut self) -> io::Result<()> {
        loop {
            let mut fds = Vec::with_capacity(2 + self.conns.len());
            fds.push(PollFd::new(self.listener.as_raw_fd(), sys::POLLIN));
            if let Some(e) = &self.evtchn {
                fds.push(PollFd::new(e.fd(), sys::POLLIN));
            }
            let fixed = fds.len();
            let mut ids = Vec::new();
            for (&id, c) in &self.conns {
                if let Io::Socket(s) = &c.io {
                    let mut ev = 0;
                    if !c.out.is_full() {
                        ev |= sys::POLLIN;
                    }
                    if !c.out.is_empty() {
                        ev |= sys::POLLOUT;
                    }
                    fds.push(PollFd::new(s.as_raw_fd(), ev));
                    ids.push(id);
                }
            }
            sys::poll(&mut fds, -1).map_err(sys::ctx("poll"))?;
            if fds[0].revents != 0 {
                self.accept();
            }
            if fixed == 2 && fds[1].revents != 0 {
                self.evtchn_events()?;
            }
            for (f, id) in fds[fixed..].iter().zip(ids) {
                if f.revents & (sys::POLLIN | sys::POLLHUP | sys::POLLERR | sys::POLLNVAL) != 0 {
                    self.read_socket(id);
                }
            }
            self.flush_all();
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((s, _)) => {
                    if let Err(e) = s.set_nonblocking(true) {
                        log!("socket connection: set_nonblocking: {e}");
                        continue;
                    }
                    let id = self.new_id();
                    self.server.connect(id, 0);
                    self.conns.insert(id, Conn { domid: 0, io: Io::Socket(s), dec: Decoder::new(), out: OutQueue::new() });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log!("accept: {e}");
                    return;
                }
            }
        }
    }

    fn evtchn_events(&mut self) -> io::Result<()> {
        let Some(e) = &self.evtchn else { return Ok(()) };
        let ports = e.pending()?;
        if ports.is_empty() {
            return Ok(());
        }
        // Unmask first: an event arriving while we work is then not lost.
        e.unmask(&ports)?;
        for p in ports {
            match self.ports.get(&p) {
                Some(&id) => self.service_ring(id),
                None => log!("event on unknown port {p}"),
            }
        }
        Ok(())
    }

    fn close(&mut self, id: ConnId) {
        self.server.disconnect(id);
        self.conns.remove(&id);
    }

    fn read_socket(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else { return };
        let Io::Socket(s) = &mut c.io else { return };
        if c.out.is_full() {
            return;
        }
        let mut buf = [0u8; 4096];
        let n = match s.read(&mut buf) {
            Ok(0) => return self.close(id),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => return,
            Err(e) => {
                log!("socket connection {id}: read: {e}");
                return self.close(id);
            }
        };
        let mut msgs = Vec::new();
        if let Err(e) = c.dec.push(&buf[..n], &mut msgs) {
            log!("socket connection {id}: {e}; closing it");
            return self.close(id);
        }
        let domid = c.domid;
        self.dispatch(id, domid, msgs);
    }

    /// Moves bytes both ways on a ring until neither side can progress.
    fn service_ring(&mut self, id: ConnId) {
        loop {
            let Some(c) = self.conns.get_mut(&id) else { return };
            let Io::Ring(r) = &mut c.io else { return };
            if r.broken {
                return;
            }
            let mut moved = false;
            let mut msgs = Vec::new();
            let ring = &mut r.ring;
            let result = (|| {
                if c.out.drain_into(|b| ring.write_responses(b))? > 0 {
                    moved = true;
                }
                if !c.out.is_full() {
                    let mut buf = [0u8; RING_CHUNK];
                    let n = ring.read_requests(&mut buf)?;
                    if n > 0 {
                        moved = true;
                        if let Err(e) = c.dec.push(&buf[..n], &mut msgs) {
                            return Ok(Some(e.to_string()));
                        }
                    }
                }
                Ok::<_, xenstore::ring::RingError>(None)
            })();
            let bad = match result {
                Ok(None) => None,
                Ok(Some(proto)) => Some(proto),
                Err(e) => {
                    r.ring.set_error(XENSTORE_ERROR_RINGIDX);
                    Some(e.to_string())
                }
            };
            if let Some(why) = bad {
                log!("domain {} ring: {why}; ignoring it from now on", c.domid);
                r.broken = true;
            }
            let (port, domid) = (r.port, c.domid);
            if moved {
                if let Some(e) = &self.evtchn {
                    if let Err(err) = e.notify(port) {
                        log!("domain {domid}: {err}");
                    }
                }
            }
            self.dispatch(id, domid, msgs);
            if !moved {
                return;
            }
        }
    }

    /// Sends what can be sent on every connection with output.
    fn flush_all(&mut self) {
        let pending: Vec<(ConnId, bool)> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.out.is_empty())
            .map(|(&id, c)| (id, matches!(c.io, Io::Ring(_))))
            .collect();
        for (id, ring) in pending {
            if ring {
                self.service_ring(id);
                continue;
            }
            let Some(c) = self.conns.get_mut(&id) else { continue };
            let Io::Socket(s) = &mut c.io else { continue };
            let r = c.out.drain_into(|b| match s.write(b) {
                Ok(n) => Ok(n),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(0),
                Err(e) => Err(e),
            });
            if let Err(e) = r {
                if e.kind() != io::ErrorKind::BrokenPipe && e.kind() != io::ErrorKind::ConnectionReset {
                    log!("socket connection {id}: write: {e}");
                }
                self.close(id);
            }
        }
    }

    /// Handles requests of connection `id` and queues what they produce.
    fn dispatch(&mut self, id: ConnId, domid: DomId, msgs: Vec<Message>) {
        for m in msgs {
            if self.verbose {
                log!("conn {id} (dom{domid}) type {} req {} tx {} {:?}", m.ty, m.req_id, m.tx_id, String::from_utf8_lossy(&m.payload));
            }
            let mut out = self.server.handle(id, domid, &m);
            for a in self.server.take_actions() {
                if let Err(e) = self.act(&a, &mut out) {
                    // The introduction failed after all: say so instead of OK.
                    if m.ty == XS_INTRODUCE {
                        if let Some(first) = out.iter_mut().find(|(c, r)| *c == id && r.req_id == m.req_id) {
                            first.1 = Message::error(&m, e);
                        }
                    }
                }
            }
            self.route(out);
        }
    }

    fn route(&mut self, out: Vec<(ConnId, Message)>) {
        for (id, msg) in out {
            let Some(c) = self.conns.get_mut(&id) else { continue };
            if msg.ty == XS_WATCH_EVENT {
                if !c.out.push_event(&msg) && c.out.dropped().is_power_of_two() {
                    log!("connection {id} (dom{}): output queue full, {} watch event(s) dropped", c.domid, c.out.dropped());
                }
            } else {
                c.out.push_reply(&msg);
            }
        }
    }

    /// Carries out an [`Action`]; on failure returns the errno to report.
    fn act(&mut self, a: &Action, out: &mut Vec<(ConnId, Message)>) -> Result<(), Errno> {
        match *a {
            Action::MapDomain { domid, gfn, evtchn } => match self.map_domain(domid, gfn, evtchn) {
                Ok(()) => Ok(()),
                Err(e) => {
                    log!("introduce domain {domid} (gfn {gfn:#x}, port {evtchn}) failed: {e}");
                    out.extend(self.server.domain_gone(domid));
                    Err(xs_errno(&e))
                }
            },
            Action::Rebind { domid, evtchn } => {
                let r = self.rebind(domid, evtchn);
                if let Err(e) = &r {
                    log!("re-introduce domain {domid} (port {evtchn}) failed: {e}");
                }
                r.map_err(|e| xs_errno(&e))
            }
            Action::ReleaseDomain { domid } => {
                self.release(domid);
                Ok(())
            }
        }
    }

    fn map_domain(&mut self, domid: DomId, gfn: u64, evtchn: u32) -> io::Result<()> {
        let Some(ev) = &self.evtchn else {
            return Err(io::Error::other(format!("no event channel device ({})", sys::EVTCHN)));
        };
        // The grant first, as C xenstored does; the foreign mapping of the gfn otherwise.
        let mut why = String::new();
        if self.gntdev.is_none() {
            match Gntdev::open() {
                Ok(g) => self.gntdev = Some(g),
                Err(e) => why = e.to_string(),
            }
        }
        let mapped = match &self.gntdev {
            Some(g) => g.map(domid, GNTTAB_RESERVED_XENSTORE).map(|(p, i)| (sys::Page(p), Some(i))).map_err(|e| e.to_string()),
            None => Err(why),
        };
        let (page, grant) = match mapped {
            Ok(x) => x,
            Err(gerr) => {
                if self.privcmd.is_none() {
                    self.privcmd = Some(Privcmd::open().map_err(|e| io::Error::other(format!("{gerr}; {e}")))?);
                }
                let p = self.privcmd.as_ref().expect("just opened");
                let page = p.map_foreign(domid, gfn).map_err(|e| io::Error::new(e.kind(), format!("{gerr}; {e}")))?;
                (sys::Page(page), None)
            }
        };
        let port = match ev.bind_interdomain(domid, evtchn) {
            Ok(p) => p,
            Err(e) => {
                drop(page);
                if let (Some(g), Some(i)) = (&self.gntdev, grant) {
                    let _ = g.unmap_grant_ref(i);
                }
                return Err(e);
            }
        };
        let mut ring = DomainRing::new(page);
        ring.reset();
        let id = self.new_id();
        self.server.connect(id, domid);
        self.conns.insert(
            id,
            Conn { domid, io: Io::Ring(Ring { ring, port, grant, broken: false }), dec: Decoder::new(), out: OutQueue::new() },
        );
        self.ports.insert(port, id);
        log!("domain {domid}: ring mapped ({}), port {evtchn} bound as local port {port}", if grant.is_some() { "grant" } else { "foreign gfn" });
        Ok(())
    }

    fn ring_of(&self, domid: DomId) -> Option<ConnId> {
        self.conns.iter().find(|(_, c)| c.domid == domid && matches!(c.io, Io::Ring(_))).map(|(&id, _)| id)
    }

    fn rebind(&mut self, domid: DomId, evtchn: u32) -> io::Result<()> {
        let id = self.ring_of(domid).ok_or_else(|| io::Error::other(format!("domain {domid} has no ring")))?;
        let ev = self.evtchn.as_ref().ok_or_else(|| io::Error::other("no event channel device"))?;
        let c = self.conns.get_mut(&id).expect("found above");
        let Io::Ring(r) = &mut c.io else { unreachable!("ring_of finds rings") };
        let _ = ev.unbind(r.port);
        self.ports.remove(&r.port);
        let port = ev.bind_interdomain(domid, evtchn)?;
        r.port = port;
        r.ring.reset();
        r.broken = false;
        c.dec = Decoder::new();
        c.out = OutQueue::new();
        self.ports.insert(port, id);
        Ok(())
    }

    fn release(&mut self, domid: DomId) {
        if domid == 0 {
            return;
        }
        while let Some(id) = self.ring_of(domid) {
            let Some(c) = self.conns.remove(&id) else { break };
            if let Io::Ring(r) = c.io {
                self.ports.remove(&r.port);
                if let Some(e) = &self.evtchn {
                    if let Err(err) = e.unbind(r.port) {
                        log!("release domain {domid}: {err}");
                    }
                }
                drop(r.ring);
                if let (Some(g), Some(i)) = (&self.gntdev, r.grant) {
                    if let Err(err) = g.unmap_grant_ref(i) {
                        log!("release domain {domid}: {err}");
                    }
                }
            }
        }
    }
}

/// The xenstore errno for a failed system call (EIO when xenstore has no name for it).
fn xs_errno(e: &io::Error) -> Errno {
    match sys::errno(e) {
        Some(n) if Errno(n).name() != "EINVAL" || n == libc::EINVAL => Errno(n),
        _ => Errno::EIO,
    }
}

fn listen(path: &PathBuf) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A stale socket of an earlier run; a live daemon is detected by connecting.
    if UnixStream::connect(path).is_ok() {
        return Err(io::Error::new(io::ErrorKind::AddrInUse, "another xenstored listens there"));
    }
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Runs xenstored with `args` (after argv[0]); returns the exit status.
pub fn main(args: &[String]) -> i32 {
    let o = match Opts::parse(args, crate::client::socket_path()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xenstored: {e}");
            return 2;
        }
    };
    if o.help {
        println!("{USAGE}");
        return 0;
    }
    let log_file = o.log_file.clone().or_else(|| o.fork.then(|| PathBuf::from("/var/log/xen/xenstored.log")));
    if !o.fork {
        if let Some(f) = &log_file {
            if let Err(e) = redirect_stderr(f) {
                eprintln!("xenstored: {e}");
                return 1;
            }
        }
        return serve(&o, None);
    }
    // Background: the parent waits for the child to report readiness on a pipe.
    let (mut rx, tx) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xenstored: pipe: {e}");
            return 1;
        }
    };
    match sys::fork() {
        Err(e) => {
            eprintln!("xenstored: fork: {e}");
            1
        }
        Ok(Some(_child)) => {
            drop(tx);
            let mut msg = String::new();
            let _ = rx.read_to_string(&mut msg);
            match msg.strip_prefix("ok") {
                Some(_) => 0,
                None => {
                    eprintln!("xenstored: {}", if msg.is_empty() { "the daemon died while starting" } else { msg.trim_end() });
                    1
                }
            }
        }
        Ok(None) => {
            drop(rx);
            let _ = sys::setsid();
            let _ = std::env::set_current_dir("/");
            if let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") {
                let _ = sys::dup2(null.as_raw_fd(), 0);
                let _ = sys::dup2(null.as_raw_fd(), 1);
            }
            let logged = log_file.as_ref().map(redirect_stderr);
            let mut tx = tx;
            if let Some(Err(e)) = logged {
                let _ = write!(tx, "{e}");
                return 1;
            }
            serve(&o, Some(tx))
        }
    }
}

fn redirect_stderr(path: &PathBuf) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let f: File = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("log file {}: {e}", path.display()))?;
    sys::dup2(f.as_raw_fd(), 2).map_err(|e| format!("log file {}: dup2: {e}", path.display()))
}

/// Starts, reports readiness on `ready` (background) and serves.
fn serve(o: &Opts, ready: Option<std::io::PipeWriter>) -> i32 {
    let started = Daemon::start(o).and_then(|d| {
        if let Some(p) = &o.pid_file {
            std::fs::write(p, format!("{}\n", sys::getpid())).map_err(|e| format!("pid file {}: {e}", p.display()))?;
        }
        Ok(d)
    });
    let mut d = match started {
        Ok(d) => d,
        Err(e) => {
            log!("{e}");
            if let Some(mut p) = ready {
                let _ = write!(p, "{e}");
            }
            return 1;
        }
    };
    let mut banner = format!("listening on {}", o.socket.display());
    if o.domain_init {
        let _ = write!(banner, ", serving dom0's ring");
    }
    log!("{banner}");
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

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn options() {
        let def = PathBuf::from("/run/xenstored/socket");
        let o = Opts::parse(&[], def.clone()).unwrap();
        assert!(o.fork && o.domain_init && o.pid_file.is_none());
        assert_eq!(o.socket, def);
        let o = Opts::parse(&args("-N -F /run/x.pid --socket=/tmp/s -D -E 5 --watch-nb 7 -V"), def.clone()).unwrap();
        assert!(!o.fork && !o.domain_init && o.verbose);
        assert_eq!(o.pid_file, Some("/run/x.pid".into()));
        assert_eq!(o.socket, PathBuf::from("/tmp/s"));
        assert_eq!((o.quotas.max_entries, o.quotas.max_watches), (5, 7));
        assert!(Opts::parse(&args("-F"), def.clone()).is_err());
        assert!(Opts::parse(&args("-E x"), def.clone()).is_err());
        assert!(Opts::parse(&args("--bogus"), def.clone()).is_err());
        assert!(Opts::parse(&args("--help"), def).unwrap().help);
    }

    #[test]
    fn dom0_nodes() {
        let mut s = Server::default();
        populate(&mut s).unwrap();
        assert_eq!(s.store_mut().read(&Caller::DOM0, "/local/domain/0/name").unwrap(), b"Domain-0");
        assert_eq!(s.store_mut().read(&Caller::DOM0, "/local/domain/0/domid").unwrap(), b"0");
    }

    #[test]
    fn errno_mapping() {
        assert_eq!(xs_errno(&io::Error::from_raw_os_error(libc::EPERM)), Errno::EPERM);
        assert_eq!(xs_errno(&io::Error::from_raw_os_error(libc::EINVAL)), Errno::EINVAL);
        assert_eq!(xs_errno(&io::Error::from_raw_os_error(libc::ENXIO)), Errno::EIO);
        assert_eq!(xs_errno(&io::Error::other("x")), Errno::EIO);
    }
}
