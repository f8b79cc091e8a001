//! xl's command line surface: options, lookup, usage errors, exit codes.

use xl::cli::{find_domain, help, parse, resolve_command, Command, ConsoleType, Exit, Invocation};

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn cmd(s: &str) -> Command {
    match parse(&args(s)) {
        Ok(Invocation { command, .. }) => command,
        Err(e) => panic!("{s:?} failed: {e:?}"),
    }
}

fn fail(s: &str) -> Exit {
    match parse(&args(s)) {
        Ok(i) => panic!("{s:?} parsed: {i:?}"),
        Err(e) => e,
    }
}

#[test]
fn create_options_and_overrides() {
    let Command::Create(c) = cmd("create -c -q /etc/xen/vm.cfg memory=256 vcpus=2") else {
        panic!()
    };
    assert_eq!(c.config_file.as_deref(), Some("/etc/xen/vm.cfg"));
    assert_eq!(c.extra_config, vec!["memory=256", "vcpus=2"]);
    assert!(c.console && c.quiet && !c.dryrun && c.daemonize && c.monitor);
    // Config file first, options after it (GNU getopt permutes).
    let Command::Create(c) = cmd("create vm.cfg -n name=\"x\"") else {
        panic!()
    };
    assert_eq!(c.config_file.as_deref(), Some("vm.cfg"));
    assert!(c.dryrun);
    let Command::Create(c) = cmd("create -f vm.cfg -p -e") else {
        panic!()
    };
    assert_eq!(c.config_file.as_deref(), Some("vm.cfg"));
    assert!(c.paused && !c.daemonize && !c.monitor);
    let Command::Create(c) = cmd("create --defconfig=a.cfg --quiet --dry") else {
        panic!()
    };
    assert_eq!(c.config_file.as_deref(), Some("a.cfg"));
    assert!(c.quiet && c.dryrun);
    // Global -N implies a dry run.
    let Command::Create(c) = cmd("-N create vm.cfg") else {
        panic!()
    };
    assert!(c.dryrun);
    // A second config file: usage, exit 2.
    let e = fail("create a.cfg b.cfg");
    assert_eq!(e.code, 2);
    assert!(e.stdout.starts_with("Usage: xl [-vtTfN] create <ConfigFile> [options] [vars]\n\nCreate a domain from config file <filename>.\n\nOptions:\n\n-c "));
}

#[test]
fn list_and_friends() {
    assert_eq!(
        cmd("list"),
        Command::List {
            long: false,
            verbose: false,
            context: false,
            cpupool: false,
            numa: false,
            domain: None
        }
    );
    assert_eq!(
        cmd("list -l Domain-0"),
        Command::List {
            long: true,
            verbose: false,
            context: false,
            cpupool: false,
            numa: false,
            domain: Some("Domain-0".into())
        }
    );
    assert_eq!(
        cmd("list domu --verbose"),
        Command::List {
            long: false,
            verbose: true,
            context: false,
            cpupool: false,
            numa: false,
            domain: Some("domu".into())
        }
    );
    // xl list takes at most one domain: help on stdout, exit 1.
    let e = fail("list a b");
    assert_eq!(e.code, 1);
    assert_eq!(
        e.stdout,
        "Usage: xl [-vtT] list [options] [Domain]\n\n\nList information about all/some domains.\n\nOptions:\n\n\
-l, --long              Output all VM details\n-v, --verbose           Prints out UUIDs and security context\n\
-Z, --context           Prints out security context\n-c, --cpupool           Prints the cpupool the domain is in\n\
-n, --numa              Prints out NUMA node affinity\n"
    );
    assert_eq!(
        cmd("destroy -f 3"),
        Command::Destroy {
            force: true,
            domain: "3".into()
        }
    );
    assert_eq!(cmd("pause vm"), Command::Pause("vm".into()));
    assert_eq!(cmd("unpause 2"), Command::Unpause("2".into()));
    assert_eq!(
        cmd("info"),
        Command::Info {
            numa: false,
            name: None
        }
    );
    assert_eq!(
        cmd("info free_memory"),
        Command::Info {
            numa: false,
            name: Some("free_memory".into())
        }
    );
    assert_eq!(
        cmd("info -n x"),
        Command::Info {
            numa: true,
            name: None
        }
    );
    assert_eq!(cmd("dmesg -c"), Command::Dmesg { clear: true });
    assert_eq!(cmd("dmesg --clear"), Command::Dmesg { clear: true });
    assert_eq!(cmd("domid domu"), Command::Domid("domu".into()));
    assert_eq!(cmd("domname 1"), Command::Domname(1));
    assert_eq!(
        cmd("uptime -s 0 domu"),
        Command::Uptime {
            short: true,
            domains: vec!["0".into(), "domu".into()]
        }
    );
    assert_eq!(cmd("vcpu-list"), Command::VcpuList(vec![]));
    assert_eq!(
        cmd("vcpu-list a b"),
        Command::VcpuList(vec!["a".into(), "b".into()])
    );
    assert_eq!(cmd("help list"), Command::Help(Some("list".into())));
}

#[test]
fn shutdown_and_reboot() {
    assert_eq!(
        cmd("shutdown -w -w -F vm"),
        Command::Shutdown {
            reboot: false,
            all: false,
            wait: 2,
            fallback: true,
            domain: Some("vm".into())
        }
    );
    assert_eq!(
        cmd("reboot --all"),
        Command::Shutdown {
            reboot: true,
            all: true,
            wait: 0,
            fallback: false,
            domain: None
        }
    );
    assert_eq!(
        cmd("shutdown -aw"),
        Command::Shutdown {
            reboot: false,
            all: true,
            wait: 1,
            fallback: false,
            domain: None
        }
    );
    let e = fail("shutdown");
    assert_eq!(
        (e.code, e.stderr.as_str(), e.stdout.as_str()),
        (1, "You must specify -a or a domain id.\n\n", "")
    );
}

#[test]
fn console_options() {
    assert_eq!(
        cmd("console vm"),
        Command::Console {
            console_type: None,
            num: 0,
            domain: "vm".into()
        }
    );
    assert_eq!(
        cmd("console -t pv -n 1 vm"),
        Command::Console {
            console_type: Some(ConsoleType::Pv),
            num: 1,
            domain: "vm".into()
        }
    );
    assert_eq!(
        cmd("console -tvuart -n2x vm"),
        Command::Console {
            console_type: Some(ConsoleType::Vuart),
            num: 2,
            domain: "vm".into()
        }
    );
    // A bad type is reported while options are read, before the operand check.
    let e = fail("console -t foo");
    assert_eq!(
        (e.code, e.stderr.as_str()),
        (1, "console type supported are: pv, serial, vuart\n")
    );
    let e = fail("console -t");
    assert_eq!(
        (e.code, e.stderr.as_str()),
        (2, "option `t' not supported.\n")
    );
}

#[test]
fn usage_errors() {
    let e = fail("destroy");
    assert_eq!(e.code, 2);
    assert_eq!(e.stderr, "'xl destroy' requires at least 1 argument.\n\n");
    assert!(e.stdout.starts_with(
        "Usage: xl [-vtTf] destroy [options] <Domain>\n\n\nTerminate a domain immediately.\n\n"
    ));
    let e = fail("list -x");
    assert_eq!(
        (e.code, e.stderr.as_str()),
        (2, "option `x' not supported.\n")
    );
    let e = fail("list --bogus");
    assert_eq!(
        (e.code, e.stderr.as_str()),
        (2, "option `\0' not supported.\n")
    );
    let e = fail("list --long=yes");
    assert_eq!(
        (e.code, e.stderr.as_str()),
        (2, "option `l' not supported.\n")
    );
    // -h anywhere prints the command's help and succeeds.
    let e = fail("uptime -h");
    assert_eq!(
        (e.code, e.stdout.as_str()),
        (
            0,
            "Usage: xl [-vtT] uptime [-s] [Domain]\n\nPrint uptime for all/some domains.\n\n"
        )
    );
    let e = fail("domname --help");
    assert_eq!(
        e.stdout,
        "Usage: xl [-vtT] domname <DomainId>\n\nConvert a domain id to domain name.\n\n"
    );
    let e = fail("domname abc");
    assert_eq!((e.code, e.stderr.as_str()), (1, "Invalid domain id.\n\n"));
    // "--" ends options.
    assert_eq!(cmd("domid -- -x"), Command::Domid("-x".into()));
}

#[test]
fn global_options_and_lookup() {
    let i = parse(&args("-v -v -t list")).unwrap();
    assert_eq!(i.global.verbose, 2);
    assert!(i.global.progress_cr);
    let e = fail("-x list");
    assert_eq!((e.code, e.stderr.as_str()), (1, "unknown global option\n"));
    let e = fail("");
    assert_eq!(e.code, 1);
    assert!(e.stdout.starts_with("Usage xl [-vfNtT] <subcommand> [args]\n\nxl full list of subcommands:\n\n create              Create a domain from config file <filename>\n"));
    let e = fail("frobnicate");
    assert_eq!(
        (e.code, e.stderr.as_str()),
        (1, "command not implemented\n")
    );
    let e = fail("-N list");
    assert_eq!(
        (e.code, e.stderr.as_str()),
        (1, "command does not implement -N (dryrun) option\n")
    );
    // Unique prefixes select a command; ambiguous ones do not.
    assert_eq!(resolve_command("cr"), Some("create"));
    assert_eq!(resolve_command("vcpu-l"), Some("vcpu-list"));
    assert_eq!(resolve_command("list"), Some("list"));
    assert_eq!(resolve_command("vcpu"), None);
    assert!(matches!(cmd("unp 3"), Command::Unpause(_)));
    // Commands xl has but we don't implement yet still parse.
    assert_eq!(
        cmd("mem-set 1 256m"),
        Command::Other("mem-set".into(), vec!["1".into(), "256m".into()])
    );
    // Suspend/resume commands do not exist on Arm.
    assert_eq!(resolve_command("save"), None);
    assert_eq!(help(Some("save")), "command \"save\" not implemented\n");
}

#[test]
fn help_listing_wraps_long_names() {
    let h = help(None);
    assert!(h.contains("\n pci-assignable-remove \n                     Remove a device from being assignable\n"), "{h}");
    assert!(h.contains("\n vcpu-list           List the VCPUs for all/some domains\n"));
}

#[test]
fn domain_qualifiers() {
    let doms = vec![(0, "Domain-0".to_string()), (7, "domu".to_string())];
    assert_eq!(find_domain("domu", &doms), Ok(7));
    assert_eq!(find_domain("Domain-0", &doms), Ok(0));
    // Numbers are taken as they are, existing or not.
    assert_eq!(find_domain("42", &doms), Ok(42));
    assert_eq!(find_domain("007", &doms), Ok(7));
    assert_eq!(find_domain("", &doms), Ok(0));
    assert_eq!(find_domain("99999999999999999999999", &doms), Ok(u32::MAX));
    assert_eq!(
        find_domain("nope", &doms),
        Err("nope is an invalid domain identifier (rc=-6)\n".into())
    );
    assert_eq!(
        find_domain("7a", &doms),
        Err("7a is an invalid domain identifier (rc=-6)\n".into())
    );
}

#[test]
fn fuzz_arguments_never_panic() {
    let words = [
        "create", "list", "-l", "-n", "-t", "--", "-", "--long", "--x=", "a=b", "vm", "-h",
        "console", "shutdown", "-a", "domname", "", "-Nv", "help", "-f",
    ];
    let mut x: u64 = 7;
    for _ in 0..5000 {
        let mut v = Vec::new();
        for _ in 0..(x % 6) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.push(words[(x % words.len() as u64) as usize].to_string());
        }
        x = x.wrapping_add(1);
        let _ = parse(&v);
    }
}
