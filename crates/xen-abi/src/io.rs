//! `public/io/*`: shared-memory protocols between domains.

pub mod console;
pub mod ring;
pub mod xs_wire;
