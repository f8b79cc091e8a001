//! Xenstore for the dom0 toolstack: the wire protocol, the store with its
//! permissions, transactions and watches.
#![forbid(unsafe_code)]
