//! The access policy between domains: Xen on Arm's default XSM module,
//! SILO (`xen/xsm/silo.c`). On top of the dummy policy (a domain acts on
//! itself, the control domain on anyone), SILO forbids grants and event
//! channels between two unprivileged domains: each of them may talk to
//! the control domain (dom0) and to itself only.

use xen_abi::xen::DomId;

/// The control domain (Xen's `is_control_domain`): dom0.
pub const CONTROL_DOMAIN: DomId = 0;

/// SILO's `silo_mode_dom_check`: may the domains `a` and `b` be connected
/// (a grant mapped or copied, an event channel bound) in a call made by
/// `current`? Yes if the control domain is any of the three, or if `a`
/// and `b` are the same domain. Ids are real ids (`DOMID_SELF` resolved).
pub const fn silo_allows(current: DomId, a: DomId, b: DomId) -> bool {
    current == CONTROL_DOMAIN || a == CONTROL_DOMAIN || b == CONTROL_DOMAIN || a == b
}

#[cfg(test)]
mod tests {
    use super::silo_allows;

    #[test]
    fn silo() {
        // dom0 with anyone, in either direction, and on others' behalf.
        assert!(silo_allows(0, 1, 2));
        assert!(silo_allows(1, 1, 0));
        assert!(silo_allows(1, 0, 1));
        // A domU with itself.
        assert!(silo_allows(1, 1, 1));
        // Two domUs never, whoever of them asks.
        assert!(!silo_allows(1, 1, 2));
        assert!(!silo_allows(2, 1, 2));
        assert!(!silo_allows(3, 1, 2));
        // A domU copying between two grants of one other domU: same domain.
        assert!(silo_allows(3, 2, 2));
    }
}
