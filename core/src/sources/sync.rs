//! The plan every identity source shares: what to write so that the objects a source owns
//! equal what it read. A source (LDAP → Users, ISPyB → Sessions) says which objects are its
//! own, which fields it owns and how an object is retired by implementing [`Source`];
//! [`plan`] does the rest.
//!
//! - a desired object that does not exist is created;
//! - an object the source owns (label `homestead.dev/source=<source>`) whose owned fields
//!   differ is updated (the source wins: an object retired because it left the source comes
//!   back when it returns);
//! - an owned object the source no longer implies is retired (a User disabled, a Session
//!   ended), never deleted, so its namespace and data stay;
//! - an object without the label is never touched, even when the source has one of the same
//!   name: that one is skipped, saying so.
//!
//! A plan that would retire every owned object because the source returned nothing at all
//! is refused ([`check_not_emptied`]).
//!
//! Only the fields the source owns are compared; an administrator's overrides are kept.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::Resource;

use crate::names::LABEL_SOURCE;

/// An identity source, as far as planning is concerned.
pub trait Source {
    /// The objects it keeps.
    type Object: Resource<DynamicType = ()> + Clone;
    /// Value of the `homestead.dev/source` label on the objects it owns.
    const NAME: &'static str;
    /// The field manager of the source's server-side applies.
    const FIELD_MANAGER: &'static str;
    /// What retiring one of its objects is called in counts, logs and metrics (`disabled`,
    /// `ended`).
    const RETIRED_AS: &'static str;
    /// True when the fields the source owns are equal.
    fn same_owned_fields(have: &Self::Object, want: &Self::Object) -> bool;
    /// True when the object is retired already.
    fn is_retired(object: &Self::Object) -> bool;
    /// The object that retires `have`: its name, label and owned fields, retired.
    fn retired(have: &Self::Object) -> Self::Object;
    /// Why a plan retiring all `count` owned objects after reading nothing is refused.
    fn emptied(count: usize) -> String;
}

/// The changes one sync makes.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncPlan<T> {
    /// Objects to create (the desired objects).
    pub create: Vec<T>,
    /// Owned objects whose owned fields change (the desired objects).
    pub update: Vec<T>,
    /// Owned objects to retire: their current owned fields, retired.
    pub retire: Vec<T>,
    /// Owned objects already equal to the source (or already retired).
    pub unchanged: usize,
    /// Desired objects not applied: `(name, reason)`.
    pub skipped: Vec<(String, String)>,
}

impl<T> Default for SyncPlan<T> {
    fn default() -> Self {
        Self {
            create: Vec::new(),
            update: Vec::new(),
            retire: Vec::new(),
            unchanged: 0,
            skipped: Vec::new(),
        }
    }
}

impl<T> SyncPlan<T> {
    /// True when nothing is written.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.retire.is_empty()
    }
}

/// True when the object carries `homestead.dev/source=<S::NAME>`.
pub fn is_owned<S: Source>(object: &S::Object) -> bool {
    object
        .meta()
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_SOURCE))
        .is_some_and(|v| v == S::NAME)
}

/// Plans the changes that make `existing` equal `desired` (both may be in any order; the
/// plan lists objects by name).
pub fn plan<S: Source>(desired: &[S::Object], existing: &[S::Object]) -> SyncPlan<S::Object> {
    let by_name = |objects: &'_ [S::Object]| -> BTreeMap<String, usize> {
        objects
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.meta().name.clone().map(|n| (n, i)))
            .collect()
    };
    let have = by_name(existing);
    let want = by_name(desired);
    let kind = S::Object::kind(&());

    let mut plan = SyncPlan::default();
    for (name, &w) in &want {
        let want = &desired[w];
        match have.get(name).map(|&h| &existing[h]) {
            None => plan.create.push(want.clone()),
            Some(have) if !is_owned::<S>(have) => plan.skipped.push((
                name.clone(),
                format!(
                    "a {kind} named {name:?} exists without the label {LABEL_SOURCE}={}; \
                     it is managed by hand and is left alone",
                    S::NAME
                ),
            )),
            Some(have) if S::same_owned_fields(have, want) => plan.unchanged += 1,
            Some(_) => plan.update.push(want.clone()),
        }
    }
    for (name, &h) in &have {
        let have = &existing[h];
        if want.contains_key(name) || !is_owned::<S>(have) {
            continue;
        }
        if S::is_retired(have) {
            plan.unchanged += 1;
        } else {
            plan.retire.push(S::retired(have));
        }
    }
    plan
}

/// Refuses a plan that would retire every owned object because the source returned nothing
/// at all (`read` entries): that is far more likely a wrong search base or filter (or an
/// access rule hiding the entries) than everybody leaving at once.
pub fn check_not_emptied<S: Source>(read: usize, plan: &SyncPlan<S::Object>) -> Result<(), String> {
    if read == 0 && !plan.retire.is_empty() {
        return Err(S::emptied(plan.retire.len()));
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
    use crate::resources::{User, UserSpec, UserStorage};
    use crate::sources::ldap::{Ldap, SOURCE_LDAP};

    fn plan(desired: &[User], existing: &[User]) -> SyncPlan<User> {
        super::plan::<Ldap>(desired, existing)
    }

    fn check_not_emptied(read: usize, plan: &SyncPlan<User>) -> Result<(), String> {
        super::check_not_emptied::<Ldap>(read, plan)
    }

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
        assert!(plan.update.is_empty() && plan.retire.is_empty());
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
        assert_eq!(names(&plan.retire), ["ada"]);
        let ada = &plan.retire[0];
        assert!(ada.spec.disabled);
        assert_eq!((ada.spec.uid, ada.spec.gid), (1, 100));
        assert_eq!(ada.spec.supplemental_groups, [9]);
        assert!(is_owned::<Ldap>(ada));
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
        assert!(plan.update.is_empty() && plan.retire.is_empty());
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
