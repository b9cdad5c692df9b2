//! The Kubernetes side: reads and writes the certificate Secret (`self` mode), keeps both
//! webhook configurations equal to [`homestead_core::webhooks`] with the right `caBundle`, and the
//! leader task that does so whenever either changes or a rotation falls due.
//!
//! Writes are replaces carrying the read `resourceVersion`, so a concurrent edit makes the
//! write fail with 409 and the next pass starts from the new state. The configurations are
//! never created or deleted here: Helm owns their existence (a deleted configuration is
//! reported, and `helm upgrade` restores it).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use futures::{StreamExt, stream::BoxStream};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, ValidatingWebhook,
    ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{CertMode, WebhookSettings};
use crate::certs::Ring;
use crate::telemetry::Repeated;
use homestead_core::certs::rotation::{self, Step};
use homestead_core::certs::secret::{KEY_CA_BUNDLE, Material, Observed};
use homestead_core::desired::FIELD_MANAGER;
use homestead_core::names::LABEL_MANAGED_BY;
use homestead_core::webhooks::{self, normalize_mutating, normalize_validating};

/// Longest time between two passes when nothing happens.
pub const MAX_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// Most rotation steps applied in one pass (a fresh start needs one; a full rotation three).
const MAX_STEPS: usize = 4;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrationReport {
    /// Rotation steps applied to the Secret, in order.
    pub steps: Vec<Step>,
    /// Webhook configurations rewritten (kind names).
    pub repaired: Vec<&'static str>,
    /// Configurations that do not exist.
    pub missing: Vec<&'static str>,
    /// When time alone makes another pass necessary.
    pub recheck_at: Option<SystemTime>,
}

fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .string_data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    for (k, v) in secret.data.iter().flatten() {
        data.insert(k.clone(), v.0.clone());
    }
    data
}

/// Each webhook's name and the `caBundle` it carries (empty when it has none).
fn live_bundles<C: Configuration>(configuration: &C) -> BTreeMap<String, Vec<u8>> {
    C::webhooks(configuration)
        .iter()
        .flatten()
        .map(|w| {
            let bundle = C::ca_bundle(w).map(|b| b.0.clone()).unwrap_or_default();
            (C::name(w).to_owned(), bundle)
        })
        .collect()
}

/// What the repair needs of the two webhook configuration kinds, whose webhooks have
/// different types but the same shape.
trait Configuration:
    k8s_openapi::Resource
    + kube::Resource<DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + serde::Serialize
    + serde::de::DeserializeOwned
{
    /// One webhook of the configuration.
    type Webhook: Clone + PartialEq;
    fn webhooks(&self) -> &Option<Vec<Self::Webhook>>;
    fn webhooks_mut(&mut self) -> &mut Option<Vec<Self::Webhook>>;
    /// The webhooks as [`webhooks`] says they should be, without a `caBundle`.
    fn desired(settings: &WebhookSettings) -> Vec<Self::Webhook>;
    fn name(webhook: &Self::Webhook) -> &str;
    fn ca_bundle(webhook: &Self::Webhook) -> Option<&ByteString>;
    fn set_ca_bundle(webhook: &mut Self::Webhook, bundle: Option<ByteString>);
    /// Fills in what the API server defaults, so live and desired compare equal.
    fn normalize(webhook: &mut Self::Webhook);
}

/// Implements [`Configuration`] for a configuration kind whose webhooks have `name` and
/// `client_config` (both kinds do).
macro_rules! configuration {
    ($configuration:ident, $webhook:ident, $desired:path, $normalize:path) => {
        impl Configuration for $configuration {
            type Webhook = $webhook;
            fn webhooks(&self) -> &Option<Vec<$webhook>> {
                &self.webhooks
            }
            fn webhooks_mut(&mut self) -> &mut Option<Vec<$webhook>> {
                &mut self.webhooks
            }
            fn desired(settings: &WebhookSettings) -> Vec<$webhook> {
                $desired(&settings.registration, None)
            }
            fn name(webhook: &$webhook) -> &str {
                &webhook.name
            }
            fn ca_bundle(webhook: &$webhook) -> Option<&ByteString> {
                webhook.client_config.ca_bundle.as_ref()
            }
            fn set_ca_bundle(webhook: &mut $webhook, bundle: Option<ByteString>) {
                webhook.client_config.ca_bundle = bundle;
            }
            fn normalize(webhook: &mut $webhook) {
                $normalize(webhook);
            }
        }
    };
}

configuration!(
    MutatingWebhookConfiguration,
    MutatingWebhook,
    webhooks::mutating,
    normalize_mutating
);
configuration!(
    ValidatingWebhookConfiguration,
    ValidatingWebhook,
    webhooks::validating,
    normalize_validating
);

/// Rewrites configuration `name` (read as `live`) when its webhooks differ from the
/// desired ones carrying `bundle` (`None`: each keeps the `caBundle` it has).
async fn repair<C: Configuration>(
    api: &Api<C>,
    name: &str,
    live: Option<C>,
    bundle: Option<&[u8]>,
    settings: &WebhookSettings,
    outcome: &mut RegistrationReport,
) -> anyhow::Result<()> {
    let Some(mut live) = live else {
        outcome.missing.push(C::KIND);
        return Ok(());
    };
    let kept_bundle = |webhook: &str| {
        C::webhooks(&live)
            .iter()
            .flatten()
            .find(|w| C::name(w) == webhook)
            .and_then(C::ca_bundle)
            .cloned()
    };
    let mut want = C::desired(settings);
    for w in &mut want {
        let carried = match bundle {
            Some(bundle) => Some(ByteString(bundle.to_vec())),
            None => kept_bundle(C::name(w)),
        };
        C::set_ca_bundle(w, carried);
        C::normalize(w);
    }
    let mut have = C::webhooks(&live).clone().unwrap_or_default();
    have.iter_mut().for_each(C::normalize);
    if have == want {
        return Ok(());
    }
    *C::webhooks_mut(&mut live) = Some(want);
    live.meta_mut().managed_fields = None;
    api.replace(name, &post_params(), &live)
        .await
        .with_context(|| format!("repairing {} {name}", C::KIND))?;
    info!(configuration = name, "repaired {}", C::KIND);
    outcome.repaired.push(C::KIND);
    Ok(())
}

/// Makes the Secret current (`self` mode) and returns the bundle to publish.
async fn ensure_secret(
    secrets: &Api<Secret>,
    settings: &WebhookSettings,
    published_bundle: Option<&[u8]>,
    now: SystemTime,
    outcome: &mut RegistrationReport,
) -> anyhow::Result<Vec<u8>> {
    let mut current = secrets
        .get_opt(&settings.secret)
        .await
        .with_context(|| format!("reading Secret {}/{}", settings.namespace, settings.secret))?;
    for _ in 0..MAX_STEPS {
        let data = current.as_ref().map(secret_data);
        let observed = Observed::from_secret(data.as_ref(), &Ring);
        for problem in &observed.problems {
            warn!(secret = %settings.secret, "{problem}");
        }
        let bundle_now = data
            .as_ref()
            .and_then(|d| d.get(KEY_CA_BUNDLE))
            .cloned()
            .unwrap_or_default();
        let published = published_bundle.is_some_and(|p| p == bundle_now.as_slice());
        let plan = rotation::plan(&observed, &settings.names, published, now, &settings.policy);
        let Some(step) = plan.step else {
            outcome.recheck_at = Some(plan.recheck_at);
            return Ok(bundle_now);
        };
        info!(?step, reason = %plan.reason, secret = %settings.secret, "rotating webhook certificates");
        let material = data
            .as_ref()
            .map(|d| Material::from_secret(d, &observed))
            .unwrap_or_default();
        let next = rotation::apply(
            step,
            &material,
            &observed,
            &settings.names,
            now,
            &settings.policy,
            &Ring,
        )?;
        let written = match current {
            Some(mut secret) => {
                secret.data = Some(byte_strings(next.to_secret_data()));
                secret.string_data = None;
                secrets
                    .replace(&settings.secret, &post_params(), &secret)
                    .await
                    .with_context(|| format!("writing Secret {}", settings.secret))?
            }
            None => {
                let secret = new_secret(settings, next.to_secret_data());
                secrets
                    .create(&post_params(), &secret)
                    .await
                    .with_context(|| format!("creating Secret {}", settings.secret))?
            }
        };
        outcome.steps.push(step);
        current = Some(written);
    }
    anyhow::bail!(
        "the certificate Secret {} did not settle after {MAX_STEPS} rotation steps",
        settings.secret
    )
}

fn byte_strings(data: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, ByteString> {
    data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()
}

/// A new certificate Secret holding `data`.
pub(super) fn new_secret(settings: &WebhookSettings, data: BTreeMap<String, Vec<u8>>) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(settings.secret.clone()),
            namespace: Some(settings.namespace.clone()),
            labels: Some(BTreeMap::from([(
                LABEL_MANAGED_BY.to_owned(),
                "homestead".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(byte_strings(data)),
        ..Secret::default()
    }
}

pub(super) fn post_params() -> PostParams {
    PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.into()),
    }
}

/// The bundle every webhook of both configurations carries, when they all agree.
fn common_bundle(bundles: &BTreeMap<String, Vec<u8>>) -> Option<Vec<u8>> {
    let mut values = bundles.values();
    let first = values.next()?;
    values.all(|v| v == first).then(|| first.clone())
}

/// One pass: Secret (self mode), then both configurations.
pub async fn reconcile_once(
    client: &Client,
    settings: &WebhookSettings,
    now: SystemTime,
) -> anyhow::Result<RegistrationReport> {
    let mut outcome = RegistrationReport::default();
    let Some(name) = settings.configuration.as_deref() else {
        return Ok(outcome);
    };
    let mutating_api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let validating_api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let mutating = mutating_api
        .get_opt(name)
        .await
        .with_context(|| format!("reading MutatingWebhookConfiguration {name}"))?;
    let validating = validating_api
        .get_opt(name)
        .await
        .with_context(|| format!("reading ValidatingWebhookConfiguration {name}"))?;

    let mut live = BTreeMap::new();
    if let Some(m) = &mutating {
        live.extend(live_bundles(m));
    }
    if let Some(v) = &validating {
        live.extend(live_bundles(v));
    }
    let published = if mutating.is_some() && validating.is_some() {
        common_bundle(&live)
    } else {
        None
    };

    // The caBundle every webhook must carry; `None`: leave each as it is (cert-manager).
    let bundle: Option<Vec<u8>> = match settings.mode {
        CertMode::SelfSigned => {
            let secrets: Api<Secret> = Api::namespaced(client.clone(), &settings.namespace);
            Some(ensure_secret(&secrets, settings, published.as_deref(), now, &mut outcome).await?)
        }
        CertMode::External => settings.ca_bundle.clone(),
        CertMode::CertManager => None,
    };

    repair(
        &mutating_api,
        name,
        mutating,
        bundle.as_deref(),
        settings,
        &mut outcome,
    )
    .await?;
    repair(
        &validating_api,
        name,
        validating,
        bundle.as_deref(),
        settings,
        &mut outcome,
    )
    .await?;
    Ok(outcome)
}

/// A watch event that may mean the objects changed: an object was written or deleted, or
/// the watch listed afresh (after a disconnect). Errors are logged (throttled) and, like
/// the events of an initial list, trigger nothing.
fn change<T>(
    event: Result<watcher::Event<T>, watcher::Error>,
    errors: &Mutex<Repeated>,
) -> Option<()> {
    match event {
        Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone) => {
            Some(())
        }
        Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => None,
        Err(e) => {
            let mut errors = errors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(held_back) = errors.report(&e.to_string(), Instant::now()) {
                warn!(repeats = held_back, "watching webhook objects: {e}");
            }
            None
        }
    }
}

/// Watches `K` objects selected by `config`, as a stream of [`change`]s.
fn changes<K>(
    api: Api<K>,
    config: watcher::Config,
    errors: &Arc<Mutex<Repeated>>,
) -> BoxStream<'static, ()>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let errors = errors.clone();
    watcher(api, config)
        .default_backoff()
        .filter_map(move |event| std::future::ready(change(event, &errors)))
        .boxed()
}

/// Changes to the watched objects: both configurations and, in `self` mode, the Secret.
fn triggers(client: &Client, settings: &WebhookSettings) -> BoxStream<'static, ()> {
    let Some(name) = settings.configuration.clone() else {
        return futures::stream::pending().boxed();
    };
    let errors = Arc::new(Mutex::new(Repeated::default()));
    let by_name = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut streams = vec![
        changes(
            Api::<MutatingWebhookConfiguration>::all(client.clone()),
            by_name.clone(),
            &errors,
        ),
        changes(
            Api::<ValidatingWebhookConfiguration>::all(client.clone()),
            by_name,
            &errors,
        ),
    ];
    if settings.mode == CertMode::SelfSigned {
        streams.push(changes(
            Api::<Secret>::namespaced(client.clone(), &settings.namespace),
            watcher::Config::default().fields(&format!("metadata.name={}", settings.secret)),
            &errors,
        ));
    }
    futures::stream::select_all(streams).boxed()
}

/// Warns (throttled, see [`Repeated`]) while configurations are missing; says once when
/// they are back.
fn report_missing(
    outcome: &RegistrationReport,
    settings: &WebhookSettings,
    missing: &mut Repeated,
) {
    let name = settings.configuration.as_deref().unwrap_or_default();
    if outcome.missing.is_empty() {
        if missing.clear() {
            info!(
                configuration = name,
                "the webhook configurations exist again"
            );
        }
        return;
    }
    let kinds = outcome.missing.join(" and ");
    if let Some(held_back) = missing.report(&kinds, Instant::now()) {
        warn!(
            configuration = name,
            repeats = held_back,
            "{kinds} {name} does not exist; homestead does not create it (helm install or upgrade does)"
        );
    }
}

/// The leader task: keeps the certificates and both webhook configurations right until
/// `shutdown` is cancelled (losing the lease cancels it). Errors are logged and retried
/// with backoff; the task only returns on shutdown.
pub async fn run(
    client: Client,
    settings: WebhookSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    info!(mode = ?settings.mode, secret = %settings.secret, configuration = ?settings.configuration, "webhook registration started");
    let mut events = triggers(&client, &settings);
    let mut failures: u32 = 0;
    let mut failing = Repeated::default();
    let mut missing = Repeated::default();
    loop {
        let wait = match reconcile_once(&client, &settings, SystemTime::now()).await {
            Ok(outcome) => {
                failures = 0;
                if failing.clear() {
                    info!("webhook registration passes succeed again");
                }
                report_missing(&outcome, &settings, &mut missing);
                outcome
                    .recheck_at
                    .and_then(|t| t.duration_since(SystemTime::now()).ok())
                    .unwrap_or(MAX_INTERVAL)
                    .min(MAX_INTERVAL)
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let backoff = Duration::from_secs(1 << failures.min(8)).min(MAX_INTERVAL);
                let error = format!("{e:#}");
                if let Some(held_back) = failing.report(&error, Instant::now()) {
                    warn!(error, retry_in = ?backoff, repeats = held_back, "webhook registration pass failed");
                }
                backoff
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => {
                info!("webhook registration stopped");
                return Ok(());
            }
            () = tokio::time::sleep(wait) => {}
            event = events.next() => {
                if event.is_none() {
                    // The watches ended (they do not, with backoff); fall back to the timer.
                    events = futures::stream::pending().boxed();
                }
                // Let a burst of events (our own writes among them) settle into one pass.
                tokio::time::sleep(Duration::from_millis(200)).await;
                while let Some(Some(())) = futures::FutureExt::now_or_never(events.next()) {}
            }
        }
    }
}
