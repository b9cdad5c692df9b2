//! `homestead serve`: the admission webhook (and, in a cluster, the controller that keeps
//! its directory current). Its flags are [`args`]; this module wires them.
//!
//! [`serve`] assembles the pieces in this order, so other components slot in at one place:
//! 1. [`StartupPlan::from_args`] — flags and env resolved into the server settings, the
//!    configuration, and where the directory comes from (a file, the embedded example, or
//!    the cluster with its controller settings);
//! 2. one [`SharedState`] and one Prometheus [`Registry`];
//! 3. [`start_directory`] — fills the directory (offline: loaded once and marked synced;
//!    in a cluster: the controller's caches, plus the leader-gated reconcilers and
//!    [`leader_tasks`] unless `--no-controller`) and registers its metrics;
//! 4. [`crate::server::start`] — the TLS admission listener and the admin listener;
//! 5. wait for SIGTERM/SIGINT, shut down in order (the admission server first, then the
//!    controller), exit 0.

pub mod args;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::{Api, ObjectMeta, PostParams};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

pub use args::ServeArgs;

use super::inputs::{load_config, load_directory};
use super::{kube_client, runtime};
use crate::certs::CertificateFiles;
use crate::controller::{self, ControllerSettings, LeaderTask, Metrics};
use crate::server::{self, Limits, ServerSettings, ShutdownTiming, dev};
use crate::state::SharedState;
use crate::telemetry;
use crate::webhooks::WebhookSettings;
use homestead_core::config::Config;
use homestead_core::webhooks::KindRule;

const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 8443);
const DEFAULT_ADMIN_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 8080);

/// Where the directory comes from.
#[derive(Debug, Clone)]
pub enum DirectorySource {
    /// A directory file, or the example directory compiled in (`None`), loaded once.
    Offline(Option<PathBuf>),
    /// The cluster's User/Session/PVC objects, kept current by the controller.
    Cluster(Box<ClusterPlan>),
}

/// How to reach the cluster and what to run there.
#[derive(Debug, Clone)]
pub struct ClusterPlan {
    /// Kubeconfig file; `None` means in-cluster or the default kubeconfig.
    pub kubeconfig: Option<PathBuf>,
    /// How the controller runs (reconcilers or caches only, the Lease).
    pub controller: ControllerSettings,
    /// Namespace of the Lease when given; `None`: the client's default namespace (in a
    /// pod, the pod's; outside, the kubeconfig context's).
    pub lease_namespace: Option<String>,
    /// Webhook certificate and configuration settings (the leader keeps them when a
    /// configuration name is given).
    pub webhooks: WebhookSettings,
}

/// `serve`'s flags resolved: what to start.
#[derive(Debug)]
pub struct StartupPlan {
    /// Listener, certificate and limit settings.
    pub settings: ServerSettings,
    /// The configuration.
    pub config: Config,
    /// Where the directory comes from.
    pub directory: DirectorySource,
    /// Development mode.
    pub dev: bool,
}

fn default_identity() -> String {
    ["POD_NAME", "HOSTNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| format!("homestead-{}", std::process::id()))
}

/// The certificate directory of `--dev` (and of `--certs-dir` with `--dev`): written with a
/// serving pair for localhost if it has none.
fn dev_certificates(dir: &Path) -> anyhow::Result<CertificateFiles> {
    if dev::ensure_certificates(dir)? {
        tracing::info!(dir = %dir.display(), "wrote development certificates");
    }
    Ok(CertificateFiles::in_dir(dir))
}

impl StartupPlan {
    /// Resolves the flags; in dev mode this writes certificates into `certs/` if missing.
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<Self> {
        let (listen, admin_listen) = if args.dev {
            (dev::DEV_LISTEN, dev::DEV_ADMIN_LISTEN)
        } else {
            (DEFAULT_LISTEN, DEFAULT_ADMIN_LISTEN)
        };
        let certificate = match (&args.tls_cert, &args.tls_key, &args.certs_dir) {
            (Some(cert), Some(key), _) => CertificateFiles {
                cert: cert.clone(),
                key: key.clone(),
            },
            (_, _, Some(dir)) if args.dev => dev_certificates(dir)?,
            (_, _, Some(dir)) => CertificateFiles::in_dir(dir),
            _ if args.dev => dev_certificates(Path::new(dev::DEV_CERTS_DIR))?,
            _ => bail!(
                "no serving certificate: pass --tls-cert FILE and --tls-key FILE, or --certs-dir DIR (or --dev)"
            ),
        };
        let config = load_config(args.config.as_deref())?;
        let directory = match &args.directory {
            Some(path) => DirectorySource::Offline(Some(path.clone())),
            None if args.dev => DirectorySource::Offline(None),
            None => {
                let identity = args.identity.clone().unwrap_or_else(default_identity);
                let namespace = args.lease_namespace.as_deref().unwrap_or_default();
                let mut controller = ControllerSettings::new(namespace, &identity);
                controller.lease.name.clone_from(&args.lease_name);
                controller.reconcile = !args.no_controller;
                DirectorySource::Cluster(Box::new(ClusterPlan {
                    kubeconfig: args.kubeconfig.clone(),
                    controller,
                    lease_namespace: args.lease_namespace.clone(),
                    webhooks: {
                        let mut webhooks = WebhookSettings::from_args(&args.webhooks)?;
                        webhooks.registration.workload_kinds = KindRule::from_config(&config);
                        webhooks
                    },
                }))
            }
        };

        let mut settings = ServerSettings::new(
            args.listen.unwrap_or(listen),
            args.admin_listen.unwrap_or(admin_listen),
            certificate,
        );
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

/// Background tasks that run only on the replica holding the controller Lease (the LDAP
/// and ISPyB syncs, webhook certificate management). Each component adds its factory here; each
/// factory is called whenever leadership is won and its task stops when it is lost.
pub fn leader_tasks(
    config: &Arc<Config>,
    client: &kube::Client,
    registry: &mut Registry,
    webhooks: &WebhookSettings,
) -> Vec<LeaderTask> {
    let mut tasks: Vec<LeaderTask> = Vec::new();
    if let Some(ldap) = &config.ldap {
        let metrics =
            crate::sources::SyncMetrics::register(registry, crate::sources::ldap::METRICS);
        tasks.push(crate::sources::ldap::leader_task(
            client.clone(),
            ldap.clone(),
            metrics,
        ));
    }
    if let Some(source) = &config.session_source {
        let metrics =
            crate::sources::SyncMetrics::register(registry, crate::sources::ispyb::METRICS);
        tasks.push(crate::sources::ispyb::leader_task(
            client.clone(),
            config.clone(),
            source.interval,
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
    client: Option<kube::Client>,
    state: &Arc<SharedState>,
    registry: &mut Registry,
    stop: CancellationToken,
) -> anyhow::Result<Option<tokio::task::JoinHandle<anyhow::Result<()>>>> {
    match source {
        DirectorySource::Offline(path) => {
            let loaded = load_directory(path.as_deref(), &state.config)?;
            for problem in &loaded.skipped {
                tracing::warn!(directory = %loaded.origin, %problem, "skipped a directory object");
            }
            tracing::info!(
                directory = %loaded.origin,
                users = loaded.directory.user_count(),
                namespaces = loaded.directory.namespace_count(),
                "directory loaded"
            );
            state.directory.store(loaded.directory);
            state.directory.mark_synced();
            Ok(None)
        }
        DirectorySource::Cluster(plan) => {
            let client = match client {
                Some(client) => client,
                None => kube_client(plan.kubeconfig.as_deref()).await?,
            };
            let metrics = Metrics::default();
            metrics.register(registry);
            let mut settings = plan.controller.clone();
            settings.lease.namespace = plan
                .lease_namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_owned());
            let tasks = if settings.reconcile {
                leader_tasks(&state.config, &client, registry, &plan.webhooks)
            } else {
                Vec::new()
            };
            tracing::info!(
                identity = %settings.lease.identity,
                reconcile = settings.reconcile,
                lease = %format!("{}/{}", settings.lease.namespace, settings.lease.name),
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

/// Adds the username the API server knows this process by (a SelfSubjectReview) to
/// `homesteadUsernames`: the controller writes homestead's labels and manages its
/// namespaces as that identity, so admission must know it as homestead's own — in a pod
/// the chart's ServiceAccount (configured anyway), outside a cluster whoever the
/// kubeconfig names. If the API server cannot say, the configured names stand.
async fn trust_own_identity(client: &kube::Client, config: &mut Config) {
    let review = SelfSubjectReview {
        metadata: ObjectMeta::default(),
        status: None,
    };
    let answer = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await;
    let username = match answer {
        Ok(review) => review
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username),
        Err(error) => {
            tracing::warn!(
                %error,
                "could not learn homestead's own username (SelfSubjectReview); only the configured homesteadUsernames may write homestead's labels"
            );
            return;
        }
    };
    if let Some(username) = username.filter(|u| !config.homestead_usernames.contains(u)) {
        tracing::info!(%username, "acting as {username}, trusted as homestead's own identity");
        config.homestead_usernames.push(username);
    }
}

/// Runs the server until SIGTERM/SIGINT, then shuts down in order.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let plan = StartupPlan::from_args(&args)?;
    let mut config = plan.config;
    let client = match &plan.directory {
        DirectorySource::Cluster(cluster) => {
            let client = kube_client(cluster.kubeconfig.as_deref()).await?;
            trust_own_identity(&client, &mut config).await;
            Some(client)
        }
        DirectorySource::Offline(_) => None,
    };
    let state = SharedState::new(Arc::new(config));
    let mut registry = Registry::default();
    let stop_controller = CancellationToken::new();
    let controller = start_directory(
        &plan.directory,
        client,
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
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    telemetry::init(args.log_format, "info");
    runtime()?.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}
