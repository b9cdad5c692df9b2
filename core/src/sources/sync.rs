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
