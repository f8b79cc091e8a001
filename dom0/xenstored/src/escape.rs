//! Quoting of possibly-binary values, as libxenstore's `sanitise_value` /
//! `unsanitise_value` do for the xenstore-* tools (unless `-R`): printable ASCII other than
//! `\` as is; `\t \n \r \\`; bytes below 8 as `\ooo`, others as `\xHH`.

pub fn sanitise(val: &[u8]) -> String {
    let mut s = String::with_capacity(val.len());
    for &c in val {
        match c {
            b'\\' => s.push_str("\\\\"),
            b' '..=b'~' => s.push(char::from(c)),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            0..=7 => s.push_str(&format!("\\{c:03o}")),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

/// The inverse of [`sanitise`]; like the C version, it is lenient: an unknown escape
/// gives the escaped character, a malformed number what `sscanf` would have read.
pub fn unsanitise(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = b.get(i) else { break };
        i += 1;
        out.push(match e {
            b't' => b'\t',
            b'n' => b'\n',
            b'r' => b'\r',
            b'x' => {
                let (v, n) = digits(&b[i..], 16, 2);
                i += n;
                if n == 0 { b'x' } else { v }
            }
            b'0'..=b'7' => {
                let (v, n) = digits(&b[i - 1..], 8, 3);
                i += n - 1;
                v
            }
            other => other,
        });
    }
    out
}

/// Up to `max` leading digits of `radix`: (value, digits used).
fn digits(b: &[u8], radix: u32, max: usize) -> (u8, usize) {
    let mut v: u32 = 0;
    let mut n = 0;
    while n < max {
        match b.get(n).and_then(|&d| char::from(d).to_digit(radix)) {
            Some(d) => v = v * radix + d,
            None => break,
        }
        n += 1;
    }
    (v as u8, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let all: Vec<u8> = (0..=255).collect();
        let s = sanitise(&all);
        assert!(s.is_ascii());
        assert_eq!(unsanitise(&s), all);
        assert_eq!(sanitise(b"a\\b\t\x01\x7f"), "a\\\\b\\t\\001\\x7f");
    }

    #[test]
    fn lenient_like_c() {
        assert_eq!(unsanitise("plain"), b"plain");
        assert_eq!(unsanitise("\\q"), b"q");
        assert_eq!(unsanitise("\\x4"), b"\x04");
        assert_eq!(unsanitise("\\xzz"), b"xzz");
        assert_eq!(unsanitise("\\7z"), b"\x07z");
        assert_eq!(unsanitise("end\\"), b"end");
    }
}
