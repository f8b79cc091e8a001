//! Whole xl.cfg files as `xl create -n` reads them: every key the domain
//! builder uses, odd but valid spellings, and malformed files with xl's
//! `file:line:` messages.

use xl::cli::parse;
use xl::run::{run, NoHypervisor, Output};

const F: &str = "/etc/xen/odd.cfg";

fn create_n(text: &str) -> Output {
    let argv: Vec<String> = ["create", "-n", F].iter().map(|s| s.to_string()).collect();
    let inv = parse(&argv).unwrap();
    let text = text.to_string();
    run(&inv, &mut NoHypervisor, &move |_| {
        Ok(text.clone().into_bytes())
    })
}

/// The messages after "Parsing config from ...".
fn errors(text: &str) -> (i32, String) {
    let o = create_n(text);
    let head = format!("Parsing config from {F}\n");
    assert!(o.stderr.starts_with(&head), "{}", o.stderr);
    (o.code, o.stderr[head.len()..].to_string())
}

fn json(text: &str) -> String {
    let o = create_n(text);
    assert_eq!(o.code, 0, "{}", o.stderr);
    o.stdout
}

#[test]
fn every_builder_key() {
    let j = json(
        "# a domU\n\
         name = \"guest\"\n\
         memory = 256\n\
         maxmem = 512\n\
         vcpus = 2\n\
         maxvcpus = 4\n\
         kernel = \"/boot/Image\"\n\
         ramdisk = \"/boot/initrd.img\"\n\
         root = \"/dev/xvda1 ro\"\n\
         extra = \"console=hvc0 quiet\"\n\
         on_poweroff = \"preserve\"\n\
         on_reboot = \"rename-restart\"\n\
         on_crash = \"restart\"\n",
    );
    for want in [
        "\"name\": \"guest\"",
        "\"max_vcpus\": 4",
        "\"max_memkb\": 524288",
        "\"target_memkb\": 262144",
        "\"kernel\": \"/boot/Image\"",
        "\"ramdisk\": \"/boot/initrd.img\"",
        "\"cmdline\": \"root=/dev/xvda1 ro console=hvc0 quiet\"",
        "\"on_poweroff\": \"preserve\"",
        "\"on_reboot\": \"rename-restart\"",
        "\"on_crash\": \"restart\"",
    ] {
        assert!(j.contains(want), "{want} in {j}");
    }
    assert!(
        j.contains("\"avail_vcpus\": [\n            0,\n            1\n        ]"),
        "{j}"
    );
    // cmdline wins over root and extra, with xl's warning.
    let o = create_n("name='a'\ncmdline=\"c\"\nroot=\"/dev/xvda\"\nextra=\"e\"\n");
    assert!(o
        .stderr
        .ends_with("Warning: ignoring root= and extra= in favour of cmdline=\n"));
    assert!(o.stdout.contains("\"cmdline\": \"c\""));
    assert!(json("name='a'\nroot=\"/dev/xvda\"\n").contains("\"cmdline\": \"root=/dev/xvda\""));
}

#[test]
fn odd_but_valid() {
    // Semicolons, no final newline.
    let j = json("name = \"a\" ; memory = 96 ; vcpus = 2");
    assert!(
        j.contains("\"target_memkb\": 98304") && j.contains("\"max_vcpus\": 2"),
        "{j}"
    );
    // Numbers as strings, hex, single quotes.
    let j = json("name=\"a\"\nmemory=\"128\"\nmaxmem=0x100\nvcpus='3'\n");
    assert!(
        j.contains("\"target_memkb\": 131072") && j.contains("\"max_memkb\": 262144"),
        "{j}"
    );
    assert!(j.contains("\"max_vcpus\": 3"), "{j}");
    // Comments, blank lines, tabs.
    let j = json("name=\"a\"\nmemory=64 # comment\n# another\n\n\tvcpus\t=\t2\n");
    assert!(
        j.contains("\"target_memkb\": 65536") && j.contains("\"max_vcpus\": 2"),
        "{j}"
    );
    // The last assignment wins.
    assert!(json("name=\"a\"\nkernel=\"/k\"\nkernel=\"/k2\"\n").contains("\"kernel\": \"/k2\""));
    // Unknown keys: a warning with the line, and the rest still applies.
    let o = create_n("name=\"a\"\nbogus_key=1\nmemory=64\n");
    assert_eq!(o.code, 0);
    assert!(o.stderr.ends_with(&format!(
        "{F}:2: warning: unknown parameter `bogus_key' ignored\n"
    )));
}

#[test]
fn malformed_files() {
    let fail = |t: &str| {
        let (code, e) = errors(t);
        assert_eq!(code, 1, "{t:?}");
        e
    };
    assert_eq!(
        fail("name=\"a\"\r\nmemory=64\r\n"),
        format!("{F}:1: config parsing error near `\r': lexical error\n{F}:2: config parsing error near `\r': lexical error\nFailed to parse config: Invalid argument\n")
    );
    assert_eq!(
        fail("NAME=\"a\"\n"),
        format!("{F}:1: config parsing error near `NAME=\"a\"': lexical error\nFailed to parse config: Invalid argument\n")
    );
    assert_eq!(
        fail("name=\"a\"\nextra=\"x\ny\"\n"),
        format!("{F}:2: config parsing error near `\"x': lexical error\n{F}:3: config parsing error near `\"': lexical error\nFailed to parse config: Invalid argument\n")
    );
    // xl reports an error at a newline against the line before it.
    assert_eq!(
        fail("name=\"a\"\nmemory=\n"),
        format!("{F}:1: config parsing error near <newline>: syntax error, unexpected NEWLINE, expecting STRING or NUMBER or '['\nFailed to parse config: Invalid argument\n")
    );
    assert_eq!(
        fail("name=\"a\"\nkernel=\"/k\"\nramdisk=[\"/r\"\n"),
        format!("{F}:3: config parsing error near `': syntax error, unexpected $end, expecting ']'\nFailed to parse config: Invalid argument\n")
    );
    assert_eq!(
        fail("import os\nname=\"a\"\n"),
        format!("{F}:1: config parsing error near `os': syntax error, unexpected IDENT, expecting += or '='\nFailed to parse config: Invalid argument\n")
    );
    assert!(fail("name=\"a\"\nmemory=-1\n")
        .contains("warning: Config file looks like it contains Python code."));
    // Values of the wrong kind or range.
    assert_eq!(
        fail("name=\"a\"\non_reboot=\"Restart\"\n"),
        "Unknown on_reboot action \"Restart\" specified\n"
    );
    assert_eq!(
        fail("name=\"a\"\nvcpus=129\n"),
        format!("{F}:2: value `129' is greater than maximum bound '128'\n")
    );
    assert_eq!(
        fail("name=\"a\"\nmemory=9223372036854775807\n"),
        format!(
            "{F}:2: value `9223372036854775807' is greater than maximum bound '9007199254740991'\n"
        )
    );
    assert_eq!(fail("memory=64\n"), "Domain name must be specified.\n");
    assert_eq!(
        fail("name=\"a\"\nramdisk=[\"/r\"]\n"),
        format!("{F}:2: parameter `ramdisk' is a list but should be a single value\n")
    );
    assert_eq!(
        fail("name=\"a\"\nvcpus=2\nmaxvcpus=1\n"),
        "xl: maxvcpus < vcpus\n"
    );
}
