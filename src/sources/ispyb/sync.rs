//! One whole ISPyB sync: read the database (and the directory's groups), map, plan, apply.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use kube::api::Api;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::database::{Fetched, fetch};
use crate::sources::apply::{apply_plan, list_all};
use crate::sources::ldap::client::fetch_groups;
use crate::sources::metrics::{MetricNames, SyncMetrics};
use crate::sources::periodic;
use crate::sources::report::SyncReport;
use homestead_core::config::{Config, SessionSourceConfig};
use homestead_core::resources::{Session, User};
use homestead_core::sources::ispyb::{
    Input, Ispyb, Mapped, SkippedMember, SkippedRow, keep_held, map_visits,
};
use homestead_core::sources::ldap::{Skipped, posix_groups};
use homestead_core::sources::{PosixGroup, check_not_emptied, plan};

/// How the sync's metrics are named.
pub const METRICS: MetricNames = MetricNames {
    prefix: "homestead_ispyb",
    source: "ISPyB",
    objects: "sessions",
    records: "skipped_rows",
};

/// What the database and the directory hold for one sync.
#[derive(Debug, Clone)]
pub struct Read {
    /// Window, visit rows and person rows.
    pub fetched: Fetched,
    /// The directory's posixGroups (empty when neither gids nor staff come from LDAP).
    pub groups: Vec<PosixGroup>,
    /// Group entries skipped for bad data.
    pub skipped_groups: Vec<Skipped>,
}

/// The Sessions a sync wants, and what it left out.
#[derive(Debug, Clone)]
pub struct Desired {
    /// Sessions, skipped rows and members, counts.
    pub mapped: Mapped,
    /// Group entries skipped for bad data.
    pub skipped_groups: Vec<Skipped>,
}

impl Desired {
    /// Every warning, one line each: rows, members, groups, unknown staff groups.
    pub fn warnings(&self) -> Vec<String> {
        let m = &self.mapped;
        m.skipped
            .iter()
            .map(SkippedRow::to_string)
            .chain(m.skipped_members.iter().map(SkippedMember::to_string))
            .chain(self.skipped_groups.iter().map(ToString::to_string))
            .chain(m.unknown_staff_groups.iter().map(|g| {
                format!("staff group {g:?} is configured but the directory does not have it")
            }))
            .collect()
    }
}

/// Reads the database and, when gids or staff come from LDAP, the directory's groups.
/// Either one failing fails the read: nothing is changed on a partial read.
pub async fn read(config: &Config, source: &SessionSourceConfig) -> Result<Read> {
    let fetched = fetch(source).await?;
    let (groups, skipped_groups) = match (&config.ldap, source.needs_ldap()) {
        (Some(ldap), true) => {
            let entries = fetch_groups(ldap).await?;
            posix_groups(&ldap.attributes, &entries)
        }
        _ => (Vec::new(), Vec::new()),
    };
    Ok(Read {
        fetched,
        groups,
        skipped_groups,
    })
}

/// Maps what was read to Sessions. `users` are the usernames that have a User (`None`:
/// not checked). Every skipped row, member and group is logged.
pub fn map(
    config: &Config,
    source: &SessionSourceConfig,
    read: Read,
    users: Option<&HashSet<String>>,
) -> Desired {
    let mapped = map_visits(
        config,
        source,
        Input {
            window: read.fetched.window,
            visits: &read.fetched.visits,
            people: &read.fetched.people,
            groups: &read.groups,
            users,
        },
    );
    let desired = Desired {
        mapped,
        skipped_groups: read.skipped_groups,
    };
    for warning in desired.warnings() {
        tracing::warn!("ISPyB sync: {warning}");
    }
    desired
}

/// Reads and maps (no cluster involved).
pub async fn desired_sessions(
    config: &Config,
    source: &SessionSourceConfig,
    users: Option<&HashSet<String>>,
) -> Result<Desired> {
    let read = read(config, source).await?;
    Ok(map(config, source, read, users))
}

/// What one ISPyB sync read and left out: the details of its [`SyncReport`].
#[derive(Debug, Clone)]
pub struct IspybDetails {
    /// The Sessions it wanted, and the rows, members and groups it left out.
    pub desired: Desired,
    /// Sessions not ended because their visit's row has bad data.
    pub held: Vec<String>,
}

/// The report of one ISPyB sync.
pub type IspybReport = SyncReport<IspybDetails>;

/// One whole sync: read the database and the directory, list Users and Sessions, plan,
/// apply. A database or directory that cannot be read fails before anything is written.
pub async fn sync_once(client: Client, config: &Config) -> Result<IspybReport> {
    let source = config
        .session_source
        .as_ref()
        .context("the configuration has no sessionSource section")?;
    let read = read(config, source).await?;
    let users: HashSet<String> = list_all(&Api::<User>::all(client.clone()))
        .await?
        .into_iter()
        .map(|u| u.spec.username)
        .collect();
    let desired = map(config, source, read, Some(&users));
    let api: Api<Session> = Api::all(client);
    let existing = list_all(&api).await?;
    let mut plan = plan::<Ispyb>(&desired.mapped.sessions, &existing);
    let held = keep_held(&mut plan, &desired.mapped);
    check_not_emptied::<Ispyb>(desired.mapped.rows_read, &plan).map_err(anyhow::Error::msg)?;
    for (name, reason) in &plan.skipped {
        tracing::warn!(session = %name, "not applied: {reason}");
    }
    for name in &held {
        tracing::warn!(session = %name, "not ended: its visit's row has bad data");
    }
    let mut report = apply_plan::<Ispyb>(&api, &plan, apply_body).await;
    report.counts.skipped += desired.mapped.skipped.len();
    report.counts.skipped_records = desired.mapped.skipped.len() + desired.skipped_groups.len();
    Ok(report.with_details(IspybDetails { desired, held }))
}

/// The server-side apply body: only what the sync owns, with `members` and `ended` always
/// written so that the sync keeps owning them.
pub fn apply_body(session: &Session) -> Result<Value> {
    let mut metadata = json!({ "name": session.name_any() });
    if let Some(labels) = &session.metadata.labels {
        metadata["labels"] = serde_json::to_value(labels)?;
    }
    if let Some(annotations) = &session.metadata.annotations {
        metadata["annotations"] = serde_json::to_value(annotations)?;
    }
    let spec = &session.spec;
    Ok(json!({
        "apiVersion": "homestead.dev/v1alpha1",
        "kind": "Session",
        "metadata": metadata,
        "spec": {
            "proposalCode": spec.proposal_code,
            "proposalNumber": spec.proposal_number,
            "visit": spec.visit,
            "instrument": spec.instrument,
            "startDate": spec.start_date,
            "endDate": spec.end_date,
            "dataDirectory": spec.data_directory,
            "gid": spec.gid,
            "members": spec.members,
            "ended": spec.ended,
        }
    }))
}

/// Syncs now and then every `interval` (`sessionSource.interval`) until `shutdown`
/// completes (the process stops, leadership is lost), as [`periodic::run_periodic`] says.
pub async fn run_periodic(
    client: Client,
    config: Arc<Config>,
    interval: Duration,
    metrics: SyncMetrics,
    shutdown: impl Future<Output = ()>,
) {
    periodic::run_periodic("ISPyB", interval, metrics, shutdown, || {
        let (client, config) = (client.clone(), config.clone());
        async move { sync_once(client, &config).await }
    })
    .await;
}

/// The sync as a controller leader task: started each time this replica wins the Lease,
/// stopped when it loses it; it syncs every `interval` (`sessionSource.interval`).
pub fn leader_task(
    client: Client,
    config: Arc<Config>,
    interval: Duration,
    metrics: SyncMetrics,
) -> crate::controller::LeaderTask {
    periodic::leader_task("ISPyB", interval, metrics, move || {
        let (client, config) = (client.clone(), config.clone());
        async move { sync_once(client, &config).await }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use homestead_core::resources::SessionSpec;

    #[test]
    fn the_apply_body_holds_only_owned_fields() {
        let mut session = Session::new(
            "cm1-1",
            SessionSpec {
                proposal_code: "cm".into(),
                proposal_number: 1,
                visit: 1,
                instrument: "i03".into(),
                data_directory: "/d/".into(),
                gid: 5,
                default_member: Some("not-ours".into()),
                ..SessionSpec::default()
            },
        );
        session.metadata.resource_version = Some("7".into());
        assert_eq!(
            apply_body(&session).unwrap(),
            json!({
                "apiVersion": "homestead.dev/v1alpha1", "kind": "Session",
                "metadata": {"name": "cm1-1"},
                "spec": {"proposalCode": "cm", "proposalNumber": 1, "visit": 1,
                         "instrument": "i03", "startDate": "", "endDate": "",
                         "dataDirectory": "/d/", "gid": 5, "members": [], "ended": false}
            })
        );
    }
}
