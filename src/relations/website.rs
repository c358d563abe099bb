//! The `website` endpoint (interface `http`): a load balancer or reverse proxy reads this
//! unit's `hostname` and `port` from the unit databag.

use crate::juju::Databag;

/// The databag this unit publishes on every `website` relation.
pub fn website_databag(hostname: &str, port: u16) -> Databag {
    Databag::from([
        ("hostname".to_owned(), hostname.to_owned()),
        ("port".to_owned(), port.to_string()),
    ])
}

/// Whether `current` already carries everything in `wanted` (so no relation-set is needed).
pub fn is_published(current: &Databag, wanted: &Databag) -> bool {
    wanted.iter().all(|(k, v)| current.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_hostname_and_port() {
        let bag = website_databag("10.0.0.9", 1337);
        assert_eq!(bag["hostname"], "10.0.0.9");
        assert_eq!(bag["port"], "1337");
        let mut current = bag.clone();
        current.insert("private-address".into(), "10.0.0.9".into());
        assert!(is_published(&current, &bag));
        current.insert("port".into(), "80".into());
        assert!(!is_published(&current, &bag));
    }
}
