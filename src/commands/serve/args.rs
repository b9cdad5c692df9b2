//! The flags of `homestead serve`, each also settable by the environment variable named.
//! What they become is [`super::StartupPlan`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::telemetry::LogFormat;

/// Flags of `homestead serve`; each can also be set by the environment variable named.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address of the TLS admission listener [default: 0.0.0.0:8443; 127.0.0.1:8443 with --dev].
    #[arg(long, env = "HOMESTEAD_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Address of the plain-HTTP admin listener (/livez, /readyz, /metrics)
    /// [default: 0.0.0.0:8080; 127.0.0.1:8080 with --dev].
    #[arg(long, env = "HOMESTEAD_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
    /// Serving certificate (PEM, leaf first); reloaded when the file changes.
    #[arg(
        long,
        env = "HOMESTEAD_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Private key of the serving certificate (PEM).
    #[arg(
        long,
        env = "HOMESTEAD_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Directory holding tls.crt and tls.key (instead of --tls-cert/--tls-key)
    /// [default with --dev: certs].
    #[arg(long, env = "HOMESTEAD_CERTS_DIR", value_name = "DIR", conflicts_with_all = ["tls_cert", "tls_key"])]
    pub certs_dir: Option<PathBuf>,
    /// Configuration file (YAML) [default: the built-in defaults].
    #[arg(long, env = "HOMESTEAD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Offline directory file (YAML list of User and Session objects and dataset claims),
    /// loaded once instead of watching the cluster [default with --dev: the example directory].
    #[arg(long, env = "HOMESTEAD_DIRECTORY", value_name = "FILE")]
    pub directory: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "HOMESTEAD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Development mode: loopback only, certificates generated into certs/, the example
    /// directory; prints a curl command to try it.
    #[arg(long, env = "HOMESTEAD_DEV")]
    pub dev: bool,
    /// After a stop signal, how long in-flight requests may take before connections are cut.
    #[arg(long, env = "HOMESTEAD_SHUTDOWN_GRACE", value_name = "DURATION", default_value = "20s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// After a stop signal, how long to keep accepting while readiness already fails
    /// [default: 2s; 0s with --dev].
    #[arg(long, env = "HOMESTEAD_DRAIN_DELAY", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub drain_delay: Option<Duration>,
    /// Longest time to answer one request (waiting for a slot, reading the body, reviewing).
    #[arg(long, env = "HOMESTEAD_REQUEST_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Longest time a client may take to send request headers (and to sit idle between
    /// requests on a kept-alive HTTP/1.1 connection).
    #[arg(long, env = "HOMESTEAD_HEADER_READ_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,
    /// Requests handled at once; more wait for a slot.
    #[arg(long, env = "HOMESTEAD_MAX_CONCURRENT_REQUESTS", value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_requests: u32,
    /// How often the certificate files are checked for changes (they are also checked
    /// before every TLS handshake).
    #[arg(long, env = "HOMESTEAD_CERT_CHECK_INTERVAL", value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub cert_check_interval: Duration,
    /// Kubeconfig file for reaching the cluster [default: in-cluster configuration, else
    /// $KUBECONFIG or ~/.kube/config].
    #[arg(long, env = "HOMESTEAD_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Serve admission only: the caches still watch the cluster to feed admission, but
    /// nothing is reconciled and no lease is taken. Also accepts `--no-controller=false`.
    #[arg(
        long,
        env = "HOMESTEAD_NO_CONTROLLER",
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub no_controller: bool,
    /// Namespace of the leader-election Lease [default: in a pod, the pod's namespace;
    /// outside, the kubeconfig context's namespace, else `default`].
    #[arg(long, env = "HOMESTEAD_NAMESPACE", value_name = "NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Name of the leader-election Lease: replicas of one installation share it; two
    /// installations in one namespace need different names.
    #[arg(
        long,
        env = "HOMESTEAD_LEASE_NAME",
        value_name = "NAME",
        default_value = crate::controller::DEFAULT_LEASE_NAME
    )]
    pub lease_name: String,
    /// This replica's identity in the Lease [default: $POD_NAME, else $HOSTNAME, else a
    /// name made from the process id].
    #[arg(long, env = "HOMESTEAD_IDENTITY", value_name = "NAME")]
    pub identity: Option<String>,
    /// Webhook certificates and configurations, kept by the leader (in a cluster).
    #[command(flatten)]
    pub webhooks: crate::webhooks::WebhookArgs,
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_controller_takes_an_optional_value() {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            args: super::ServeArgs,
        }
        for (argv, want) in [
            (vec!["x"], false),
            (vec!["x", "--no-controller"], true),
            (vec!["x", "--no-controller=true"], true),
            (vec!["x", "--no-controller=false"], false),
        ] {
            let parsed = Wrap::try_parse_from(&argv).unwrap();
            assert_eq!(parsed.args.no_controller, want, "{argv:?}");
        }
    }
}
