//! Xenstore path rules (xenstored's `canonicalize` / `is_valid_nodename`).
//!
//! Absolute paths start with `/`; anything else not starting with `@` is
//! relative to the caller's home `/local/domain/<domid>`. Paths starting with
//! `@` name special watch events (`@introduceDomain`, `@releaseDomain`).

use xen_abi::io::xs_wire::XENSTORE_REL_PATH_MAX;

use crate::DomId;

/// Fired (exact match only) when a domain is introduced.
pub const INTRODUCE_DOMAIN: &str = "@introduceDomain";
/// Fired (exact match only) when a domain is released or dies.
pub const RELEASE_DOMAIN: &str = "@releaseDomain";

/// `/local/domain/<domid>`: a domain's home, base of its relative paths.
pub fn domain_path(domid: DomId) -> String {
    format!("/local/domain/{domid}")
}

/// Makes `path` absolute for `domid` (absolute and `@` paths are unchanged).
pub fn canonicalize(domid: DomId, path: &str) -> String {
    if path.starts_with('/') || path.starts_with('@') {
        path.to_owned()
    } else {
        format!("{}/{path}", domain_path(domid))
    }
}

/// True for the special `@...` names.
pub fn is_special(path: &str) -> bool {
    path.starts_with('@')
}

fn valid_chars(path: &str) -> bool {
    path.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'@'))
}

/// Length of a `/local/domain/<id>/` prefix (id of up to 5 digits), or 0.
fn local_prefix_len(path: &str) -> usize {
    let Some(rest) = path.strip_prefix("/local/domain/") else {
        return 0;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=5).contains(&digits) && rest.as_bytes().get(digits) == Some(&b'/') {
        "/local/domain/".len() + digits + 1
    } else {
        0
    }
}

/// `is_valid_nodename`: absolute, no trailing or double `/`, allowed
/// characters only, and at most `max_rel_len` bytes after any
/// `/local/domain/<id>/` prefix (xenstored's `quota_max_path_len`).
pub fn is_valid(path: &str, max_rel_len: usize) -> bool {
    path.starts_with('/')
        && (path == "/" || !path.ends_with('/'))
        && !path.contains("//")
        && path.len() <= local_prefix_len(path) + max_rel_len.min(XENSTORE_REL_PATH_MAX)
        && valid_chars(path)
}

/// Parent of a valid absolute path (`/` is its own parent).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Last component of a valid absolute path (`""` for `/`).
pub fn basename(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// `parent/name`, without doubling the root's slash.
pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// True if `child` is `parent` or below it (everything is below `/`).
pub fn is_child(child: &str, parent: &str) -> bool {
    parent == "/"
        || child
            .strip_prefix(parent)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let max = XENSTORE_REL_PATH_MAX;
        assert!(is_valid("/", max));
        assert!(is_valid("/local/domain/1/device/vbd/51712", max));
        assert!(is_valid("/a-b_c@d/E9", max));
        for bad in ["", "a", "/a/", "//", "/a//b", "/a b", "/a.b", "/ä"] {
            assert!(!is_valid(bad, max), "{bad:?}");
        }
        let long = format!("/{}", "x".repeat(max - 1));
        assert!(is_valid(&long, max));
        assert!(!is_valid(&format!("{long}x"), max));
        // The domain prefix does not count against the limit.
        assert!(is_valid(
            &format!("/local/domain/12345/{}", "x".repeat(max)),
            max
        ));
        assert!(!is_valid(
            &format!("/local/domain/123456/{}", "x".repeat(max)),
            max
        ));
    }

    #[test]
    fn helpers() {
        assert_eq!(canonicalize(7, "device"), "/local/domain/7/device");
        assert_eq!(canonicalize(7, "/x"), "/x");
        assert_eq!(canonicalize(7, "@releaseDomain"), "@releaseDomain");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/"), "/");
        assert_eq!(basename("/a/b"), "b");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert!(is_child("/a/b", "/a") && is_child("/a", "/a") && is_child("/a", "/"));
        assert!(!is_child("/ab", "/a") && !is_child("/a", "/a/b"));
    }
}
