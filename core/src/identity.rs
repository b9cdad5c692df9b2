//! Identity resolution (DESIGN §3): who sent a request, and which user a pod or pod
//! template in a managed namespace runs as.

use std::sync::Arc;

use crate::config::{Config, UnattributedPods};
use crate::denial::Denial;
use crate::directory::{Directory, NamespaceOwner, SessionEntry, UserEntry};
use crate::names;

/// Who sent a request, as far as identity goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester<'a> {
    /// A person: a directory username (prefix stripped).
    Person(&'a str),
    /// One of the configured trusted controllers (attributes by `homestead.dev/run-as`).
    TrustedController(&'a str),
    /// Anything else: service accounts, nodes, other system identities.
    Other(&'a str),
}

impl<'a> Requester<'a> {
    /// Classifies `userInfo.username`.
    pub fn classify(config: &Config, username: &'a str) -> Self {
        if config.trusted_controllers.iter().any(|t| t == username) {
            return Requester::TrustedController(username);
        }
        if username.is_empty() || username.starts_with("system:") {
            return Requester::Other(username);
        }
        match config.strip_username_prefix(username) {
            Some(person) if !person.is_empty() => Requester::Person(person),
            _ => Requester::Other(username),
        }
    }

    /// The username as sent (prefix stripped for people).
    pub fn name(&self) -> &'a str {
        match self {
            Requester::Person(n) | Requester::TrustedController(n) | Requester::Other(n) => n,
        }
    }
}

/// The Unix identity a pod runs as, with everything mutation and validation need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user.
    pub user: Arc<UserEntry>,
    /// The session, in a session namespace.
    pub session: Option<Arc<SessionEntry>>,
    /// The namespace.
    pub namespace: String,
    /// `runAsGroup` and `fsGroup`: the user's gid, or the session gid.
    pub gid: i64,
    /// `supplementalGroups`, sorted and deduplicated.
    pub supplemental_groups: Vec<i64>,
    /// The claim backing `homestead-private`.
    pub private_claim: String,
}

impl Identity {
    /// The identity of `user` in the namespace `owner` manages.
    pub fn new(
        user: Arc<UserEntry>,
        namespace: &str,
        owner: &NamespaceOwner,
    ) -> Result<Self, Denial> {
        let (gid, mut groups, session, private_claim) = match owner {
            NamespaceOwner::User(_) => (
                user.gid,
                user.supplemental_groups.clone(),
                None,
                names::VOLUME_PRIVATE.to_owned(),
            ),
            NamespaceOwner::Session(s) => {
                let mut groups = Vec::with_capacity(user.supplemental_groups.len() + 2);
                groups.push(user.gid);
                groups.extend_from_slice(&user.supplemental_groups);
                groups.push(s.gid);
                let claim = names::session_private_claim(&user.username).map_err(|e| {
                    Denial::new(
                        "invalid_object",
                        "",
                        format!("user {:?} has no private claim: {e}", user.username),
                    )
                })?;
                (s.gid, groups, Some(s.clone()), claim)
            }
        };
        groups.sort_unstable();
        groups.dedup();
        Ok(Self {
            user,
            session,
            namespace: namespace.to_owned(),
            gid,
            supplemental_groups: groups,
            private_claim,
        })
    }

    /// The username.
    pub fn username(&self) -> &str {
        &self.user.username
    }

    /// The uid.
    pub fn uid(&self) -> i64 {
        self.user.uid
    }

    /// True when `gid` is one of this identity's groups.
    pub fn has_group(&self, gid: i64) -> bool {
        gid == self.gid || self.supplemental_groups.binary_search(&gid).is_ok()
    }
}

/// What is being admitted, as far as identity goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A Pod (CREATE or UPDATE).
    Pod,
    /// The `pods/ephemeralcontainers` subresource: someone adds a container to a pod.
    EphemeralContainers,
    /// The pod template of a workload.
    Workload,
}

/// Which webhook is asking: the mutating one may overwrite what the validating one checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Mutation.
    Mutate,
    /// Validation of the final object.
    Validate,
}

/// Everything identity resolution looks at.
#[derive(Debug, Clone, Copy)]
pub struct Attribution<'a> {
    /// Who sent the request.
    pub requester: Requester<'a>,
    /// What is admitted.
    pub subject: Subject,
    /// Which webhook asks.
    pub phase: Phase,
    /// `homestead.dev/run-as` on the pod or template.
    pub run_as: Option<&'a str>,
    /// On UPDATE, `homestead.dev/run-as` of the old object (`Some(None)`: it had none);
    /// `None` on CREATE.
    pub old_run_as: Option<Option<&'a str>>,
}

/// Decides who a pod or template in the managed namespace `namespace` runs as.
pub fn resolve(
    config: &Config,
    directory: &Directory,
    namespace: &str,
    owner: &NamespaceOwner,
    who: &Attribution<'_>,
) -> Result<Identity, Denial> {
    let run_as_field = "metadata.annotations[\"homestead.dev/run-as\"]";
    let username: &str = match owner {
        NamespaceOwner::User(user) => {
            // A user namespace runs everything as its owner; mutation writes the
            // annotation, so by validation it must say so.
            if who.phase == Phase::Validate
                && let Some(run_as) = who.run_as
                && run_as != user.username
            {
                return Err(Denial::new(
                    "forged_run_as",
                    run_as_field,
                    format!(
                        "{run_as:?} does not own namespace {namespace}; pods here run as {}",
                        user.username
                    ),
                ));
            }
            &user.username
        }
        NamespaceOwner::Session(session) => session_username(config, namespace, session, who)?,
    };
    let user = checked_user(directory, owner, username)?;
    Identity::new(user, namespace, owner)
}

/// The member a pod or template in a session namespace runs as.
fn session_username<'a>(
    config: &Config,
    namespace: &str,
    session: &'a SessionEntry,
    who: &Attribution<'a>,
) -> Result<&'a str, Denial> {
    let run_as_field = "metadata.annotations[\"homestead.dev/run-as\"]";
    // A pod's spec cannot change after creation, so an update that keeps the run-as
    // keeps the identity, whoever sends it (labelling a colleague's pod is fine).
    if who.subject == Subject::Pod
        && let (Some(run_as), Some(Some(old))) = (who.run_as, who.old_run_as)
        && run_as == old
    {
        return Ok(run_as);
    }
    match who.requester {
        Requester::Person(person) => {
            let overwrites = who.subject == Subject::Workload && who.phase == Phase::Mutate;
            if let Some(run_as) = who.run_as
                && run_as != person
                && !overwrites
            {
                let message = match who.subject {
                    Subject::EphemeralContainers => {
                        format!("the pod runs as {run_as:?}; {person} may not add containers to it")
                    }
                    _ => format!(
                        "names {run_as:?} but the request comes from {person}; people can only run pods as themselves"
                    ),
                };
                return Err(Denial::new("forged_run_as", run_as_field, message));
            }
            Ok(person)
        }
        Requester::TrustedController(_) => match who.run_as {
            Some(run_as) => Ok(run_as),
            None => unattributed(config, namespace, session, who),
        },
        Requester::Other(name) => match who.run_as {
            None => unattributed(config, namespace, session, who),
            Some(run_as) => {
                let unchanged = who.old_run_as == Some(Some(run_as));
                let defaulted = config.unattributed_pods == UnattributedPods::DefaultMember
                    && session.default_member.as_deref() == Some(run_as);
                if unchanged || defaulted {
                    Ok(run_as)
                } else {
                    Err(Denial::new(
                        "forged_run_as",
                        run_as_field,
                        format!(
                            "{name} may not set or change it; only people and trusted controllers attribute pods"
                        ),
                    ))
                }
            }
        },
    }
}

fn unattributed<'a>(
    config: &Config,
    namespace: &str,
    session: &'a SessionEntry,
    who: &Attribution<'_>,
) -> Result<&'a str, Denial> {
    if config.unattributed_pods == UnattributedPods::DefaultMember
        && let Some(member) = session.default_member.as_deref()
    {
        return Ok(member);
    }
    let why = match who.requester {
        Requester::TrustedController(name) => {
            format!("{name} created it from a template without the homestead.dev/run-as annotation")
        }
        Requester::Other(name) | Requester::Person(name) => {
            format!("{name:?} is neither a member nor a trusted controller")
        }
    };
    Err(Denial::new(
        "unattributed",
        "metadata.annotations[\"homestead.dev/run-as\"]",
        format!("cannot tell which member of session namespace {namespace} this runs as: {why}"),
    ))
}

/// The directory user behind `username`, refused when unknown, disabled or not a member.
fn checked_user(
    directory: &Directory,
    owner: &NamespaceOwner,
    username: &str,
) -> Result<Arc<UserEntry>, Denial> {
    let Some(user) = directory.user(username) else {
        return Err(Denial::new(
            "unknown_user",
            "",
            format!("user {username:?} is not in the directory"),
        ));
    };
    if user.disabled {
        return Err(Denial::new(
            "disabled_user",
            "",
            format!("user {username:?} is disabled"),
        ));
    }
    if let NamespaceOwner::Session(session) = owner
        && !session.is_member(username)
    {
        return Err(Denial::new(
            "not_member",
            "",
            format!(
                "user {username:?} is not a member of session {} (namespace {})",
                session.name, session.namespace
            ),
        ));
    }
    Ok(user.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requesters_are_classified() {
        let mut config = Config::default();
        assert_eq!(
            Requester::classify(&config, "ada"),
            Requester::Person("ada")
        );
        assert_eq!(
            Requester::classify(&config, "system:serviceaccount:kube-system:job-controller"),
            Requester::TrustedController("system:serviceaccount:kube-system:job-controller")
        );
        assert!(matches!(
            Requester::classify(&config, "system:serviceaccount:argo:argo"),
            Requester::Other(_)
        ));
        config.username_prefix = "oidc:".into();
        assert_eq!(
            Requester::classify(&config, "oidc:ada"),
            Requester::Person("ada")
        );
        assert_eq!(Requester::classify(&config, "ada"), Requester::Other("ada"));
        assert_eq!(
            Requester::classify(&config, "oidc:"),
            Requester::Other("oidc:")
        );
    }
}
