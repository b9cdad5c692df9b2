//! The `hooks` section: the site's HTTP endpoints told of (and, when blocking, asked
//! about) every User, Session and Project change. What is sent and when is decided in
//! [`crate::hooks`]; the HTTP calls are the shell's.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ldap::human_duration;
use super::{Problem, SecretRef, check_absolute, problem};

/// The longest `timeout` a hook may have: a blocking hook is called inside a reconcile.
pub const MAX_HOOK_TIMEOUT: Duration = Duration::from_secs(60);
/// The `timeout` of a hook that names none.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// One site hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HookConfig {
    /// Its name: a DNS label, unique among the hooks. It names the hook in metrics,
    /// events, conditions and the `homestead.dev/skip-hooks` annotation.
    pub name: String,
    /// Where the JSON is POSTed: `https://host[:port]/path` or `http://...`.
    pub url: String,
    /// PEM certificates trusted for an `https` URL (instead of the system's roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// A PEM file of certificates trusted for an `https` URL, read at start-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// The kinds whose changes it hears of; default all three.
    #[serde(default = "all_kinds")]
    pub kinds: Vec<HookKind>,
    /// The changes it hears of; default all three.
    #[serde(default = "all_events")]
    pub events: Vec<HookEvent>,
    /// Called before the change, which waits for a 2xx answer; otherwise called after
    /// it and never waited for.
    #[serde(default)]
    pub blocking: bool,
    /// How long one call may take (connecting, sending and the whole answer).
    #[serde(default = "default_timeout", with = "human_duration")]
    pub timeout: Duration,
    /// A Secret with key `token` (sent as `Authorization: Bearer`) or keys `username`
    /// and `password` (sent as `Authorization: Basic`); read at each call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<SecretRef>,
}

/// The kinds a hook hears of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HookKind {
    /// `User`.
    User,
    /// `Session`.
    Session,
    /// `Project`.
    Project,
}

impl HookKind {
    /// The kind as written (`User`, `Session`, `Project`).
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::User => "User",
            HookKind::Session => "Session",
            HookKind::Project => "Project",
        }
    }
}

/// The changes a hook hears of.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum HookEvent {
    /// The object's namespace and objects are about to be made for the first time.
    #[default]
    Create,
    /// The object's spec changed (a new `metadata.generation`) after it was made.
    Update,
    /// The object is being deleted (its finalizer is about to clean up).
    Delete,
}

impl HookEvent {
    /// The event as sent (`CREATE`, `UPDATE`, `DELETE`).
    pub fn as_str(self) -> &'static str {
        match self {
            HookEvent::Create => "CREATE",
            HookEvent::Update => "UPDATE",
            HookEvent::Delete => "DELETE",
        }
    }
}

fn all_kinds() -> Vec<HookKind> {
    vec![HookKind::User, HookKind::Session, HookKind::Project]
}

fn all_events() -> Vec<HookEvent> {
    vec![HookEvent::Create, HookEvent::Update, HookEvent::Delete]
}

fn default_timeout() -> Duration {
    DEFAULT_HOOK_TIMEOUT
}

/// A hook URL taken apart: what the shell connects to and what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookUrl {
    /// `https` (true) or `http`.
    pub tls: bool,
    /// Host name or IP address (an IPv6 address without its brackets).
    pub host: String,
    /// Port (default 443 or 80).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HookUrl {
    /// Parses `https://host[:port][/path]` or `http://...`; no user info, no fragment.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("{url:?} must start with https:// or http://"));
        };
        if url.contains('#') {
            return Err(format!("{url:?} must not have a fragment (#...)"));
        }
        if url
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(format!("{url:?} must not contain spaces"));
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err(format!(
                "{url:?} must not carry credentials; use credentialsSecret"
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((host, after)) = v6.split_once(']') else {
                return Err(format!("{url:?}: unclosed '[' in the host"));
            };
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        let port = match port {
            None => {
                if tls {
                    443
                } else {
                    80
                }
            }
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(format!("{url:?}: {p:?} is not a port")),
            },
        };
        let path = if path.is_empty() {
            "/".to_owned()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        Ok(Self {
            tls,
            host: host.to_owned(),
            port,
            path,
        })
    }
}

/// True when `name` is a DNS label (lower-case letters, digits and `-`, at most 63).
fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

/// Checks every hook, adding each problem with its path (`hooks[0].url`).
pub(super) fn check(hooks: &[HookConfig], problems: &mut Vec<Problem>) {
    for (i, hook) in hooks.iter().enumerate() {
        let at = |field: &str| format!("hooks[{i}].{field}");
        if !is_dns_label(&hook.name) {
            problems.push(problem(
                &at("name"),
                format!(
                    "{:?} must be a DNS label (lower-case letters, digits and '-', at most 63)",
                    hook.name
                ),
            ));
        } else if hooks[..i].iter().any(|h| h.name == hook.name) {
            problems.push(problem(
                &at("name"),
                format!("{:?} is the name of an earlier hook", hook.name),
            ));
        }
        let url = HookUrl::parse(&hook.url);
        if let Err(message) = &url {
            problems.push(problem(&at("url"), message.clone()));
        }
        let tls = url.as_ref().is_ok_and(|u| u.tls);
        if hook.ca_bundle.is_some() && hook.ca_file.is_some() {
            problems.push(problem(
                &at("caBundle"),
                "give caBundle or caFile, not both".into(),
            ));
        }
        if (hook.ca_bundle.is_some() || hook.ca_file.is_some()) && url.is_ok() && !tls {
            problems.push(problem(
                &at("url"),
                "caBundle and caFile need an https:// URL".into(),
            ));
        }
        if let Some(bundle) = &hook.ca_bundle
            && !bundle.contains("-----BEGIN CERTIFICATE-----")
        {
            problems.push(problem(
                &at("caBundle"),
                "must hold PEM certificates (-----BEGIN CERTIFICATE-----)".into(),
            ));
        }
        if let Some(file) = &hook.ca_file {
            check_absolute(&at("caFile"), file, problems);
        }
        if hook.credentials_secret.is_some() && url.is_ok() && !tls {
            problems.push(problem(
                &at("credentialsSecret"),
                "credentials are only sent over https:// (the URL is http://)".into(),
            ));
        }
        if let Some(secret) = &hook.credentials_secret
            && (secret.namespace.trim().is_empty() || secret.name.trim().is_empty())
        {
            problems.push(problem(
                &at("credentialsSecret"),
                "needs a namespace and a name".into(),
            ));
        }
        if hook.kinds.is_empty() {
            problems.push(problem(
                &at("kinds"),
                "is empty: name User, Session and/or Project".into(),
            ));
        }
        if hook.events.is_empty() {
            problems.push(problem(
                &at("events"),
                "is empty: name CREATE, UPDATE and/or DELETE".into(),
            ));
        }
        if hook.timeout.is_zero() || hook.timeout > MAX_HOOK_TIMEOUT {
            problems.push(problem(
                &at("timeout"),
                format!(
                    "{} must be more than 0 and at most {}",
                    humantime::format_duration(hook.timeout),
                    humantime::format_duration(MAX_HOOK_TIMEOUT)
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError};

    #[test]
    fn the_issue_example_parses_with_defaults_filled() {
        let yaml = r#"
hooks:
  - name: quota
    url: https://quota.example.org/homestead
    kinds: [User, Session, Project]
    events: [CREATE, UPDATE, DELETE]
    blocking: true
    timeout: 10s
    credentialsSecret: {namespace: homestead, name: quota-hook}
  - name: ticketing
    url: http://tickets.example.org:8080/hook?site=dls
"#;
        let hooks = Config::from_yaml(yaml).unwrap().hooks;
        assert_eq!(hooks.len(), 2);
        assert!(hooks[0].blocking);
        assert_eq!(hooks[0].timeout, Duration::from_secs(10));
        assert_eq!(
            hooks[0].credentials_secret,
            Some(SecretRef {
                namespace: "homestead".into(),
                name: "quota-hook".into()
            })
        );
        // Defaults: every kind, every event, notifying, 10 s.
        assert!(!hooks[1].blocking);
        assert_eq!(hooks[1].kinds, all_kinds());
        assert_eq!(hooks[1].events, all_events());
        assert_eq!(hooks[1].timeout, DEFAULT_HOOK_TIMEOUT);
        assert!(Config::default().hooks.is_empty());
    }

    #[test]
    fn urls_are_taken_apart() {
        for (url, want) in [
            (
                "https://q.example.org/homestead",
                Ok((true, "q.example.org", 443, "/homestead")),
            ),
            ("http://127.0.0.1:8080", Ok((false, "127.0.0.1", 8080, "/"))),
            ("http://h?x=1", Ok((false, "h", 80, "/?x=1"))),
            (
                "https://[::1]:9443/a/b?c",
                Ok((true, "::1", 9443, "/a/b?c")),
            ),
            ("ftp://h/", Err("must start with https:// or http://")),
            ("https:///x", Err("has no host")),
            ("https://h:0/", Err("is not a port")),
            ("https://h:99999/", Err("is not a port")),
            ("https://u:p@h/", Err("must not carry credentials")),
            ("https://h/#frag", Err("fragment")),
            ("https://h/a b", Err("spaces")),
            ("https://[::1/", Err("unclosed")),
        ] {
            match (HookUrl::parse(url), want) {
                (Ok(got), Ok((tls, host, port, path))) => assert_eq!(
                    (got.tls, got.host.as_str(), got.port, got.path.as_str()),
                    (tls, host, port, path),
                    "{url}"
                ),
                (Err(got), Err(want)) => assert!(got.contains(want), "{url}: {got}"),
                (got, want) => panic!("{url}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn every_problem_of_every_hook_is_reported_with_its_path() {
        let yaml = r#"
hooks:
  - {name: Quota, url: "https://q/", kinds: [], events: []}
  - {name: tickets, url: "gopher://t/", timeout: 0s}
  - {name: tickets, url: "http://t/", caFile: relative.pem, timeout: 2m,
     credentialsSecret: {namespace: homestead, name: ""}}
  - {name: both, url: "https://b/", caBundle: "not pem", caFile: /etc/ca.pem}
"#;
        let Err(ConfigError::Invalid(problems)) = Config::from_yaml(yaml) else {
            panic!("expected problems");
        };
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let want = [
            "hooks[0].name: \"Quota\" must be a DNS label",
            "hooks[0].kinds: is empty",
            "hooks[0].events: is empty",
            "hooks[1].url: \"gopher://t/\" must start with https:// or http://",
            "hooks[1].timeout: 0s must be more than 0",
            "hooks[2].name: \"tickets\" is the name of an earlier hook",
            "hooks[2].url: caBundle and caFile need an https:// URL",
            "hooks[2].caFile: \"relative.pem\" must be an absolute path",
            "hooks[2].credentialsSecret: credentials are only sent over https://",
            "hooks[2].credentialsSecret: needs a namespace and a name",
            "hooks[2].timeout: 2m must be more than 0 and at most 1m",
            "hooks[3].caBundle: give caBundle or caFile, not both",
            "hooks[3].caBundle: must hold PEM certificates",
        ];
        for want in want {
            assert!(
                lines.iter().any(|l| l.starts_with(want)),
                "missing {want:?} in {lines:#?}"
            );
        }
        assert_eq!(lines.len(), want.len(), "{lines:#?}");
    }

    #[test]
    fn unknown_kinds_and_events_are_parse_errors() {
        for yaml in [
            "hooks: [{name: a, url: 'http://a/', kinds: [Pod]}]",
            "hooks: [{name: a, url: 'http://a/', events: [create]}]",
            "hooks: [{name: a, url: 'http://a/', blocked: true}]",
            "hooks: [{name: a}]",
        ] {
            assert!(
                matches!(Config::from_yaml(yaml), Err(ConfigError::Parse(_))),
                "{yaml}"
            );
        }
    }
}
