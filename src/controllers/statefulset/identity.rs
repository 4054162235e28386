//! A StatefulSet pod's stable identity: its ordinal, the name built from it,
//! the labels that say which set and index it is, and the names of its
//! PersistentVolumeClaims (`stateful_set_utils.go`).

/// `statefulset.kubernetes.io/pod-name`.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// `apps.kubernetes.io/pod-index`.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The ordinal of `pod` in the set named `set`, if the pod's name is
/// `<set>-<ordinal>`.
pub fn ordinal(set: &str, pod: &str) -> Option<i64> {
    let rest = pod.strip_prefix(set)?.strip_prefix('-')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if rest.len() > 1 && rest.starts_with('0') {
        return None;
    }
    rest.parse().ok()
}

pub fn pod_name(set: &str, ordinal: i64) -> String {
    format!("{set}-{ordinal}")
}

/// The claim of volume claim template `claim` for pod `<set>-<ordinal>`.
pub fn claim_name(claim: &str, set: &str, ordinal: i64) -> String {
    format!("{claim}-{set}-{ordinal}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_parse_only_from_the_sets_own_names() {
        assert_eq!(ordinal("web", "web-0"), Some(0));
        assert_eq!(ordinal("web", "web-12"), Some(12));
        assert_eq!(ordinal("web", "web-x"), None);
        assert_eq!(ordinal("web", "web-"), None);
        assert_eq!(ordinal("web", "webb-1"), None);
        assert_eq!(ordinal("web", "web-01"), None);
        assert_eq!(ordinal("web-1", "web-1-2"), Some(2));
        assert_eq!(claim_name("www", "web", 3), "www-web-3");
    }
}
