//! The ISPyB session sync against a real MariaDB (`mariadbd`, started per test on a loopback
//! port with a throwaway data directory and ISPyB's tables) and, for gids and staff, a real
//! OpenLDAP server (`slapd`, as in the LDAP tests). A test whose server is missing says so
//! and passes without running: tests/run.sh installs mariadb-server and slapd.
//!
//! The test writing to a cluster is at the end, ignored unless a cluster is given with
//! `HOMESTEAD_TEST_KUBECONFIG`.

#[path = "support/cluster.rs"]
mod cluster_support;
#[path = "support/mariadb.rs"]
mod mariadb;
#[path = "support/slapd.rs"]
mod slapd;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use mariadb::{MariaDb, Visit, add_person, add_visit, generate};
use mysql_async::prelude::Queryable;
use slapd::{Options, Slapd, posix_group};

use homestead::sources::ispyb::desired_sessions;
use homestead::sources::ispyb::sync::Desired;
use homestead_core::config::{Config, GidFrom, SessionSourceConfig};
use homestead_core::resources::Session;
use homestead_core::sources::ispyb::{ANNOTATION_SESSION_ID, Ispyb, SOURCE_ISPYB, keep_held};
use homestead_core::sources::plan;

fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `db.source()` with gids from a column of a replaced sessions query (no LDAP needed).
fn gids_by_column(db: &MariaDb) -> SessionSourceConfig {
    let mut by_column = db.source();
    by_column.gid_from = GidFrom::Column;
    by_column.ispyb.queries.sessions = Some(format!(
        "SELECT q.*, 100000 + q.sessionId AS gid FROM ({}) q",
        homestead_core::config::BUILT_IN_SESSIONS_QUERY
    ));
    by_column
}

/// A configuration with `source` and, when given, the directory of `slapd`.
fn config(source: SessionSourceConfig, slapd: Option<&Slapd>) -> Config {
    Config {
        ldap: slapd.map(Slapd::config),
        session_source: Some(source),
        ..Config::default()
    }
}

async fn read_desired(config: &Config, users: Option<&HashSet<String>>) -> Desired {
    let source = config.session_source.as_ref().expect("sessionSource");
    desired_sessions(config, source, users)
        .await
        .expect("the sync reads MariaDB")
}

fn names(sessions: &[Session]) -> Vec<&str> {
    sessions
        .iter()
        .map(|s| s.metadata.name.as_deref().unwrap_or(""))
        .collect()
}

fn session<'a>(desired: &'a Desired, name: &str) -> &'a Session {
    desired
        .mapped
        .sessions
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no Session {name} in {:?}", names(&desired.mapped.sessions)))
}

fn users(names: &[&str]) -> HashSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// A slapd holding posixGroups named after `visits` (gids 150001, ...) plus `extra` LDIF.
fn directory(visits: &[&str], extra: &str) -> Slapd {
    let mut ldif: String = visits
        .iter()
        .enumerate()
        .map(|(i, v)| posix_group(v, 150_001 + i as u32, &[]))
        .collect();
    ldif.push_str(extra);
    Slapd::start(Options::default(), &ldif)
}

#[tokio::test]
async fn visits_become_sessions_with_people_ldap_gids_and_data_directories() {
    init();
    let Some(db) = MariaDb::start() else { return };
    let mut conn = db.with_schema().await;
    let people = ["mrg27357", "enu43627", "iat69393"];
    let id = add_visit(
        &mut conn,
        &Visit {
            people: &people,
            ..Visit::now("cm", "37235", 2, "i03")
        },
    )
    .await;
    add_visit(
        &mut conn,
        &Visit {
            people: &["enu43627"],
            ..Visit::now("mx", "1234", 1, "i04")
        },
    )
    .await;
    let slapd = Slapd::start(
        Options::default(),
        &[
            posix_group("cm37235-2", 159_620, &[]),
            posix_group("mx1234-1", 160_001, &[]),
        ]
        .concat(),
    );
    let desired = read_desired(&config(db.source(), Some(&slapd)), None).await;
    assert_eq!(names(&desired.mapped.sessions), ["cm37235-2", "mx1234-1"]);
    let cm = session(&desired, "cm37235-2");
    assert_eq!(cm.spec.proposal_code, "cm");
    assert_eq!((cm.spec.proposal_number, cm.spec.visit), (37235, 2));
    assert_eq!(cm.spec.instrument, "i03");
    assert_eq!(cm.spec.gid, 159_620);
    assert_eq!(cm.spec.members, ["enu43627", "iat69393", "mrg27357"]);
    let year = &cm.spec.start_date[..4];
    assert_eq!(
        cm.spec.data_directory,
        format!("/dls/i03/data/{year}/cm37235-2/")
    );
    assert!(cm.spec.start_date < cm.spec.end_date, "{:?}", cm.spec);
    assert_eq!(cm.spec.start_date.len(), "2024-03-15 09:00:00".len());
    assert!(!cm.spec.ended);
    assert_eq!(
        cm.metadata.labels.as_ref().unwrap()["homestead.dev/source"],
        SOURCE_ISPYB
    );
    assert_eq!(
        cm.metadata.annotations.as_ref().unwrap()[ANNOTATION_SESSION_ID],
        id.to_string()
    );
    assert_eq!(session(&desired, "mx1234-1").spec.gid, 160_001);
    assert!(desired.warnings().is_empty(), "{:?}", desired.warnings());
}

#[tokio::test]
async fn the_window_decides_which_visits_are_synced() {
    init();
    let Some(db) = MariaDb::start() else { return };
    let mut conn = db.with_schema().await;
    let visits = [
        // (number, start, end)
        ("1", "NOW() - INTERVAL 60 DAY", "NOW() - INTERVAL 40 DAY"), // ended long ago
        ("2", "NOW() - INTERVAL 20 DAY", "NOW() - INTERVAL 10 DAY"), // ended recently
        ("3", "NOW() - INTERVAL 1 DAY", "NOW() + INTERVAL 1 DAY"),   // running
        ("4", "NOW() + INTERVAL 5 DAY", "NOW() + INTERVAL 6 DAY"),   // starts soon
        ("5", "NOW() + INTERVAL 10 DAY", "NOW() + INTERVAL 11 DAY"), // starts later
        ("6", "NOW() - INTERVAL 90 DAY", "NOW() + INTERVAL 90 DAY"), // spans it all
    ];
    for (number, start, end) in visits {
        add_visit(
            &mut conn,
            &Visit {
                start,
                end,
                ..Visit::now("cm", number, 1, "i03")
            },
        )
        .await;
    }
    let slapd = directory(&["cm1-1", "cm2-1", "cm3-1", "cm4-1", "cm5-1", "cm6-1"], "");

    // The default window: [now - 30d, now + 7d]. The built-in query already leaves out
    // what cannot overlap it, so only the rows that do are read.
    let desired = read_desired(&config(db.source(), Some(&slapd)), None).await;
    assert_eq!(
        names(&desired.mapped.sessions),
        ["cm2-1", "cm3-1", "cm4-1", "cm6-1"]
    );
    assert_eq!(desired.mapped.rows_read, 4);

    let mut narrow = db.source();
    narrow.ispyb.window.after = Duration::from_secs(5 * 86_400);
    narrow.ispyb.window.before = Duration::from_secs(12 * 86_400);
    let desired = read_desired(&config(narrow, Some(&slapd)), None).await;
    assert_eq!(
        names(&desired.mapped.sessions),
        ["cm3-1", "cm4-1", "cm5-1", "cm6-1"]
    );

    // A replaced query that ignores the window: the mapping applies it all the same.
    let mut everything = db.source();
    everything.ispyb.queries.sessions = Some(
        "SELECT bs.sessionId, p.proposalCode, p.proposalNumber, bs.visit_number AS visit, \
         bs.beamLineName AS instrument, bs.startDate, bs.endDate \
         FROM BLSession bs JOIN Proposal p USING (proposalId)"
            .into(),
    );
    let desired = read_desired(&config(everything, Some(&slapd)), None).await;
    assert_eq!(desired.mapped.rows_read, 6);
    assert_eq!(desired.mapped.out_of_window, 2);
    assert_eq!(
        names(&desired.mapped.sessions),
        ["cm2-1", "cm3-1", "cm4-1", "cm6-1"]
    );
}

#[tokio::test]
async fn the_instrument_filter_keeps_only_those_instruments() {
    init();
    let Some(db) = MariaDb::start() else { return };
    let mut conn = db.with_schema().await;
    for (number, instrument) in [("1", "i03"), ("2", "i04"), ("3", "b21")] {
        add_visit(&mut conn, &Visit::now("cm", number, 1, instrument)).await;
    }
    let slapd = directory(&["cm1-1", "cm2-1", "cm3-1"], "");
    let mut filtered = db.source();
    filtered.ispyb.instruments = vec!["i03".into(), "b21".into()];
    let desired = read_desired(&config(filtered, Some(&slapd)), None).await;
    assert_eq!(names(&desired.mapped.sessions), ["cm1-1", "cm3-1"]);
    assert_eq!(desired.mapped.other_instruments, 1);
    assert!(desired.warnings().is_empty(), "{:?}", desired.warnings());
}

#[tokio::test]
async fn staff_groups_join_every_session_on_their_instrument() {
    init();
    let Some(db) = MariaDb::start() else { return };
    let mut conn = db.with_schema().await;
    add_visit(
        &mut conn,
        &Visit {
            people: &["ada"],
            ..Visit::now("cm", "1", 1, "i03")
        },
    )
    .await;
    add_visit(&mut conn, &Visit::now("cm", "2", 1, "i03")).await;
    add_visit(
        &mut conn,
        &Visit {
            people: &["bob"],
            ..Visit::now("cm", "3", 1, "i04")
        },
    )
    .await;
    let slapd = directory(
        &["cm1-1", "cm2-1", "cm3-1"],
        &[
            posix_group("i03-staff", 9000, &["stf1", "stf2", "ada"]),
            posix_group("i04-staff", 9001, &["stf3"]),
        ]
        .concat(),
    );
    let mut with_staff = db.source();
    with_staff.ispyb.staff = BTreeMap::from([
        ("i03".to_owned(), vec!["i03-staff".to_owned()]),
        ("i24".to_owned(), vec!["i24-staff".to_owned()]),
    ]);
    let known = users(&["ada", "bob", "stf1", "stf3"]);
    let desired = read_desired(&config(with_staff, Some(&slapd)), Some(&known)).await;
    assert_eq!(session(&desired, "cm1-1").spec.members, ["ada", "stf1"]);
    assert_eq!(session(&desired, "cm2-1").spec.members, ["ada", "stf1"]);
    // i04 has no staff configured: stf3 is in no session.
    assert_eq!(session(&desired, "cm3-1").spec.members, ["bob"]);
    assert_eq!(
        desired.warnings(),
        ["skipped member stf2 of staff group i03-staff (every i03 visit): maps to no User"]
    );
}

#[tokio::test]
async fn each_kind_of_bad_row_is_skipped_with_a_warning_and_the_rest_sync() {
    init();
    let Some(db) = MariaDb::start() else { return };
    let mut conn = db.with_schema().await;
    let good = add_visit(
        &mut conn,
        &Visit {
            people: &["ada", "ghost"],
            ..Visit::now("cm", "1", 1, "i03")
        },
    )
    .await;
    let no_code = add_visit(
        &mut conn,
        &Visit {
            code: None,
            ..Visit::now("cm", "2", 1, "i03")
        },
    )
    .await;
    let empty_code = add_visit(&mut conn, &Visit::now("", "3", 1, "i03")).await;
    let visit_zero = add_visit(&mut conn, &Visit::now("cm", "4", 0, "i03")).await;
    let no_start = add_visit(
        &mut conn,
        &Visit {
            start: "NULL",
            ..Visit::now("cm", "5", 1, "i03")
        },
    )
    .await;
    let no_end = add_visit(
        &mut conn,
        &Visit {
            end: "NULL",
            ..Visit::now("cm", "6", 1, "i03")
        },
    )
    .await;
    let no_gid = add_visit(&mut conn, &Visit::now("cm", "7", 1, "i03")).await;
    let bad_number = add_visit(&mut conn, &Visit::now("cm", "7a", 1, "i03")).await;
    let slapd = directory(&["cm1-1", "cm2-1", "cm3-1", "cm4-1", "cm5-1", "cm6-1"], "");
    let known = users(&["ada"]);
    let desired = read_desired(&config(db.source(), Some(&slapd)), Some(&known)).await;

    assert_eq!(names(&desired.mapped.sessions), ["cm1-1"]);
    assert_eq!(session(&desired, "cm1-1").spec.members, ["ada"]);
    let warnings = desired.warnings();
    for want in [
        format!("skipped visit sessionId={no_code}: proposalCode is NULL"),
        format!("skipped visit sessionId={empty_code}: proposalCode is empty"),
        format!("skipped visit sessionId={visit_zero}: visit 0 is out of range (at least 1)"),
        format!("skipped visit sessionId={no_start} (cm5-1): startDate is NULL"),
        format!("skipped visit sessionId={no_end} (cm6-1): endDate is NULL"),
        format!(
            "skipped visit sessionId={no_gid} (cm7-1): no posixGroup named \"cm7-1\" gives the \
             visit its gid"
        ),
        format!("skipped visit sessionId={bad_number}: proposalNumber \"7a\" is not a number"),
        "skipped member ghost of visit cm1-1: maps to no User".to_owned(),
    ] {
        assert!(
            warnings.contains(&want),
            "missing {want:?} in {warnings:#?}"
        );
    }
    assert_eq!(warnings.len(), 8, "{warnings:#?}");
    assert!(
        !desired.mapped.held_ids.contains(&good.to_string()),
        "the good visit is not held"
    );
    assert!(desired.mapped.held_names.contains("cm5-1"));
}

#[tokio::test]
async fn a_person_removed_from_a_visit_or_a_visit_removed_updates_and_ends_sessions() {
    init();
    let Some(db) = MariaDb::start() else { return };
    let mut conn = db.with_schema().await;
    let first = add_visit(
        &mut conn,
        &Visit {
            people: &["ada", "bob", "carol"],
            ..Visit::now("cm", "1", 1, "i03")
        },
    )
    .await;
    let second = add_visit(
        &mut conn,
        &Visit {
            people: &["ada"],
            ..Visit::now("cm", "2", 1, "i03")
        },
    )
    .await;
    let slapd = directory(&["cm1-1", "cm2-1"], "");
    let config = config(db.source(), Some(&slapd));
    // The cluster holds what the first sync applied.
    let existing = read_desired(&config, None).await.mapped.sessions;
    assert!(plan::<Ispyb>(&existing, &existing).is_empty());

    // bob leaves the first visit; the second visit is cancelled (its row deleted); dave
    // joins the first visit.
    conn.exec_drop(
        "DELETE shp FROM Session_has_Person shp JOIN Person p USING (personId) \
         WHERE shp.sessionId = ? AND p.login = 'bob'",
        (first,),
    )
    .await
    .unwrap();
    conn.exec_drop("DELETE FROM BLSession WHERE sessionId = ?", (second,))
        .await
        .unwrap();
    add_person(&mut conn, first, "dave").await;

    let after = read_desired(&config, None).await;
    let mut plan = plan::<Ispyb>(&after.mapped.sessions, &existing);
    assert!(keep_held(&mut plan, &after.mapped).is_empty());
    assert_eq!(names(&plan.update), ["cm1-1"]);
    assert_eq!(plan.update[0].spec.members, ["ada", "carol", "dave"]);
    // Ended, not deleted: its fields are kept, ended is set.
    assert_eq!(names(&plan.retire), ["cm2-1"]);
    assert!(plan.retire[0].spec.ended);
    assert_eq!(plan.retire[0].spec.members, ["ada"]);
    assert!(plan.create.is_empty());
}

#[tokio::test]
async fn a_database_that_is_down_is_an_error_and_nothing_is_printed() {
    init();
    let Some(mut db) = MariaDb::start() else {
        return;
    };
    let config = config(gids_by_column(&db), None);
    let path = write_config(&db, &config);
    db.stop();

    let source = config.session_source.as_ref().unwrap();
    let err = desired_sessions(&config, source, None).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains(&format!("connecting to {}", db.reader_url())),
        "{text}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_homestead"))
        .args(["session-sync", "--once", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "nothing is printed when the database is down"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("connecting to mysql://reader@"), "{stderr}");
}

#[tokio::test]
async fn the_periodic_task_retries_a_database_that_is_down_with_backoff() {
    init();
    use homestead::sources::SyncMetrics;
    use homestead::sources::ispyb::{METRICS, run_periodic};
    use prometheus_client::registry::Registry;

    let Some(mut db) = MariaDb::start() else {
        return;
    };
    let config = config(db.source(), None);
    db.stop();
    // No API server listens here: had the sync got past the database, listing Users would
    // have failed too; the database error comes first and nothing is attempted.
    let client =
        kube::Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap())).unwrap();
    let mut registry = Registry::default();
    let metrics = SyncMetrics::register(&mut registry, METRICS);
    // First attempt at once, the retry 5 s later, the next one not before 15 s.
    run_periodic(
        client,
        std::sync::Arc::new(config),
        Duration::from_secs(60),
        metrics,
        tokio::time::sleep(Duration::from_secs(8)),
    )
    .await;
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("homestead_ispyb_syncs_total{result=\"failure\"} 2\n"),
        "{text}"
    );
    assert!(!text.contains("result=\"success\""), "{text}");
}

#[tokio::test]
async fn ten_thousand_visits_with_fifty_thousand_people_rows_are_read_and_mapped() {
    init();
    let Some(db) = MariaDb::start() else { return };
    let mut conn = db.with_schema().await;
    generate(&mut conn, 10_000, 5).await;
    let desired = read_desired(&config(gids_by_column(&db), None), None).await;
    assert_eq!(desired.mapped.rows_read, 10_000);
    assert_eq!(desired.mapped.sessions.len(), 10_000);
    assert!(desired.warnings().is_empty());
    assert!(
        desired
            .mapped
            .sessions
            .iter()
            .all(|s| s.spec.members.len() == 5 && s.spec.gid > 100_000)
    );
    let first = session(&desired, "cm20001-1");
    assert_eq!(first.spec.gid, 100_001);
    assert_eq!(first.spec.instrument, "i01");
}

#[tokio::test]
async fn replaced_queries_must_return_the_named_columns() {
    init();
    let Some(db) = MariaDb::start() else { return };
    let _conn = db.with_schema().await;
    let mut wrong = db.source();
    wrong.ispyb.queries.members = Some("SELECT sessionId, personId FROM Session_has_Person".into());
    let config = config(wrong, None);
    let source = config.session_source.as_ref().unwrap();
    let err = desired_sessions(&config, source, None).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains(
            "sessionSource.ispyb.queries.members returns no column named login \
             (it returns: sessionId, personId)"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn tls_is_used_when_the_url_asks_and_the_server_is_verified() {
    init();
    let scratch = tempfile::tempdir().unwrap();
    let certs = homestead_certs(scratch.path());
    let Some(db) = MariaDb::start_tls(&certs) else {
        return;
    };
    let mut conn = db.with_schema().await;
    add_visit(&mut conn, &Visit::now("cm", "1", 1, "i03")).await;
    // The reader may only connect over TLS: a plain connection is refused.
    conn.query_drop("ALTER USER 'reader'@'%' REQUIRE SSL")
        .await
        .unwrap();

    let mut plain = gids_by_column(&db);
    let err = desired_sessions(&config(plain.clone(), None), &plain, None)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("connecting to"), "{err:#}");

    // TLS verified against the CA that signed the server's certificate.
    plain.ispyb.url = format!("{}?require_ssl=true", db.reader_url());
    plain.ispyb.ca_file = Some(certs.join("ca.crt").display().to_string());
    let desired = read_desired(&config(plain.clone(), None), None).await;
    assert_eq!(names(&desired.mapped.sessions), ["cm1-1"]);

    // The built-in roots do not know this CA: the certificate is really checked.
    plain.ispyb.ca_file = None;
    let err = desired_sessions(&config(plain.clone(), None), &plain, None)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("connecting to"), "{err:#}");
}

/// A CA and a serving certificate for localhost and 127.0.0.1 made by `homestead certs`.
fn homestead_certs(dir: &std::path::Path) -> PathBuf {
    let out = dir.join("certs");
    let run = Command::new(env!("CARGO_BIN_EXE_homestead"))
        .args(["certs", "--ip", "127.0.0.1", "--dns", "localhost", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

/// Writes the `ldap` and `sessionSource` sections of `config` as a configuration file.
fn write_config(db: &MariaDb, config: &Config) -> PathBuf {
    let source = config.session_source.as_ref().expect("sessionSource");
    db.write_config(config.ldap.as_ref(), source)
}

#[tokio::test]
async fn the_command_prints_sessions_as_yaml_and_warns_about_bad_rows() {
    init();
    let Some(db) = MariaDb::start() else { return };
    let mut conn = db.with_schema().await;
    add_visit(
        &mut conn,
        &Visit {
            people: &["ada", "bob"],
            ..Visit::now("cm", "37235", 2, "i03")
        },
    )
    .await;
    let bad = add_visit(&mut conn, &Visit::now("cm", "1", 0, "i03")).await;
    let slapd = directory(&["cm37235-2"], "");
    let path = write_config(&db, &config(db.source(), Some(&slapd)));
    let out = Command::new(env!("CARGO_BIN_EXE_homestead"))
        .args(["session-sync", "--once", "--output", "yaml", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let documents: Vec<&str> = stdout
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .collect();
    let sessions: Vec<Session> = documents
        .iter()
        .map(|d| serde_saphyr::from_str(d).unwrap())
        .collect();
    assert_eq!(names(&sessions), ["cm37235-2"]);
    assert_eq!(sessions[0].spec.members, ["ada", "bob"]);
    assert_eq!(sessions[0].spec.gid, 150_001);
    assert!(stdout.contains("kind: Session"), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "warning: skipped visit sessionId={bad}: visit 0 is out of range"
        )),
        "{stderr}"
    );
}

mod cluster {
    //! Against a real cluster with the CRDs installed (`HOMESTEAD_TEST_KUBECONFIG`). Use a
    //! throwaway cluster: the sync ends every ISPyB-labelled Session its test database does
    //! not hold, as it would in production.

    use super::cluster_support as support;
    use super::*;
    use homestead::sources::ispyb::sync_once;
    use homestead_core::resources::{SessionSpec, User, UserSpec};
    use kube::api::{Api, DeleteParams, PostParams};

    /// Deletes the objects and waits until they are gone. The controller of `serve` adds
    /// finalizers and may be gone by now, so they are removed first.
    async fn remove<K>(api: &Api<K>, names: &[&str])
    where
        K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let unfinalized = kube::api::Patch::Merge(serde_json::json!({
            "metadata": {"finalizers": null}
        }));
        for name in names {
            let _ = api
                .patch(name, &kube::api::PatchParams::default(), &unfinalized)
                .await;
            let _ = api.delete(name, &DeleteParams::default()).await;
        }
        for name in names {
            support::eventually("the object to go", Duration::from_secs(30), || async move {
                matches!(api.get_opt(name).await, Ok(None)).then_some(())
            })
            .await;
        }
    }

    async fn cleanup(sessions: &Api<Session>, users: &Api<User>) {
        remove(
            sessions,
            &["ispt1-1", "ispt2-1", "ispt3-1", "ispv1-1", "ispv2-1"],
        )
        .await;
        remove(users, &["ispt-ada", "ispt-bob"]).await;
    }

    fn version(session: &Session) -> Option<String> {
        session.metadata.resource_version.clone()
    }

    /// One test, two parts in turn: every ISPyB sync owns every ISPyB-labelled Session of
    /// the cluster, so two syncs over two databases running at once would end each
    /// other's Sessions (as two sites pointed at one cluster would).
    #[tokio::test]
    #[ignore = "needs a cluster"]
    async fn session_sync_and_the_serve_leader_keep_sessions_from_ispyb() {
        init();
        let cluster = support::Cluster::exclusive().await;
        session_sync_applies_sessions_updates_members_and_ends_visits_that_left().await;
        the_leader_of_serve_syncs_sessions_every_interval(&cluster).await;
    }

    async fn session_sync_applies_sessions_updates_members_and_ends_visits_that_left() {
        let Some(mut db) = MariaDb::start() else {
            return;
        };
        let client = support::admin_client().await;
        let sessions: Api<Session> = Api::all(client.clone());
        let users: Api<User> = Api::all(client.clone());
        cleanup(&sessions, &users).await;
        for (name, uid) in [("ispt-ada", 63001), ("ispt-bob", 63002)] {
            let user = User::new(
                name,
                UserSpec {
                    username: name.into(),
                    uid,
                    gid: uid,
                    ..UserSpec::default()
                },
            );
            users.create(&PostParams::default(), &user).await.unwrap();
        }
        // A Session written by hand with a name the database also has.
        let by_hand = Session::new(
            "ispt3-1",
            SessionSpec {
                proposal_code: "ispt".into(),
                proposal_number: 3,
                visit: 1,
                instrument: "i03".into(),
                data_directory: "/dls/i03/data/2024/ispt3-1/".into(),
                gid: 7,
                ..SessionSpec::default()
            },
        );
        sessions
            .create(&PostParams::default(), &by_hand)
            .await
            .unwrap();

        let mut conn = db.with_schema().await;
        let first = add_visit(
            &mut conn,
            &Visit {
                people: &["ispt-ada", "ispt-bob", "nobody"],
                ..Visit::now("ispt", "1", 1, "i03")
            },
        )
        .await;
        let second = add_visit(
            &mut conn,
            &Visit {
                people: &["ispt-ada"],
                ..Visit::now("ispt", "2", 1, "i03")
            },
        )
        .await;
        add_visit(&mut conn, &Visit::now("ispt", "3", 1, "i03")).await;
        let slapd = directory(&["ispt1-1", "ispt2-1", "ispt3-1"], "");
        let config = config(db.source(), Some(&slapd));

        // The first sync is the command, as an administrator runs it.
        let out = Command::new(env!("CARGO_BIN_EXE_homestead"))
            .args(["session-sync", "--once", "--config"])
            .arg(write_config(&db, &config))
            .arg("--kubeconfig")
            .arg(support::kubeconfig_path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            stdout.trim(),
            "created 2, updated 0, ended 0, unchanged 0, skipped 1, failed 0"
        );
        assert!(
            stderr.contains("warning: skipped member nobody of visit ispt1-1: maps to no User"),
            "{stderr}"
        );
        assert!(
            stderr.contains(
                "warning: Session ispt3-1: a Session named \"ispt3-1\" exists without the label"
            ),
            "{stderr}"
        );
        let one = sessions.get("ispt1-1").await.unwrap();
        // "nobody" has no User: left out of the members.
        assert_eq!(one.spec.members, ["ispt-ada", "ispt-bob"]);
        assert_eq!(one.spec.gid, 150_001);
        assert_eq!(sessions.get("ispt3-1").await.unwrap().spec.gid, 7);

        // A second sync changes nothing, not even a resourceVersion.
        let again = sync_once(client.clone(), &config).await.unwrap();
        assert_eq!(again.counts.created + again.counts.updated, 0);
        assert_eq!(
            version(&sessions.get("ispt1-1").await.unwrap()),
            version(&one)
        );

        // bob leaves the first visit; the second visit is deleted from the database.
        conn.exec_drop(
            "DELETE shp FROM Session_has_Person shp JOIN Person p USING (personId) \
             WHERE shp.sessionId = ? AND p.login = 'ispt-bob'",
            (first,),
        )
        .await
        .unwrap();
        conn.exec_drop("DELETE FROM BLSession WHERE sessionId = ?", (second,))
            .await
            .unwrap();
        let third = sync_once(client.clone(), &config).await.unwrap();
        assert_eq!(
            (third.counts.updated, third.counts.retired),
            (1, 1),
            "{}",
            third.counts
        );
        assert_eq!(
            sessions.get("ispt1-1").await.unwrap().spec.members,
            ["ispt-ada"]
        );
        let two = sessions.get("ispt2-1").await.unwrap();
        assert!(two.spec.ended, "ended, not deleted");
        assert_eq!(two.spec.members, ["ispt-ada"]);

        // The database goes down: the sync fails and nothing changes.
        let before = version(&sessions.get("ispt1-1").await.unwrap());
        db.stop();
        assert!(sync_once(client.clone(), &config).await.is_err());
        assert_eq!(version(&sessions.get("ispt1-1").await.unwrap()), before);
        cleanup(&sessions, &users).await;
    }

    async fn the_leader_of_serve_syncs_sessions_every_interval(cluster: &support::Cluster) {
        let Some(db) = MariaDb::start() else {
            return;
        };
        let client = support::admin_client().await;
        let sessions: Api<Session> = Api::all(client.clone());
        let users: Api<User> = Api::all(client.clone());
        cleanup(&sessions, &users).await;
        let mut conn = db.with_schema().await;
        add_visit(&mut conn, &Visit::now("ispv", "1", 1, "i03")).await;
        let mut source = gids_by_column(&db);
        source.interval = Duration::from_secs(10);
        let config = db.write_config(None, &source);
        let text = std::fs::read_to_string(&config).expect("config");
        let serve = cluster.serve(support::ServeOptions::config(text)).await;

        // Once leading, the first sync creates the Session.
        support::eventually("the Session of the visit", Duration::from_secs(60), || {
            let sessions = sessions.clone();
            async move { sessions.get_opt("ispv1-1").await.ok().flatten() }
        })
        .await;
        // A visit added later arrives with a later sync, within the interval.
        add_visit(&mut conn, &Visit::now("ispv", "2", 1, "i03")).await;
        support::eventually("the second Session", Duration::from_secs(30), || {
            let sessions = sessions.clone();
            async move { sessions.get_opt("ispv2-1").await.ok().flatten() }
        })
        .await;
        let metrics = serve.metrics().await;
        assert!(
            metrics.contains("homestead_ispyb_syncs_total{result=\"success\"}"),
            "{metrics}"
        );
        drop(serve);
        cleanup(&sessions, &users).await;
    }
}
