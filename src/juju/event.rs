//! The Juju event a dispatch process was started for.

/// The phase of a relation's life a relation hook reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    Created,
    Joined,
    Changed,
    Departed,
    Broken,
}

/// One Juju event, decoded from `JUJU_DISPATCH_PATH` (`hooks/<name>` or `actions/<name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Install,
    Start,
    Stop,
    Remove,
    ConfigChanged,
    UpgradeCharm,
    UpdateStatus,
    LeaderElected,
    LeaderSettingsChanged,
    Relation {
        endpoint: String,
        kind: RelationKind,
    },
    Action(String),
    /// A hook this charm does not know by name (e.g. a future Juju hook); reconciled anyway.
    Other(String),
}

impl Event {
    /// Decodes `hooks/<hook>` or `actions/<action>`; `None` for anything else.
    pub fn parse(dispatch_path: &str) -> Option<Event> {
        if let Some(action) = dispatch_path.strip_prefix("actions/") {
            return (!action.is_empty()).then(|| Event::Action(action.to_owned()));
        }
        let hook = dispatch_path.strip_prefix("hooks/")?;
        if hook.is_empty() || hook.contains('/') {
            return None;
        }
        Some(match hook {
            "install" => Event::Install,
            "start" => Event::Start,
            "stop" => Event::Stop,
            "remove" => Event::Remove,
            "config-changed" => Event::ConfigChanged,
            "upgrade-charm" => Event::UpgradeCharm,
            "update-status" => Event::UpdateStatus,
            "leader-elected" => Event::LeaderElected,
            "leader-settings-changed" => Event::LeaderSettingsChanged,
            other => match Self::parse_relation(other) {
                Some((endpoint, kind)) => Event::Relation { endpoint, kind },
                None => Event::Other(other.to_owned()),
            },
        })
    }

    fn parse_relation(hook: &str) -> Option<(String, RelationKind)> {
        let (endpoint, suffix) = hook.rsplit_once("-relation-")?;
        let kind = match suffix {
            "created" => RelationKind::Created,
            "joined" => RelationKind::Joined,
            "changed" => RelationKind::Changed,
            "departed" => RelationKind::Departed,
            "broken" => RelationKind::Broken,
            _ => return None,
        };
        (!endpoint.is_empty()).then(|| (endpoint.to_owned(), kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_hook_shape() {
        let cases: &[(&str, Option<Event>)] = &[
            ("hooks/install", Some(Event::Install)),
            ("hooks/update-status", Some(Event::UpdateStatus)),
            ("hooks/leader-elected", Some(Event::LeaderElected)),
            (
                "hooks/mongodb-relation-changed",
                Some(Event::Relation {
                    endpoint: "mongodb".into(),
                    kind: RelationKind::Changed,
                }),
            ),
            (
                // An endpoint whose own name contains "-relation-".
                "hooks/my-relation-db-relation-broken",
                Some(Event::Relation {
                    endpoint: "my-relation-db".into(),
                    kind: RelationKind::Broken,
                }),
            ),
            (
                "hooks/data-storage-attached",
                Some(Event::Other("data-storage-attached".into())),
            ),
            (
                "hooks/foo-relation-exploded",
                Some(Event::Other("foo-relation-exploded".into())),
            ),
            (
                "actions/get-master-key",
                Some(Event::Action("get-master-key".into())),
            ),
            ("actions/", None),
            ("hooks/", None),
            ("hooks/a/b", None),
            ("install", None),
        ];
        for (path, want) in cases {
            assert_eq!(&Event::parse(path), want, "{path}");
        }
    }
}
