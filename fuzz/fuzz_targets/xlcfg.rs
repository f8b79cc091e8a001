//! xl.cfg files are user input to the toolstack (and may come from anyone
//! who hands the admin a config): the libxlu-compatible parser and the
//! typed domain configuration built from it must never panic, and accessors
//! must agree with the parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xl::config::Config;
use xl::domain::DomainConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(cfg) = Config::parse("fuzz.cfg", data) else {
        return;
    };
    assert_eq!(cfg.source(), "fuzz.cfg");
    for (key, _line) in cfg.keys() {
        assert!(cfg.get(key).is_some(), "key {key:?} listed but not found");
        let _ = cfg.get_string(key);
        let _ = cfg.get_long(key);
        let _ = cfg.get_bounded_long(key, -5, 1 << 40);
        let _ = cfg.get_list(key);
    }
    for s in cfg.settings() {
        let _ = format!("{s:?}");
    }
    match DomainConfig::from_config(&cfg) {
        Ok(r) => {
            let d = &r.config;
            assert!(d.vcpus <= d.max_vcpus, "{d:?}");
            let json = d.to_json();
            assert!(json.starts_with('{') && json.trim_end().ends_with('}'), "{json}");
            let _ = xl::domain::json_str(&d.name);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
