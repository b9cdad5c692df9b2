//! Pure: what to do to make the cluster's Users equal the directory.
//!
//! - a desired User that does not exist is created;
//! - an LDAP-owned User (label `homestead.dev/source=ldap`) whose username, uid, gid,
//!   supplementalGroups or disabled flag differ is updated (the directory wins: a User that
//!   was disabled because it left the directory is enabled again when it comes back);
//! - an LDAP-owned User the directory no longer implies is disabled (`spec.disabled: true`),
//!   never deleted, so its namespace and data stay;
//! - a User without the label is never touched, even when the directory has a person
//!   with the same name: that person is skipped, saying so.
//!
//! A plan that would disable every LDAP User because the directory returned no person at
//! all is refused ([`check_not_emptied`]).
//!
//! Only the fields the sync owns are compared; an administrator's namespace or storage
//! overrides on an LDAP User are kept.

use std::collections::BTreeMap;
use std::time::Duration;

use homestead_core::names::LABEL_SOURCE;
use homestead_core::resources::{User, UserSpec};

use super::mapping::SOURCE_LDAP;

/// The changes one sync makes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Users to create (the desired objects).
    pub create: Vec<User>,
    /// LDAP Users whose owned fields change (the desired objects).
    pub update: Vec<User>,
    /// LDAP Users to disable: their current owned fields with `disabled: true`.
    pub disable: Vec<User>,
    /// LDAP Users already equal to the directory (or already disabled).
    pub unchanged: usize,
    /// Desired Users not applied: `(name, reason)`.
    pub skipped: Vec<(String, String)>,
}

impl Plan {
    /// True when nothing is written.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.disable.is_empty()
    }
}

/// True when the User carries `homestead.dev/source=ldap`.
pub fn is_from_ldap(user: &User) -> bool {
    user.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_SOURCE))
        .is_some_and(|v| v == SOURCE_LDAP)
}

/// The fields the sync owns are equal.
fn same_owned_fields(a: &UserSpec, b: &UserSpec) -> bool {
    a.username == b.username
        && a.uid == b.uid
        && a.gid == b.gid
        && a.supplemental_groups == b.supplemental_groups
        && a.disabled == b.disabled
}

/// Plans the changes that make `existing` equal `desired` (both may be in any order; the
/// plan lists objects by name).
pub fn plan(desired: &[User], existing: &[User]) -> Plan {
    let existing: BTreeMap<&str, &User> = existing
        .iter()
        .filter_map(|u| u.metadata.name.as_deref().map(|n| (n, u)))
        .collect();
    let mut wanted: BTreeMap<&str, &User> = BTreeMap::new();
    for user in desired {
        if let Some(name) = user.metadata.name.as_deref() {
            wanted.insert(name, user);
        }
    }

    let mut plan = Plan::default();
    for (name, want) in &wanted {
        match existing.get(name) {
            None => plan.create.push((*want).clone()),
            Some(have) if !is_from_ldap(have) => plan.skipped.push((
                (*name).to_owned(),
                format!(
                    "a User named {name:?} exists without the label {LABEL_SOURCE}={SOURCE_LDAP}; \
                     it is managed by hand and is left alone"
                ),
            )),
            Some(have) if same_owned_fields(&have.spec, &want.spec) => plan.unchanged += 1,
            Some(_) => plan.update.push((*want).clone()),
        }
    }
    for (name, have) in &existing {
        if wanted.contains_key(name) || !is_from_ldap(have) {
            continue;
        }
        if have.spec.disabled {
            plan.unchanged += 1;
        } else {
            plan.disable.push(disabled(have));
        }
    }
    plan
}

/// The object that disables an LDAP User: its name, label and owned fields, `disabled: true`.
fn disabled(have: &User) -> User {
    let mut user = User::new(
        have.metadata.name.as_deref().unwrap_or_default(),
        UserSpec {
            username: have.spec.username.clone(),
            uid: have.spec.uid,
            gid: have.spec.gid,
            supplemental_groups: have.spec.supplemental_groups.clone(),
            disabled: true,
            namespace: None,
            storage: None,
        },
    );
    user.metadata.labels = Some(BTreeMap::from([(
        LABEL_SOURCE.to_owned(),
        SOURCE_LDAP.to_owned(),
    )]));
    user.metadata.annotations = have.metadata.annotations.as_ref().and_then(|a| {
        a.get(super::mapping::ANNOTATION_LDAP_DN)
            .map(|dn| BTreeMap::from([(super::mapping::ANNOTATION_LDAP_DN.to_owned(), dn.clone())]))
    });
    user
}

/// Refuses a plan that would disable every LDAP User because the directory returned no
/// person at all: that is far more likely a wrong `users.base` or `users.filter` (or an
/// access rule hiding the entries) than everybody leaving at once.
pub fn check_not_emptied(persons_read: usize, plan: &Plan) -> Result<(), String> {
    if persons_read == 0 && !plan.disable.is_empty() {
        return Err(format!(
            "the directory returned no person entries; refusing to disable all {} LDAP Users \
             (check ldap.users.base, ldap.users.filter and what the bind DN may read)",
            plan.disable.len()
        ));
    }
    Ok(())
}

/// How long to wait before the next attempt after `failures` failed syncs in a row: 5 s,
/// doubling, never more than `interval`. After a success (`failures == 0`) it is `interval`.
pub fn retry_delay(failures: u32, interval: Duration) -> Duration {
    if failures == 0 {
        return interval;
    }
    let base = Duration::from_secs(5);
    let factor = 1u32
        .checked_shl(failures.saturating_sub(1))
        .unwrap_or(u32::MAX);
    base.checked_mul(factor).unwrap_or(interval).min(interval)
}

#[cfg(test)]
mod tests {
    use super::*;
    use homestead_core::resources::UserStorage;

    fn ldap_user(name: &str, uid: i64, groups: &[i64]) -> User {
        let mut user = User::new(
            name,
            UserSpec {
                username: name.into(),
                uid,
                gid: 100,
                supplemental_groups: groups.to_vec(),
                ..UserSpec::default()
            },
        );
        user.metadata.labels = Some(BTreeMap::from([(
            LABEL_SOURCE.to_owned(),
            SOURCE_LDAP.to_owned(),
        )]));
        user
    }

    fn by_hand(name: &str, uid: i64) -> User {
        User::new(
            name,
            UserSpec {
                username: name.into(),
                uid,
                gid: 100,
                ..UserSpec::default()
            },
        )
    }

    fn names(users: &[User]) -> Vec<&str> {
        users
            .iter()
            .map(|u| u.metadata.name.as_deref().unwrap_or(""))
            .collect()
    }

    #[test]
    fn new_people_are_created_and_equal_ones_left_alone() {
        let desired = [ldap_user("ada", 1, &[]), ldap_user("bob", 2, &[5])];
        let existing = [ldap_user("bob", 2, &[5])];
        let plan = plan(&desired, &existing);
        assert_eq!(names(&plan.create), ["ada"]);
        assert!(plan.update.is_empty() && plan.disable.is_empty());
        assert_eq!(plan.unchanged, 1);
    }

    #[test]
    fn changed_ids_or_groups_are_updated() {
        let desired = [ldap_user("ada", 1, &[7]), ldap_user("bob", 3, &[])];
        let existing = [ldap_user("ada", 1, &[6]), ldap_user("bob", 2, &[])];
        let plan = plan(&desired, &existing);
        assert_eq!(names(&plan.update), ["ada", "bob"]);
        assert_eq!(plan.update[0].spec.supplemental_groups, [7]);
        assert_eq!(plan.unchanged, 0);
    }

    #[test]
    fn overrides_made_by_an_admin_do_not_count_as_a_change() {
        let mut have = ldap_user("ada", 1, &[]);
        have.spec.namespace = Some("lab-ada".into());
        have.spec.storage = Some(UserStorage::default());
        let plan = plan(&[ldap_user("ada", 1, &[])], &[have]);
        assert!(plan.is_empty());
        assert_eq!(plan.unchanged, 1);
    }

    #[test]
    fn people_who_left_are_disabled_never_deleted() {
        let mut have = ldap_user("ada", 1, &[9]);
        have.metadata.resource_version = Some("42".into());
        let plan = plan(&[], &[have]);
        assert_eq!(names(&plan.disable), ["ada"]);
        let ada = &plan.disable[0];
        assert!(ada.spec.disabled);
        assert_eq!((ada.spec.uid, ada.spec.gid), (1, 100));
        assert_eq!(ada.spec.supplemental_groups, [9]);
        assert!(is_from_ldap(ada));
        assert_eq!(ada.metadata.resource_version, None);
        assert!(plan.create.is_empty() && plan.update.is_empty());
    }

    #[test]
    fn already_disabled_users_stay_unchanged_and_come_back_when_they_return() {
        let mut gone = ldap_user("ada", 1, &[]);
        gone.spec.disabled = true;
        let plan_gone = plan(&[], std::slice::from_ref(&gone));
        assert!(plan_gone.is_empty());
        assert_eq!(plan_gone.unchanged, 1);

        let back = plan(&[ldap_user("ada", 1, &[])], &[gone]);
        assert_eq!(names(&back.update), ["ada"]);
        assert!(!back.update[0].spec.disabled);
    }

    #[test]
    fn users_without_the_label_are_never_touched() {
        let existing = [by_hand("ada", 1), by_hand("carol", 3)];
        let desired = [ldap_user("ada", 99, &[]), ldap_user("bob", 2, &[])];
        let plan = plan(&desired, &existing);
        assert_eq!(names(&plan.create), ["bob"]);
        assert!(plan.update.is_empty() && plan.disable.is_empty());
        assert_eq!(plan.skipped.len(), 1);
        assert_eq!(plan.skipped[0].0, "ada");
        assert!(plan.skipped[0].1.contains("managed by hand"));
    }

    #[test]
    fn other_sources_are_not_ours() {
        let mut other = by_hand("ada", 1);
        other.metadata.labels = Some(BTreeMap::from([(LABEL_SOURCE.to_owned(), "scim".into())]));
        assert!(plan(&[], &[other]).is_empty());
    }

    #[test]
    fn an_empty_directory_does_not_disable_everyone() {
        let existing = [ldap_user("ada", 1, &[]), ldap_user("bob", 2, &[])];
        let emptied = plan(&[], &existing);
        let err = check_not_emptied(0, &emptied).unwrap_err();
        assert!(
            err.contains("refusing to disable all 2 LDAP Users"),
            "{err}"
        );
        // Persons were read (even if all were skipped or filtered out): the plan stands.
        assert!(check_not_emptied(3, &emptied).is_ok());
        // Nothing to disable: an empty directory is fine.
        assert!(check_not_emptied(0, &plan(&[], &[])).is_ok());
    }

    #[test]
    fn retry_delay_doubles_up_to_the_interval() {
        let interval = Duration::from_secs(300);
        let delays: Vec<u64> = (0..9).map(|n| retry_delay(n, interval).as_secs()).collect();
        assert_eq!(delays, [300, 5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(retry_delay(200, interval), interval);
        assert_eq!(
            retry_delay(3, Duration::from_secs(12)),
            Duration::from_secs(12)
        );
    }
}
