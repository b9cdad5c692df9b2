//! Writing a plan to the cluster with server-side apply, and one whole sync.

use std::fmt;

use anyhow::{Context, Result};
use futures::{StreamExt, stream};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde::Serialize;
use serde_json::{Value, json};

use super::client::fetch;
use homestead_core::config::LdapConfig;
use homestead_core::resources::User;
use homestead_core::sources::ldap::{EntryKind, Ldap, Mapped, Skipped, map_directory};
use homestead_core::sources::{SyncPlan, check_not_emptied, plan};

/// Field manager of every write the LDAP sync makes.
pub const FIELD_MANAGER: &str = "homestead-ldap";
/// Writes in flight at once.
const CONCURRENT_WRITES: usize = 16;
/// Users per list page.
const LIST_PAGE: u32 = 500;

/// What one sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Users created.
    pub created: usize,
    /// LDAP Users updated.
    pub updated: usize,
    /// LDAP Users disabled because they left the directory.
    pub disabled: usize,
    /// LDAP Users already right.
    pub unchanged: usize,
    /// Persons not applied: bad entries plus names taken by Users managed by hand.
    pub skipped: usize,
    /// Directory entries (persons and groups) with bad data.
    pub skipped_entries: usize,
    /// Writes that failed (logged one by one).
    pub failed: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "created {}, updated {}, disabled {}, unchanged {}, skipped {}, failed {}",
            self.created, self.updated, self.disabled, self.unchanged, self.skipped, self.failed
        )
    }
}

/// Everything one sync produced.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The counts.
    pub summary: Summary,
    /// Entries left out, with their DN and reason.
    pub skipped_entries: Vec<Skipped>,
    /// Desired Users not applied because a User managed by hand has the name.
    pub skipped_users: Vec<(String, String)>,
    /// Writes that failed: `(name, error)`.
    pub failures: Vec<(String, String)>,
}

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
pub async fn sync_once(client: Client, config: &LdapConfig) -> Result<Outcome> {
    let mapped = desired_users(config).await?;
    let api: Api<User> = Api::all(client);
    let existing = list_users(&api).await?;
    let plan = plan::<Ldap>(&mapped.users, &existing);
    check_not_emptied::<Ldap>(mapped.persons_read, &plan).map_err(anyhow::Error::msg)?;
    for (name, reason) in &plan.skipped {
        tracing::warn!(user = %name, "not applied: {reason}");
    }
    let mut outcome = apply_plan(&api, &plan).await;
    outcome.summary.skipped += mapped
        .skipped
        .iter()
        .filter(|s| s.kind == EntryKind::User)
        .count();
    outcome.summary.skipped_entries = mapped.skipped.len();
    outcome.skipped_entries = mapped.skipped;
    Ok(outcome)
}

/// Every User in the cluster, page by page.
pub async fn list_users(api: &Api<User>) -> Result<Vec<User>> {
    let mut users = Vec::new();
    let mut params = ListParams::default().limit(LIST_PAGE);
    loop {
        let page = api.list(&params).await.context("listing Users")?;
        users.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(users),
        }
    }
}

/// Applies a plan, writing every object even when some fail.
pub async fn apply_plan(api: &Api<User>, plan: &SyncPlan<User>) -> Outcome {
    #[derive(Clone, Copy)]
    enum Kind {
        Created,
        Updated,
        Disabled,
    }
    // Owned items and a `move` closure keep the future `Send` (borrowing closures inside
    // stream combinators defeat the compiler's Send proof).
    let writes: Vec<(Kind, String, Result<Value>)> = plan
        .create
        .iter()
        .map(|u| (Kind::Created, u))
        .chain(plan.update.iter().map(|u| (Kind::Updated, u)))
        .chain(plan.retire.iter().map(|u| (Kind::Disabled, u)))
        .map(|(kind, user)| (kind, user.name_any(), apply_body(user)))
        .collect();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let results: Vec<(Kind, String, Result<()>)> = stream::iter(writes)
        .map(move |(kind, name, body)| {
            let api = api.clone();
            let params = params.clone();
            async move {
                let result = match body {
                    Ok(body) => api
                        .patch(&name, &params, &Patch::Apply(body))
                        .await
                        .map(|_| ())
                        .with_context(|| format!("applying User {name}")),
                    Err(e) => Err(e),
                };
                (kind, name, result)
            }
        })
        .buffer_unordered(CONCURRENT_WRITES)
        .collect()
        .await;

    let mut outcome = Outcome {
        summary: Summary {
            unchanged: plan.unchanged,
            skipped: plan.skipped.len(),
            ..Summary::default()
        },
        skipped_users: plan.skipped.clone(),
        ..Outcome::default()
    };
    for (kind, name, result) in results {
        match result {
            Ok(()) => {
                let counter = match kind {
                    Kind::Created => &mut outcome.summary.created,
                    Kind::Updated => &mut outcome.summary.updated,
                    Kind::Disabled => &mut outcome.summary.disabled,
                };
                *counter += 1;
                tracing::debug!(user = %name, "applied");
            }
            Err(e) => {
                tracing::warn!(user = %name, error = %format!("{e:#}"), "could not apply User");
                outcome.summary.failed += 1;
                outcome.failures.push((name, format!("{e:#}")));
            }
        }
    }
    outcome
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

    #[test]
    fn the_summary_reads_well() {
        let s = Summary {
            created: 1,
            updated: 2,
            disabled: 3,
            unchanged: 4,
            skipped: 5,
            skipped_entries: 6,
            failed: 0,
        };
        assert_eq!(
            s.to_string(),
            "created 1, updated 2, disabled 3, unchanged 4, skipped 5, failed 0"
        );
    }
}
