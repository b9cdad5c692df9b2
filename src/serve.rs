//! `homestead serve`: the admission webhook (and, in a cluster, the controller that keeps
//! its directory current).
//!
//! [`serve`] assembles the pieces in this order, so other components slot in at one place:
//! 1. [`Plan::from_args`] — flags and env resolved into settings, configuration, and where
//!    the directory comes from (a file, the embedded example, or the cluster);
//! 2. one [`SharedState`] and one Prometheus [`Registry`];
//! 3. [`start_directory`] — fills the directory (offline: loaded once and marked synced;
//!    in a cluster: the controller's caches, plus the leader-gated reconcilers unless
//!    `--no-controller`) and registers its metrics into the registry;
//! 4. [`crate::server::start`] — the TLS admission listener and the admin listener;
//! 5. wait for SIGTERM/SIGINT, shut down in order (the admission server first, then the
//!    controller), exit 0.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::core::config::Config;
use crate::core::directory::Directory;
use crate::server::{self, CertificateFiles, Limits, Settings, ShutdownTiming, dev};
use crate::state::SharedState;
use crate::telemetry::{self, LogFormat};

const DEFAULT_LISTEN: &str = "0.0.0.0:8443";
const DEFAULT_ADMIN_LISTEN: &str = "0.0.0.0:8080";

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
    /// Configuration file (YAML) [default: built-in defaults; the example configuration with --dev].
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
    /// configuration and directory; prints a curl command to try it.
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

/// Where the directory comes from.
#[derive(Debug, Clone)]
pub enum DirectorySource {
    /// A directory file, loaded once.
    File(PathBuf),
    /// The example directory compiled into the binary (`--dev`).
    Example,
    /// The cluster's User/Session/PVC objects, kept current by the controller.
    Cluster(ClusterOptions),
}

/// How to reach the cluster and what to run there.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Kubeconfig file; `None` means in-cluster or the default kubeconfig.
    pub kubeconfig: Option<PathBuf>,
    /// Run the leader-gated reconcilers (false: caches only, for admission).
    pub reconcile: bool,
    /// Namespace of the Lease; `None`: the client's default namespace (in a pod, the pod's;
    /// outside, the kubeconfig context's).
    pub lease_namespace: Option<String>,
    /// Name of the Lease.
    pub lease_name: String,
    /// This replica's identity.
    pub identity: String,
    /// Webhook certificate and configuration settings (the leader keeps them when a
    /// configuration name is given).
    pub webhooks: Box<crate::webhooks::Settings>,
}

fn default_identity() -> String {
    ["POD_NAME", "HOSTNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| format!("homestead-{}", std::process::id()))
}

/// `serve`'s flags resolved: what to start.
#[derive(Debug)]
pub struct Plan {
    /// Listener, certificate and limit settings.
    pub settings: Settings,
    /// The configuration.
    pub config: Config,
    /// Where the directory comes from.
    pub directory: DirectorySource,
    /// Development mode.
    pub dev: bool,
}

fn read(path: &Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading the {what} {}", path.display()))
}

fn default_addr(text: &str) -> SocketAddr {
    // The defaults are literals that always parse.
    text.parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)))
}

impl Plan {
    /// Resolves the flags; in dev mode this writes certificates into `certs/` if missing.
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<Self> {
        let (listen, admin_listen) = if args.dev {
            (
                args.listen.unwrap_or(dev::DEV_LISTEN),
                args.admin_listen.unwrap_or(dev::DEV_ADMIN_LISTEN),
            )
        } else {
            (
                args.listen.unwrap_or_else(|| default_addr(DEFAULT_LISTEN)),
                args.admin_listen
                    .unwrap_or_else(|| default_addr(DEFAULT_ADMIN_LISTEN)),
            )
        };

        let certificate = match (&args.tls_cert, &args.tls_key, &args.certs_dir) {
            (Some(cert), Some(key), _) => CertificateFiles {
                cert: cert.clone(),
                key: key.clone(),
            },
            (_, _, Some(dir)) => {
                if args.dev && dev::ensure_certificates(dir)? {
                    tracing::info!(dir = %dir.display(), "wrote development certificates");
                }
                CertificateFiles::in_dir(dir)
            }
            _ if args.dev => {
                let dir = Path::new(dev::DEV_CERTS_DIR);
                if dev::ensure_certificates(dir)? {
                    tracing::info!(dir = %dir.display(), "wrote development certificates");
                }
                CertificateFiles::in_dir(dir)
            }
            _ => bail!(
                "no serving certificate: pass --tls-cert FILE and --tls-key FILE, or --certs-dir DIR (or --dev)"
            ),
        };

        let config = match &args.config {
            Some(path) => Config::from_yaml(&read(path, "configuration")?)
                .with_context(|| format!("configuration {}", path.display()))?,
            None if args.dev => Config::from_yaml(crate::embedded::EXAMPLE_CONFIG)
                .context("the embedded example configuration")?,
            None => Config::default(),
        };

        let directory = match &args.directory {
            Some(path) => DirectorySource::File(path.clone()),
            None if args.dev => DirectorySource::Example,
            None => DirectorySource::Cluster(ClusterOptions {
                kubeconfig: args.kubeconfig.clone(),
                reconcile: !args.no_controller,
                lease_namespace: args.lease_namespace.clone(),
                lease_name: args.lease_name.clone(),
                identity: args.identity.clone().unwrap_or_else(default_identity),
                webhooks: Box::new(crate::webhooks::Settings::from_args(&args.webhooks)?),
            }),
        };

        let mut settings = Settings::new(listen, admin_listen, certificate);
        settings.certificate_check_interval = args.cert_check_interval;
        settings.limits = Limits {
            header_read_timeout: args.header_read_timeout,
            request_timeout: args.request_timeout,
            max_concurrent_requests: args.max_concurrent_requests as usize,
            ..Limits::default()
        };
        settings.shutdown = ShutdownTiming {
            drain_delay: args.drain_delay.unwrap_or(if args.dev {
                Duration::ZERO
            } else {
                ShutdownTiming::default().drain_delay
            }),
            grace_period: args.shutdown_grace,
        };
        Ok(Self {
            settings,
            config,
            directory,
            dev: args.dev,
        })
    }
}

/// Builds a directory from directory-file text, logging the objects it had to skip.
pub fn load_offline_directory(
    config: &Config,
    text: &str,
    origin: &str,
) -> anyhow::Result<Directory> {
    let (directory, problems) =
        Directory::from_yaml(config, text).with_context(|| format!("directory {origin}"))?;
    for problem in &problems {
        tracing::warn!(directory = origin, %problem, "skipped a directory object");
    }
    tracing::info!(
        directory = origin,
        users = directory.user_count(),
        namespaces = directory.namespace_count(),
        "directory loaded"
    );
    Ok(directory)
}

/// A kube client from `kubeconfig`, else the in-cluster configuration or the default
/// kubeconfig.
pub async fn kube_client(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer().await.context(
            "no in-cluster configuration and no usable kubeconfig (pass --kubeconfig FILE)",
        )?,
    };
    kube::Client::try_from(config).context("building the Kubernetes client")
}

/// Background tasks that run only on the replica holding the controller Lease (the LDAP
/// sync, webhook certificate management). Each component adds its factory here; each
/// factory is called whenever leadership is won and its task stops when it is lost.
pub fn leader_tasks(
    config: &Arc<Config>,
    client: &kube::Client,
    registry: &mut Registry,
    webhooks: &crate::webhooks::Settings,
) -> Vec<crate::controller::LeaderTask> {
    let mut tasks: Vec<crate::controller::LeaderTask> = Vec::new();
    if let Some(ldap) = &config.ldap {
        let metrics = crate::ldap::LdapMetrics::register(registry);
        tasks.push(crate::ldap::leader_task(
            client.clone(),
            ldap.clone(),
            metrics,
        ));
    }
    if webhooks.configuration.is_some() {
        let client = client.clone();
        let settings = webhooks.clone();
        tasks.push(Box::new(move |stop| {
            Box::pin(crate::webhooks::run(client.clone(), settings.clone(), stop))
        }));
    }
    tasks
}

/// Fills `state.directory` from `source`, registering the source's metrics into `registry`.
/// Offline sources are loaded once and marked synced. The cluster source starts the
/// controller (caches always; reconcilers while leading, unless disabled), which marks the
/// directory synced once its caches are and stops when `stop` is cancelled; its task is
/// returned.
pub async fn start_directory(
    source: &DirectorySource,
    state: &Arc<SharedState>,
    registry: &mut Registry,
    stop: CancellationToken,
) -> anyhow::Result<Option<tokio::task::JoinHandle<anyhow::Result<()>>>> {
    match source {
        DirectorySource::File(path) => {
            let text = read(path, "directory")?;
            let directory =
                load_offline_directory(&state.config, &text, &path.display().to_string())?;
            state.directory.store(directory);
            state.directory.mark_synced();
            Ok(None)
        }
        DirectorySource::Example => {
            let directory = load_offline_directory(
                &state.config,
                crate::embedded::EXAMPLE_DIRECTORY,
                "(embedded example)",
            )?;
            state.directory.store(directory);
            state.directory.mark_synced();
            Ok(None)
        }
        DirectorySource::Cluster(options) => {
            use crate::controller::{self, ControllerSettings, Metrics};
            let client = kube_client(options.kubeconfig.as_deref()).await?;
            let metrics = Metrics::default();
            metrics.register(registry);
            let lease_namespace = options
                .lease_namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_owned());
            let mut settings = ControllerSettings::new(&lease_namespace, &options.identity);
            settings.lease.name.clone_from(&options.lease_name);
            settings.reconcile = options.reconcile;
            let tasks = if options.reconcile {
                leader_tasks(&state.config, &client, registry, &options.webhooks)
            } else {
                Vec::new()
            };
            tracing::info!(
                identity = %options.identity,
                reconcile = options.reconcile,
                lease = %format!("{lease_namespace}/{}", options.lease_name),
                "watching the cluster"
            );
            Ok(Some(tokio::spawn(controller::run(
                client,
                state.clone(),
                settings,
                metrics,
                tasks,
                stop.cancelled_owned(),
            ))))
        }
    }
}

/// Runs the server until SIGTERM/SIGINT, then shuts down in order.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    server::install_crypto_provider();
    let plan = Plan::from_args(&args)?;
    let state = SharedState::new(Arc::new(plan.config));
    let mut registry = Registry::default();
    let stop_controller = CancellationToken::new();
    let controller = start_directory(
        &plan.directory,
        &state,
        &mut registry,
        stop_controller.clone(),
    )
    .await?;

    let ca = plan.settings.certificate.cert.parent().map(dev::ca_path);
    let running = server::start(plan.settings, state, registry).await?;
    if plan.dev {
        let ca = ca.unwrap_or_else(|| dev::ca_path(Path::new(dev::DEV_CERTS_DIR)));
        println!(
            "homestead is serving on https://{} (admin http://{})",
            running.addr, running.admin_addr
        );
        println!("try it:");
        println!(
            "  {}",
            dev::curl_line(running.addr, &ca, crate::embedded::EXAMPLE_REVIEW_PATH)
        );
    }
    tokio::spawn(server::shutdown::cancel_on_signal(running.stop_token()));
    running.wait().await;
    stop_controller.cancel();
    if let Some(controller) = controller {
        match tokio::time::timeout(Duration::from_secs(10), controller).await {
            Ok(Ok(result)) => result.context("controller")?,
            Ok(Err(e)) => bail!("controller task: {e}"),
            Err(_) => tracing::warn!("controller did not stop within 10s"),
        }
    }
    Ok(())
}

/// Runs `homestead serve`.
pub fn run(args: ServeArgs) -> ExitCode {
    telemetry::init(args.log_format, "info");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("homestead")
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("homestead serve: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("homestead serve: {e:#}");
            ExitCode::FAILURE
        }
    }
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
