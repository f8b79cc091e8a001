//! `xl create`'s resolution of a config into a domain (xl_parse.c + libxl
//! defaults).

use xl::config::Config;
use xl::domain::{build_cmdline, Action, DomainConfig, DomainConfigError, DomainType, Resolved};

fn resolve(text: &str) -> Result<Resolved, DomainConfigError> {
    let c = Config::parse("vm.cfg", text.as_bytes()).expect("parses");
    DomainConfig::from_config(&c)
}

fn cfg(text: &str) -> DomainConfig {
    resolve(text).expect("resolves").config
}

#[test]
fn defaults_match_xl_and_libxl() {
    let d = cfg("name = \"vm\"\n");
    assert_eq!(d.name, "vm");
    assert_eq!(d.domain_type, DomainType::Pvh, "xl's default type on Arm");
    assert_eq!(d.target_memkb, 32 * 1024, "libxl's default is 32 MiB");
    assert_eq!(d.max_memkb, 32 * 1024);
    assert_eq!((d.vcpus, d.max_vcpus), (1, 1));
    assert_eq!(d.on_poweroff, Action::Destroy);
    assert_eq!(d.on_reboot, Action::Restart);
    assert_eq!(d.on_watchdog, Action::Destroy);
    assert_eq!(d.on_crash, Action::Destroy);
    assert_eq!(d.on_soft_reset, Action::SoftReset);
    assert_eq!(d.kernel, None);
    assert_eq!(d.cmdline, None);
    assert!(d.disk.is_empty() && d.vif.is_empty());
}

#[test]
fn reference_domu() {
    let d = cfg(r#"name = "domu"
memory = 128
vcpus = 1
kernel = "/var/lib/lab/vmlinuz"
ramdisk = "/var/lib/lab/domu-initrd.gz"
extra = "console=hvc0 panic=-1 lab_disk=1 lab_net=1 lab_dd_mb=128"
on_poweroff = "destroy"
disk = ['phy:/dev/loop0,xvda,w']
vif = ['bridge=xenbr0,mac=00:16:3e:00:00:02']
"#);
    assert_eq!(d.target_memkb, 128 * 1024);
    assert_eq!(d.max_memkb, 128 * 1024);
    assert_eq!(d.kernel.as_deref(), Some("/var/lib/lab/vmlinuz"));
    assert_eq!(d.ramdisk.as_deref(), Some("/var/lib/lab/domu-initrd.gz"));
    assert_eq!(
        d.cmdline.as_deref(),
        Some("console=hvc0 panic=-1 lab_disk=1 lab_net=1 lab_dd_mb=128")
    );
    assert_eq!(d.disk, vec!["phy:/dev/loop0,xvda,w"]);
    assert_eq!(d.vif, vec!["bridge=xenbr0,mac=00:16:3e:00:00:02"]);
    let disk = &d.disks[0];
    assert_eq!(disk.target.as_deref(), Some("/dev/loop0"));
    assert_eq!((disk.vdev.as_str(), disk.readwrite), ("xvda", true));
    let nic = &d.nics[0];
    assert_eq!(nic.bridge.as_deref(), Some("xenbr0"));
    assert_eq!(nic.mac, Some([0, 0x16, 0x3e, 0, 0, 2]));
    assert_eq!(nic.devid, Some(0));
}

#[test]
fn memory_and_vcpu_relations() {
    let d = cfg("name='a'\nmaxmem = 512\n");
    assert_eq!((d.target_memkb, d.max_memkb), (512 * 1024, 512 * 1024));
    let d = cfg("name='a'\nmemory = 256\nmaxmem = 0x200\n");
    assert_eq!((d.target_memkb, d.max_memkb), (256 * 1024, 512 * 1024));
    let d = cfg("name='a'\nvcpus = 2\n");
    assert_eq!((d.vcpus, d.max_vcpus), (2, 2));
    let d = cfg("name='a'\nvcpus = 2\nmaxvcpus = 4\n");
    assert_eq!((d.vcpus, d.max_vcpus), (2, 4));
    let d = cfg("name='a'\nmaxvcpus = 4\n");
    assert_eq!((d.vcpus, d.max_vcpus), (1, 4));
    assert_eq!(
        resolve("name='a'\nvcpus = 4\nmaxvcpus = 2\n"),
        Err(DomainConfigError::MaxVcpusLessThanVcpus)
    );
    assert_eq!(
        DomainConfigError::MaxVcpusLessThanVcpus.to_string(),
        "xl: maxvcpus < vcpus"
    );
}

#[test]
fn cmdline_rule() {
    let mut w = Vec::new();
    assert_eq!(
        build_cmdline(None, Some("/dev/xvda"), Some("quiet"), &mut w).as_deref(),
        Some("root=/dev/xvda quiet")
    );
    assert_eq!(
        build_cmdline(None, Some("/dev/xvda"), None, &mut w).as_deref(),
        Some("root=/dev/xvda")
    );
    assert_eq!(
        build_cmdline(None, None, Some("quiet"), &mut w).as_deref(),
        Some("quiet")
    );
    assert_eq!(build_cmdline(None, None, None, &mut w), None);
    assert!(w.is_empty());
    assert_eq!(
        build_cmdline(Some("console=hvc0"), Some("/dev/xvda"), None, &mut w).as_deref(),
        Some("console=hvc0")
    );
    assert_eq!(
        w,
        vec!["Warning: ignoring root= and extra= in favour of cmdline="]
    );
    let r = resolve("name='a'\ncmdline = \"c\"\nextra = \"e\"\n").unwrap();
    assert_eq!(r.config.cmdline.as_deref(), Some("c"));
    assert_eq!(
        r.warnings,
        vec!["Warning: ignoring root= and extra= in favour of cmdline="]
    );
    assert_eq!(
        cfg("name='a'\nroot='/dev/xvda1 ro'\nextra='x'\n")
            .cmdline
            .as_deref(),
        Some("root=/dev/xvda1 ro x")
    );
    // An empty extra still counts.
    assert_eq!(
        cfg("name='a'\nroot='r'\nextra=''\n").cmdline.as_deref(),
        Some("root=r ")
    );
}

#[test]
fn actions() {
    for a in [
        "destroy",
        "restart",
        "rename-restart",
        "preserve",
        "coredump-destroy",
        "coredump-restart",
        "soft-reset",
    ] {
        let d = cfg(&format!("name='a'\non_crash = '{a}'\non_reboot = '{a}'\n"));
        assert_eq!(d.on_crash.as_str(), a);
        assert_eq!(d.on_reboot.as_str(), a);
    }
    let e = resolve("name='a'\non_poweroff = 'Destroy'\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Unknown on_poweroff action \"Destroy\" specified"
    );
}

#[test]
fn type_and_builder() {
    assert_eq!(cfg("name='a'\ntype='pv'\n").domain_type, DomainType::Pv);
    assert_eq!(cfg("name='a'\ntype='pvh'\n").domain_type, DomainType::Pvh);
    assert_eq!(cfg("name='a'\ntype='hvm'\n").domain_type, DomainType::Hvm);
    // xl compares only strlen(value) characters: prefixes work.
    assert_eq!(cfg("name='a'\ntype='h'\n").domain_type, DomainType::Hvm);
    assert_eq!(cfg("name='a'\ntype='p'\n").domain_type, DomainType::Pv);
    assert_eq!(
        cfg("name='a'\nbuilder='generic'\n").domain_type,
        DomainType::Pv
    );
    assert_eq!(
        cfg("name='a'\nbuilder='hvm'\ntype='hvm'\n").domain_type,
        DomainType::Hvm
    );
    assert_eq!(
        resolve("name='a'\ntype='kvm'\n").unwrap_err().to_string(),
        "Invalid domain type kvm."
    );
    assert_eq!(
        resolve("name='a'\ntype='pvh'\nbuilder='hvm'\n")
            .unwrap_err()
            .to_string(),
        "Contradicting \"builder\" and \"type\" options specified."
    );
}

#[test]
fn name_is_required() {
    assert_eq!(resolve("memory = 1\n"), Err(DomainConfigError::NoName));
    assert_eq!(
        DomainConfigError::NoName.to_string(),
        "Domain name must be specified."
    );
}

#[test]
fn wrong_types_are_file_line_errors() {
    let e = |t: &str| resolve(t).unwrap_err().to_string();
    assert_eq!(
        e("name='a'\nmemory = \"1G\"\n"),
        "vm.cfg:2: parameter `memory' is not a valid number"
    );
    assert_eq!(
        e("name='a'\nmemory = [1]\n"),
        "vm.cfg:2: parameter `memory' is a list but should be a single value"
    );
    assert_eq!(
        e("name = ['a']\n"),
        "vm.cfg:1: parameter `name' is a list but should be a single value"
    );
    assert_eq!(
        e("name='a'\ndisk = 'phy:/dev/loop0,xvda,w'\n"),
        "vm.cfg:2: parameter `disk' is a single value but should be a list"
    );
    assert_eq!(
        e("name='a'\nvcpus = 0\n"),
        "vm.cfg:2: value `0' is smaller than minimum bound '1'"
    );
    assert_eq!(
        e("name='a'\nmemory = 1\nmemory += 2\n"),
        "vm.cfg:3: can't use += with numbers for parameter `memory'"
    );
    // xl's disk-spec parser's own messages (no line: xl prints none).
    assert_eq!(
        e("name='a'\ndisk = ['/img/a.img,raw,xvda,w', 'target=/img/b.img,vdev=xvdb']\n"),
        "vm.cfg: config parsing error in disk specification: no vdev specified in `target=/img/b.img,vdev=xvdb'"
    );
    assert_eq!(
        e("name='a'\ndisk = ['/img/a.img,raw,xvda,w,what']\n"),
        "vm.cfg: config parsing error in disk specification: too many positional parameters: near `what' in `/img/a.img,raw,xvda,w,what'"
    );
    assert_eq!(
        e("name='a'\nvif = [['x']]\n"),
        "vm.cfg:2: parameter `vif' has a list where a string is expected"
    );
    assert_eq!(
        e("name='a'\nkernel = []\n"),
        "vm.cfg:2: parameter `kernel' is a list but should be a single value"
    );
}

#[test]
fn unknown_keys_are_warnings() {
    let r = resolve("name='a'\nfoo = 1\ncpus = \"0-1\"\nmemory = 64\nfoo = 2\n").unwrap();
    assert_eq!(
        r.warnings,
        vec![
            "vm.cfg:5: warning: unknown parameter `foo' ignored",
            "vm.cfg:3: warning: parameter `cpus' is not supported yet and was ignored",
        ]
    );
    assert_eq!(r.config.target_memkb, 64 * 1024);
}

#[test]
fn plus_equals_on_lists_and_strings() {
    let d =
        cfg("name='a'\ndisk = ['/a,,xvda']\ndisk += ['/b,,xvdb']\nextra = 'x'\nextra += ' y'\n");
    assert_eq!(d.disk, vec!["/a,,xvda", "/b,,xvdb"]);
    assert_eq!(d.disks.len(), 2);
    assert_eq!(d.disks[1].vdev, "xvdb");
    assert_eq!(d.cmdline.as_deref(), Some("x y"));
}

#[test]
fn dry_run_json() {
    let j = cfg("name='vm'\nmemory=64\nvcpus=2\nkernel='/k'\nextra='e'\n").to_json();
    assert!(j.contains("\"name\": \"vm\""), "{j}");
    assert!(j.contains("\"target_memkb\": 65536"), "{j}");
    assert!(j.contains("\"max_vcpus\": 2"), "{j}");
    assert!(j.contains("\"cmdline\": \"e\""), "{j}");
    assert!(j.contains("\"on_soft_reset\": \"soft-reset\""), "{j}");
    assert!(j.ends_with("}\n"));
    assert_eq!(
        xl::domain::json_str("a\"b\\\n\u{1}"),
        "\"a\\\"b\\\\\\n\\u0001\""
    );
}
