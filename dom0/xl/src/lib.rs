//! The `xl` toolstack: xl.cfg parsing and the subcommands' logic.
#![forbid(unsafe_code)]
