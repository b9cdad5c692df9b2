//! The LDAP sync against a real OpenLDAP server (`slapd`), started per test on loopback
//! ports with a throwaway configuration and database. If slapd is missing these tests fail
//! and say to run tests/run.sh, which installs it.
//!
//! Tests writing to a cluster are at the end, ignored unless a cluster is given with
//! `HOMESTEAD_TEST_KUBECONFIG`.

mod support;

use std::process::Command;

use homestead::sources::ldap::desired_users;
use homestead_core::config::LdapAttributes;
use homestead_core::resources::User;
use homestead_core::sources::ldap::{Ldap, Mapped, SkipReason};
use homestead_core::sources::plan;
use ldap3::{LdapConnAsync, Scope};
use support::slapd::{
    ADMIN_DN, ADMIN_PASSWORD, GROUPS, Options, PEOPLE, READER_DN, READER_PASSWORD, Slapd,
    generated, posix_group, posix_user,
};

fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn user<'a>(mapped: &'a Mapped, name: &str) -> &'a User {
    mapped
        .users
        .iter()
        .find(|u| u.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no User {name}"))
}

fn names(users: &[User]) -> Vec<&str> {
    users
        .iter()
        .map(|u| u.metadata.name.as_deref().unwrap_or(""))
        .collect()
}

fn small_directory() -> String {
    [
        posix_user("ada", 1001, 100),
        posix_user("bob", 1002, 100),
        posix_user("Carol.Smith", 1003, 200),
        posix_group("staff", 100, &[]),
        posix_group("physics", 3000, &["ada", "Carol.Smith"]),
        posix_group("beamline-i03", 4000, &["ada", "bob"]),
        posix_group("chemists", 200, &["Carol.Smith"]),
    ]
    .concat()
}

#[tokio::test]
async fn posix_accounts_and_groups_become_users() {
    init();
    let slapd = Slapd::start(Options::default(), &small_directory());
    let mapped = desired_users(&slapd.config())
        .await
        .expect("sync reads slapd");
    assert_eq!(names(&mapped.users), ["ada", "bob", "carol-smith"]);
    let ada = user(&mapped, "ada");
    assert_eq!((ada.spec.uid, ada.spec.gid), (1001, 100));
    assert_eq!(ada.spec.supplemental_groups, [3000, 4000]);
    assert_eq!(user(&mapped, "bob").spec.supplemental_groups, [4000]);
    let carol = user(&mapped, "carol-smith");
    assert_eq!(carol.spec.username, "Carol.Smith");
    // The primary group (200) is not repeated as a supplemental group.
    assert_eq!(carol.spec.supplemental_groups, [3000]);
    assert_eq!(
        carol.metadata.labels.as_ref().unwrap()["homestead.dev/source"],
        "ldap"
    );
    assert_eq!(
        carol.metadata.annotations.as_ref().unwrap()["homestead.dev/ldap-dn"],
        format!("uid=Carol.Smith,{PEOPLE}")
    );
    assert!(mapped.skipped.is_empty(), "{:?}", mapped.skipped);
}

/// Persons and groups with site-specific attribute names (inetOrgPerson + extensibleObject).
fn custom_directory(extra_people: &str) -> String {
    let person = |cn: &str, employee: Option<&str>, department: &str| {
        let mut out = format!(
            "dn: cn={cn},{PEOPLE}\nobjectClass: inetOrgPerson\ncn: {cn}\nsn: {cn}\n\
             departmentNumber: {department}\n"
        );
        if let Some(e) = employee {
            out.push_str(&format!("employeeNumber: {e}\n"));
        }
        out.push('\n');
        out
    };
    let group = |ou: &str, department: &str, members: &[&str]| {
        let mut out = format!(
            "dn: ou={ou},{GROUPS}\nobjectClass: organizationalUnit\nobjectClass: extensibleObject\n\
             ou: {ou}\ndepartmentNumber: {department}\n"
        );
        for m in members {
            out.push_str(&format!("description: {m}\n"));
        }
        out.push('\n');
        out
    };
    [
        person("ada", Some("5001"), "500"),
        person("bob", Some("5002"), "500"),
        group("optics", "700", &["ada"]),
        group("xray", "800", &["ada", "bob"]),
        extra_people.to_owned(),
    ]
    .concat()
}

fn custom_config(slapd: &Slapd) -> homestead_core::config::LdapConfig {
    let mut config = slapd.config();
    config.users.filter = "(objectClass=inetOrgPerson)".into();
    config.groups.filter = "(objectClass=extensibleObject)".into();
    config.attributes = LdapAttributes {
        username: "cn".into(),
        uid: "employeeNumber".into(),
        gid: "departmentNumber".into(),
        group: "ou".into(),
        member: "description".into(),
    };
    config
}

#[tokio::test]
async fn custom_attribute_names_are_mapped() {
    init();
    let slapd = Slapd::start(Options::default(), &custom_directory(""));
    let mapped = desired_users(&custom_config(&slapd)).await.unwrap();
    assert_eq!(names(&mapped.users), ["ada", "bob"]);
    let ada = user(&mapped, "ada");
    assert_eq!((ada.spec.uid, ada.spec.gid), (5001, 500));
    assert_eq!(ada.spec.supplemental_groups, [700, 800]);
    assert_eq!(user(&mapped, "bob").spec.supplemental_groups, [800]);
}

#[tokio::test]
async fn paging_reads_more_entries_than_the_size_limit_allows() {
    init();
    let limit = 1000;
    let slapd = Slapd::start(
        Options {
            size_limit: Some(limit),
            unlimited_paging: true,
            tls: None,
        },
        &generated(2500, 50),
    );

    // Without paging the server stops at its size limit: the limit is real.
    let (conn, mut ldap) = LdapConnAsync::new(&slapd.url).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(READER_DN, READER_PASSWORD)
        .await
        .unwrap()
        .success()
        .unwrap();
    let plain = ldap
        .search(
            PEOPLE,
            Scope::Subtree,
            "(objectClass=posixAccount)",
            vec!["uid"],
        )
        .await
        .unwrap();
    assert_eq!(
        plain.1.rc, 4,
        "expected sizeLimitExceeded, got {:?}",
        plain.1
    );
    assert_eq!(plain.0.len(), limit as usize);

    // With pages of 500 the sync reads all 2,500.
    let mut config = slapd.config();
    config.page_size = 500;
    let mapped = desired_users(&config).await.unwrap();
    assert_eq!(mapped.users.len(), 2500);
    assert!(mapped.skipped.is_empty());
    let first = user(&mapped, "user00001");
    assert_eq!(first.spec.uid, 100_001);
    assert_eq!(first.spec.supplemental_groups.len(), 3);
    assert!(
        mapped
            .users
            .iter()
            .all(|u| u.spec.supplemental_groups.len() == 3)
    );
}

#[tokio::test]
async fn a_size_limit_that_stops_paging_is_an_error_not_a_shorter_directory() {
    init();
    // slapd's default: paged searches stop at the size limit too. Reading 1,000 of 1,500
    // persons must not look like 500 people left (they would be disabled).
    let slapd = Slapd::start(
        Options {
            size_limit: Some(1000),
            ..Options::default()
        },
        &generated(1500, 10),
    );
    let err = desired_users(&slapd.config()).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("stopped after 1000 entries because of its size limit"),
        "{text}"
    );
    assert!(text.contains("size.prtotal=unlimited"), "{text}");
}

/// A CA and a serving certificate for localhost and 127.0.0.1 made by `homestead certs`.
fn homestead_certs(dir: &std::path::Path) -> std::path::PathBuf {
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

#[tokio::test]
async fn start_tls_and_ldaps_verify_the_server_with_the_ca_file() {
    init();
    let scratch = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(
        Options {
            tls: Some(homestead_certs(scratch.path())),
            ..Options::default()
        },
        &small_directory(),
    );
    let ca = slapd.ca_file.clone().unwrap().display().to_string();

    let mut start_tls = slapd.config();
    start_tls.url = slapd.localhost_url.clone();
    start_tls.start_tls = true;
    start_tls.ca_file = Some(ca.clone());
    let mapped = desired_users(&start_tls)
        .await
        .expect("StartTLS with the CA");
    assert_eq!(mapped.users.len(), 3);

    let mut ldaps = slapd.config();
    ldaps.url = slapd.ldaps_url.clone().unwrap();
    ldaps.ca_file = Some(ca);
    let mapped = desired_users(&ldaps).await.expect("ldaps with the CA");
    assert_eq!(mapped.users.len(), 3);

    // The system roots do not know this CA: the certificate is really checked.
    ldaps.ca_file = None;
    let err = desired_users(&ldaps).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("connecting to ldaps://"),
        "{err:#}"
    );

    // Another CA is refused too, over StartTLS as well.
    let other = tempfile::tempdir().unwrap();
    let other_ca = homestead_certs(other.path()).join("ca.crt");
    start_tls.ca_file = Some(other_ca.display().to_string());
    let err = desired_users(&start_tls).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("connecting to ldap://localhost"),
        "{err:#}"
    );
}

#[tokio::test]
async fn bad_posix_entries_are_skipped_and_the_rest_sync() {
    init();
    let ldif = [
        posix_user("ada", 1001, 100),
        posix_user("eve", 1001, 100),      // shares ada's uid
        posix_user("root", 0, 0),          // uid 0
        posix_user("bad@name", 1005, 100), // no object name
        posix_user("bob", 1002, 100),
        // bob again in another branch
        "dn: ou=guests,dc=example,dc=org\nobjectClass: organizationalUnit\nou: guests\n\n"
            .to_owned(),
        "dn: uid=bob,ou=guests,dc=example,dc=org\nobjectClass: account\nobjectClass: posixAccount\n\
         uid: bob\ncn: bob\nuidNumber: 1102\ngidNumber: 100\nhomeDirectory: /home/bob\n\n"
            .to_owned(),
        posix_user("carol", 1003, 100),
    ]
    .concat();
    let slapd = Slapd::start(Options::default(), &ldif);
    let mut config = slapd.config();
    config.users.base = "dc=example,dc=org".into();
    let mapped = desired_users(&config).await.unwrap();
    assert_eq!(names(&mapped.users), ["carol"]);
    let reason = |dn: &str| {
        &mapped
            .skipped
            .iter()
            .find(|s| s.dn == dn)
            .unwrap_or_else(|| panic!("{dn} not skipped: {:?}", mapped.skipped))
            .reason
    };
    assert!(matches!(
        reason(&format!("uid=ada,{PEOPLE}")),
        SkipReason::SharedUid { uid: 1001, .. }
    ));
    assert!(
        reason(&format!("uid=eve,{PEOPLE}"))
            .to_string()
            .contains(&format!("uid=ada,{PEOPLE}"))
    );
    assert!(matches!(
        reason(&format!("uid=root,{PEOPLE}")),
        SkipReason::OutOfRange { .. }
    ));
    assert!(matches!(
        reason(&format!("uid=bad@name,{PEOPLE}")),
        SkipReason::BadName(_)
    ));
    assert!(matches!(
        reason("uid=bob,ou=guests,dc=example,dc=org"),
        SkipReason::DuplicateUsername { .. }
    ));
    assert!(matches!(
        reason(&format!("uid=bob,{PEOPLE}")),
        SkipReason::DuplicateUsername { .. }
    ));
    assert_eq!(mapped.skipped.len(), 6);
}

#[tokio::test]
async fn missing_and_non_numeric_ids_are_skipped_naming_the_dn() {
    init();
    let extra = format!(
        "dn: cn=nouid,{PEOPLE}\nobjectClass: inetOrgPerson\ncn: nouid\nsn: x\ndepartmentNumber: 500\n\n\
         dn: cn=text,{PEOPLE}\nobjectClass: inetOrgPerson\ncn: text\nsn: x\nemployeeNumber: E-17\n\
         departmentNumber: 500\n\n\
         dn: cn=nogid,{PEOPLE}\nobjectClass: inetOrgPerson\ncn: nogid\nsn: x\nemployeeNumber: 5009\n\n"
    );
    let slapd = Slapd::start(Options::default(), &custom_directory(&extra));
    let mapped = desired_users(&custom_config(&slapd)).await.unwrap();
    assert_eq!(names(&mapped.users), ["ada", "bob"]);
    let messages: Vec<String> = mapped.skipped.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            format!("skipped user entry cn=nogid,{PEOPLE}: has no departmentNumber attribute"),
            format!("skipped user entry cn=nouid,{PEOPLE}: has no employeeNumber attribute"),
            format!("skipped user entry cn=text,{PEOPLE}: employeeNumber \"E-17\" is not a number"),
        ]
    );
}

#[tokio::test]
async fn the_command_prints_users_as_yaml_and_warns_about_bad_entries() {
    init();
    let ldif = [small_directory(), posix_user("eve", 1001, 100)].concat();
    let slapd = Slapd::start(Options::default(), &ldif);
    let config = slapd.write_config_file(&slapd.config());
    let out = Command::new(env!("CARGO_BIN_EXE_homestead"))
        .args(["ldap-sync", "--once", "--output", "yaml", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let documents: Vec<&str> = stdout
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .collect();
    assert_eq!(documents.len(), 2, "{stdout}");
    let users: Vec<User> = documents
        .iter()
        .map(|d| serde_saphyr::from_str(d).unwrap())
        .collect();
    assert_eq!(names(&users), ["bob", "carol-smith"]);
    assert_eq!(users[1].spec.supplemental_groups, [3000]);
    assert!(stdout.contains("kind: User"), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "warning: skipped user entry uid=eve,{PEOPLE}: uid 1001"
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_unreachable_directory_is_an_error() {
    init();
    let mut slapd = Slapd::start(Options::default(), &small_directory());
    let config = slapd.config();
    let path = slapd.write_config_file(&config);
    slapd.stop();

    let err = desired_users(&config).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains(&format!("connecting to {}", config.url)),
        "{text}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_homestead"))
        .args(["ldap-sync", "--once", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "nothing is printed when the directory is down"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("connecting to ldap://127.0.0.1:"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_an_error() {
    init();
    let slapd = Slapd::start(Options::default(), &small_directory());
    let config = slapd.config();
    std::fs::write(config.bind_password_file.as_deref().unwrap(), "nope").unwrap();
    let err = desired_users(&config).await.unwrap_err();
    assert!(format!("{err:#}").contains("binding to"), "{err:#}");
}

#[tokio::test]
async fn a_person_removed_from_the_directory_is_disabled_not_deleted() {
    init();
    let slapd = Slapd::start(Options::default(), &small_directory());
    let config = slapd.config();
    let before = desired_users(&config).await.unwrap();
    // The cluster holds what the first sync applied, plus a User made by hand.
    let mut existing = before.users.clone();
    existing.push(User::new(
        "zed",
        homestead_core::resources::UserSpec {
            username: "zed".into(),
            uid: 9000,
            gid: 9000,
            ..Default::default()
        },
    ));
    assert!(plan::<Ldap>(&before.users, &existing).is_empty());

    // bob leaves; ada joins a new group.
    let (conn, mut ldap) = LdapConnAsync::new(&slapd.url).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(ADMIN_DN, ADMIN_PASSWORD)
        .await
        .unwrap()
        .success()
        .unwrap();
    ldap.delete(&format!("uid=bob,{PEOPLE}"))
        .await
        .unwrap()
        .success()
        .unwrap();
    ldap.add(
        &format!("cn=optics,{GROUPS}"),
        vec![
            ("objectClass", ["posixGroup"].into()),
            ("cn", ["optics"].into()),
            ("gidNumber", ["5000"].into()),
            ("memberUid", ["ada"].into()),
        ],
    )
    .await
    .unwrap()
    .success()
    .unwrap();

    let after = desired_users(&config).await.unwrap();
    let plan = plan::<Ldap>(&after.users, &existing);
    assert!(plan.create.is_empty());
    assert_eq!(names(&plan.retire), ["bob"]);
    assert!(plan.retire[0].spec.disabled);
    assert_eq!(plan.retire[0].spec.uid, 1002);
    assert_eq!(names(&plan.update), ["ada"]);
    assert_eq!(plan.update[0].spec.supplemental_groups, [3000, 4000, 5000]);
    assert_eq!(plan.unchanged, 1);
}

#[tokio::test]
async fn only_members_of_limits_the_sync_to_those_groups() {
    init();
    let slapd = Slapd::start(Options::default(), &small_directory());
    let mut config = slapd.config();
    // ada is listed in physics; bob only in beamline-i03; Carol has chemists as primary group.
    config.only_members_of = vec!["physics".into(), "ghost".into()];
    let mapped = desired_users(&config).await.unwrap();
    assert_eq!(names(&mapped.users), ["ada", "carol-smith"]);
    assert_eq!(mapped.not_members, 1);
    assert_eq!(mapped.unknown_groups, ["ghost"]);

    config.only_members_of = vec!["chemists".into()];
    let mapped = desired_users(&config).await.unwrap();
    assert_eq!(names(&mapped.users), ["carol-smith"]);
}

mod cluster {
    //! Against the test cluster (`HOMESTEAD_TEST_KUBECONFIG`, see
    //! `tests/support/cluster.rs`). The sync disables every LDAP-labelled User its test
    //! directory does not hold, as it would in production; no other test makes such Users.

    use super::*;
    use crate::support::cluster::Cluster;
    use homestead::sources::ldap::sync_once;
    use kube::api::{Api, PostParams};

    #[tokio::test]
    #[ignore = "needs a cluster"]
    async fn sync_creates_updates_and_disables_users_and_leaves_others_alone() {
        // No controller runs: nothing acts on these Users but the sync.
        let cluster = Cluster::shared().await;
        let client = cluster.admin.clone();
        let api: Api<User> = Api::all(client.clone());
        let [ada, bob, hand] = ["ldapt-ada", "ldapt-bob", "ldapt-hand"].map(|n| cluster.name(n));
        for name in [&ada, &bob, &hand] {
            cluster.delete_on_drop::<User>(None, name);
        }
        let ldif = [
            posix_user(&ada, 61001, 100),
            posix_user(&bob, 61002, 100),
            posix_user(&hand, 61003, 100),
            posix_group(&cluster.name("ldapt-g"), 62000, &[ada.as_str()]),
        ]
        .concat();
        let by_hand = User::new(
            &hand,
            homestead_core::resources::UserSpec {
                username: hand.clone(),
                uid: 7,
                gid: 7,
                ..Default::default()
            },
        );
        api.create(&PostParams::default(), &by_hand).await.unwrap();

        let slapd = Slapd::start(Options::default(), &ldif);
        let config = slapd.config();
        let first = sync_once(client.clone(), &config).await.unwrap();
        assert_eq!((first.counts.created, first.counts.skipped), (2, 1));
        let ada_user = api.get(&ada).await.unwrap();
        assert_eq!(ada_user.spec.supplemental_groups, [62000]);
        assert_eq!(api.get(&hand).await.unwrap().spec.uid, 7);

        // A second sync changes nothing, not even a resourceVersion.
        let version = ada_user.metadata.resource_version.clone();
        let second = sync_once(client.clone(), &config).await.unwrap();
        assert_eq!(second.counts.created + second.counts.updated, 0);
        assert_eq!(
            api.get(&ada).await.unwrap().metadata.resource_version,
            version
        );

        // `ldap-sync --once --kubeconfig` says the same: the counts on stdout, in the
        // source's words, and why a User was not applied on stderr.
        let out = Command::new(env!("CARGO_BIN_EXE_homestead"))
            .args(["ldap-sync", "--once", "--config"])
            .arg(slapd.write_config_file(&config))
            .arg("--kubeconfig")
            .arg(crate::support::cluster::kubeconfig_path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let counts = stdout.trim();
        assert!(
            counts.starts_with("created 0, updated 0, disabled 0, unchanged ")
                && counts.ends_with(", skipped 1, failed 0"),
            "{stdout}"
        );
        assert!(
            stderr.contains(&format!(
                "warning: User {hand}: a User named {hand:?} exists without the label"
            )),
            "{stderr}"
        );

        // The directory goes down: the sync fails and nothing changes.
        let mut down = config.clone();
        down.url = "ldap://127.0.0.1:1".into();
        assert!(sync_once(client.clone(), &down).await.is_err());
        assert_eq!(
            api.get(&ada).await.unwrap().metadata.resource_version,
            version
        );

        // A search base with no persons in it does not disable everybody.
        let mut empty = config.clone();
        empty.users.base = GROUPS.into();
        let err = sync_once(client.clone(), &empty).await.unwrap_err();
        assert!(
            format!("{err:#}").contains("refusing to disable"),
            "{err:#}"
        );
        assert_eq!(
            api.get(&ada).await.unwrap().metadata.resource_version,
            version
        );

        // bob leaves the directory: disabled, not deleted.
        let (conn, mut ldap) = LdapConnAsync::new(&slapd.url).await.unwrap();
        ldap3::drive!(conn);
        ldap.simple_bind(ADMIN_DN, ADMIN_PASSWORD)
            .await
            .unwrap()
            .success()
            .unwrap();
        ldap.delete(&format!("uid={bob},{PEOPLE}"))
            .await
            .unwrap()
            .success()
            .unwrap();
        let third = sync_once(client.clone(), &config).await.unwrap();
        assert_eq!(third.counts.retired, 1);
        let bob = api.get(&bob).await.unwrap();
        assert!(bob.spec.disabled);
        assert_eq!(bob.spec.uid, 61002);
    }
}

#[tokio::test]
async fn the_periodic_task_retries_a_failing_directory_with_backoff_and_writes_nothing() {
    init();
    use homestead::sources::SyncMetrics;
    use homestead::sources::ldap::{METRICS, run_periodic};
    use prometheus_client::registry::Registry;

    let mut slapd = Slapd::start(Options::default(), &small_directory());
    let config = slapd.config();
    slapd.stop();
    // No API server listens here: had the sync got past the directory, listing Users would
    // have failed too; the directory error comes first and nothing is attempted.
    let kube_config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
    let client = kube::Client::try_from(kube_config).unwrap();
    let mut registry = Registry::default();
    let metrics = SyncMetrics::register(&mut registry, METRICS);

    // First attempt at once, the retry 5 s later, the next one not before 15 s.
    run_periodic(
        client,
        config,
        metrics,
        tokio::time::sleep(std::time::Duration::from_secs(8)),
    )
    .await;

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let failures: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("homestead_ldap_syncs_total{result=\"failure\"} "))
        .unwrap_or_else(|| panic!("no failure count in\n{text}"))
        .parse()
        .unwrap();
    assert_eq!(failures, 2, "{text}");
    assert!(!text.contains("result=\"success\""), "{text}");
    assert!(
        text.contains("homestead_ldap_last_success_timestamp_seconds 0.0"),
        "{text}"
    );
}
