//! The `xenstore` client: `xenstore <command> ...`, or `xenstore-<command> ...` through
//! argv[0] (symlinks), behaving like Xen's xenstore-* tools where those exist.

use std::io::{BufRead, Write};
use std::time::Duration;

use xen_abi::io::xs_wire::{XS_INTRODUCE, XS_RELEASE};
use xenstore::Errno;

use crate::client::{Client, Error, Mode};
use crate::escape::{sanitise, unsanitise};

pub const USAGE: &str = "\
usage: xenstore [-s|-D] <command> [options] [args]   (or xenstore-<command> [options] [args])

commands (as Xen's xenstore-* tools):
  read [-p] [-R] PATH...       print values (-p: `PATH: value`; -R: raw, no \\-escapes)
  write [-R] PATH VALUE...     write pairs atomically (one transaction); VALUE takes \\-escapes
  ls [-f] [-p] [PATH]          the tree below PATH (default /): `name = \"value\"`, one space of
                               indent per level; -f full paths, -p perms `  (n0,r1)`
  list [-p] PATH...            child names (-p: full paths)
  rm [-t] PATH...              remove subtrees (-t: also remove parents left empty)
  mkdir PATH...                create (empty) nodes
  chmod [-r] [-u] PATH PERM... set perms: owner first, e.g. `n0 r5` (-r: the subtree too;
                               -u: the ancestors too)
  getperms PATH...             print perms, space-separated (extension)
  exists PATH...               exit 0 if all exist, 1 otherwise
  watch [-n N] [-T SECS] PATH...
                               print the path of each event (the first is the watch's own);
                               stop after N events or SECS seconds (extensions: -T; exit 1
                               when -T elapses before N events)
  batch                        run commands from stdin, one a line: `[@CONN] CMD ARGS`, CONN
                               1..8 (opened on first use, as -s/-D say; default 1); CMD: start,
                               commit, abort (a transaction of that connection), read P,
                               write P VALUE.., rm P, mkdir P, list P, exists P, getperms P,
                               chmod P PERM.., watch P TOKEN, unwatch P TOKEN, event [SECS],
                               introduce DOMID GFN PORT, release DOMID;
                               prints one line each: the result, OK, or ERR <reason> (extension)

connection: xenstored's socket ($XENSTORED_PATH, else $XENSTORED_RUNDIR/socket, else
/run/xenstored/socket), falling back to the kernel's /dev/xen/xenbus;
  -s  the socket only;  -D  /dev/xen/xenbus only (through dom0's xenstore ring)";

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Opts {
    pub socket_only: bool,
    pub device_only: bool,
    pub raw: bool,
    /// -p: prefix paths (read, list) or show perms (ls).
    pub p: bool,
    /// -f: full paths (ls).
    pub full: bool,
    /// -t: tidy (rm).
    pub tidy: bool,
    /// -r: recursive (chmod).
    pub recursive: bool,
    /// -u: upwards (chmod).
    pub upwards: bool,
    /// -n: events before exiting (watch).
    pub count: Option<u64>,
    /// -T: seconds before exiting (watch).
    pub timeout: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Cmd {
    Read(Vec<String>),
    Write(Vec<(String, String)>),
    Ls(String),
    List(Vec<String>),
    Rm(Vec<String>),
    Mkdir(Vec<String>),
    Chmod { path: String, perms: Vec<String> },
    GetPerms(Vec<String>),
    Exists(Vec<String>),
    Watch(Vec<String>),
    Batch,
    Help,
}

/// Parses `argv` (argv[0] included).
pub fn parse(argv: &[String]) -> Result<(Opts, Cmd), String> {
    let prog = argv.first().map(String::as_str).unwrap_or("xenstore");
    let base = prog.rsplit('/').next().unwrap_or(prog);
    let mut opts = Opts::default();
    let mut rest: Vec<String> = argv.iter().skip(1).cloned().collect();
    let name = match base.strip_prefix("xenstore-") {
        Some(n) => n.to_owned(),
        None => {
            take_opts(&mut opts, &mut rest)?;
            if rest.is_empty() {
                return Ok((opts, Cmd::Help));
            }
            rest.remove(0)
        }
    };
    take_opts(&mut opts, &mut rest)?;
    let need = |n: usize| -> Result<(), String> {
        if rest.len() < n {
            Err(format!("{name}: missing argument (see `xenstore help`)"))
        } else {
            Ok(())
        }
    };
    let cmd = match name.as_str() {
        "read" => {
            need(1)?;
            Cmd::Read(rest)
        }
        "write" => {
            need(2)?;
            if !rest.len().is_multiple_of(2) {
                return Err("write: PATH VALUE pairs expected".into());
            }
            Cmd::Write(rest.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect())
        }
        "ls" => {
            if rest.len() > 1 {
                return Err("ls: at most one PATH".into());
            }
            Cmd::Ls(rest.pop().unwrap_or_else(|| "/".into()))
        }
        "list" => {
            need(1)?;
            Cmd::List(rest)
        }
        "rm" => {
            need(1)?;
            Cmd::Rm(rest)
        }
        "mkdir" => {
            need(1)?;
            Cmd::Mkdir(rest)
        }
        "chmod" => {
            need(2)?;
            let path = rest.remove(0);
            Cmd::Chmod { path, perms: rest }
        }
        "getperms" => {
            need(1)?;
            Cmd::GetPerms(rest)
        }
        "exists" => {
            need(1)?;
            Cmd::Exists(rest)
        }
        "watch" => {
            need(1)?;
            Cmd::Watch(rest)
        }
        "batch" if rest.is_empty() => Cmd::Batch,
        "help" | "-h" | "--help" => Cmd::Help,
        _ => return Err(format!("unknown command `{name}` (see `xenstore help`)")),
    };
    if opts.socket_only && opts.device_only {
        return Err("-s and -D exclude each other".into());
    }
    Ok((opts, cmd))
}

/// Takes leading options (getopt style: they end at the first non-option or `--`).
fn take_opts(opts: &mut Opts, rest: &mut Vec<String>) -> Result<(), String> {
    while let Some(a) = rest.first().cloned() {
        if a == "--" {
            rest.remove(0);
            break;
        }
        if !a.starts_with('-') || a == "-" || a == "-h" || a == "--help" {
            break;
        }
        rest.remove(0);
        let flags: Vec<char> = a[1..].chars().collect();
        for (i, c) in flags.iter().enumerate() {
            let last = i + 1 == flags.len();
            let mut value = || -> Result<String, String> {
                if !last {
                    return Ok(flags[i + 1..].iter().collect());
                }
                if rest.is_empty() {
                    return Err(format!("-{c} needs a value"));
                }
                Ok(rest.remove(0))
            };
            match c {
                's' => opts.socket_only = true,
                'D' => opts.device_only = true,
                'R' => opts.raw = true,
                'p' => opts.p = true,
                'f' => opts.full = true,
                't' => opts.tidy = true,
                'r' => opts.recursive = true,
                'u' => opts.upwards = true,
                'n' | 'T' => {
                    let v = value()?;
                    if *c == 'n' {
                        opts.count = Some(v.parse().map_err(|_| format!("-n: bad count `{v}`"))?);
                    } else {
                        let t: f64 = v.parse().map_err(|_| format!("-T: bad seconds `{v}`"))?;
                        if !(t >= 0.0 && t.is_finite()) {
                            return Err(format!("-T: bad seconds `{v}`"));
                        }
                        opts.timeout = Some(t);
                    }
                    break;
                }
                _ => return Err(format!("unknown option -{c} (see `xenstore help`)")),
            }
        }
    }
    Ok(())
}

/// `parent` of an absolute path, None for `/` and relative roots.
fn parent(path: &str) -> Option<&str> {
    let p = path.trim_end_matches('/');
    let i = p.rfind('/')?;
    Some(if i == 0 { "/" } else { &p[..i] }).filter(|q| *q != p)
}

fn join(path: &str, child: &str) -> String {
    if path.ends_with('/') {
        format!("{path}{child}")
    } else {
        format!("{path}/{child}")
    }
}

fn mode(o: &Opts) -> Mode {
    if o.socket_only {
        Mode::Socket
    } else if o.device_only {
        Mode::Device
    } else {
        Mode::Auto
    }
}

/// Runs the client; returns the exit status.
pub fn main(argv: &[String]) -> i32 {
    let prog = argv.first().map(|p| p.rsplit('/').next().unwrap_or(p).to_owned()).unwrap_or_else(|| "xenstore".into());
    let (opts, cmd) = match parse(argv) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{prog}: {e}");
            return 2;
        }
    };
    if cmd == Cmd::Help {
        println!("{USAGE}");
        return 0;
    }
    let mut c = match Client::open(mode(&opts)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{prog}: {e}");
            return 1;
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match run(&mut c, &opts, &cmd, &mut out) {
        Ok(code) => code,
        Err(e) => {
            let _ = out.flush();
            eprintln!("{prog}: {e}");
            1
        }
    }
}

type Res<T> = Result<T, String>;

fn with_path<'a>(what: &'a str, path: &'a str) -> impl FnOnce(Error) -> String + 'a {
    move |e| format!("{what} {path}: {e}")
}

/// Runs `f` in a transaction, retried on `EAGAIN` as Xen's tools do.
fn in_txn<T>(c: &mut Client, mut f: impl FnMut(&mut Client, u32) -> Res<T>) -> Res<T> {
    for _ in 0..16 {
        let tx = c.start().map_err(|e| format!("transaction start: {e}"))?;
        let r = match f(c, tx) {
            Ok(r) => r,
            Err(e) => {
                let _ = c.end(tx, false);
                return Err(e);
            }
        };
        match c.end(tx, true) {
            Ok(()) => return Ok(r),
            Err(Error::Xs(Errno::EAGAIN)) => continue,
            Err(e) => return Err(format!("transaction commit: {e}")),
        }
    }
    Err("transaction commit: EAGAIN 16 times".into())
}

fn run(c: &mut Client, o: &Opts, cmd: &Cmd, out: &mut impl Write) -> Res<i32> {
    let show = |v: &[u8]| if o.raw { String::from_utf8_lossy(v).into_owned() } else { sanitise(v) };
    let w = |r: std::io::Result<()>| r.map_err(|e| format!("stdout: {e}"));
    match cmd {
        Cmd::Read(paths) => {
            let vals = in_txn(c, |c, tx| {
                paths.iter().map(|p| c.read(tx, p).map_err(with_path("couldn't read path", p))).collect::<Res<Vec<_>>>()
            })?;
            for (p, v) in paths.iter().zip(vals) {
                if o.p {
                    w(write!(out, "{p}: "))?;
                }
                w(writeln!(out, "{}", show(&v)))?;
            }
        }
        Cmd::Write(pairs) => in_txn(c, |c, tx| {
            for (p, v) in pairs {
                let v = if o.raw { v.as_bytes().to_vec() } else { unsanitise(v) };
                c.write(tx, p, &v).map_err(with_path("could not write path", p))?;
            }
            Ok(())
        })?,
        Cmd::Ls(path) => ls(c, o, path, 0, out)?,
        Cmd::List(paths) => {
            let lists = in_txn(c, |c, tx| {
                paths.iter().map(|p| c.directory(tx, p).map_err(with_path("couldn't list path", p))).collect::<Res<Vec<_>>>()
            })?;
            for (p, children) in paths.iter().zip(lists) {
                for ch in children {
                    if o.p {
                        w(writeln!(out, "{}", join(p, &ch)))?;
                    } else {
                        w(writeln!(out, "{ch}"))?;
                    }
                }
            }
        }
        Cmd::Rm(paths) => in_txn(c, |c, tx| {
            for p in paths {
                c.rm(tx, p).map_err(with_path("could not remove path", p))?;
                if o.tidy {
                    let mut q = parent(p);
                    while let Some(d) = q.filter(|d| *d != "/") {
                        match c.directory(tx, d) {
                            Ok(ch) if ch.is_empty() => c.rm(tx, d).map_err(with_path("could not remove path", d))?,
                            _ => break,
                        }
                        q = parent(d);
                    }
                }
            }
            Ok(())
        })?,
        Cmd::Mkdir(paths) => in_txn(c, |c, tx| {
            paths.iter().try_for_each(|p| c.mkdir(tx, p).map_err(with_path("could not create path", p)))
        })?,
        Cmd::Chmod { path, perms } => in_txn(c, |c, tx| chmod(c, tx, o, path, perms, true))?,
        Cmd::GetPerms(paths) => {
            let all = in_txn(c, |c, tx| {
                paths.iter().map(|p| c.get_perms(tx, p).map_err(with_path("couldn't get perms of", p))).collect::<Res<Vec<_>>>()
            })?;
            for perms in all {
                w(writeln!(out, "{}", perms.join(" ")))?;
            }
        }
        Cmd::Exists(paths) => {
            for p in paths {
                match c.read(0, p) {
                    Ok(_) => {}
                    Err(Error::Xs(_)) => return Ok(1),
                    Err(e) => return Err(format!("{p}: {e}")),
                }
            }
        }
        Cmd::Watch(paths) => return watch(c, o, paths, out),
        Cmd::Batch => return batch(c, mode(o), out),
        Cmd::Help => w(writeln!(out, "{USAGE}"))?,
    }
    w(out.flush())?;
    Ok(0)
}

fn ls(c: &mut Client, o: &Opts, path: &str, depth: usize, out: &mut impl Write) -> Res<()> {
    let children = match c.directory(0, path) {
        Ok(ch) => ch,
        // A node that vanished or is not readable during the walk is skipped, as Xen does.
        Err(Error::Xs(Errno::ENOENT | Errno::EACCES)) if depth > 0 => return Ok(()),
        Err(e) => return Err(format!("xs_directory ({path}): {e}")),
    };
    for ch in children {
        let full = join(path, &ch);
        let mut line = if o.full { full.clone() } else { format!("{}{ch}", " ".repeat(depth)) };
        match c.read(0, &full) {
            Ok(v) => line.push_str(&format!(" = \"{}\"", sanitise(&v))),
            Err(_) => line.push(':'),
        }
        if o.p {
            match c.get_perms(0, &full) {
                Ok(p) => line.push_str(&format!("  ({})", p.join(","))),
                Err(e) => eprintln!("could not access permissions for {ch}: {e}"),
            }
        }
        writeln!(out, "{line}").map_err(|e| format!("stdout: {e}"))?;
        ls(c, o, &full, depth + 1, out)?;
    }
    Ok(())
}

fn chmod(c: &mut Client, tx: u32, o: &Opts, path: &str, perms: &[String], top: bool) -> Res<()> {
    c.set_perms(tx, path, perms).map_err(with_path("could not set perms of", path))?;
    if o.recursive {
        for ch in c.directory(tx, path).map_err(with_path("could not list", path))? {
            chmod(c, tx, &Opts { upwards: false, ..o.clone() }, &join(path, &ch), perms, false)?;
        }
    }
    if o.upwards && top {
        let mut q = parent(path);
        while let Some(d) = q {
            c.set_perms(tx, d, perms).map_err(with_path("could not set perms of", d))?;
            q = parent(d);
        }
    }
    Ok(())
}

fn watch(c: &mut Client, o: &Opts, paths: &[String], out: &mut impl Write) -> Res<i32> {
    for (i, p) in paths.iter().enumerate() {
        c.watch(p, &i.to_string()).map_err(with_path("could not watch", p))?;
    }
    let deadline = o.timeout.map(|t| std::time::Instant::now() + Duration::from_secs_f64(t));
    let mut seen = 0u64;
    while o.count.is_none_or(|n| seen < n) {
        let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        match c.next_event(left).map_err(|e| e.to_string())? {
            Some(ev) => {
                writeln!(out, "{}", ev.path).and_then(|()| out.flush()).map_err(|e| format!("stdout: {e}"))?;
                seen += 1;
            }
            // Timed out: a failure only when a number of events was asked for.
            None => return Ok(if o.count.is_some() { 1 } else { 0 }),
        }
    }
    Ok(0)
}

fn nul_args(a: &[&[u8]]) -> Vec<u8> {
    a.iter().flat_map(|s| s.iter().copied().chain([0])).collect()
}

/// `xenstore batch`: see [`USAGE`].
fn batch(first: &mut Client, mode: Mode, out: &mut impl Write) -> Res<i32> {
    let mut extra: Vec<Option<Client>> = (0..7).map(|_| None).collect();
    let mut txs = [0u32; 8];
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (conn, cmdline) = match line.strip_prefix('@') {
            Some(r) => {
                let (n, rest) = r.split_once(char::is_whitespace).unwrap_or((r, ""));
                match n.parse::<usize>() {
                    Ok(n @ 1..=8) => (n - 1, rest.trim_start()),
                    _ => {
                        writeln!(out, "ERR bad connection `@{n}` (1..8)").map_err(|e| e.to_string())?;
                        continue;
                    }
                }
            }
            None => (0, line),
        };
        let c: &mut Client = if conn == 0 {
            first
        } else {
            let slot = &mut extra[conn - 1];
            if slot.is_none() {
                match Client::open(mode) {
                    Ok(c) => *slot = Some(c),
                    Err(e) => {
                        writeln!(out, "ERR connect: {e}").map_err(|e| e.to_string())?;
                        continue;
                    }
                }
            }
            slot.as_mut().expect("just opened")
        };
        let result = batch_one(c, &mut txs[conn], cmdline);
        let text = match result {
            Ok(s) => s,
            Err(e) => format!("ERR {e}"),
        };
        writeln!(out, "{text}").and_then(|()| out.flush()).map_err(|e| format!("stdout: {e}"))?;
    }
    Ok(0)
}

fn batch_one(c: &mut Client, tx: &mut u32, line: &str) -> Result<String, String> {
    let mut words = line.split_whitespace();
    let cmd = words.next().unwrap_or("");
    let args: Vec<&str> = words.collect();
    let one = |n: usize| -> Result<(), String> {
        if args.len() < n {
            Err(format!("{cmd}: missing argument"))
        } else {
            Ok(())
        }
    };
    let e = |e: Error| e.to_string();
    let ok = |r: Result<(), Error>| r.map(|()| "OK".to_owned()).map_err(e);
    match cmd {
        "start" => {
            if *tx != 0 {
                return Err("a transaction is already open".into());
            }
            *tx = c.start().map_err(e)?;
            Ok("OK".into())
        }
        "commit" | "abort" => {
            let t = std::mem::take(tx);
            if t == 0 {
                return Err("no transaction open".into());
            }
            ok(c.end(t, cmd == "commit"))
        }
        "read" => {
            one(1)?;
            c.read(*tx, args[0]).map(|v| sanitise(&v)).map_err(e)
        }
        "write" => {
            one(2)?;
            ok(c.write(*tx, args[0], &unsanitise(&args[1..].join(" "))))
        }
        "rm" => {
            one(1)?;
            ok(c.rm(*tx, args[0]))
        }
        "mkdir" => {
            one(1)?;
            ok(c.mkdir(*tx, args[0]))
        }
        "list" => {
            one(1)?;
            c.directory(*tx, args[0]).map(|v| v.join(" ")).map_err(e)
        }
        "exists" => {
            one(1)?;
            match c.read(*tx, args[0]) {
                Ok(_) => Ok("yes".into()),
                Err(Error::Xs(Errno::ENOENT)) => Ok("no".into()),
                Err(x) => Err(e(x)),
            }
        }
        "getperms" => {
            one(1)?;
            c.get_perms(*tx, args[0]).map(|v| v.join(" ")).map_err(e)
        }
        "chmod" => {
            one(2)?;
            let perms: Vec<String> = args[1..].iter().map(|s| (*s).to_owned()).collect();
            ok(c.set_perms(*tx, args[0], &perms))
        }
        "watch" | "unwatch" => {
            one(2)?;
            ok(if cmd == "watch" { c.watch(args[0], args[1]) } else { c.unwatch(args[0], args[1]) })
        }
        "introduce" => {
            one(3)?;
            let a: Vec<&[u8]> = args[..3].iter().map(|s| s.as_bytes()).collect();
            ok(c.call(XS_INTRODUCE, 0, nul_args(&a)).map(drop))
        }
        "release" => {
            one(1)?;
            ok(c.call(XS_RELEASE, 0, nul_args(&[args[0].as_bytes()])).map(drop))
        }
        "event" => {
            let secs: f64 = match args.first() {
                Some(s) => s.parse().map_err(|_| format!("event: bad seconds `{s}`"))?,
                None => 5.0,
            };
            match c.next_event(Some(Duration::from_secs_f64(secs.clamp(0.0, 3600.0)))).map_err(e)? {
                Some(ev) => Ok(format!("{} {}", ev.path, String::from_utf8_lossy(&ev.token))),
                None => Ok("timeout".into()),
            }
        }
        _ => Err(format!("unknown batch command `{cmd}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn subcommands_and_argv0() {
        assert_eq!(parse(&argv("xenstore read /a /b")).unwrap().1, Cmd::Read(vec!["/a".into(), "/b".into()]));
        assert_eq!(parse(&argv("/usr/bin/xenstore-read /a")).unwrap().1, Cmd::Read(vec!["/a".into()]));
        assert_eq!(parse(&argv("xenstore-ls")).unwrap().1, Cmd::Ls("/".into()));
        assert_eq!(parse(&argv("xenstore-list /x")).unwrap().1, Cmd::List(vec!["/x".into()]));
        assert_eq!(
            parse(&argv("xenstore write /a 1 /b -2")).unwrap().1,
            Cmd::Write(vec![("/a".into(), "1".into()), ("/b".into(), "-2".into())])
        );
        assert!(parse(&argv("xenstore write /a")).is_err());
        assert!(parse(&argv("xenstore write /a 1 /b")).is_err());
        assert_eq!(
            parse(&argv("xenstore-chmod -r /a n0 r5")).unwrap(),
            (Opts { recursive: true, ..Opts::default() }, Cmd::Chmod { path: "/a".into(), perms: vec!["n0".into(), "r5".into()] })
        );
        assert_eq!(parse(&argv("xenstore")).unwrap().1, Cmd::Help);
        assert_eq!(parse(&argv("xenstore help")).unwrap().1, Cmd::Help);
        assert!(parse(&argv("xenstore frobnicate /a")).is_err());
        assert!(parse(&argv("xenstore-frobnicate /a")).is_err());
    }

    #[test]
    fn options() {
        let (o, c) = parse(&argv("xenstore -s ls -fp /local")).unwrap();
        assert!(o.socket_only && o.full && o.p);
        assert_eq!(c, Cmd::Ls("/local".into()));
        let (o, _) = parse(&argv("xenstore watch -n 2 -T1.5 /a")).unwrap();
        assert_eq!((o.count, o.timeout), (Some(2), Some(1.5)));
        let (o, c) = parse(&argv("xenstore-rm -t -- -weird")).unwrap();
        assert!(o.tidy);
        assert_eq!(c, Cmd::Rm(vec!["-weird".into()]));
        assert!(parse(&argv("xenstore watch -n")).is_err());
        assert!(parse(&argv("xenstore watch -n x /a")).is_err());
        assert!(parse(&argv("xenstore watch -T -1 /a")).is_err());
        assert!(parse(&argv("xenstore -q read /a")).is_err());
        assert!(parse(&argv("xenstore -s -D read /a")).is_err());
        // Options end at the first operand.
        let (o, c) = parse(&argv("xenstore read /a -p")).unwrap();
        assert!(!o.p);
        assert_eq!(c, Cmd::Read(vec!["/a".into(), "-p".into()]));
    }

    #[test]
    fn paths() {
        assert_eq!(parent("/a/b/c"), Some("/a/b"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
        assert_eq!(parent("rel"), None);
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/a", "x"), "/a/x");
    }
}
