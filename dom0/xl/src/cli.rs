//! xl's command line: global options, subcommand lookup (unique prefixes,
//! as xl's `cmdtable_lookup`), per-command options with GNU getopt
//! semantics (options may follow operands, `--` ends options, long options
//! may be abbreviated), and xl's help and error texts and exit codes.

use crate::cmdtable::{CmdSpec, COMMANDS};

/// Options before the subcommand (`xl [-vfNtT] <subcommand>`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Global {
    /// `-v` (repeatable): more verbose logging
    pub verbose: u32,
    /// `-N`: dry run
    pub dryrun: bool,
    /// `-f`: force
    pub force: bool,
    /// `-t`: progress with CR
    pub progress_cr: bool,
    /// `-T`: timestamps
    pub timestamps: bool,
}

/// `xl create` arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateArgs {
    /// the config file (first operand without `=`, or `-f FILE`)
    pub config_file: Option<String>,
    /// `key=value` operands, in order; xl appends them to the file
    pub extra_config: Vec<String>,
    /// `-c`
    pub console: bool,
    /// `-q`
    pub quiet: bool,
    /// `-n` (or global `-N`)
    pub dryrun: bool,
    /// `-p`
    pub paused: bool,
    /// `-d`
    pub debug: bool,
    /// false with `-F` or `-e`
    pub daemonize: bool,
    /// false with `-e`
    pub monitor: bool,
    /// `-V` / `-A`
    pub vnc: bool,
    /// `-A`
    pub vnc_autopass: bool,
    /// `-i`
    pub ignore_global_affinity_masks: bool,
}

/// `xl console -t`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleType {
    /// `pv`
    Pv,
    /// `serial`
    Serial,
    /// `vuart`
    Vuart,
}

/// A parsed subcommand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `xl create`
    Create(CreateArgs),
    /// `xl list [-l] [-v] [-Z] [-c] [-n] [Domain]`
    List {
        /// `-l`
        long: bool,
        /// `-v`
        verbose: bool,
        /// `-Z`
        context: bool,
        /// `-c`
        cpupool: bool,
        /// `-n`
        numa: bool,
        /// at most one domain
        domain: Option<String>,
    },
    /// `xl destroy [-f] <Domain>`
    Destroy {
        /// `-f`
        force: bool,
        /// the domain
        domain: String,
    },
    /// `xl shutdown [-a] [-w] [-F] [Domain]` / `xl reboot ...`
    Shutdown {
        /// true for `reboot`
        reboot: bool,
        /// `-a`
        all: bool,
        /// `-w` (counted)
        wait: u32,
        /// `-F`
        fallback: bool,
        /// the domain, unless `-a`
        domain: Option<String>,
    },
    /// `xl pause <Domain>`
    Pause(String),
    /// `xl unpause <Domain>`
    Unpause(String),
    /// `xl console [-t type] [-n num] <Domain>`
    Console {
        /// `-t`
        console_type: Option<ConsoleType>,
        /// `-n` (atoi)
        num: i32,
        /// the domain
        domain: String,
    },
    /// `xl info [-n] [name]`
    Info {
        /// `-n`
        numa: bool,
        /// only print values of keys starting with this
        name: Option<String>,
    },
    /// `xl dmesg [-c]`
    Dmesg {
        /// `-c`
        clear: bool,
    },
    /// `xl domid <DomainName>`
    Domid(String),
    /// `xl domname <DomainId>`
    Domname(u32),
    /// `xl uptime [-s] [Domain ...]`
    Uptime {
        /// `-s`
        short: bool,
        /// the domains (none: all)
        domains: Vec<String>,
    },
    /// `xl vcpu-list [Domain ...]`
    VcpuList(Vec<String>),
    /// `xl help [command]`
    Help(Option<String>),
    /// `xl block-attach <Domain> <disk-spec-component(s)>...`
    BlockAttach {
        /// the domain
        domain: String,
        /// the disk spec, one component per argument
        specs: Vec<String>,
    },
    /// `xl block-detach [-f] <Domain> <VirtualDevice>`
    BlockDetach {
        /// `-f`
        force: bool,
        /// the domain
        domain: String,
        /// vdev name or number
        vdev: String,
    },
    /// `xl block-list <Domain(s)>`
    BlockList(Vec<String>),
    /// `xl network-attach <Domain> [key=value]...`
    NetworkAttach {
        /// the domain
        domain: String,
        /// `type=`, `mac=`, `bridge=`, ... in order
        args: Vec<String>,
    },
    /// `xl network-detach <Domain> <DevId|mac>`
    NetworkDetach {
        /// the domain
        domain: String,
        /// device id or MAC address
        dev: String,
    },
    /// `xl network-list <Domain(s)>`
    NetworkList(Vec<String>),
    /// A command xl has that this toolstack does not implement yet (the
    /// full name after prefix lookup, and its arguments).
    Other(String, Vec<String>),
}

/// A successful parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// global options
    pub global: Global,
    /// the subcommand
    pub command: Command,
}

/// The parse ended the program: print these and exit with `code`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    /// exit status
    pub code: i32,
    /// what goes to stdout
    pub stdout: String,
    /// what goes to stderr
    pub stderr: String,
}

impl Exit {
    fn out(code: i32, stdout: String) -> Exit {
        Exit {
            code,
            stdout,
            stderr: String::new(),
        }
    }
    fn err(code: i32, stderr: impl Into<String>) -> Exit {
        Exit {
            code,
            stdout: String::new(),
            stderr: stderr.into(),
        }
    }
}

/// xl's `help()`: the full command list, or one command's usage.
pub fn help(command: Option<&str>) -> String {
    match command {
        None | Some("help") => {
            let mut o = String::from(
                "Usage xl [-vfNtT] <subcommand> [args]\n\nxl full list of subcommands:\n\n",
            );
            for (name, _, _, desc, _, _) in COMMANDS {
                o.push_str(&format!(" {name:<19} "));
                if name.len() > 19 {
                    o.push_str(&format!("\n {:<19} ", ""));
                }
                o.push_str(desc);
                o.push('\n');
            }
            o
        }
        Some(c) => match lookup(c) {
            Some(&(name, dry, modifies, desc, usage, option)) => {
                let mut o = format!(
                    "Usage: xl [-vtT{}{}] {} {}\n\n{}.\n\n",
                    if modifies { "f" } else { "" },
                    if dry { "N" } else { "" },
                    name,
                    usage,
                    desc
                );
                if let Some(opt) = option {
                    o.push_str(&format!("Options:\n\n{opt}\n"));
                }
                o
            }
            None => format!("command \"{c}\" not implemented\n"),
        },
    }
}

/// xl's `cmdtable_lookup`: an exact name, or a unique prefix.
fn lookup(s: &str) -> Option<&'static CmdSpec> {
    let mut found = None;
    let mut count = 0;
    for c in COMMANDS {
        if c.0.starts_with(s) {
            if c.0.len() == s.len() {
                return Some(c);
            }
            found = Some(c);
            count += 1;
        }
    }
    if count == 1 {
        found
    } else {
        None
    }
}

/// The full name of a subcommand as xl resolves it (exact or unique prefix).
pub fn resolve_command(s: &str) -> Option<&'static str> {
    lookup(s).map(|c| c.0)
}

/// A long option: name, takes an argument, short equivalent.
type LongOpt = (&'static str, bool, char);

/// Options in order, operands, and the error or help that stopped option
/// processing (after the options before it were seen, as xl handles them).
type Scanned = (Vec<(char, Option<String>)>, Vec<String>, Option<Exit>);

/// Options in order and operands.
type Parsed = (Vec<(char, Option<String>)>, Vec<String>);

/// GNU `getopt_long` (with permutation) as xl's `def_getopt` drives it.
/// `args[0]` is the command name.
fn scan(args: &[String], optstring: &str, longopts: &[LongOpt], cmd: &str) -> Scanned {
    let takes_arg = |c: char| -> Option<bool> {
        if c == ':' {
            return None;
        }
        let i = optstring.find(c)?;
        Some(optstring[i + c.len_utf8()..].starts_with(':'))
    };
    let not_supported = |c: char| Exit::err(2, format!("option `{c}' not supported.\n"));
    let mut opts = Vec::new();
    let mut operands = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            operands.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let exact = longopts.iter().find(|l| l.0 == name);
            let cands: Vec<&LongOpt> = longopts.iter().filter(|l| l.0.starts_with(name)).collect();
            let chosen = match exact {
                Some(l) => Some(l),
                None if cands.len() == 1 => Some(cands[0]),
                // Several prefixes of the same option are not ambiguous.
                None if !cands.is_empty()
                    && cands.iter().all(|l| l.1 == cands[0].1 && l.2 == cands[0].2) =>
                {
                    Some(cands[0])
                }
                None => None,
            };
            let Some(&(_, has_arg, val)) = chosen else {
                return (opts, operands, Some(not_supported('\0')));
            };
            let arg = if has_arg {
                match value {
                    Some(v) => Some(v),
                    None if i < args.len() => {
                        i += 1;
                        Some(args[i - 1].clone())
                    }
                    None => return (opts, operands, Some(not_supported(val))),
                }
            } else {
                if value.is_some() {
                    return (opts, operands, Some(not_supported(val)));
                }
                None
            };
            if val == 'h' {
                return (opts, operands, Some(Exit::out(0, help(Some(cmd)))));
            }
            opts.push((val, arg));
            continue;
        }
        if a.len() > 1 && a.starts_with('-') {
            let chars: Vec<char> = a.chars().skip(1).collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                j += 1;
                match takes_arg(c) {
                    None => return (opts, operands, Some(not_supported(c))),
                    Some(false) => {
                        if c == 'h' {
                            return (opts, operands, Some(Exit::out(0, help(Some(cmd)))));
                        }
                        opts.push((c, None));
                    }
                    Some(true) => {
                        let arg = if j < chars.len() {
                            let rest: String = chars[j..].iter().collect();
                            j = chars.len();
                            rest
                        } else if i < args.len() {
                            i += 1;
                            args[i - 1].clone()
                        } else {
                            return (opts, operands, Some(not_supported(c)));
                        };
                        opts.push((c, Some(arg)));
                    }
                }
            }
            continue;
        }
        operands.push(a.clone());
    }
    (opts, operands, None)
}

/// xl's check that a command got at least `reqargs` operands.
fn require(operands: &[String], reqargs: usize, cmd: &str) -> Result<(), Exit> {
    if operands.len() < reqargs {
        let mut e = Exit::err(
            2,
            format!(
                "'xl {}' requires at least {} argument{}.\n\n",
                cmd,
                reqargs,
                if reqargs > 1 { "s" } else { "" }
            ),
        );
        e.stdout = help(Some(cmd));
        return Err(e);
    }
    Ok(())
}

/// `scan` + `require` for commands whose options cannot fail by themselves.
fn getopt(
    args: &[String],
    optstring: &str,
    longopts: &[LongOpt],
    cmd: &str,
    reqargs: usize,
) -> Result<Parsed, Exit> {
    let (opts, operands, stop) = scan(args, optstring, longopts, cmd);
    if let Some(e) = stop {
        return Err(e);
    }
    require(&operands, reqargs, cmd)?;
    Ok((opts, operands))
}

/// C `strtol(s, &end, 10)` for `xl domname`: (value, consumed anything).
fn strtol10(s: &str) -> (i64, bool) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let mut neg = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        neg = b[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut v: i64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        v = v.saturating_mul(10).saturating_add((b[i] - b'0') as i64);
        i += 1;
    }
    if i == start {
        return (0, false);
    }
    (if neg { v.saturating_neg() } else { v }, true)
}

/// Parses `xl`'s arguments (`argv[0]` excluded).
pub fn parse(argv: &[String]) -> Result<Invocation, Exit> {
    let mut global = Global::default();
    let mut i = 0;
    // getopt("+vftTN"): options until the first operand.
    while i < argv.len() {
        let a = &argv[i];
        if a == "--" {
            i += 1;
            break;
        }
        if !(a.len() > 1 && a.starts_with('-')) {
            break;
        }
        for c in a.chars().skip(1) {
            match c {
                'v' => global.verbose += 1,
                'N' => global.dryrun = true,
                'f' => global.force = true,
                't' => global.progress_cr = true,
                'T' => global.timestamps = true,
                _ => return Err(Exit::err(1, "unknown global option\n")),
            }
        }
        i += 1;
    }
    let Some(cmd) = argv.get(i) else {
        return Err(Exit::out(1, help(None)));
    };
    let args = &argv[i..];
    let Some(spec) = lookup(cmd) else {
        if cmd == "help" {
            return Ok(Invocation {
                global,
                command: Command::Help(args.get(1).cloned()),
            });
        }
        return Err(Exit::err(1, "command not implemented\n"));
    };
    let (name, can_dryrun) = (spec.0, spec.1);
    if global.dryrun && !can_dryrun {
        return Err(Exit::err(
            1,
            "command does not implement -N (dryrun) option\n",
        ));
    }
    let command = parse_command(name, args, &global)?;
    Ok(Invocation { global, command })
}

fn flag(opts: &[(char, Option<String>)], c: char) -> bool {
    opts.iter().any(|o| o.0 == c)
}

fn parse_command(name: &'static str, args: &[String], global: &Global) -> Result<Command, Exit> {
    let help_only: &[LongOpt] = &[("help", false, 'h')];
    Ok(match name {
        "create" => {
            let mut c = CreateArgs {
                daemonize: true,
                monitor: true,
                dryrun: global.dryrun,
                ..Default::default()
            };
            let mut rest: Vec<String> = args.to_vec();
            if let Some(first) = rest.get(1) {
                if !first.starts_with('-') && !first.contains('=') {
                    c.config_file = Some(first.clone());
                    rest.remove(1);
                }
            }
            let longs: &[LongOpt] = &[
                ("defconfig", true, 'f'),
                ("dryrun", false, 'n'),
                ("ignore-global-affinity-masks", false, 'i'),
                ("quiet", false, 'q'),
                ("vncviewer", false, 'V'),
                ("vncviewer-autopass", false, 'A'),
                ("help", false, 'h'),
            ];
            let (opts, operands) = getopt(&rest, "hAFVcdef:inpq", longs, name, 0)?;
            for (o, arg) in opts {
                match o {
                    'A' => {
                        c.vnc = true;
                        c.vnc_autopass = true;
                    }
                    'F' => c.daemonize = false,
                    'V' => c.vnc = true,
                    'c' => c.console = true,
                    'd' => c.debug = true,
                    'e' => {
                        c.daemonize = false;
                        c.monitor = false;
                    }
                    'f' => c.config_file = arg,
                    'i' => c.ignore_global_affinity_masks = true,
                    'n' => c.dryrun = true,
                    'p' => c.paused = true,
                    'q' => c.quiet = true,
                    _ => {}
                }
            }
            for op in operands {
                if op.contains('=') {
                    c.extra_config.push(op);
                } else if c.config_file.is_none() {
                    c.config_file = Some(op);
                } else {
                    return Err(Exit::out(2, help(Some("create"))));
                }
            }
            Command::Create(c)
        }
        "list" => {
            let longs: &[LongOpt] = &[
                ("long", false, 'l'),
                ("verbose", false, 'v'),
                ("context", false, 'Z'),
                ("cpupool", false, 'c'),
                ("numa", false, 'n'),
                ("help", false, 'h'),
            ];
            let (opts, operands) = getopt(args, "hlvZcn", longs, name, 0)?;
            if operands.len() > 1 {
                return Err(Exit::out(1, help(Some("list"))));
            }
            Command::List {
                long: flag(&opts, 'l'),
                verbose: flag(&opts, 'v'),
                context: flag(&opts, 'Z'),
                cpupool: flag(&opts, 'c'),
                numa: flag(&opts, 'n'),
                domain: operands.into_iter().next(),
            }
        }
        "destroy" => {
            let (opts, operands) = getopt(args, "hf", help_only, name, 1)?;
            Command::Destroy {
                force: flag(&opts, 'f'),
                domain: operands[0].clone(),
            }
        }
        "shutdown" | "reboot" => {
            let longs: &[LongOpt] = &[
                ("all", false, 'a'),
                ("wait", false, 'w'),
                ("help", false, 'h'),
            ];
            let (opts, operands) = getopt(args, "hawF", longs, name, 0)?;
            let all = flag(&opts, 'a');
            if operands.is_empty() && !all {
                return Err(Exit::err(1, "You must specify -a or a domain id.\n\n"));
            }
            Command::Shutdown {
                reboot: name == "reboot",
                all,
                wait: opts.iter().filter(|o| o.0 == 'w').count() as u32,
                fallback: flag(&opts, 'F'),
                domain: if all {
                    None
                } else {
                    operands.into_iter().next()
                },
            }
        }
        "pause" | "unpause" => {
            let (_, operands) = getopt(args, "h", help_only, name, 1)?;
            let d = operands[0].clone();
            if name == "pause" {
                Command::Pause(d)
            } else {
                Command::Unpause(d)
            }
        }
        "console" => {
            let (opts, operands, stop) = scan(args, "hn:t:", help_only, name);
            let mut console_type = None;
            let mut num = 0;
            for (o, arg) in opts {
                let arg = arg.unwrap_or_default();
                match o {
                    't' => {
                        console_type = Some(match arg.as_str() {
                            "pv" => ConsoleType::Pv,
                            "serial" => ConsoleType::Serial,
                            "vuart" => ConsoleType::Vuart,
                            _ => {
                                return Err(Exit::err(
                                    1,
                                    "console type supported are: pv, serial, vuart\n",
                                ))
                            }
                        })
                    }
                    'n' => num = strtol10(&arg).0 as i32,
                    _ => {}
                }
            }
            if let Some(e) = stop {
                return Err(e);
            }
            require(&operands, 1, name)?;
            Command::Console {
                console_type,
                num,
                domain: operands[0].clone(),
            }
        }
        "info" => {
            let longs: &[LongOpt] = &[("numa", false, 'n'), ("help", false, 'h')];
            let (opts, operands) = getopt(args, "hn", longs, name, 0)?;
            let numa = flag(&opts, 'n');
            Command::Info {
                numa,
                name: if numa {
                    None
                } else {
                    operands.into_iter().next()
                },
            }
        }
        "dmesg" => {
            let longs: &[LongOpt] = &[("clear", false, 'c'), ("help", false, 'h')];
            let (opts, _) = getopt(args, "hc", longs, name, 0)?;
            Command::Dmesg {
                clear: flag(&opts, 'c'),
            }
        }
        "domid" => {
            let (_, operands) = getopt(args, "h", help_only, name, 1)?;
            Command::Domid(operands[0].clone())
        }
        "domname" => {
            let (_, operands) = getopt(args, "h", help_only, name, 1)?;
            let (v, any) = strtol10(&operands[0]);
            if v == 0 && !any {
                return Err(Exit::err(1, "Invalid domain id.\n\n"));
            }
            Command::Domname(v as u32)
        }
        "uptime" => {
            let (opts, operands) = getopt(args, "hs", help_only, name, 0)?;
            Command::Uptime {
                short: flag(&opts, 's'),
                domains: operands,
            }
        }
        "vcpu-list" => {
            let (_, operands) = getopt(args, "h", help_only, name, 0)?;
            Command::VcpuList(operands)
        }
        "block-attach" => {
            let (_, operands) = getopt(args, "h", help_only, name, 2)?;
            Command::BlockAttach {
                domain: operands[0].clone(),
                specs: operands[1..].to_vec(),
            }
        }
        "block-detach" => {
            let longs: &[LongOpt] = &[("force", false, 'f'), ("help", false, 'h')];
            let (opts, operands) = getopt(args, "hf", longs, name, 2)?;
            Command::BlockDetach {
                force: flag(&opts, 'f'),
                domain: operands[0].clone(),
                vdev: operands[1].clone(),
            }
        }
        "network-attach" => {
            let (_, operands) = getopt(args, "h", help_only, name, 1)?;
            Command::NetworkAttach {
                domain: operands[0].clone(),
                args: operands[1..].to_vec(),
            }
        }
        "network-detach" => {
            let (_, operands) = getopt(args, "h", help_only, name, 2)?;
            Command::NetworkDetach {
                domain: operands[0].clone(),
                dev: operands[1].clone(),
            }
        }
        "block-list" | "network-list" => {
            let (_, operands) = getopt(args, "h", help_only, name, 1)?;
            if name == "block-list" {
                Command::BlockList(operands)
            } else {
                Command::NetworkList(operands)
            }
        }
        other => Command::Other(other.to_string(), args[1..].to_vec()),
    })
}

/// xl's `find_domain`: an all-digit qualifier (even an empty one) is a
/// domain id as `strtoul` reads it, anything else a name looked up in
/// `domains` (id, name). The error is xl's message.
pub fn find_domain(q: &str, domains: &[(u32, String)]) -> Result<u32, String> {
    if q.bytes().all(|b| b.is_ascii_digit()) {
        let mut v: u64 = 0;
        for b in q.bytes() {
            // strtoul saturates at ULONG_MAX; xl then truncates to 32 bits.
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add((b - b'0') as u64))
                .unwrap_or(u64::MAX);
        }
        return Ok(v as u32);
    }
    domains
        .iter()
        .find(|(_, n)| n == q)
        .map(|(id, _)| *id)
        .ok_or_else(|| format!("{q} is an invalid domain identifier (rc=-6)\n"))
}
