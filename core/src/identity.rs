//! Identity resolution (docs/architecture.md, "Identity rules"): who sent a request, and
//! which user a pod or pod template in a managed namespace runs as.

use std::sync::Arc;

use crate::argo;
use crate::config::{Config, UnattributedPods};
use crate::denial::Denial;
use crate::directory::{Directory, NamespaceOwner, ProjectEntry, SessionEntry, UserEntry};
use crate::names;
use crate::review::Webhook;
use crate::workload::PodKind;

/// Who sent a request, as far as identity goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester<'a> {
    /// A person: a directory username (prefix stripped).
    Person(&'a str),
    /// One of the configured trusted controllers (attributes by `homestead.dev/run-as`).
    TrustedController(&'a str),
    /// homestead itself (`homesteadUsernames`).
    Homestead(&'a str),
    /// A cluster admin (a member of one of `adminGroups`).
    Admin(&'a str),
    /// Anything else: service accounts, nodes, other system identities.
    Other(&'a str),
}

impl<'a> Requester<'a> {
    /// Classifies `userInfo.username` and `userInfo.groups`.
    pub fn classify<G: AsRef<str>>(config: &Config, username: &'a str, groups: &[G]) -> Self {
        if config.homestead_usernames.iter().any(|h| h == username) {
            return Requester::Homestead(username);
        }
        if groups
            .iter()
            .any(|g| config.admin_groups.iter().any(|a| a == g.as_ref()))
        {
            return Requester::Admin(username);
        }
        if config.trusted_controllers.iter().any(|t| t == username)
            || config.workflow_controllers.iter().any(|t| t == username)
        {
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
            Requester::Person(n)
            | Requester::TrustedController(n)
            | Requester::Homestead(n)
            | Requester::Admin(n)
            | Requester::Other(n) => n,
        }
    }

    /// homestead or a cluster admin: may change, debug and enter anyone's pods.
    pub fn is_privileged(&self) -> bool {
        matches!(self, Requester::Homestead(_) | Requester::Admin(_))
    }
}

/// True when `requester` may change, debug or enter what runs as `runs_as` (a username)
/// in the namespace `owner` manages: the person themselves, homestead and cluster admins;
/// in a user namespace anything but another person (its ServiceAccounts act for the
/// owner); in a session namespace, when unattributed pods run as the default member, the
/// non-persons that would run as that member anyway.
pub fn acts_for(
    config: &Config,
    owner: &NamespaceOwner,
    requester: Requester<'_>,
    runs_as: &str,
) -> bool {
    match requester {
        Requester::Homestead(_) | Requester::Admin(_) => true,
        Requester::Person(person) => person == runs_as,
        Requester::TrustedController(_) | Requester::Other(_) => match owner {
            NamespaceOwner::User(user) => user.username == runs_as,
            NamespaceOwner::Session(session) => {
                config.unattributed_pods == UnattributedPods::DefaultMember
                    && session.default_member.as_deref() == Some(runs_as)
            }
            // A project has no default member: only people act for themselves.
            NamespaceOwner::Project(_) => false,
        },
    }
}

/// The Unix identity a pod runs as, with everything mutation and validation need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user.
    pub user: Arc<UserEntry>,
    /// The session, in a session namespace.
    pub session: Option<Arc<SessionEntry>>,
    /// The project, in a project namespace.
    pub project: Option<Arc<ProjectEntry>>,
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
        // In a shared namespace (session or project) a person keeps their own groups and
        // gains the shared gid, and their private data is their own claim there.
        let shared = |gid: i64| -> Result<(Vec<i64>, String), Denial> {
            let mut groups = Vec::with_capacity(user.supplemental_groups.len() + 2);
            groups.push(user.gid);
            groups.extend_from_slice(&user.supplemental_groups);
            groups.push(gid);
            let claim = private_claim(&user.username).map_err(|e| {
                Denial::new(
                    "invalid_object",
                    "",
                    format!("user {:?} has no private claim: {e}", user.username),
                )
            })?;
            Ok((groups, claim))
        };
        let (gid, mut groups, session, project, private_claim) = match owner {
            NamespaceOwner::User(_) => (
                user.gid,
                user.supplemental_groups.clone(),
                None,
                None,
                names::VOLUME_PRIVATE.to_owned(),
            ),
            NamespaceOwner::Session(s) => {
                let (groups, claim) = shared(s.gid)?;
                (s.gid, groups, Some(s.clone()), None, claim)
            }
            NamespaceOwner::Project(p) => {
                let (groups, claim) = shared(p.gid)?;
                (p.gid, groups, None, Some(p.clone()), claim)
            }
        };
        groups.sort_unstable();
        groups.dedup();
        Ok(Self {
            user,
            session,
            project,
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

/// [`names::session_private_claim`], joined without the formatting machinery (this runs
/// for every pod in a shared namespace).
fn private_claim(username: &str) -> Result<String, names::NameError> {
    let name = names::object_name(username)?;
    Ok([names::VOLUME_PRIVATE, "-", name.as_str()].concat())
}

/// What is being admitted, as far as identity goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A Pod (CREATE, or an UPDATE that changes its spec).
    Pod,
    /// The `pods/ephemeralcontainers` subresource: someone adds a container to a pod.
    EphemeralContainers,
    /// The pod template of a workload (CREATE, or an UPDATE that changes the template).
    Workload,
    /// An Argo Workflow, CronWorkflow or WorkflowTemplate (CREATE, or an UPDATE that
    /// changes its spec): stamped like a workload, its pods made by the workflow
    /// controller.
    Workflow,
}

impl Subject {
    /// True for what mutation stamps with its person whatever it said: workloads and
    /// workflows (a pod is refused instead).
    fn is_stamped(self) -> bool {
        matches!(self, Subject::Workload | Subject::Workflow)
    }
}

/// True when a trusted controller's `homestead.dev/run-as` can only have come from
/// homestead: the object's controller (`metadata.ownerReferences`) is a kind homestead
/// stamps, and one that the requester makes objects of this subject from. The built-in
/// controllers make pods and workloads from built-in workloads, and the controllers of
/// configured kinds (`workloadKinds`, also in `trustedControllers`) from those; Argo's workflow
/// controller (`workflowControllers`) makes pods from Workflows and Workflows from
/// CronWorkflows, nothing else.
pub fn stamped_by_homestead(
    config: &Config,
    requester: &str,
    subject: Subject,
    controller: Option<(&str, &str)>,
) -> bool {
    let Some((group, kind)) = controller else {
        return false;
    };
    let built_in = config.trusted_controllers.iter().any(|t| t == requester)
        && matches!(subject, Subject::Pod | Subject::Workload)
        && PodKind::from_group_kind(group, kind).is_some_and(PodKind::makes_pods);
    // A configured kind's controller (listed in trustedControllers) makes pods, or
    // workloads, from the templates homestead stamped in it.
    let configured = config.trusted_controllers.iter().any(|t| t == requester)
        && matches!(subject, Subject::Pod | Subject::Workload)
        && config
            .workload_kinds
            .iter()
            .any(|k| k.group == group && k.kind == kind);
    let argo = config.workflow_controllers.iter().any(|t| t == requester)
        && group == argo::GROUP
        && matches!(
            (subject, kind),
            (Subject::Pod, "Workflow") | (Subject::Workflow, "CronWorkflow")
        );
    built_in || configured || argo
}

/// Everything identity resolution looks at.
#[derive(Debug, Clone, Copy)]
pub struct Attribution<'a> {
    /// Who sent the request.
    pub requester: Requester<'a>,
    /// What is admitted.
    pub subject: Subject,
    /// Which webhook asks: the mutating one may overwrite what the validating one checks.
    pub webhook: Webhook,
    /// `homestead.dev/run-as` on the pod or template.
    pub run_as: Option<&'a str>,
    /// On a change of an existing object, `homestead.dev/run-as` of the old object
    /// (`Some(None)`: it had none); `None` on CREATE.
    pub old_run_as: Option<Option<&'a str>>,
    /// The controller of the object (`metadata.ownerReferences`), as `(group, kind)`.
    pub controller: Option<(&'a str, &'a str)>,
}

/// The annotation in messages.
pub(crate) const RUN_AS_FIELD: &str = "metadata.annotations[\"homestead.dev/run-as\"]";

/// Decides who a pod or template in the managed namespace `namespace` runs as.
pub fn resolve(
    config: &Config,
    directory: &Directory,
    namespace: &str,
    owner: &NamespaceOwner,
    who: &Attribution<'_>,
) -> Result<Identity, Denial> {
    let username: &str = match owner {
        NamespaceOwner::User(user) => {
            // A user namespace runs everything as its owner. Its ServiceAccounts act for
            // the owner, but another person never runs anything as them.
            if let Requester::Person(person) = who.requester
                && person != user.username
            {
                return Err(Denial::new(
                    "not_owner",
                    "",
                    format!(
                        "namespace {namespace} belongs to {}; {person} may not run or change pods in it (people only run pods as themselves)",
                        user.username
                    ),
                ));
            }
            // Mutation writes the annotation, so by validation it must say so.
            if who.webhook == Webhook::Validate
                && let Some(run_as) = who.run_as
                && run_as != user.username
            {
                return Err(Denial::new(
                    "forged_run_as",
                    RUN_AS_FIELD,
                    format!(
                        "{run_as:?} does not own namespace {namespace}; pods here run as {}",
                        user.username
                    ),
                ));
            }
            &user.username
        }
        NamespaceOwner::Session(session) => {
            let shared = Shared::session(session);
            match who.old_run_as {
                None => created_by(config, namespace, &shared, who)?,
                Some(old) => changed_by(config, namespace, owner, &shared, who, old)?,
            }
        }
        NamespaceOwner::Project(_) => {
            let shared = Shared::PROJECT;
            match who.old_run_as {
                None => created_by(config, namespace, &shared, who)?,
                Some(old) => changed_by(config, namespace, owner, &shared, who, old)?,
            }
        }
    };
    let user = checked_user(config, directory, owner, username)?;
    Identity::new(user, namespace, owner)
}

/// What the rules of a namespace shared by members (a session's or a project's) need to
/// know about it.
struct Shared<'a> {
    /// `session` or `project`, for messages.
    what: &'static str,
    /// The member unattributed pods run as (sessions only, when configured).
    default_member: Option<&'a str>,
}

impl<'a> Shared<'a> {
    const PROJECT: Shared<'static> = Shared {
        what: "project",
        default_member: None,
    };

    fn session(session: &'a SessionEntry) -> Self {
        Shared {
            what: "session",
            default_member: session.default_member.as_deref(),
        }
    }
}

/// The member a new pod or template in a session or project namespace runs as.
fn created_by<'a>(
    config: &Config,
    namespace: &str,
    session: &Shared<'a>,
    who: &Attribution<'a>,
) -> Result<&'a str, Denial> {
    match who.requester {
        Requester::Person(person) => {
            // A person's workload is stamped with their name whatever it said.
            let overwrites = who.subject.is_stamped() && who.webhook == Webhook::Mutate;
            if let Some(run_as) = who.run_as
                && run_as != person
                && !overwrites
            {
                return Err(Denial::new(
                    "forged_run_as",
                    RUN_AS_FIELD,
                    format!(
                        "names {run_as:?} but the request comes from {person}; people can only run pods as themselves"
                    ),
                ));
            }
            Ok(person)
        }
        Requester::TrustedController(name) => match who.run_as {
            Some(run_as) => {
                let believed = stamped_by_homestead(config, name, who.subject, who.controller);
                if !believed {
                    let from = who.controller.map_or_else(
                        || "no controller".to_owned(),
                        |(group, kind)| {
                            if group.is_empty() {
                                format!("a {kind}")
                            } else {
                                format!("a {kind} ({group})")
                            }
                        },
                    );
                    return Err(Denial::new(
                        "unstamped_controller",
                        "metadata.ownerReferences",
                        format!(
                            "{name} made this from {from}, which homestead does not stamp for it, so its homestead.dev/run-as {run_as:?} cannot have come from homestead"
                        ),
                    ));
                }
                Ok(run_as)
            }
            None => unattributed(config, namespace, session, who),
        },
        Requester::Homestead(_) | Requester::Admin(_) => match who.run_as {
            Some(run_as) => Ok(run_as),
            None => unattributed(config, namespace, session, who),
        },
        Requester::Other(name) => match who.run_as {
            None => unattributed(config, namespace, session, who),
            Some(run_as) => {
                let defaulted = config.unattributed_pods == UnattributedPods::DefaultMember
                    && session.default_member == Some(run_as);
                if defaulted {
                    Ok(run_as)
                } else {
                    Err(Denial::new(
                        "forged_run_as",
                        RUN_AS_FIELD,
                        format!(
                            "{name} may not set or change it; only people and trusted controllers attribute pods"
                        ),
                    ))
                }
            }
        },
    }
}

/// The member a changed pod or template (or a pod that gets an ephemeral container) in a
/// session namespace runs as: whoever its old stamp names, and only when the requester
/// acts for them.
fn changed_by<'a>(
    config: &Config,
    namespace: &str,
    owner: &NamespaceOwner,
    session: &Shared<'a>,
    who: &Attribution<'a>,
    old: Option<&'a str>,
) -> Result<&'a str, Denial> {
    let Some(old) = old else {
        // Never stamped: attributed as if it were new.
        return created_by(config, namespace, session, who);
    };
    if who.requester.is_privileged() {
        // homestead and cluster admins may re-stamp.
        return Ok(who.run_as.unwrap_or(old));
    }
    if !acts_for(config, owner, who.requester, old) {
        let requester = who.requester.name();
        let (field, message) = match who.subject {
            Subject::Workload => (
                "template",
                format!(
                    "this workload runs as {old}; only {old} (or a cluster admin) may change its pod template, {requester} may not"
                ),
            ),
            Subject::Workflow => (
                "spec",
                format!(
                    "this workflow runs as {old}; only {old} (or a cluster admin) may change its spec, {requester} may not"
                ),
            ),
            Subject::Pod => (
                "spec",
                format!(
                    "this pod runs as {old}; only {old} (or a cluster admin) may change it, {requester} may not"
                ),
            ),
            Subject::EphemeralContainers => (
                "spec.ephemeralContainers",
                format!(
                    "the pod runs as {old}; only {old} (or a cluster admin) may add containers to it, {requester} may not"
                ),
            ),
        };
        return Err(Denial::new("not_owner", field, message));
    }
    // The stamp of what exists stays; a person's own workload is re-stamped by mutation.
    let restamped = who.subject.is_stamped() && who.webhook == Webhook::Mutate;
    if who.run_as != Some(old) && !restamped {
        return Err(Denial::new(
            "forged_run_as",
            RUN_AS_FIELD,
            format!(
                "was {old:?}; the stamp of an existing pod or workload may not be changed or removed"
            ),
        ));
    }
    Ok(old)
}

fn unattributed<'a>(
    config: &Config,
    namespace: &str,
    session: &Shared<'a>,
    who: &Attribution<'_>,
) -> Result<&'a str, Denial> {
    if config.unattributed_pods == UnattributedPods::DefaultMember
        && let Some(member) = session.default_member
    {
        return Ok(member);
    }
    let why = match who.requester {
        Requester::TrustedController(name) => {
            format!("{name} created it from a template without the homestead.dev/run-as annotation")
        }
        Requester::Homestead(name) | Requester::Admin(name) => {
            format!("{name} acts for anyone, so it must name the member in homestead.dev/run-as")
        }
        Requester::Other(name) | Requester::Person(name) => {
            format!("{name:?} is neither a member nor a trusted controller")
        }
    };
    Err(Denial::new(
        "unattributed",
        RUN_AS_FIELD,
        format!(
            "cannot tell which member of {} namespace {namespace} this runs as: {why}",
            session.what
        ),
    ))
}

/// The directory user behind `username`, refused when unknown, disabled or not a member
/// (in a project: without a role that runs pods).
fn checked_user(
    config: &Config,
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
    if let NamespaceOwner::Project(project) = owner {
        let namespace = project.namespaces.first().map_or("", String::as_str);
        let Some(role) = project.role_of(username) else {
            return Err(Denial::new(
                "not_member",
                "",
                format!(
                    "user {username:?} is not a member of project {} (namespace {namespace})",
                    project.name
                ),
            ));
        };
        if !config.projects.role(role).is_some_and(|r| r.runs_pods) {
            return Err(Denial::new(
                "role_runs_no_pods",
                "",
                format!(
                    "user {username:?} is a member of project {} with role {role:?}, which does not run pods",
                    project.name
                ),
            ));
        }
    }
    Ok(user.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_claims_are_the_names_modules() {
        for username in [
            "ada",
            "Ada.Lovelace_2",
            "x",
            "",
            "-ada",
            "a b",
            &"a".repeat(64),
        ] {
            assert_eq!(
                private_claim(username),
                names::session_private_claim(username),
                "{username:?}"
            );
        }
    }

    #[test]
    fn requesters_are_classified() {
        let mut config = Config::default();
        let none: [&str; 0] = [];
        let classify =
            |config: &Config, name: &'static str| Requester::classify(config, name, &none);
        assert_eq!(classify(&config, "ada"), Requester::Person("ada"));
        assert_eq!(
            classify(&config, "system:serviceaccount:kube-system:job-controller"),
            Requester::TrustedController("system:serviceaccount:kube-system:job-controller")
        );
        assert_eq!(
            classify(
                &config,
                "system:serviceaccount:kube-system:replication-controller"
            ),
            Requester::TrustedController(
                "system:serviceaccount:kube-system:replication-controller"
            )
        );
        assert!(matches!(
            classify(&config, "system:serviceaccount:argo:argo"),
            Requester::Other(_)
        ));
        assert_eq!(
            classify(&config, "system:serviceaccount:homestead:homestead"),
            Requester::Homestead("system:serviceaccount:homestead:homestead")
        );
        assert_eq!(
            Requester::classify(&config, "root", &["system:authenticated", "system:masters"]),
            Requester::Admin("root")
        );
        config.username_prefix = "oidc:".into();
        assert_eq!(classify(&config, "oidc:ada"), Requester::Person("ada"));
        assert_eq!(classify(&config, "ada"), Requester::Other("ada"));
        assert_eq!(classify(&config, "oidc:"), Requester::Other("oidc:"));
    }
}
