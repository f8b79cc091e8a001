//! xenstored: options, start-up and the event loop around [`xenstore::Server`].
//!
//! Connections:
//! - dom0's kernel: the ring page Linux allocated at boot (`/dev/xen/xenbus_backend`: mmap
//!   gives the page, `IOCTL_XENBUS_BACKEND_EVTCHN` its unbound port, which is bound
//!   interdomain to (domain 0, that port) and notified once: Linux's xenbus waits for that
//!   first event before probing), as C xenstored's `dom0_init` does;
//! - tools: the unix socket (domid 0);
//! - guests: `XS_INTRODUCE` foreign-maps the given gfn of the domain through privcmd (else
//!   its grant `GNTTAB_RESERVED_XENSTORE` through gntdev) and binds its port;
//!   `VIRQ_DOM_EXC` makes it look for domains that shut down or died ([`crate::engine`]).
//!
//! One thread, one `poll` over the event-channel device, the listener and the sockets.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

use xen_abi::event_channel::VIRQ_DOM_EXC;
use xenstore::perms::Caller;
use xenstore::{ConnId, Errno, Quotas, Server};

use crate::engine::Engine;
use crate::sys::{self, Evtchn, PollFd, XenbusBackend};
use crate::xen::{RingPage, XenPlatform};

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
  -Q, --quota WHAT=N      outstanding=N: requests whose replies a domain has not taken
                          (20); memory=N: bytes a domain may hold in transactions and
                          watches (2621440); transaction-nodes=N: nodes a transaction
                          may touch (1024)
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
                "-Q" | "--quota" => {
                    let v = value()?;
                    let (what, n) = v.split_once('=').ok_or_else(|| format!("{name}: expected WHAT=N, not `{v}`"))?;
                    match what {
                        "outstanding" => o.quotas.max_outstanding = num(name, n.to_owned())?,
                        "memory" => o.quotas.max_memory = num(name, n.to_owned())?,
                        "transaction-nodes" => o.quotas.max_tx_nodes = num(name, n.to_owned())?,
                        _ => return Err(format!("{name}: unknown quota `{what}`")),
                    }
                }
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
    let name = LOG_NAME.get().copied().unwrap_or("xenstored");
    let line = format!("{name}[{}] {}.{:03}: {msg}", sys::getpid(), t.as_secs(), t.subsec_millis());
    if LOG_CAPTURED.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("{line}");
    } else {
        let _ = writeln!(io::stderr(), "{line}");
    }
}

/// The program name log lines start with (default `xenstored`; other daemons built on this
/// crate set theirs).
pub static LOG_NAME: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Set by tests: log lines go through `eprintln!`, which the test harness captures (the
/// daemon itself writes to stderr directly, never panicking when that fails).
pub static LOG_CAPTURED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

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

pub struct Daemon {
    engine: Engine<XenPlatform>,
    listener: UnixListener,
    sockets: BTreeMap<ConnId, UnixStream>,
}

impl Daemon {
    /// Sets everything up; after this returns, tools can connect and dom0's kernel has been
    /// told that xenstored runs.
    pub fn start(o: &Opts) -> Result<Daemon, String> {
        let mut server = Server::new(o.quotas.clone());
        populate(&mut server).map_err(|e| format!("populating /local/domain/0: {e}"))?;
        let listener = listen(&o.socket).map_err(|e| format!("socket {}: {e}", o.socket.display()))?;
        let evtchn = match Evtchn::open() {
            Ok(e) => Some(e),
            Err(e) if o.domain_init => return Err(format!("serving dom0's xenstore ring: {e}")),
            Err(_) => None,
        };
        let mut engine = Engine::new(server, XenPlatform::new(evtchn));
        engine.verbose = o.verbose;
        // C xenstored's `domain_init`: domain exceptions tell it when guests die.
        if let Some(e) = &engine.platform.evtchn {
            match e.bind_virq(VIRQ_DOM_EXC) {
                Ok(port) => engine.set_virq_port(port),
                Err(e) => log!("no VIRQ_DOM_EXC ({e}): dead domains will only go on XS_RELEASE"),
            }
        }
        let mut d = Daemon { engine, listener, sockets: BTreeMap::new() };
        if o.domain_init {
            d.dom0_init().map_err(|e| format!("serving dom0's xenstore ring: {e}"))?;
        }
        Ok(d)
    }

    /// C xenstored's `dom0_init`: dom0's kernel ring.
    fn dom0_init(&mut self) -> io::Result<()> {
        let xb = XenbusBackend::open()?;
        let remote = xb.evtchn()?;
        let page = RingPage::new(xb.map()?);
        let port = self.engine.platform.evtchn()?.bind_interdomain(0, remote)?;
        log!("dom0: ring mapped, kernel port {remote} bound as local port {port}");
        // Requests the kernel may have queued before we came are served now.
        self.engine.add_ring(0, page, port);
        // Linux's xenbus_probe waits for this first event.
        self.engine.platform.evtchn()?.notify(port)?;
        Ok(())
    }

    /// Serves until a fatal error (of poll or the event-channel device).
    pub fn run(&mut self) -> io::Result<()> {
        loop {
            let mut fds = Vec::with_capacity(2 + self.sockets.len());
            fds.push(PollFd::new(self.listener.as_raw_fd(), sys::POLLIN));
            if let Some(e) = &self.engine.platform.evtchn {
                fds.push(PollFd::new(e.fd(), sys::POLLIN));
            }
            let fixed = fds.len();
            let mut ids = Vec::new();
            for (&id, s) in &self.sockets {
                let mut ev = 0;
                if self.engine.stream_wants_input(id) {
                    ev |= sys::POLLIN;
                }
                if self.engine.out_queue(id).is_some_and(|q| !q.is_empty()) {
                    ev |= sys::POLLOUT;
                }
                fds.push(PollFd::new(s.as_raw_fd(), ev));
                ids.push(id);
            }
            let timeout = if self.engine.has_work() { 0 } else { -1 };
            sys::poll(&mut fds, timeout).map_err(sys::ctx("poll"))?;
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
            self.engine.run_busy();
            self.engine.flush_rings();
            self.flush_sockets();
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
                    let id = self.engine.add_stream(0);
                    self.sockets.insert(id, s);
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
        let Some(e) = &self.engine.platform.evtchn else { return Ok(()) };
        let ports = e.pending()?;
        if ports.is_empty() {
            return Ok(());
        }
        // Unmask first: an event arriving while we work is then not lost.
        e.unmask(&ports)?;
        for p in ports {
            self.engine.event(p);
        }
        Ok(())
    }

    fn close(&mut self, id: ConnId) {
        self.engine.close(id);
        self.sockets.remove(&id);
    }

    fn read_socket(&mut self, id: ConnId) {
        if !self.engine.stream_wants_input(id) {
            return;
        }
        let Some(s) = self.sockets.get_mut(&id) else { return };
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
        if let Err(e) = self.engine.stream_input(id, &buf[..n]) {
            log!("socket connection {id}: {e}; closing it");
            self.close(id);
        }
    }

    /// Sends what can be sent on every socket with output.
    fn flush_sockets(&mut self) {
        let ids: Vec<ConnId> = self.sockets.keys().copied().collect();
        for id in ids {
            let Some(s) = self.sockets.get_mut(&id) else { continue };
            let Some(q) = self.engine.out_queue(id) else { continue };
            if q.is_empty() {
                continue;
            }
            let r = q.drain_into(|b| match s.write(b) {
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

pub fn redirect_stderr(path: &PathBuf) -> Result<(), String> {
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
    use crate::engine::xs_errno;

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
        let o = Opts::parse(&args("-Q outstanding=5 --quota=memory=4096 -Q transaction-nodes=9"), def.clone()).unwrap();
        assert_eq!((o.quotas.max_outstanding, o.quotas.max_memory, o.quotas.max_tx_nodes), (5, 4096, 9));
        assert!(Opts::parse(&args("-Q bogus=1"), def.clone()).is_err());
        assert!(Opts::parse(&args("-Q outstanding"), def.clone()).is_err());
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
