//! One whole LDAP sync: read the directory, map, plan, apply.

use anyhow::Result;
use kube::api::Api;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::client::fetch;
use crate::sources::apply::{apply_plan, list_all};
use crate::sources::metrics::{MetricNames, SyncMetrics};
use crate::sources::periodic;
use crate::sources::report::SyncReport;
use homestead_core::config::LdapConfig;
use homestead_core::resources::User;
use homestead_core::sources::ldap::{EntryKind, Ldap, Mapped, Skipped, map_directory};
use homestead_core::sources::{check_not_emptied, plan};

/// How the sync's metrics are named.
pub const METRICS: MetricNames = MetricNames {
    prefix: "homestead_ldap",
    source: "LDAP",
    objects: "users",
    records: "skipped_entries",
};

/// The report of one LDAP sync; its details are the directory entries (persons and groups)
/// left out, with their DN and reason.
pub type LdapReport = SyncReport<Vec<Skipped>>;

/// Reads the directory and maps it to the desired Users (no cluster involved).
pub async fn desired_users(config: &LdapConfig) -> Result<Mapped> {
    let fetched = fetch(config).await?;
    let mapped = map_directory(
        &config.attributes,
        &config.only_members_of,
        &fetched.users,
        &fetched.groups,
    );
    for skipped in &mapped.skipped {
        tracing::warn!(dn = %skipped.dn, reason = %skipped.reason, "skipped {} entry", skipped.kind);
    }
    for group in &mapped.unknown_groups {
        tracing::warn!(group = %group, "onlyMembersOf names a group the directory does not have");
    }
    Ok(mapped)
}

/// One whole sync: read the directory, list the Users, plan, apply. A directory that cannot
/// be read fails before anything is written.
pub async fn sync_once(client: Client, config: &LdapConfig) -> Result<LdapReport> {
    let mapped = desired_users(config).await?;
    let api: Api<User> = Api::all(client);
    let existing = list_all(&api).await?;
    let plan = plan::<Ldap>(&mapped.users, &existing);
    check_not_emptied::<Ldap>(mapped.persons_read, &plan).map_err(anyhow::Error::msg)?;
    for (name, reason) in &plan.skipped {
        tracing::warn!(user = %name, "not applied: {reason}");
    }
    let mut report = apply_plan::<Ldap>(&api, &plan, apply_body).await;
    report.counts.skipped += mapped
        .skipped
        .iter()
        .filter(|s| s.kind == EntryKind::User)
        .count();
    report.counts.skipped_records = mapped.skipped.len();
    Ok(report.with_details(mapped.skipped))
}

/// Syncs now and then every `interval` (`ldap.interval`) until `shutdown` completes (the
/// process stops, leadership is lost), as [`periodic::run_periodic`] says.
pub async fn run_periodic(
    client: Client,
    config: LdapConfig,
    metrics: SyncMetrics,
    shutdown: impl Future<Output = ()>,
) {
    periodic::run_periodic("LDAP", config.interval, metrics, shutdown, || {
        let (client, config) = (client.clone(), config.clone());
        async move { sync_once(client, &config).await }
    })
    .await;
}

/// The sync as a controller leader task: started each time this replica wins the Lease,
/// stopped when it loses it; it syncs every `ldap.interval`.
pub fn leader_task(
    client: Client,
    config: LdapConfig,
    metrics: SyncMetrics,
) -> crate::controller::LeaderTask {
    periodic::leader_task("LDAP", config.interval, metrics, move || {
        let (client, config) = (client.clone(), config.clone());
        async move { sync_once(client, &config).await }
    })
}

/// The server-side apply body: only what the sync owns, with `disabled` and
/// `supplementalGroups` always written so that the sync keeps owning them.
pub fn apply_body(user: &User) -> Result<Value> {
    let mut metadata = json!({ "name": user.name_any() });
    if let Some(labels) = &user.metadata.labels {
        metadata["labels"] = serde_json::to_value(labels)?;
    }
    if let Some(annotations) = &user.metadata.annotations {
        metadata["annotations"] = serde_json::to_value(annotations)?;
    }
    Ok(json!({
        "apiVersion": "homestead.dev/v1alpha1",
        "kind": "User",
        "metadata": metadata,
        "spec": {
            "username": user.spec.username,
            "uid": user.spec.uid,
            "gid": user.spec.gid,
            "supplementalGroups": user.spec.supplemental_groups,
            "disabled": user.spec.disabled,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use homestead_core::resources::UserSpec;

    #[test]
    fn the_apply_body_holds_only_owned_fields() {
        let mut user = User::new(
            "ada",
            UserSpec {
                username: "ada".into(),
                uid: 1,
                gid: 2,
                namespace: Some("not-ours".into()),
                ..UserSpec::default()
            },
        );
        user.metadata.resource_version = Some("7".into());
        let body = apply_body(&user).unwrap();
        assert_eq!(
            body,
            json!({
                "apiVersion": "homestead.dev/v1alpha1", "kind": "User",
                "metadata": {"name": "ada"},
                "spec": {"username": "ada", "uid": 1, "gid": 2,
                         "supplementalGroups": [], "disabled": false}
            })
        );
    }

    /// The leader spawns the task on the runtime: it must be `Send + 'static`. This is
    /// checked when the tests compile.
    #[allow(dead_code)]
    fn spawnable(client: Client, config: LdapConfig, metrics: SyncMetrics) {
        fn send_static<T: Send + 'static>(_: T) {}
        let shutdown = tokio_util::sync::CancellationToken::new().cancelled_owned();
        send_static(run_periodic(client, config, metrics, shutdown));
    }
}
