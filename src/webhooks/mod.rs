//! The webhook certificates and the two webhook configurations, looked after by the leader.
//!
//! - `homestead_core::certs::rotation` — pure: given the certificate Secret and the time,
//!   what to change next (create, renew the serving certificate, add a CA, switch signer,
//!   drop the old CA), carried out with [`crate::certs::Ring`];
//! - `homestead_core::webhooks` — pure: the webhooks exactly as the chart installs them;
//! - [`bootstrap`] — `homestead webhook-secret`, the init container that creates the
//!   Secret before the first server starts;
//! - [`registration`] — the Kubernetes calls: the Secret, both webhook configurations,
//!   caBundle and drift repair, and the leader task [`run`].
//!
//! Modes (`--cert-mode`):
//! - `self`: the leader keeps a private CA and serving certificate in the Secret and the CA
//!   in both configurations' `caBundle`, rotating with overlap;
//! - `cert-manager`: cert-manager writes the Secret and cainjector the `caBundle`; the
//!   leader repairs rules and selectors but never touches `caBundle`;
//! - `external`: the Secret is the operator's; the leader keeps `caBundle` equal to
//!   `--ca-bundle`.
//!
//! Every replica serves from the mounted Secret (`tls.crt`, `tls.key`) and reloads it when
//! the kubelet updates the volume; only the leader writes.

pub mod bootstrap;
pub mod registration;

use std::time::Duration;

use base64::Engine;
use thiserror::Error;

pub use registration::{RegistrationReport, reconcile_once, run};

use homestead_core::certs::MaterialError;
use homestead_core::certs::rotation::{Policy, PolicyError};
use homestead_core::webhooks::{Registration, Target};

/// Where the serving certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CertMode {
    /// The leader makes, stores, publishes and rotates a private CA and serving certificate.
    #[value(name = "self")]
    SelfSigned,
    /// cert-manager makes the Secret; cainjector writes `caBundle`.
    #[value(name = "cert-manager")]
    CertManager,
    /// An existing Secret; `--ca-bundle` is the CA to publish.
    #[value(name = "external")]
    External,
}

/// Flags of the webhook certificate and registration task (flattened into `serve`).
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookArgs {
    /// Where the webhook serving certificate comes from.
    #[arg(long, env = "HOMESTEAD_CERT_MODE", value_enum, default_value = "self")]
    pub cert_mode: CertMode,
    /// Secret (in homestead's namespace) holding the serving certificate.
    #[arg(
        long,
        env = "HOMESTEAD_CERT_SECRET",
        default_value = "homestead-webhook-tls"
    )]
    pub cert_secret: String,
    /// Name of both webhook configurations (one Mutating, one Validating) the leader keeps
    /// (and, in `self` mode, the certificate Secret); unset leaves all of them alone, as
    /// when running outside the cluster against configurations registered by hand.
    #[arg(long, env = "HOMESTEAD_WEBHOOK_CONFIGURATION", default_value = "")]
    pub webhook_configuration: String,
    /// Service the webhooks call (in homestead's namespace).
    #[arg(long, env = "HOMESTEAD_WEBHOOK_SERVICE", default_value = "homestead")]
    pub webhook_service: String,
    /// Port of that Service.
    #[arg(long, env = "HOMESTEAD_WEBHOOK_SERVICE_PORT", default_value_t = 443)]
    pub webhook_service_port: u16,
    /// Register this https URL (paths /mutate and /validate appended) instead of the Service.
    #[arg(long, env = "HOMESTEAD_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// homestead's own namespace (never selected by the webhooks; holds the Secret).
    #[arg(long, env = "POD_NAMESPACE", default_value = "homestead")]
    pub webhook_namespace: String,
    /// Further namespaces the webhooks never select (comma-separated); `kube-system` and
    /// homestead's namespace always are.
    #[arg(
        long,
        env = "HOMESTEAD_WEBHOOK_EXCLUDED_NAMESPACES",
        value_delimiter = ','
    )]
    pub webhook_excluded_namespaces: Vec<String>,
    /// What the API server does when homestead cannot be reached.
    #[arg(long, env = "HOMESTEAD_WEBHOOK_FAILURE_POLICY", default_value = "Fail", value_parser = ["Fail", "Ignore"])]
    pub webhook_failure_policy: String,
    /// Seconds the API server waits for a review.
    #[arg(long, env = "HOMESTEAD_WEBHOOK_TIMEOUT_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(i32).range(1..=30))]
    pub webhook_timeout_seconds: i32,
    /// CA certificate(s) to publish in `external` mode: PEM, or base64 of PEM
    /// (`--ca-bundle "$(cat ca.crt)"`: a value may start with the PEM's dashes).
    #[arg(long, env = "HOMESTEAD_CA_BUNDLE", allow_hyphen_values = true)]
    pub ca_bundle: Option<String>,
    /// Lifetime of the private CA (`self` mode).
    #[arg(long, env = "HOMESTEAD_CA_VALIDITY", default_value = "365days", value_parser = humantime::parse_duration)]
    pub ca_validity: Duration,
    /// Lifetime of each serving certificate (`self` mode).
    #[arg(long, env = "HOMESTEAD_CERT_VALIDITY", default_value = "30days", value_parser = humantime::parse_duration)]
    pub cert_validity: Duration,
    /// How long a new CA or serving certificate is given to reach every API server and
    /// replica before the next rotation step relies on it.
    #[arg(long, env = "HOMESTEAD_CERT_OVERLAP", default_value = "5m", value_parser = humantime::parse_duration)]
    pub cert_overlap: Duration,
}

/// Why the webhook flags cannot be used.
#[derive(Debug, Error)]
pub enum SettingsError {
    /// `external` without `--ca-bundle`.
    #[error(
        "--cert-mode external needs --ca-bundle (HOMESTEAD_CA_BUNDLE): the CA that signed the Secret's certificate"
    )]
    MissingCaBundle,
    /// `--ca-bundle` is neither PEM nor base64 of PEM.
    #[error("--ca-bundle is neither PEM nor base64 of PEM: {0}")]
    BadCaBundle(String),
    /// The CA in `--ca-bundle` does not parse.
    #[error("--ca-bundle: {0}")]
    CaBundle(#[from] MaterialError),
    /// `--webhook-url` is not an https URL with a host.
    #[error("--webhook-url {0:?} must be an https:// URL with a host")]
    BadUrl(String),
    /// Lifetimes cannot fit a rotation.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// The checked settings of the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Certificate mode.
    pub mode: CertMode,
    /// homestead's namespace (holds the Secret).
    pub namespace: String,
    /// Name of the certificate Secret.
    pub secret: String,
    /// Name of both webhook configurations; `None`: do not manage them.
    pub configuration: Option<String>,
    /// What the webhooks are built from.
    pub registration: Registration,
    /// The CA published in `external` mode (PEM).
    pub ca_bundle: Option<Vec<u8>>,
    /// Rotation lifetimes.
    pub policy: Policy,
    /// Names the serving certificate must carry (`self` mode).
    pub names: Vec<String>,
}

impl WebhookSettings {
    /// Checks the flags.
    pub fn from_args(args: &WebhookArgs) -> Result<Self, SettingsError> {
        let policy = Policy {
            ca_validity: args.ca_validity,
            cert_validity: args.cert_validity,
            overlap: args.cert_overlap,
        };
        policy.check()?;
        let ns = args.webhook_namespace.clone();
        let (target, names) = match args.webhook_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => {
                let uri: http::Uri = url
                    .parse()
                    .map_err(|_| SettingsError::BadUrl(url.to_owned()))?;
                let host = uri
                    .host()
                    .filter(|_| uri.scheme_str() == Some("https"))
                    .ok_or_else(|| SettingsError::BadUrl(url.to_owned()))?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                (Target::Url(url.to_owned()), vec![host.to_owned()])
            }
            None => {
                let svc = args.webhook_service.clone();
                let names = vec![
                    svc.clone(),
                    format!("{svc}.{ns}"),
                    format!("{svc}.{ns}.svc"),
                    format!("{svc}.{ns}.svc.cluster.local"),
                ];
                (
                    Target::Service {
                        name: svc,
                        namespace: ns.clone(),
                        port: i32::from(args.webhook_service_port),
                    },
                    names,
                )
            }
        };
        let ca_bundle = match (args.cert_mode, args.ca_bundle.as_deref()) {
            (CertMode::External, None) => return Err(SettingsError::MissingCaBundle),
            (CertMode::External, Some(text)) => Some(decode_ca_bundle(text)?),
            _ => None,
        };
        Ok(WebhookSettings {
            mode: args.cert_mode,
            namespace: ns.clone(),
            secret: args.cert_secret.clone(),
            configuration: Some(args.webhook_configuration.clone()).filter(|c| !c.is_empty()),
            registration: Registration {
                target,
                namespace: ns,
                excluded_namespaces: args
                    .webhook_excluded_namespaces
                    .iter()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect(),
                failure_policy: args.webhook_failure_policy.clone(),
                timeout_seconds: args.webhook_timeout_seconds,
                // Set from the configuration by `serve` (`KindRule::from_config`).
                workload_kinds: Vec::new(),
            },
            ca_bundle,
            policy,
            names,
        })
    }
}

/// Accepts PEM or base64 of PEM; returns PEM after checking it holds certificates.
pub fn decode_ca_bundle(text: &str) -> Result<Vec<u8>, SettingsError> {
    let pem = if text.contains("-----BEGIN") {
        text.as_bytes().to_vec()
    } else {
        let compact: String = text.split_whitespace().collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|e| SettingsError::BadCaBundle(e.to_string()))?
    };
    homestead_core::certs::parse_certificates("--ca-bundle", &pem)?;
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        webhooks: WebhookArgs,
    }

    fn parse(args: &[&str]) -> Result<WebhookSettings, String> {
        let cli = Cli::try_parse_from(std::iter::once("homestead").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        WebhookSettings::from_args(&cli.webhooks).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_self_mode_behind_the_service_and_manage_nothing() {
        let s = parse(&[]).expect("defaults");
        assert_eq!(s.mode, CertMode::SelfSigned);
        assert_eq!(s.configuration, None);
        let s = parse(&["--webhook-configuration", "homestead"]).expect("named");
        assert_eq!(s.configuration.as_deref(), Some("homestead"));
        assert!(s.names.contains(&"homestead.homestead.svc".to_owned()));
        assert_eq!(s.registration.excluded(), ["kube-system", "homestead"]);
        assert_eq!(s.registration.timeout_seconds, 5);
    }

    #[test]
    fn url_registers_its_host_as_the_certificate_name() {
        let s = parse(&["--webhook-url", "https://192.0.2.7:8443"]).expect("url");
        assert_eq!(s.names, ["192.0.2.7"]);
        assert_eq!(
            s.registration.target,
            Target::Url("https://192.0.2.7:8443".into())
        );
        let err = parse(&["--webhook-url", "http://127.0.0.1:8443"]).unwrap_err();
        assert!(err.contains("https://"), "{err}");
    }

    #[test]
    fn external_needs_a_ca_that_parses() {
        let err = parse(&["--cert-mode", "external"]).unwrap_err();
        assert!(err.contains("--ca-bundle"), "{err}");
        let err =
            parse(&["--cert-mode", "external", "--ca-bundle", "bm90IGEgY2VydA=="]).unwrap_err();
        assert!(err.contains("no PEM certificate"), "{err}");
        let ca = crate::certs::CertificateAuthority::generate("test CA", Duration::from_secs(3600))
            .expect("ca");
        let b64 = base64::engine::general_purpose::STANDARD.encode(ca.cert_pem());
        for given in [ca.cert_pem(), b64.as_str()] {
            let flag = format!("--ca-bundle={given}");
            let s = parse(&["--cert-mode", "external", &flag]).expect("external");
            assert_eq!(s.ca_bundle.as_deref(), Some(ca.cert_pem().as_bytes()));
            // As a separate argument, as `--ca-bundle "$(cat certs/ca.crt)"` passes it.
            let s = parse(&["--ca-bundle", given, "--cert-mode", "external"]).expect("separate");
            assert_eq!(s.ca_bundle.as_deref(), Some(ca.cert_pem().as_bytes()));
        }
    }

    #[test]
    fn lifetimes_too_short_for_a_rotation_are_refused() {
        let err = parse(&["--ca-validity", "20m", "--cert-overlap", "5m"]).unwrap_err();
        assert!(err.contains("CA validity"), "{err}");
        let err = parse(&["--cert-validity", "10m"]).unwrap_err();
        assert!(err.contains("certificate validity"), "{err}");
    }
}
