//! xl.cfg grammar tests. Expected messages were checked against Xen 4.17's
//! own libxlutil parser.

use xl::config::{Config, GetError, Op, Value};

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

fn l(v: &[Value]) -> Value {
    Value::List(v.to_vec())
}

fn ok(text: &str) -> Config {
    match Config::parse("t.cfg", text.as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("unexpected parse error for {text:?}:\n{e}"),
    }
}

fn err(text: &str) -> Vec<String> {
    match Config::parse("t.cfg", text.as_bytes()) {
        Ok(c) => panic!("{text:?} parsed: {c:?}"),
        Err(e) => e.messages,
    }
}

fn val<'a>(c: &'a Config, k: &str) -> &'a Value {
    &c.get(k).unwrap_or_else(|| panic!("{k} missing")).value
}

#[test]
fn reference_domu_cfg() {
    let c = ok(r#"name = "domu"
memory = 128
vcpus = 1
kernel = "/var/lib/lab/vmlinuz"          # same Debian cloud kernel
ramdisk = "/var/lib/lab/domu-initrd.gz"  # busybox + xen-blkfront + xen-netfront
extra = "console=hvc0 panic=-1 lab_disk=1 lab_net=1 lab_dd_mb=128"
on_poweroff = "destroy"
disk = ['phy:/dev/loop0,xvda,w']
vif = ['bridge=xenbr0,mac=00:16:3e:00:00:02']
"#);
    assert_eq!(c.get_string("name"), Ok("domu"));
    assert_eq!(c.get_long("memory"), Ok(128));
    assert_eq!(val(&c, "disk"), &l(&[s("phy:/dev/loop0,xvda,w")]));
    assert_eq!(c.get("vif").map(|x| x.line), Some(9));
    assert_eq!(c.settings().len(), 9);
}

#[test]
fn separators_spacing_and_comments() {
    let c = ok("a = 1;b=2;;\n;c=3");
    assert_eq!(val(&c, "a"), &s("1"));
    assert_eq!(c.get("b").map(|x| x.line), Some(1));
    assert_eq!(c.get("c").map(|x| x.line), Some(2));
    let c = ok("\t a\t=\t2\t # trailing comment\n\n# full line comment\n   \nb = 'x' ; \n");
    assert_eq!(val(&c, "a"), &s("2"));
    assert_eq!(val(&c, "b"), &s("x"));
    // The last setting may end at end of file.
    assert_eq!(val(&ok("a = 1"), "a"), &s("1"));
    // Empty file, only comments.
    assert!(ok("").settings().is_empty());
    assert!(ok("# nothing\n\n").settings().is_empty());
}

#[test]
fn keys_are_lower_case_with_dots_digits_underscores() {
    let c = ok("a.b_c9 = 1\nx.y = 2\n");
    assert_eq!(val(&c, "a.b_c9"), &s("1"));
    assert_eq!(
        err("A = 1\n"),
        vec!["t.cfg:1: config parsing error near `A': lexical error"]
    );
    assert_eq!(
        err("Name = 1\n"),
        vec!["t.cfg:1: config parsing error near `Name': lexical error"]
    );
}

#[test]
fn numbers_are_kept_as_text() {
    let c = ok("a = 0x1f\nb = 08\nc = 12\nd = 99999999999999999999\n");
    assert_eq!(val(&c, "a"), &s("0x1f"));
    assert_eq!(c.get_long("a"), Ok(31));
    assert_eq!(c.get_long("c"), Ok(12));
    assert_eq!(
        c.get_long("b"),
        Err(GetError::Invalid(
            "t.cfg:2: warning: parameter `b' is not a valid number".into()
        ))
    );
    assert_eq!(
        c.get_long("d"),
        Err(GetError::Range(
            "t.cfg:4: warning: parameter `d' could not be parsed as a number: Numerical result out of range"
                .into()
        ))
    );
    assert_eq!(c.get_long("zz"), Err(GetError::NotFound));
    // Quoted numbers are numbers too; strtol skips leading blanks and takes a sign.
    let c = ok("a = \"  42\"\nb = \"-7\"\nc = \"010\"\nd = \"12 \"\n");
    assert_eq!(c.get_long("a"), Ok(42));
    assert_eq!(c.get_long("b"), Ok(-7));
    assert_eq!(c.get_long("c"), Ok(8));
    assert!(c.get_long("d").is_err());
    // A number glued to letters is a syntax error.
    assert_eq!(
        err("memory = 12k\n"),
        vec!["t.cfg:1: config parsing error near `k': syntax error, unexpected IDENT, expecting $end"]
    );
    assert_eq!(
        err("a = 0xZZ\n"),
        vec!["t.cfg:1: config parsing error near `ZZ': lexical error"]
    );
}

#[test]
fn bounded_and_shape_checks() {
    let c = ok("a = 5\nb = [1]\nc += 5\n");
    assert_eq!(
        c.get_bounded_long("a", 1, 4),
        Err(GetError::Invalid(
            "t.cfg:1: warning: value `5' is greater than maximum bound '4'".into()
        ))
    );
    assert_eq!(
        c.get_bounded_long("a", 6, 9),
        Err(GetError::Invalid(
            "t.cfg:1: warning: value `5' is smaller than minimum bound '6'".into()
        ))
    );
    assert_eq!(
        c.get_string("b"),
        Err(GetError::Invalid(
            "t.cfg:2: warning: parameter `b' is a list but should be a single value".into()
        ))
    );
    assert_eq!(
        c.get_list("a"),
        Err(GetError::Invalid(
            "t.cfg:1: warning: parameter `a' is a single value but should be a list".into()
        ))
    );
    assert_eq!(
        c.get_long("c"),
        Err(GetError::Invalid(
            "t.cfg:3: warning: can't use += with numbers for parameter `c'".into()
        ))
    );
}

#[test]
fn strings_and_escapes() {
    let c = ok(r#"x = "a\"b\\c\td\n"
y = 'it\'s'
z = "single 'inside' double"
w = 'double "inside" single'
e = ""
b = "\a\b\f\r\v"
"#);
    assert_eq!(val(&c, "x"), &s("a\"b\\c\td\n"));
    assert_eq!(val(&c, "y"), &s("it's"));
    assert_eq!(val(&c, "z"), &s("single 'inside' double"));
    assert_eq!(val(&c, "w"), &s("double \"inside\" single"));
    assert_eq!(val(&c, "e"), &s(""));
    assert_eq!(val(&c, "b"), &s("\x07\x08\x0c\r\x0b"));
}

#[test]
fn libxlu_escape_quirks() {
    // Octal-looking escapes are consumed and produce nothing.
    assert_eq!(val(&ok("a = \"\\101x\"\n"), "a"), &s("x"));
    assert_eq!(val(&ok("a = \"\\123\"\n"), "a"), &s(""));
    assert_eq!(
        err("a = \"\\1\"\n"),
        vec!["t.cfg:1: config parsing error near `\"\\1\"': invalid digit after backslash octalnumerical character escape in quoted string"]
    );
    // Hex escapes never work in libxlu.
    assert_eq!(
        err("a = \"\\x41\"\n"),
        vec!["t.cfg:1: config parsing error near `\"\\x41\"': invalid digit after backslash hexnumerical character escape in quoted string"]
    );
    // Unknown escapes (xl's message says "backlash").
    assert_eq!(
        err("a = \"ok\"\nb = \"\\q\"\nc = \"\\q\"\n"),
        vec!["t.cfg:2: config parsing error near `\"\\q\"': invalid character after backlash in quoted string"]
    );
}

#[test]
fn lists() {
    let c = ok("x = [ 1, \"b\", ]\ny = []\nz = [\n]\n");
    assert_eq!(val(&c, "x"), &l(&[s("1"), s("b")]));
    assert_eq!(val(&c, "y"), &l(&[]));
    assert_eq!(val(&c, "z"), &l(&[]));
    // Line continuation inside lists, blank lines included.
    let c = ok("a = 1\nb = [\n1,\n\n2,\n\n]\nc = 3\n");
    assert_eq!(val(&c, "b"), &l(&[s("1"), s("2")]));
    assert_eq!(c.get("b").map(|x| x.line), Some(2));
    assert_eq!(c.get("c").map(|x| x.line), Some(8));
    // The grammar allows nesting.
    let c = ok("c = [[1],[]]\n");
    assert_eq!(val(&c, "c"), &l(&[l(&[s("1")]), l(&[])]));
    assert_eq!(
        err("a = [,]\n"),
        vec!["t.cfg:1: config parsing error near `,': syntax error, unexpected ',', expecting ']'"]
    );
    assert_eq!(
        err("a = [1,,2]\n"),
        vec!["t.cfg:1: config parsing error near `,': syntax error, unexpected ',', expecting ']'"]
    );
    assert_eq!(
        err("a = [1 2]\n"),
        vec!["t.cfg:1: config parsing error near `2': syntax error, unexpected NUMBER, expecting ']'"]
    );
}

#[test]
fn plus_equals() {
    let c = ok("a = \"x\"\na += \"y\"\nb += [1]\nb += [2]\nn = 1\nn += 2\n");
    assert_eq!(val(&c, "a"), &s("xy"));
    assert_eq!(c.get("a").map(|x| x.op), Some(Op::Add));
    assert_eq!(val(&c, "b"), &l(&[s("1"), s("2")]));
    // Numbers are strings: += concatenates, and get_long then refuses.
    assert_eq!(val(&c, "n"), &s("12"));
    assert!(c.get_long("n").is_err());
    // Adds to the latest assignment only.
    let c = ok("a = [1]\na = [2]\na += [3]\n");
    assert_eq!(val(&c, "a"), &l(&[s("2"), s("3")]));
    assert_eq!(
        err("a = \"x\"\na += [1]\n"),
        vec![
            "t.cfg:2: config parsing error near `]': can't add [list] to \"string\" or vice versa"
        ]
    );
    assert_eq!(
        err("a = [1]\na += \"s\"\n"),
        vec!["t.cfg:2: config parsing error near `\"s\"': can't add [list] to \"string\" or vice versa"]
    );
}

#[test]
fn last_assignment_wins() {
    let c = ok("memory = 128\nmemory = 256\n");
    assert_eq!(c.get_long("memory"), Ok(256));
    assert_eq!(c.get("memory").map(|x| x.line), Some(2));
    assert_eq!(c.keys(), vec![("memory", 2)]);
}

#[test]
fn syntax_errors_match_xl() {
    // An error at a newline is reported against the previous line (xl's quirk).
    assert_eq!(
        err("memory =\n"),
        vec!["t.cfg:0: config parsing error near <newline>: syntax error, unexpected NEWLINE, expecting STRING or NUMBER or '['"]
    );
    assert_eq!(
        err("a = 1 b = 2\n"),
        vec!["t.cfg:1: config parsing error near `b': syntax error, unexpected IDENT, expecting $end"]
    );
    assert_eq!(
        err("= 3\n"),
        vec!["t.cfg:1: config parsing error near `=': syntax error, unexpected '=', expecting $end or IDENT or NEWLINE or ';'"]
    );
    assert_eq!(
        err("a = 1\n\n\nb = ;\nc = 2\nd\n"),
        vec![
            "t.cfg:4: config parsing error near `;': syntax error, unexpected ';', expecting STRING or NUMBER or '['",
            "t.cfg:5: config parsing error near <newline>: syntax error, unexpected NEWLINE, expecting += or '='",
        ]
    );
    // Errors at end of file.
    assert_eq!(
        err("a ="),
        vec!["t.cfg:1: config parsing error near `': syntax error, unexpected $end, expecting STRING or NUMBER or '['"]
    );
    assert_eq!(
        err("a = [1"),
        vec!["t.cfg:1: config parsing error near `': syntax error, unexpected $end, expecting ']'"]
    );
    assert_eq!(
        err("a"),
        vec!["t.cfg:1: config parsing error near `': syntax error, unexpected $end, expecting += or '='"]
    );
}

#[test]
fn error_recovery_reports_later_lines() {
    assert_eq!(
        err("a = 1\nb = [1 2]\nc = 3\nd = =\ne = 1\n"),
        vec![
            "t.cfg:2: config parsing error near `2': syntax error, unexpected NUMBER, expecting ']'",
            "t.cfg:4: config parsing error near `=': syntax error, unexpected '=', expecting STRING or NUMBER or '['",
        ]
    );
    // After a lexical error, syntax errors on the same line are not reported.
    assert_eq!(
        err("A = 1\nb = 2 2\n"),
        vec![
            "t.cfg:1: config parsing error near `A': lexical error",
            "t.cfg:2: config parsing error near `2': syntax error, unexpected NUMBER, expecting $end",
        ]
    );
    // An error after a complete setting on the same line stops the parse.
    assert_eq!(
        err("a = 1\nb = 2 2\nc = 3\nd = 4 4\n"),
        vec!["t.cfg:2: config parsing error near `2': syntax error, unexpected NUMBER, expecting $end"]
    );
}

#[test]
fn lexical_errors_and_python() {
    let python = [
        "warning: Config file looks like it contains Python code.",
        "warning:  Arbitrary Python is no longer supported.",
        "warning:  See https://wiki.xen.org/wiki/PythonInXlConfig",
    ];
    let mut want = vec!["t.cfg:1: config parsing error near `.5': lexical error".to_string()];
    want.extend(python.iter().map(|x| x.to_string()));
    assert_eq!(err("a = 1.5\n"), want);
    let mut want = vec!["t.cfg:1: config parsing error near `-1': lexical error".to_string()];
    want.extend(python.iter().map(|x| x.to_string()));
    assert_eq!(err("a = -1\n"), want);
    assert_eq!(
        err("a = @\n"),
        vec!["t.cfg:1: config parsing error near `@': lexical error"]
    );
    assert_eq!(
        err("a = \"unterminated\n"),
        vec!["t.cfg:1: config parsing error near `\"unterminated': lexical error"]
    );
    assert_eq!(
        err("a = 1 $ b\nc = 2\n"),
        vec!["t.cfg:1: config parsing error near `$': lexical error"]
    );
    // CR-LF files are rejected by xl too.
    assert_eq!(
        err("a = 1\r\n"),
        vec!["t.cfg:1: config parsing error near `\r': lexical error"]
    );
    // A comment on a last line without newline is a lexical error...
    assert_eq!(
        err("a = 1\n#comment"),
        vec!["t.cfg:2: config parsing error near `#comment': lexical error"]
    );
    assert_eq!(
        err("a = 1\n# comment"),
        vec!["t.cfg:2: config parsing error near `#': lexical error"]
    );
    // ...but stray characters right at end of file are silently dropped.
    assert_eq!(val(&ok("a = 1\n@"), "a"), &s("1"));
    assert_eq!(val(&ok("a = 1 @"), "a"), &s("1"));
}

#[test]
fn errors_use_the_source_name() {
    let e = Config::parse("/etc/xen/vm.cfg", b"x = ]\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/xen/vm.cfg:1: config parsing error near `]': syntax error, unexpected ']', expecting STRING or NUMBER or '['"
    );
}

#[test]
fn nul_bytes_do_not_crash() {
    // libxlu aborts on a NUL inside a quoted string; we report it.
    assert!(Config::parse("t", b"a = \"x\0y\"\n").is_err());
    assert!(Config::parse("t", b"a = x\0y\n").is_err());
}

/// A small deterministic xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn fuzz_random_bytes_never_panic() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let len = (r.next() % 64) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
        let _ = Config::parse("f", &bytes);
    }
}

#[test]
fn fuzz_token_soup_never_panics() {
    let pieces: &[&str] = &[
        "a",
        "memory",
        "x.y",
        "=",
        "+=",
        " ",
        "\t",
        "\n",
        ";",
        ",",
        "[",
        "]",
        "\"s\"",
        "'q'",
        "1",
        "0x1f",
        "08",
        "#c\n",
        "\"\\n\"",
        "\"\\x41\"",
        "\"\\101\"",
        "\"\\q\"",
        "A",
        "-",
        ".",
        "@",
        "\"unterm",
        "\r",
        "\\",
        "\"a\\\"b\"",
        "+",
        "(",
        ":",
        "\"\\1 2\"",
        "\0",
        "\u{ff}",
        "99999999999999999999",
    ];
    let mut r = Rng(12345);
    for _ in 0..20_000 {
        let n = (r.next() % 30) as usize;
        let text: String = (0..n)
            .map(|_| pieces[(r.next() % pieces.len() as u64) as usize])
            .collect();
        if let Ok(c) = Config::parse("f", text.as_bytes()) {
            for k in ["a", "memory", "x.y"] {
                let _ = c.get_long(k);
                let _ = c.get_string(k);
                let _ = c.get_list(k);
            }
            let _ = xl::domain::DomainConfig::from_config(&c);
        }
    }
}
