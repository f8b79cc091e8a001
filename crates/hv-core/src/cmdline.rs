//! Xen's hypervisor command line (the subset Ferrovisor acts on).
//!
//! Syntax follows `docs/misc/xen-command-line.pandoc`: space-separated
//! `key=value` or bare `key` options, processed left to right (a repeated
//! option overrides the earlier one). Sizes are `<integer>[TtGgMmKkBb]` with
//! **KiB as the default unit**; integers are C-style (`0x` hex, leading `0`
//! octal, else decimal). `-` and `_` in option names are treated alike.
//!
//! Parsing never fails as a whole: options with bad values land in
//! [`XenCmdline::invalid`], unknown options in [`XenCmdline::unknown`], and the
//! caller logs both. Everything borrows from the input string.

use crate::log::Level;
use alloc::vec::Vec;

/// Why a value was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineError {
    /// `key=` with nothing after `=`, or a required part missing.
    Empty,
    /// Not a number, or trailing garbage after it.
    BadNumber,
    /// Unknown size suffix.
    BadSuffix,
    /// The value does not fit in 64 bits (or 32 for counts).
    Overflow,
    /// A syntactically valid value that Ferrovisor does not support
    /// (negative or percentage `dom0_mem`, zero sizes, min > max, ...).
    Unsupported,
    /// Unknown log level name.
    BadLevel,
    /// Option needs a value but was given as a bare word.
    MissingValue,
}

/// An option whose value was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidOption<'a> {
    /// The whole `key=value` token as written.
    pub option: &'a str,
    pub error: CmdlineError,
}

/// `dom0_mem=[min:<size>,][max:<size>,][<size>]` (Xen x86 syntax; Xen on Arm
/// 4.17 accepts only `<size>`). All values in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dom0Mem {
    /// The requested amount.
    pub size: Option<u64>,
    pub min: Option<u64>,
    pub max: Option<u64>,
}

impl Dom0Mem {
    /// Amount to give dom0: `size` (or `default` when absent), clamped to
    /// `[min, max]` (`max` wins if the two conflict).
    pub fn resolve(&self, default: u64) -> u64 {
        let mut v = self.size.unwrap_or(default);
        if let Some(min) = self.min {
            v = v.max(min);
        }
        if let Some(max) = self.max {
            v = v.min(max);
        }
        v
    }
}

/// `dom0_max_vcpus=<N> | <min>-<max> | <min>- | -<max>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dom0Vcpus {
    /// At least 1.
    pub min: u32,
    pub max: Option<u32>,
}

impl Dom0Vcpus {
    /// Xen's rule: number of pCPUs clamped to `[min, max]`, then to `limit`
    /// (the vGIC/architecture maximum). Always at least 1.
    pub fn resolve(&self, nr_pcpus: u32, limit: u32) -> u32 {
        let mut n = nr_pcpus.max(self.min);
        if let Some(max) = self.max {
            n = n.min(max);
        }
        n.min(limit).max(1)
    }
}

/// `dtuart=<path-or-alias>[:<options>]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtUart<'a> {
    /// A DT path (starts with `/`) or an `/aliases` name such as `serial0`.
    pub path: &'a str,
    /// Driver options after the first `:` (e.g. baud rate), if any.
    pub options: Option<&'a str>,
}

impl DtUart<'_> {
    pub fn is_alias(&self) -> bool {
        !self.path.starts_with('/')
    }
}

/// `loglvl=` / `guest_loglvl=`: `<level>[/<rate-limited level>]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLevels {
    /// Messages at this level or more severe are printed.
    pub level: Level,
    /// Messages at this level or more severe are rate-limited (Xen: never
    /// below `level`).
    pub ratelimited: Option<Level>,
}

/// The parsed hypervisor command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XenCmdline<'a> {
    pub dom0_mem: Option<Dom0Mem>,
    pub dom0_max_vcpus: Option<Dom0Vcpus>,
    /// Raw `console=` list (comma-separated), e.g. `dtuart`; see [`XenCmdline::consoles`].
    pub console: Option<&'a str>,
    pub dtuart: Option<DtUart<'a>>,
    pub loglvl: Option<LogLevels>,
    pub guest_loglvl: Option<LogLevels>,
    /// Options we do not know, as written (`key` or `key=value`).
    pub unknown: Vec<&'a str>,
    /// Known options with rejected values.
    pub invalid: Vec<InvalidOption<'a>>,
}

impl<'a> XenCmdline<'a> {
    /// Parse a whole command line. Never fails; see the module docs.
    pub fn parse(line: &'a str) -> Self {
        let mut c = XenCmdline::default();
        for tok in line
            .split(|ch: char| ch.is_ascii_whitespace())
            .filter(|t| !t.is_empty())
        {
            let (key, val) = match tok.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (tok, None),
            };
            let bad = |c: &mut XenCmdline<'a>, error| {
                c.invalid.push(InvalidOption { option: tok, error })
            };
            if key_eq(key, "dom0_mem") {
                match val
                    .ok_or(CmdlineError::MissingValue)
                    .and_then(parse_dom0_mem)
                {
                    Ok(v) => c.dom0_mem = Some(v),
                    Err(e) => bad(&mut c, e),
                }
            } else if key_eq(key, "dom0_max_vcpus") {
                match val
                    .ok_or(CmdlineError::MissingValue)
                    .and_then(parse_dom0_max_vcpus)
                {
                    Ok(v) => c.dom0_max_vcpus = Some(v),
                    Err(e) => bad(&mut c, e),
                }
            } else if key_eq(key, "console") {
                match val {
                    Some(v) => c.console = Some(v),
                    None => bad(&mut c, CmdlineError::MissingValue),
                }
            } else if key_eq(key, "dtuart") {
                match val.ok_or(CmdlineError::MissingValue).and_then(parse_dtuart) {
                    Ok(v) => c.dtuart = Some(v),
                    Err(e) => bad(&mut c, e),
                }
            } else if key_eq(key, "loglvl") {
                match val.ok_or(CmdlineError::MissingValue).and_then(parse_loglvl) {
                    Ok(v) => c.loglvl = Some(v),
                    Err(e) => bad(&mut c, e),
                }
            } else if key_eq(key, "guest_loglvl") {
                match val.ok_or(CmdlineError::MissingValue).and_then(parse_loglvl) {
                    Ok(v) => c.guest_loglvl = Some(v),
                    Err(e) => bad(&mut c, e),
                }
            } else {
                c.unknown.push(tok);
            }
        }
        c
    }

    /// The `console=` entries (e.g. `dtuart`, `none`); empty if not given.
    pub fn consoles(&self) -> impl Iterator<Item = &'a str> {
        self.console
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.is_empty())
    }

    /// Whether `console=` lists `name`.
    pub fn has_console(&self, name: &str) -> bool {
        self.consoles().any(|c| c == name)
    }
}

/// Option-name comparison with `-` and `_` treated alike.
fn key_eq(key: &str, name: &str) -> bool {
    key.len() == name.len()
        && key
            .bytes()
            .zip(name.bytes())
            .all(|(a, b)| a == b || (matches!(a, b'-' | b'_') && matches!(b, b'-' | b'_')))
}

/// Parse a C-style unsigned integer prefix (`0x` hex, leading `0` octal,
/// else decimal). Returns the value and the unparsed rest.
pub fn parse_uint_prefix(s: &str) -> Result<(u64, &str), CmdlineError> {
    let (radix, digits) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, h)
    } else if s.len() > 1 && s.starts_with('0') && s.as_bytes()[1].is_ascii_digit() {
        (8, &s[1..])
    } else {
        (10, s)
    };
    let n = digits
        .bytes()
        .take_while(|b| (*b as char).is_digit(radix))
        .count();
    if n == 0 {
        return Err(if s.is_empty() {
            CmdlineError::Empty
        } else {
            CmdlineError::BadNumber
        });
    }
    let mut v: u64 = 0;
    for b in digits[..n].bytes() {
        let d = (b as char).to_digit(radix).unwrap_or(0) as u64;
        v = v
            .checked_mul(radix as u64)
            .and_then(|v| v.checked_add(d))
            .ok_or(CmdlineError::Overflow)?;
    }
    Ok((v, &digits[n..]))
}

/// Parse a whole C-style unsigned integer.
pub fn parse_uint(s: &str) -> Result<u64, CmdlineError> {
    match parse_uint_prefix(s)? {
        (v, "") => Ok(v),
        _ => Err(CmdlineError::BadNumber),
    }
}

/// Parse a Xen `<size>`: integer plus optional single suffix T/G/M/K/B (any
/// case); **no suffix means KiB**. Result in bytes.
pub fn parse_size(s: &str) -> Result<u64, CmdlineError> {
    let (v, rest) = parse_uint_prefix(s)?;
    let shift = match rest {
        "" | "K" | "k" => 10,
        "B" | "b" => 0,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        _ => return Err(CmdlineError::BadSuffix),
    };
    if shift > 0 && v.leading_zeros() < shift {
        return Err(CmdlineError::Overflow);
    }
    Ok(v << shift)
}

/// `dom0_mem` value: comma-separated `<size>`, `min:<size>`, `max:<size>`.
pub fn parse_dom0_mem(s: &str) -> Result<Dom0Mem, CmdlineError> {
    if s.is_empty() {
        return Err(CmdlineError::Empty);
    }
    let mut m = Dom0Mem::default();
    for item in s.split(',') {
        if item.is_empty() {
            return Err(CmdlineError::Empty);
        }
        if item.starts_with('-') || item.ends_with('%') {
            return Err(CmdlineError::Unsupported);
        }
        let (slot, v) = if let Some(v) = item.strip_prefix("max:") {
            (&mut m.max, v)
        } else if let Some(v) = item.strip_prefix("min:") {
            (&mut m.min, v)
        } else {
            (&mut m.size, item)
        };
        if v.starts_with('-') || v.ends_with('%') {
            return Err(CmdlineError::Unsupported);
        }
        let bytes = parse_size(v)?;
        if bytes == 0 {
            return Err(CmdlineError::Unsupported);
        }
        *slot = Some(bytes);
    }
    if let (Some(min), Some(max)) = (m.min, m.max) {
        if min > max {
            return Err(CmdlineError::Unsupported);
        }
    }
    Ok(m)
}

fn parse_u32(s: &str) -> Result<u32, CmdlineError> {
    u32::try_from(parse_uint(s)?).map_err(|_| CmdlineError::Overflow)
}

/// `dom0_max_vcpus` value: `N` (exactly N, clamped by Xen to ≥ 1), `min-max`,
/// `min-` or `-max`.
pub fn parse_dom0_max_vcpus(s: &str) -> Result<Dom0Vcpus, CmdlineError> {
    if s.is_empty() {
        return Err(CmdlineError::Empty);
    }
    let r = match s.split_once('-') {
        None => {
            let n = parse_u32(s)?.max(1);
            Dom0Vcpus {
                min: n,
                max: Some(n),
            }
        }
        Some(("", "")) => return Err(CmdlineError::Empty),
        Some(("", max)) => {
            let max = parse_u32(max)?;
            if max == 0 {
                return Err(CmdlineError::Unsupported);
            }
            Dom0Vcpus {
                min: 1,
                max: Some(max),
            }
        }
        Some((min, "")) => Dom0Vcpus {
            min: parse_u32(min)?.max(1),
            max: None,
        },
        Some((min, max)) => {
            let min = parse_u32(min)?.max(1);
            let max = parse_u32(max)?;
            if max < min {
                return Err(CmdlineError::Unsupported);
            }
            Dom0Vcpus {
                min,
                max: Some(max),
            }
        }
    };
    Ok(r)
}

/// `dtuart` value: `<path-or-alias>[:<options>]`.
pub fn parse_dtuart(s: &str) -> Result<DtUart<'_>, CmdlineError> {
    let (path, options) = match s.split_once(':') {
        Some((p, o)) => (p, Some(o)),
        None => (s, None),
    };
    if path.is_empty() {
        return Err(CmdlineError::Empty);
    }
    Ok(DtUart { path, options })
}

/// `loglvl` / `guest_loglvl` value: `<level>[/<rate-limited level>]`.
pub fn parse_loglvl(s: &str) -> Result<LogLevels, CmdlineError> {
    if s.is_empty() {
        return Err(CmdlineError::Empty);
    }
    let (l, r) = match s.split_once('/') {
        Some((l, r)) => (l, Some(r)),
        None => (s, None),
    };
    let level = Level::parse(l).ok_or(CmdlineError::BadLevel)?;
    let ratelimited = match r {
        None => None,
        Some(r) => Some(Level::parse(r).ok_or(CmdlineError::BadLevel)?.max(level)),
    };
    Ok(LogLevels { level, ratelimited })
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: u64 = 1 << 10;
    const M: u64 = 1 << 20;
    const G: u64 = 1 << 30;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M"), Ok(512 * M));
        assert_eq!(parse_size("1G"), Ok(G));
        assert_eq!(parse_size("1g"), Ok(G));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert_eq!(parse_size("4k"), Ok(4 * K));
        assert_eq!(parse_size("100"), Ok(100 * K), "default unit is KiB");
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("0x10M"), Ok(16 * M));
        assert_eq!(parse_size("010M"), Ok(8 * M), "leading 0 is octal");
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size(""), Err(CmdlineError::Empty));
        assert_eq!(parse_size("M"), Err(CmdlineError::BadNumber));
        assert_eq!(parse_size("0x"), Err(CmdlineError::BadNumber));
        assert_eq!(parse_size("512MB"), Err(CmdlineError::BadSuffix));
        assert_eq!(parse_size("512X"), Err(CmdlineError::BadSuffix));
        assert_eq!(parse_size("5 12"), Err(CmdlineError::BadSuffix));
        assert_eq!(parse_size("16777216T"), Err(CmdlineError::Overflow));
        assert_eq!(parse_size("16777215T"), Ok(16777215 << 40));
        assert_eq!(parse_size("18446744073709551615B"), Ok(u64::MAX));
        assert_eq!(
            parse_size("18446744073709551616B"),
            Err(CmdlineError::Overflow)
        );
        assert_eq!(
            parse_size("99999999999999999999999999"),
            Err(CmdlineError::Overflow)
        );
        assert_eq!(
            parse_size("18014398509481984"),
            Err(CmdlineError::Overflow),
            "2^54 KiB"
        );
    }

    #[test]
    fn dom0_mem() {
        assert_eq!(
            parse_dom0_mem("512M"),
            Ok(Dom0Mem {
                size: Some(512 * M),
                min: None,
                max: None
            })
        );
        assert_eq!(
            parse_dom0_mem("512M,max:1G"),
            Ok(Dom0Mem {
                size: Some(512 * M),
                min: None,
                max: Some(G)
            })
        );
        assert_eq!(
            parse_dom0_mem("max:1G,512M"),
            Ok(Dom0Mem {
                size: Some(512 * M),
                min: None,
                max: Some(G)
            })
        );
        assert_eq!(
            parse_dom0_mem("min:256M,max:1G"),
            Ok(Dom0Mem {
                size: None,
                min: Some(256 * M),
                max: Some(G)
            })
        );
        assert_eq!(parse_dom0_mem(""), Err(CmdlineError::Empty));
        assert_eq!(parse_dom0_mem("512M,"), Err(CmdlineError::Empty));
        assert_eq!(parse_dom0_mem("max:"), Err(CmdlineError::Empty));
        assert_eq!(parse_dom0_mem("-512M"), Err(CmdlineError::Unsupported));
        assert_eq!(parse_dom0_mem("50%"), Err(CmdlineError::Unsupported));
        assert_eq!(parse_dom0_mem("0"), Err(CmdlineError::Unsupported));
        assert_eq!(
            parse_dom0_mem("min:2G,max:1G"),
            Err(CmdlineError::Unsupported)
        );
        assert_eq!(parse_dom0_mem("maxx:1G"), Err(CmdlineError::BadNumber));
        assert_eq!(parse_dom0_mem("99999999999T"), Err(CmdlineError::Overflow));
        let m = parse_dom0_mem("2G,max:1G").unwrap();
        assert_eq!(m.resolve(512 * M), G);
        let m = parse_dom0_mem("min:256M").unwrap();
        assert_eq!(m.resolve(128 * M), 256 * M);
        assert_eq!(Dom0Mem::default().resolve(512 * M), 512 * M);
    }

    #[test]
    fn vcpus() {
        assert_eq!(
            parse_dom0_max_vcpus("4"),
            Ok(Dom0Vcpus {
                min: 4,
                max: Some(4)
            })
        );
        assert_eq!(
            parse_dom0_max_vcpus("0"),
            Ok(Dom0Vcpus {
                min: 1,
                max: Some(1)
            })
        );
        assert_eq!(
            parse_dom0_max_vcpus("2-8"),
            Ok(Dom0Vcpus {
                min: 2,
                max: Some(8)
            })
        );
        assert_eq!(
            parse_dom0_max_vcpus("2-"),
            Ok(Dom0Vcpus { min: 2, max: None })
        );
        assert_eq!(
            parse_dom0_max_vcpus("-8"),
            Ok(Dom0Vcpus {
                min: 1,
                max: Some(8)
            })
        );
        assert_eq!(parse_dom0_max_vcpus(""), Err(CmdlineError::Empty));
        assert_eq!(parse_dom0_max_vcpus("-"), Err(CmdlineError::Empty));
        assert_eq!(parse_dom0_max_vcpus("8-2"), Err(CmdlineError::Unsupported));
        assert_eq!(parse_dom0_max_vcpus("-0"), Err(CmdlineError::Unsupported));
        assert_eq!(parse_dom0_max_vcpus("x"), Err(CmdlineError::BadNumber));
        assert_eq!(parse_dom0_max_vcpus("1-2-3"), Err(CmdlineError::BadNumber));
        assert_eq!(
            parse_dom0_max_vcpus("4294967296"),
            Err(CmdlineError::Overflow)
        );
        assert_eq!(parse_dom0_max_vcpus("2-8").unwrap().resolve(4, 128), 4);
        assert_eq!(parse_dom0_max_vcpus("2-8").unwrap().resolve(1, 128), 2);
        assert_eq!(parse_dom0_max_vcpus("2-").unwrap().resolve(300, 128), 128);
        assert_eq!(parse_dom0_max_vcpus("4").unwrap().resolve(2, 128), 4);
    }

    #[test]
    fn dtuart_and_loglvl() {
        assert_eq!(
            parse_dtuart("/pl011@9000000"),
            Ok(DtUart {
                path: "/pl011@9000000",
                options: None
            })
        );
        let d = parse_dtuart("serial0:115200n8").unwrap();
        assert_eq!(
            d,
            DtUart {
                path: "serial0",
                options: Some("115200n8")
            }
        );
        assert!(d.is_alias());
        assert_eq!(parse_dtuart(""), Err(CmdlineError::Empty));
        assert_eq!(parse_dtuart(":x"), Err(CmdlineError::Empty));
        assert_eq!(
            parse_loglvl("all"),
            Ok(LogLevels {
                level: Level::Debug,
                ratelimited: None
            })
        );
        assert_eq!(
            parse_loglvl("info/warning"),
            Ok(LogLevels {
                level: Level::Info,
                ratelimited: Some(Level::Info)
            }),
            "rate-limited level never below the print level"
        );
        assert_eq!(
            parse_loglvl("none/debug"),
            Ok(LogLevels {
                level: Level::None,
                ratelimited: Some(Level::Debug)
            })
        );
        assert_eq!(parse_loglvl(""), Err(CmdlineError::Empty));
        assert_eq!(parse_loglvl("loud"), Err(CmdlineError::BadLevel));
        assert_eq!(parse_loglvl("info/"), Err(CmdlineError::BadLevel));
    }

    #[test]
    fn whole_line() {
        let line = "  dom0_mem=512M,max:512M dom0-max-vcpus=2 console=dtuart,vga dtuart=serial0 \
                    loglvl=all guest_loglvl=all/warning sync_console foo=bar dom0_mem=  dom0_mem loglvl=loud\t";
        let c = XenCmdline::parse(line);
        assert_eq!(
            c.dom0_mem,
            Some(Dom0Mem {
                size: Some(512 * M),
                min: None,
                max: Some(512 * M)
            })
        );
        assert_eq!(
            c.dom0_max_vcpus,
            Some(Dom0Vcpus {
                min: 2,
                max: Some(2)
            })
        );
        assert_eq!(c.console, Some("dtuart,vga"));
        assert!(c.has_console("dtuart") && c.has_console("vga") && !c.has_console("com1"));
        assert_eq!(
            c.dtuart,
            Some(DtUart {
                path: "serial0",
                options: None
            })
        );
        assert_eq!(
            c.loglvl,
            Some(LogLevels {
                level: Level::Debug,
                ratelimited: None
            })
        );
        assert_eq!(
            c.guest_loglvl,
            Some(LogLevels {
                level: Level::Debug,
                ratelimited: Some(Level::Debug)
            })
        );
        assert_eq!(c.unknown, ["sync_console", "foo=bar"]);
        assert_eq!(
            c.invalid,
            [
                InvalidOption {
                    option: "dom0_mem=",
                    error: CmdlineError::Empty
                },
                InvalidOption {
                    option: "dom0_mem",
                    error: CmdlineError::MissingValue
                },
                InvalidOption {
                    option: "loglvl=loud",
                    error: CmdlineError::BadLevel
                },
            ]
        );
        // Later valid values override earlier ones; invalid ones do not clobber.
        let c = XenCmdline::parse("dom0_mem=1G dom0_mem=2G dom0_mem=bad");
        assert_eq!(c.dom0_mem.unwrap().size, Some(2 * G));
        assert_eq!(XenCmdline::parse(""), XenCmdline::default());
        assert_eq!(XenCmdline::parse("=x").unknown, ["=x"]);
        assert_eq!(
            XenCmdline::parse("dom0_mem=1G=2").invalid[0].error,
            CmdlineError::BadSuffix
        );
    }
}
