//! Xen's hypervisor command line (`/chosen/xen,xen-bootargs`, untrusted
//! bytes from the boot loader): the whole-line parser and every option
//! parser on its own, with the invariants the module documents.
#![no_main]

use hv_core::cmdline::{
    parse_dom0_max_vcpus, parse_dom0_mem, parse_dtuart, parse_loglvl, parse_size, parse_uint,
    parse_uint_prefix, XenCmdline,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = core::str::from_utf8(data) else {
        return;
    };
    let c = XenCmdline::parse(line);
    // Every token is accounted for exactly once: known, unknown or invalid.
    let tokens = line.split(|ch: char| ch.is_ascii_whitespace()).filter(|t| !t.is_empty()).count();
    assert!(c.unknown.len() + c.invalid.len() <= tokens);
    for t in c.unknown.iter().copied().chain(c.invalid.iter().map(|i| i.option)) {
        assert!(!t.is_empty() && line.contains(t));
    }
    let _ = c.consoles().count();
    let _ = c.has_console("dtuart");
    if let Some(m) = c.dom0_mem {
        for default in [0, 1 << 20, u64::MAX] {
            let v = m.resolve(default);
            if let (Some(lo), Some(hi)) = (m.min, m.max) {
                if lo <= hi {
                    assert!(v >= lo && v <= hi, "{m:?} default {default} -> {v}");
                }
            }
        }
    }
    if let Some(v) = c.dom0_max_vcpus {
        assert!(v.min >= 1, "{v:?}");
        for (p, limit) in [(0, 0), (1, 128), (u32::MAX, 128), (4, u32::MAX)] {
            let n = v.resolve(p, limit);
            assert!(n >= 1);
            assert!(n <= limit.max(1));
        }
    }
    if let Some(d) = c.dtuart {
        assert!(!d.path.is_empty() || d.options.is_some() || line.contains("dtuart="));
        let _ = d.is_alias();
    }
    if let Some(l) = c.loglvl {
        if let Some(r) = l.ratelimited {
            let _ = (l.level, r);
        }
    }

    // The single-value parsers on the whole input (and its halves).
    let (a, b) = line.split_at(line.char_indices().nth(line.chars().count() / 2).map_or(0, |(i, _)| i));
    for s in [line, a, b] {
        if let Ok((v, rest)) = parse_uint_prefix(s) {
            assert!(s.ends_with(rest));
            if rest.is_empty() {
                assert_eq!(parse_uint(s), Ok(v));
            }
        }
        let _ = parse_size(s);
        let _ = parse_dom0_mem(s);
        if let Ok(v) = parse_dom0_max_vcpus(s) {
            assert!(v.min >= 1);
            if let Some(max) = v.max {
                assert!(max >= v.min, "{s:?} -> {v:?}");
            }
        }
        let _ = parse_dtuart(s);
        let _ = parse_loglvl(s);
    }
});
