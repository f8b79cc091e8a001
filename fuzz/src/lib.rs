//! Helpers shared by the fuzz targets.

use arbitrary::Unstructured;

/// A value from the fuzzer that is usually small and interesting, sometimes
/// anything: `pick` among `interesting` two times out of three.
pub fn biased_u64(u: &mut Unstructured<'_>, interesting: &[u64]) -> arbitrary::Result<u64> {
    if !interesting.is_empty() && u.ratio(2, 3)? {
        Ok(*u.choose(interesting)?)
    } else {
        u.arbitrary()
    }
}

/// A u32 in `0..n` most of the time, anything otherwise.
pub fn mostly_below(u: &mut Unstructured<'_>, n: u32) -> arbitrary::Result<u32> {
    if u.ratio(7, 8)? {
        u.int_in_range(0..=n.saturating_sub(1))
    } else {
        u.arbitrary()
    }
}

/// True when `FUZZ_DEBUG` is set: targets then print the operations they
/// run (to turn a crashing input into a readable regression test).
pub fn debug() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("FUZZ_DEBUG").is_some())
}
