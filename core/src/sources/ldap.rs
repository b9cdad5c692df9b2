//! The LDAP source, pure half: directory entries and groups → the `User` objects the
//! directory implies ([`map_directory`]), and how the sync plan treats Users ([`Ldap`]).
//! Reading the directory and applying the plan are the shell's (`src/sources/ldap/`).
//!
//! Rules (each one is tested below):
//! - a person needs exactly one username, one numeric uid and one numeric gid (1 ..=
//!   4294967294; uid/gid 0 is never synced); an entry whose username attribute holds several
//!   values uses the one its DN is named by (`uid=ada,...`) and is skipped otherwise;
//! - the username must map to an object name (`names::object_name`);
//! - a uid shared by two usernames, a username found in two entries, or two usernames
//!   mapping to the same object name: every entry involved is skipped, naming the others;
//! - `supplementalGroups` are the gids of the groups whose member attribute lists the
//!   username, sorted and without duplicates. The primary gid is left out: pods already run
//!   with it as their group, so listing it again would only add noise;
//! - `onlyMembersOf`: a person is synced only when they belong to one of those groups,
//!   either through the member attribute or because the group's gid is their primary gid
//!   (POSIX membership, as `id` reports it). Persons outside are not skipped with a
//!   warning, they are simply out of scope (and so disabled if they were synced before);
//! - a group with a missing name or gid is skipped with a warning; its members keep their
//!   other groups.
//!
//! Every skipped entry carries its DN and the reason.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use thiserror::Error;

use super::PosixGroup;
use super::sync::Source;
use crate::config::LdapAttributes;
use crate::names::{self, LABEL_SOURCE, NameError};
use crate::resources::{User, UserSpec};

/// Value of the `homestead.dev/source` label on Users the LDAP sync owns.
pub const SOURCE_LDAP: &str = "ldap";
/// Annotation recording the DN a User was read from.
pub const ANNOTATION_LDAP_DN: &str = "homestead.dev/ldap-dn";

/// The LDAP sync's Users: it owns their username, uid, gid, supplementalGroups and
/// disabled flag, and retires a User by disabling it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ldap;

impl Source for Ldap {
    type Object = User;
    const NAME: &'static str = SOURCE_LDAP;
    const FIELD_MANAGER: &'static str = "homestead-ldap";
    const RETIRED_AS: &'static str = "disabled";

    fn same_owned_fields(have: &User, want: &User) -> bool {
        let (a, b) = (&have.spec, &want.spec);
        a.username == b.username
            && a.uid == b.uid
            && a.gid == b.gid
            && a.supplemental_groups == b.supplemental_groups
            && a.disabled == b.disabled
    }

    fn is_retired(user: &User) -> bool {
        user.spec.disabled
    }

    /// The object that disables an LDAP User: its name, label, DN annotation and owned
    /// fields, `disabled: true`.
    fn retired(have: &User) -> User {
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
            a.get(ANNOTATION_LDAP_DN)
                .map(|dn| BTreeMap::from([(ANNOTATION_LDAP_DN.to_owned(), dn.clone())]))
        });
        user
    }

    fn emptied(count: usize) -> String {
        format!(
            "the directory returned no person entries; refusing to disable all {count} LDAP Users \
             (check ldap.users.base, ldap.users.filter and what the bind DN may read)"
        )
    }
}

/// Largest uid/gid a Unix system gives out (`(uid_t)-1` is reserved).
const MAX_ID: i64 = 4_294_967_294;

/// One directory entry: its DN and attributes (names compared case-insensitively, as LDAP
/// does).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// Distinguished name.
    pub dn: String,
    attrs: BTreeMap<String, Vec<String>>,
}

impl Entry {
    /// An entry from its DN and `(attribute, values)` pairs.
    pub fn new<N, V>(dn: impl Into<String>, attrs: impl IntoIterator<Item = (N, V)>) -> Self
    where
        N: AsRef<str>,
        V: IntoIterator,
        V::Item: Into<String>,
    {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, values) in attrs {
            map.entry(name.as_ref().to_ascii_lowercase())
                .or_default()
                .extend(values.into_iter().map(Into::into));
        }
        Self {
            dn: dn.into(),
            attrs: map,
        }
    }

    /// The values of an attribute (none when absent).
    pub fn values(&self, attribute: &str) -> &[String] {
        self.attrs
            .get(&attribute.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The value of the first RDN when its attribute is `attribute` (`uid=ada,...` → `ada`).
    fn rdn_value(&self, attribute: &str) -> Option<&str> {
        let first = self.dn.split(',').next()?;
        let (name, value) = first.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case(attribute)
            .then_some(value.trim())
    }
}

/// Why an entry was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SkipReason {
    /// A required attribute is absent.
    #[error("has no {attribute} attribute")]
    Missing {
        /// The attribute.
        attribute: String,
    },
    /// A single-valued attribute has several values.
    #[error("has {count} values of {attribute} ({values}); expected one")]
    SeveralValues {
        /// The attribute.
        attribute: String,
        /// How many.
        count: usize,
        /// The values, comma-separated.
        values: String,
    },
    /// A numeric attribute is not a number.
    #[error("{attribute} {value:?} is not a number")]
    NotANumber {
        /// The attribute.
        attribute: String,
        /// The value.
        value: String,
    },
    /// A numeric id is outside 1..=4294967294.
    #[error("{attribute} {value} is out of range (1 to 4294967294; 0 is root and never synced)")]
    OutOfRange {
        /// The attribute.
        attribute: String,
        /// The value.
        value: i64,
    },
    /// The username has no object name.
    #[error("cannot be mapped to a User name: {0}")]
    BadName(#[from] NameError),
    /// The uid is shared with other usernames.
    #[error("uid {uid} is shared by usernames {usernames} ({dns}); all of them are skipped")]
    SharedUid {
        /// The uid.
        uid: i64,
        /// Every username with that uid, comma-separated.
        usernames: String,
        /// The DNs of the other entries, `; `-separated.
        dns: String,
    },
    /// The username is found in several entries.
    #[error("username {username:?} is also in {dns}; all of them are skipped")]
    DuplicateUsername {
        /// The username.
        username: String,
        /// The DNs of the other entries.
        dns: String,
    },
    /// Several usernames map to the same object name.
    #[error("usernames {usernames} all map to User name {name:?} ({dns}); all of them are skipped")]
    NameCollision {
        /// The object name.
        name: String,
        /// The usernames, comma-separated.
        usernames: String,
        /// The DNs of the other entries.
        dns: String,
    },
}

/// What kind of entry was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A person.
    User,
    /// A group.
    Group,
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryKind::User => "user",
            EntryKind::Group => "group",
        })
    }
}

/// An entry left out, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("skipped {kind} entry {dn}: {reason}")]
pub struct Skipped {
    /// Person or group.
    pub kind: EntryKind,
    /// The entry's DN.
    pub dn: String,
    /// Why.
    pub reason: SkipReason,
}

/// The result of mapping a directory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapped {
    /// Desired Users, sorted by object name.
    pub users: Vec<User>,
    /// Entries left out because of bad data, in DN order.
    pub skipped: Vec<Skipped>,
    /// Persons out of scope because they belong to none of `onlyMembersOf`.
    pub not_members: usize,
    /// Names in `onlyMembersOf` that no valid group has.
    pub unknown_groups: Vec<String>,
    /// Person entries read, whatever became of them.
    pub persons_read: usize,
}

/// A group as read: name, gid and member usernames.
#[derive(Debug)]
struct Group<'a> {
    name: &'a str,
    gid: i64,
    members: &'a [String],
}

/// A person as read.
#[derive(Debug)]
struct Person<'a> {
    dn: &'a str,
    username: &'a str,
    name: String,
    uid: i64,
    gid: i64,
}

/// Maps person and group entries to the Users the directory implies.
pub fn map_directory(
    attributes: &LdapAttributes,
    only_members_of: &[String],
    users: &[Entry],
    groups: &[Entry],
) -> Mapped {
    let mut skipped = Vec::new();

    // Groups first: their names, gids and members.
    let mut valid_groups = Vec::with_capacity(groups.len());
    for entry in groups {
        match read_group(attributes, entry) {
            Ok(group) => valid_groups.push(group),
            Err(reason) => skipped.push(Skipped {
                kind: EntryKind::Group,
                dn: entry.dn.clone(),
                reason,
            }),
        }
    }

    // Persons: each one on its own, then the checks across entries.
    let mut persons = Vec::with_capacity(users.len());
    for entry in users {
        match read_person(attributes, entry) {
            Ok(person) => persons.push(person),
            Err(reason) => skipped.push(Skipped {
                kind: EntryKind::User,
                dn: entry.dn.clone(),
                reason,
            }),
        }
    }
    let persons = drop_conflicts(persons, &mut skipped);

    // Memberships: username → gids of the groups listing it.
    let mut member_of: HashMap<&str, Vec<i64>> = HashMap::new();
    for group in &valid_groups {
        for member in group.members {
            member_of
                .entry(member.as_str())
                .or_default()
                .push(group.gid);
        }
    }

    // onlyMembersOf: the wanted groups' gids and member sets.
    let scope = if only_members_of.is_empty() {
        None
    } else {
        let wanted: Vec<&Group<'_>> = valid_groups
            .iter()
            .filter(|g| only_members_of.iter().any(|w| w == g.name))
            .collect();
        Some(wanted)
    };
    let unknown_groups = only_members_of
        .iter()
        .filter(|w| !valid_groups.iter().any(|g| g.name == w.as_str()))
        .cloned()
        .collect();

    let mut not_members = 0;
    let mut out = Vec::with_capacity(persons.len());
    for person in persons {
        if let Some(wanted) = &scope {
            let member = wanted
                .iter()
                .any(|g| g.gid == person.gid || g.members.iter().any(|m| m == person.username));
            if !member {
                not_members += 1;
                continue;
            }
        }
        let mut supplemental: Vec<i64> = member_of
            .get(person.username)
            .map(|gids| gids.iter().copied().filter(|g| *g != person.gid).collect())
            .unwrap_or_default();
        supplemental.sort_unstable();
        supplemental.dedup();
        out.push(desired_user(&person, supplemental));
    }
    out.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    skipped.sort_by(|a, b| a.dn.cmp(&b.dn));

    Mapped {
        users: out,
        skipped,
        not_members,
        unknown_groups,
        persons_read: users.len(),
    }
}

/// The posixGroups among `entries` (name, gid, members); groups with a missing or bad name
/// or gid are skipped with the reason.
pub fn posix_groups(
    attributes: &LdapAttributes,
    entries: &[Entry],
) -> (Vec<PosixGroup>, Vec<Skipped>) {
    let mut groups = Vec::with_capacity(entries.len());
    let mut skipped = Vec::new();
    for entry in entries {
        match read_group(attributes, entry) {
            Ok(group) => groups.push(PosixGroup {
                name: group.name.to_owned(),
                gid: group.gid,
                members: group.members.to_vec(),
            }),
            Err(reason) => skipped.push(Skipped {
                kind: EntryKind::Group,
                dn: entry.dn.clone(),
                reason,
            }),
        }
    }
    (groups, skipped)
}

/// The User object for one person.
fn desired_user(person: &Person<'_>, supplemental_groups: Vec<i64>) -> User {
    User {
        metadata: ObjectMeta {
            name: Some(person.name.clone()),
            labels: Some(BTreeMap::from([(
                LABEL_SOURCE.to_owned(),
                SOURCE_LDAP.to_owned(),
            )])),
            annotations: Some(BTreeMap::from([(
                ANNOTATION_LDAP_DN.to_owned(),
                person.dn.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: UserSpec {
            username: person.username.to_owned(),
            uid: person.uid,
            gid: person.gid,
            supplemental_groups,
            disabled: false,
            namespace: None,
            storage: None,
        },
        status: None,
    }
}

fn read_group<'a>(attributes: &LdapAttributes, entry: &'a Entry) -> Result<Group<'a>, SkipReason> {
    let name = single(entry, &attributes.group)?;
    let gid = id(entry, &attributes.gid)?;
    Ok(Group {
        name,
        gid,
        members: entry.values(&attributes.member),
    })
}

fn read_person<'a>(
    attributes: &LdapAttributes,
    entry: &'a Entry,
) -> Result<Person<'a>, SkipReason> {
    let username = username(entry, &attributes.username)?;
    let uid = id(entry, &attributes.uid)?;
    let gid = id(entry, &attributes.gid)?;
    let name = names::object_name(username)?;
    Ok(Person {
        dn: &entry.dn,
        username,
        name,
        uid,
        gid,
    })
}

/// The username: the only value, or the one the DN is named by.
fn username<'a>(entry: &'a Entry, attribute: &str) -> Result<&'a str, SkipReason> {
    match single(entry, attribute) {
        Err(SkipReason::SeveralValues { .. })
            if entry
                .rdn_value(attribute)
                .is_some_and(|rdn| entry.values(attribute).iter().any(|v| v == rdn)) =>
        {
            Ok(entry.rdn_value(attribute).unwrap_or_default())
        }
        other => other,
    }
}

fn single<'a>(entry: &'a Entry, attribute: &str) -> Result<&'a str, SkipReason> {
    match entry.values(attribute) {
        [] => Err(SkipReason::Missing {
            attribute: attribute.to_owned(),
        }),
        [one] => Ok(one.trim()),
        many => Err(SkipReason::SeveralValues {
            attribute: attribute.to_owned(),
            count: many.len(),
            values: many.join(", "),
        }),
    }
}

fn id(entry: &Entry, attribute: &str) -> Result<i64, SkipReason> {
    let text = single(entry, attribute)?;
    let value: i64 = text.parse().map_err(|_| SkipReason::NotANumber {
        attribute: attribute.to_owned(),
        value: text.to_owned(),
    })?;
    if !(1..=MAX_ID).contains(&value) {
        return Err(SkipReason::OutOfRange {
            attribute: attribute.to_owned(),
            value,
        });
    }
    Ok(value)
}

/// Drops every person involved in a duplicate username, a shared uid or a name collision.
fn drop_conflicts<'a>(persons: Vec<Person<'a>>, skipped: &mut Vec<Skipped>) -> Vec<Person<'a>> {
    let mut reasons: Vec<Option<SkipReason>> = vec![None; persons.len()];
    let others = |group: &[usize], me: usize| -> String {
        group
            .iter()
            .filter(|i| **i != me)
            .map(|i| persons[*i].dn)
            .collect::<Vec<_>>()
            .join("; ")
    };

    let mut by_username: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut by_uid: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, p) in persons.iter().enumerate() {
        by_username.entry(p.username).or_default().push(i);
        by_uid.entry(p.uid).or_default().push(i);
        by_name.entry(p.name.as_str()).or_default().push(i);
    }

    for (username, group) in &by_username {
        if group.len() > 1 {
            for &i in group {
                reasons[i].get_or_insert(SkipReason::DuplicateUsername {
                    username: (*username).to_owned(),
                    dns: others(group, i),
                });
            }
        }
    }
    for (uid, group) in &by_uid {
        let usernames: BTreeSet<&str> = group.iter().map(|i| persons[*i].username).collect();
        if usernames.len() > 1 {
            let list = usernames.into_iter().collect::<Vec<_>>().join(", ");
            for &i in group {
                reasons[i].get_or_insert(SkipReason::SharedUid {
                    uid: *uid,
                    usernames: list.clone(),
                    dns: others(group, i),
                });
            }
        }
    }
    for (name, group) in &by_name {
        let usernames: BTreeSet<&str> = group.iter().map(|i| persons[*i].username).collect();
        if usernames.len() > 1 {
            let list = usernames.into_iter().collect::<Vec<_>>().join(", ");
            for &i in group {
                reasons[i].get_or_insert(SkipReason::NameCollision {
                    name: (*name).to_owned(),
                    usernames: list.clone(),
                    dns: others(group, i),
                });
            }
        }
    }

    let mut kept = Vec::with_capacity(persons.len());
    for (person, reason) in persons.into_iter().zip(reasons) {
        match reason {
            None => kept.push(person),
            Some(reason) => skipped.push(Skipped {
                kind: EntryKind::User,
                dn: person.dn.to_owned(),
                reason,
            }),
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(username: &str, uid: &str, gid: &str) -> Entry {
        Entry::new(
            format!("uid={username},ou=people,dc=example,dc=org"),
            [
                ("uid", vec![username]),
                ("uidNumber", vec![uid]),
                ("gidNumber", vec![gid]),
            ],
        )
    }

    fn group(name: &str, gid: &str, members: &[&str]) -> Entry {
        Entry::new(
            format!("cn={name},ou=groups,dc=example,dc=org"),
            [
                ("cn", vec![name.to_owned()]),
                ("gidNumber", vec![gid.to_owned()]),
                (
                    "memberUid",
                    members.iter().map(|m| (*m).to_owned()).collect(),
                ),
            ],
        )
    }

    fn map(users: &[Entry], groups: &[Entry]) -> Mapped {
        map_directory(&LdapAttributes::default(), &[], users, groups)
    }

    fn names(mapped: &Mapped) -> Vec<&str> {
        mapped
            .users
            .iter()
            .map(|u| u.metadata.name.as_deref().unwrap_or(""))
            .collect()
    }

    fn user<'a>(mapped: &'a Mapped, name: &str) -> &'a User {
        mapped
            .users
            .iter()
            .find(|u| u.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no user {name} in {:?}", names(mapped)))
    }

    fn reason_of<'a>(mapped: &'a Mapped, dn_start: &str) -> &'a SkipReason {
        &mapped
            .skipped
            .iter()
            .find(|s| s.dn.starts_with(dn_start))
            .unwrap_or_else(|| panic!("{dn_start} not skipped: {:?}", mapped.skipped))
            .reason
    }

    #[test]
    fn a_person_becomes_a_labelled_user() {
        let mapped = map(&[person("Ada.Lovelace", "1001", "100")], &[]);
        let ada = user(&mapped, "ada-lovelace");
        assert_eq!(ada.spec.username, "Ada.Lovelace");
        assert_eq!((ada.spec.uid, ada.spec.gid), (1001, 100));
        assert!(!ada.spec.disabled);
        assert_eq!(
            ada.metadata.labels.as_ref().unwrap()[LABEL_SOURCE],
            SOURCE_LDAP
        );
        assert_eq!(
            ada.metadata.annotations.as_ref().unwrap()[ANNOTATION_LDAP_DN],
            "uid=Ada.Lovelace,ou=people,dc=example,dc=org"
        );
        assert!(mapped.skipped.is_empty());
    }

    #[test]
    fn supplemental_groups_are_sorted_unique_and_without_the_primary_gid() {
        let users = [person("ada", "1001", "100"), person("bob", "1002", "100")];
        let groups = [
            group("physics", "3000", &["ada", "bob"]),
            group("staff", "100", &["ada"]),
            group("beamline", "2000", &["ada", "ada"]),
            group("also-2000", "2000", &["ada"]),
            group("empty", "4000", &[]),
        ];
        let mapped = map(&users, &groups);
        assert_eq!(
            user(&mapped, "ada").spec.supplemental_groups,
            vec![2000, 3000]
        );
        assert_eq!(user(&mapped, "bob").spec.supplemental_groups, vec![3000]);
    }

    #[test]
    fn member_names_match_exactly() {
        let mapped = map(
            &[person("ada", "1001", "100")],
            &[group("g", "2000", &["Ada", "ada2"])],
        );
        assert!(user(&mapped, "ada").spec.supplemental_groups.is_empty());
    }

    #[test]
    fn custom_attribute_names_are_used_case_insensitively() {
        let attributes = LdapAttributes {
            username: "CN".into(),
            uid: "employeeNumber".into(),
            gid: "departmentNumber".into(),
            group: "ou".into(),
            member: "description".into(),
        };
        let users = [Entry::new(
            "cn=ada,ou=people,dc=example,dc=org",
            [
                ("cn", vec!["ada"]),
                ("EMPLOYEENUMBER", vec!["5001"]),
                ("departmentNumber", vec!["500"]),
                ("uidNumber", vec!["1"]),
            ],
        )];
        let groups = [Entry::new(
            "ou=x,dc=example,dc=org",
            [
                ("ou", vec!["x"]),
                ("departmentNumber", vec!["700"]),
                ("description", vec!["ada"]),
            ],
        )];
        let mapped = map_directory(&attributes, &[], &users, &groups);
        let ada = user(&mapped, "ada");
        assert_eq!((ada.spec.uid, ada.spec.gid), (5001, 500));
        assert_eq!(ada.spec.supplemental_groups, vec![700]);
    }

    #[test]
    fn missing_and_non_numeric_ids_are_skipped_naming_the_dn() {
        let no_uid = Entry::new(
            "uid=nouid,ou=people,dc=example,dc=org",
            [("uid", vec!["nouid"]), ("gidNumber", vec!["100"])],
        );
        let users = [
            no_uid,
            person("text", "abc", "100"),
            person("textgid", "1003", "1x"),
            person("root", "0", "0"),
            person("negative", "-5", "100"),
            person("huge", "4294967295", "100"),
            person("ok", "1010", "100"),
        ];
        let mapped = map(&users, &[]);
        assert_eq!(names(&mapped), ["ok"]);
        assert_eq!(mapped.persons_read, 7);
        assert_eq!(
            reason_of(&mapped, "uid=nouid,"),
            &SkipReason::Missing {
                attribute: "uidNumber".into()
            }
        );
        assert_eq!(
            reason_of(&mapped, "uid=text,"),
            &SkipReason::NotANumber {
                attribute: "uidNumber".into(),
                value: "abc".into()
            }
        );
        assert!(matches!(
            reason_of(&mapped, "uid=textgid,"),
            SkipReason::NotANumber { attribute, .. } if attribute == "gidNumber"
        ));
        for dn in ["uid=root,", "uid=negative,", "uid=huge,"] {
            assert!(
                matches!(reason_of(&mapped, dn), SkipReason::OutOfRange { .. }),
                "{dn}"
            );
        }
        let text = mapped.skipped[0].to_string();
        assert!(text.contains("skipped user entry uid="), "{text}");
    }

    #[test]
    fn a_uid_shared_by_two_usernames_skips_both_naming_each_other() {
        let users = [
            person("ada", "1001", "100"),
            person("eve", "1001", "100"),
            person("bob", "1002", "100"),
        ];
        let mapped = map(&users, &[]);
        assert_eq!(names(&mapped), ["bob"]);
        let ada = reason_of(&mapped, "uid=ada,");
        assert!(
            matches!(ada, SkipReason::SharedUid { uid: 1001, usernames, dns }
                if usernames == "ada, eve" && dns == "uid=eve,ou=people,dc=example,dc=org"),
            "{ada:?}"
        );
        assert!(
            reason_of(&mapped, "uid=eve,")
                .to_string()
                .contains("uid=ada,ou=people")
        );
    }

    #[test]
    fn the_same_username_twice_is_skipped_in_both_places() {
        let mut other = person("ada", "1001", "100");
        other.dn = "uid=ada,ou=guests,dc=example,dc=org".into();
        let mapped = map(&[person("ada", "1001", "100"), other], &[]);
        assert!(mapped.users.is_empty());
        assert_eq!(mapped.skipped.len(), 2);
        assert!(matches!(
            &mapped.skipped[0].reason,
            SkipReason::DuplicateUsername { dns, .. } if dns.contains("ou=people")
        ));
    }

    #[test]
    fn usernames_that_cannot_be_named_or_collide_are_skipped() {
        let users = [
            person("ada@example", "1001", "100"),
            person("j.doe", "1002", "100"),
            person("j_doe", "1003", "100"),
            person("bob", "1004", "100"),
        ];
        let mapped = map(&users, &[]);
        assert_eq!(names(&mapped), ["bob"]);
        assert!(matches!(
            reason_of(&mapped, "uid=ada@example,"),
            SkipReason::BadName(NameError::BadCharacter { found: '@', .. })
        ));
        assert!(matches!(
            reason_of(&mapped, "uid=j.doe,"),
            SkipReason::NameCollision { name, .. } if name == "j-doe"
        ));
        assert!(matches!(
            reason_of(&mapped, "uid=j_doe,"),
            SkipReason::NameCollision { .. }
        ));
    }

    #[test]
    fn several_usernames_use_the_rdn_or_skip() {
        let aliased = Entry::new(
            "uid=ada,ou=people,dc=example,dc=org",
            [
                ("uid", vec!["alovelace", "ada"]),
                ("uidNumber", vec!["1001"]),
                ("gidNumber", vec!["100"]),
            ],
        );
        let ambiguous = Entry::new(
            "cn=Bob,ou=people,dc=example,dc=org",
            [
                ("uid", vec!["bob", "bobby"]),
                ("uidNumber", vec!["1002"]),
                ("gidNumber", vec!["100"]),
            ],
        );
        let mapped = map(&[aliased, ambiguous], &[]);
        assert_eq!(names(&mapped), ["ada"]);
        assert!(matches!(
            reason_of(&mapped, "cn=Bob,"),
            SkipReason::SeveralValues { count: 2, .. }
        ));
    }

    #[test]
    fn bad_groups_are_skipped_and_the_rest_still_apply() {
        let groups = [
            group("good", "2000", &["ada"]),
            group("bad", "none", &["ada"]),
            Entry::new(
                "cn=nameless,ou=groups,dc=example,dc=org",
                [("gidNumber", vec!["3000"]), ("memberUid", vec!["ada"])],
            ),
        ];
        let mapped = map(&[person("ada", "1001", "100")], &groups);
        assert_eq!(user(&mapped, "ada").spec.supplemental_groups, vec![2000]);
        assert_eq!(mapped.skipped.len(), 2);
        assert!(mapped.skipped.iter().all(|s| s.kind == EntryKind::Group));
        assert!(matches!(
            reason_of(&mapped, "cn=nameless,"),
            SkipReason::Missing { attribute } if attribute == "cn"
        ));
    }

    #[test]
    fn only_members_of_keeps_members_by_member_list_or_primary_gid() {
        let users = [
            person("ada", "1001", "100"),
            person("bob", "1002", "500"),
            person("eve", "1003", "100"),
        ];
        let groups = [
            group("physics", "3000", &["ada"]),
            group("chemistry", "500", &[]),
            group("other", "4000", &["eve"]),
        ];
        let wanted = [
            "physics".to_owned(),
            "chemistry".to_owned(),
            "ghost".to_owned(),
        ];
        let mapped = map_directory(&LdapAttributes::default(), &wanted, &users, &groups);
        assert_eq!(names(&mapped), ["ada", "bob"]);
        assert_eq!(mapped.not_members, 1);
        assert_eq!(mapped.unknown_groups, ["ghost"]);
        assert!(mapped.skipped.is_empty());
        // Everyone is in scope without the filter.
        assert_eq!(names(&map(&users, &groups)), ["ada", "bob", "eve"]);
    }

    #[test]
    fn users_come_out_sorted_by_name() {
        let users = [
            person("zed", "3", "1"),
            person("Ada", "1", "1"),
            person("mia", "2", "1"),
        ];
        assert_eq!(names(&map(&users, &[])), ["ada", "mia", "zed"]);
    }
}
