//! Log levels with Xen's names (`loglvl=` / `guest_loglvl=`).

/// Severity, most severe first (Xen: error, warning, info, debug).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    None = 0,
    Error = 1,
    Warning = 2,
    Info = 3,
    Debug = 4,
}

impl Level {
    /// Xen's level names: `none`, `error`, `warning`, `info`, `debug`, `all`.
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "none" => Level::None,
            "error" => Level::Error,
            "warning" => Level::Warning,
            "info" => Level::Info,
            "debug" | "all" => Level::Debug,
            _ => return None,
        })
    }

    /// Xen's console prefix for a message of this level.
    pub fn tag(self) -> &'static str {
        match self {
            Level::None => "",
            Level::Error => "<E>",
            Level::Warning => "<W>",
            Level::Info => "<I>",
            Level::Debug => "<D>",
        }
    }
}
