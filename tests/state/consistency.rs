//! The harness refuses scenarios Juju cannot produce (as ops' Scenario's consistency checker
//! does), and builds the hook's context through the charm's own `JujuContext::from_env`.
//! Each check is proven to refuse here, so that it cannot silently accept everything.

use parse_server_charm::juju::{Event, JujuContext, RelationKind};
use serde_json::json;

use crate::harness::{check, hook, run, On, Rel, Secret, World};

/// `on` against `w` is refused, saying `part`.
#[track_caller]
fn refused(w: &World, on: impl Into<On>, part: &str) {
    let on = on.into();
    match check(w, &on) {
        Ok(()) => panic!(
            "{} was accepted; expected a refusal saying {part:?}",
            on.name()
        ),
        Err(why) => assert!(why.contains(part), "{why:?} lacks {part:?}"),
    }
}

#[track_caller]
fn accepted(w: &World, on: impl Into<On>) {
    let on = on.into();
    if let Err(why) = check(w, &on) {
        panic!("{} was refused: {why}", on.name());
    }
}

/// A unit with every kind of relation the charm declares.
fn related(tag: &str) -> (World, String, String) {
    let mut w = World::new(tag);
    let db = w.relate_mongodb();
    let peers = w.peer_with(&["parse-server/1"]);
    (w, db, peers)
}

#[test]
fn consistent_scenarios_are_accepted() {
    let (mut w, db, peers) = related("consistent");
    w.set("port", 1338)
        .set("app-id", "shop")
        .set("allow-client-class-creation", true);
    for name in [
        "install",
        "config-changed",
        "update-status",
        "leader-elected",
        "stop",
    ] {
        accepted(&w, name);
    }
    accepted(&w, On::relation("mongodb-relation-created", &db));
    accepted(
        &w,
        On::relation("mongodb-relation-joined", &db).unit("mongodb/0"),
    );
    accepted(
        &w,
        On::relation("mongodb-relation-changed", &db).unit("mongodb/0"),
    );
    accepted(&w, On::relation("mongodb-relation-changed", &db));
    accepted(&w, On::relation("mongodb-relation-broken", &db));
    accepted(
        &w,
        On::relation("parse-peers-relation-departed", &peers)
            .unit("parse-server/2")
            .departing("parse-server/2"),
    );
    accepted(&w, On::action("get-master-key"));
    accepted(&w, On::action("memory-report"));
    let granted = w.grant_secret(&[("password", "pw")]);
    accepted(&w, On::secret("secret-changed", &granted));
    w.leader = false;
    accepted(&w, "leader-settings-changed");
}

#[test]
fn the_context_is_what_from_env_reads_from_the_hooks_environment() {
    let (w, _, peers) = related("context");
    let on = On::relation("parse-peers-relation-departed", &peers)
        .unit("parse-server/2")
        .departing("parse-server/2");
    let env = w.env(&on);
    assert_eq!(
        env["JUJU_DISPATCH_PATH"],
        "hooks/parse-peers-relation-departed"
    );
    assert_eq!(env["JUJU_REMOTE_APP"], "parse-server");
    let ctx = JujuContext::from_env(&env, "dispatch").unwrap();
    assert_eq!(
        ctx.event,
        Event::Relation {
            endpoint: "parse-peers".into(),
            kind: RelationKind::Departed
        }
    );
    assert_eq!(ctx.unit_name, "parse-server/0");
    assert_eq!(ctx.relation_id.as_deref(), Some(peers.as_str()));
    assert_eq!(ctx.remote_unit.as_deref(), Some("parse-server/2"));
    assert_eq!(ctx.departing_unit.as_deref(), Some("parse-server/2"));
    assert_eq!(ctx.abort_after, None);
    // An application-bag change names no remote unit: JUJU_REMOTE_UNIT is empty.
    let ctx = JujuContext::from_env(
        &w.env(&On::relation("parse-peers-relation-changed", &peers)),
        "dispatch",
    )
    .unwrap();
    assert_eq!(ctx.remote_unit, None);
    let ctx = JujuContext::from_env(&w.env(&On::action("memory-report")), "dispatch").unwrap();
    assert_eq!(ctx.event, Event::Action("memory-report".into()));
    assert_eq!(ctx.relation_id, None);
    let ctx = JujuContext::from_env(
        &w.env(&On::hook("config-changed").abort_after("rendered")),
        "dispatch",
    )
    .unwrap();
    assert_eq!(ctx.event, Event::ConfigChanged);
    assert_eq!(ctx.abort_after.as_deref(), Some("rendered"));
    assert_eq!(ctx.path, Some(w.root.join("usr/bin").display().to_string()));
}

#[test]
fn config_config_yaml_does_not_declare_or_of_the_wrong_type_is_refused() {
    let mut w = World::new("config-check");
    w.set("prot", 1338);
    refused(
        &w,
        "config-changed",
        "config.yaml declares no option \"prot\"",
    );
    w.unset("prot");
    for (option, value) in [
        ("port", json!("1338")),
        ("port", json!(1.5)),
        ("app-id", json!(5)),
        ("allow-client-class-creation", json!("yes")),
    ] {
        w.set(option, value);
        refused(&w, "config-changed", &format!("config {option} is of type"));
        w.unset(option);
    }
}

#[test]
fn relations_metadata_yaml_does_not_declare_are_refused() {
    let mut w = World::new("endpoint-check");
    w.relate_as("db", "mongodb", "mongodb");
    refused(
        &w,
        "config-changed",
        "metadata.yaml declares no endpoint \"db\"",
    );

    let mut w = World::new("interface-check");
    w.relate_as("website", "haproxy", "haproxy-route");
    refused(
        &w,
        "config-changed",
        "haproxy offers interface haproxy-route, endpoint website takes http",
    );

    let w = World::new("hook-endpoint-check");
    refused(
        &w,
        On::relation("db-relation-changed", "db:0"),
        "declares no endpoint \"db\"",
    );
}

#[test]
fn a_peer_relation_off_the_peers_endpoint_or_with_another_application_is_refused() {
    let mut w = World::new("peer-endpoint");
    w.relations.insert(
        "mongodb:7".into(),
        Rel {
            endpoint: "mongodb".into(),
            remote_app: "parse-server".into(),
            peer: true,
            ..Default::default()
        },
    );
    refused(
        &w,
        "config-changed",
        "a peer relation on \"mongodb\", which is not a peers endpoint",
    );

    let mut w = World::new("peers-as-regular");
    w.relate_as("parse-peers", "parse-server", "parse-server-peers");
    refused(&w, "config-changed", "\"parse-peers\" is a peers endpoint");

    let mut w = World::new("peer-other-app");
    let id = w.peer_with(&[]);
    w.relations.get_mut(&id).unwrap().remote_app = "other".into();
    refused(
        &w,
        "config-changed",
        "a peer relation is with this application",
    );

    let mut w = World::new("two-peers");
    w.peer_with(&[]);
    w.peer_with(&[]);
    refused(&w, "config-changed", "two relations on the peers endpoint");

    let mut w = World::new("own-peer");
    w.peer_with(&["parse-server/0"]);
    refused(&w, "config-changed", "this unit is not its own peer");

    let mut w = World::new("self-regular");
    w.relate_as("website", "parse-server", "http");
    refused(
        &w,
        "config-changed",
        "a relation with its own application is a peer relation",
    );
}

#[test]
fn units_that_are_not_the_remote_applications_are_refused() {
    let mut w = World::new("unit-names");
    let id = w.relate_mongodb();
    w.remote_set(&id, "postgresql/0", &[]);
    refused(
        &w,
        "config-changed",
        "postgresql/0 is not a unit of mongodb",
    );
}

#[test]
fn a_relation_hook_must_name_a_relation_of_the_world_on_its_endpoint() {
    let (w, db, peers) = related("relation-hook");
    refused(
        &w,
        "mongodb-relation-changed",
        "needs the relation it is about",
    );
    refused(
        &w,
        On::relation("mongodb-relation-changed", "mongodb:99"),
        "relation mongodb:99 is not in the world",
    );
    refused(
        &w,
        On::relation("website-relation-changed", &db),
        "is on endpoint mongodb, not website",
    );
    refused(
        &w,
        On::relation("parse-peers-relation-changed", &db),
        "is on endpoint mongodb",
    );
    refused(
        &w,
        On::relation("mongodb-relation-changed", &db).unit("mongodb/3"),
        "mongodb/3 is not a unit of relation",
    );
    refused(
        &w,
        On::relation("mongodb-relation-joined", &db),
        "without the unit that joined",
    );
    refused(
        &w,
        On::relation("mongodb-relation-broken", &db).unit("mongodb/0"),
        "names no remote unit",
    );
    refused(
        &w,
        On::relation("mongodb-relation-created", &db).unit("mongodb/0"),
        "names no remote unit",
    );
    refused(
        &w,
        On::relation("parse-peers-relation-changed", &peers).departing("parse-server/1"),
        "only -relation-departed has a departing unit",
    );
}

#[test]
fn a_departed_hook_needs_its_departing_unit_gone_from_the_relation() {
    let (w, _, peers) = related("departed");
    refused(
        &w,
        On::relation("parse-peers-relation-departed", &peers).unit("parse-server/2"),
        "without a departing unit",
    );
    refused(
        &w,
        On::relation("parse-peers-relation-departed", &peers).departing("parse-server/2"),
        "without the remote unit",
    );
    refused(
        &w,
        On::relation("parse-peers-relation-departed", &peers)
            .unit("parse-server/1")
            .departing("parse-server/1"),
        "parse-server/1 is still in relation",
    );
    refused(
        &w,
        On::relation("parse-peers-relation-departed", &peers)
            .unit("parse-server/2")
            .departing("parse-server/3"),
        "neither the remote unit",
    );
}

#[test]
fn hooks_and_actions_juju_does_not_have_are_refused() {
    let (w, db, _) = related("names");
    refused(&w, "configure", "Juju has no hook named \"configure\"");
    refused(&w, "data-storage-attached", "declares no storage \"data\"");
    refused(
        &w,
        On::action("get-admin-password"),
        "actions.yaml declares no action",
    );
    refused(
        &w,
        On::relation("config-changed", &db),
        "config-changed is not a relation hook",
    );
    refused(
        &w,
        On::hook("update-status").unit("mongodb/0"),
        "is not a relation hook",
    );
}

#[test]
fn leadership_hooks_run_on_the_side_juju_runs_them() {
    let mut w = World::new("leadership");
    refused(&w, "leader-settings-changed", "runs only on non-leaders");
    w.leader = false;
    refused(
        &w,
        "leader-elected",
        "runs only on the unit that was elected",
    );
}

#[test]
fn secret_hooks_need_a_secret_on_the_right_side() {
    let mut w = World::new("secrets");
    let granted = w.grant_secret(&[("password", "pw")]);
    w.secrets.insert(
        "secret:own9".into(),
        Secret {
            label: Some("master-key".into()),
            content: [("master-key".to_owned(), "k".repeat(64))].into(),
            owned: true,
            newer: None,
        },
    );
    refused(&w, "secret-changed", "needs the secret it is about");
    refused(
        &w,
        On::secret("secret-changed", "secret:nope"),
        "secret:nope is not in the world",
    );
    refused(
        &w,
        On::secret("secret-changed", "secret:own9"),
        "Juju sends it to observers only",
    );
    refused(
        &w,
        On::secret("secret-rotate", &granted),
        "Juju sends it to the owner only",
    );
    accepted(&w, On::secret("secret-remove", "secret:own9"));
    refused(
        &w,
        On::secret("config-changed", &granted),
        "is not a secret hook",
    );
}

#[test]
fn between_hooks_only_the_unit_changes_what_it_wrote() {
    // This unit's own databag and its ports.
    let w = crate::harness::serving("between-own");
    let id = w.relations.keys().next().unwrap().clone();
    let mut w = w;
    w.relations
        .get_mut(&id)
        .unwrap()
        .local
        .insert("x".into(), "y".into());
    refused(
        &w,
        "update-status",
        &format!("this unit's own databag in {id} changed between hooks"),
    );

    let mut w = crate::harness::serving("between-ports");
    w.ports.clear();
    refused(
        &w,
        "update-status",
        "the opened ports changed between hooks",
    );

    // What the leader wrote, while this unit stays the leader; another leader may change it.
    let mut w = World::new("between-leader");
    w.peer_with(&["parse-server/1"]);
    w.relate_mongodb();
    let mut w = hook(w, "config-changed");
    w.leader_set(&[("restart-grant", "parse-server/1")]);
    refused(
        &w,
        "update-status",
        "changed between hooks while this unit led",
    );
    w.leader = false;
    accepted(&w, "update-status");

    let mut w = crate::harness::serving("between-secrets");
    w.secrets.clear();
    refused(
        &w,
        "update-status",
        "the application's own secrets changed between hooks",
    );
    w.leader = false;
    accepted(&w, "update-status");
}

#[test]
#[should_panic(
    expected = "inconsistent scenario for mongodb-relation-changed: mongodb-relation-changed needs the relation it is about"
)]
fn run_refuses_an_inconsistent_scenario_before_the_hook() {
    let mut w = World::new("run-refuses");
    w.relate_mongodb();
    let _ = run(w, "mongodb-relation-changed");
}
