//! The harness of the tests that need a real API server (`#[ignore = "needs a cluster"]`).
//!
//! `HOMESTEAD_TEST_KUBECONFIG` names a kubeconfig with cluster-admin; `tests/run.sh` starts
//! `../shared/controlplane` (kube-apiserver, kube-controller-manager, etcd on loopback; no
//! scheduler, no kubelet: pods stay Pending) and sets it. The API server must reach this
//! machine on 127.0.0.1, where [`Serve`] listens and registers its webhooks by URL.
//!
//! **A test's turn.** Every test starts with [`Cluster::exclusive`] or [`Cluster::shared`],
//! a lock on a file beside the kubeconfig's hash in the temp directory (so it holds across
//! test processes, whatever the runner). A test that runs a controller (any `serve`
//! without `--no-controller`) or registers webhooks takes it exclusively: a controller
//! reconciles every User in the cluster and the leader repairs its webhook configurations
//! to select every managed namespace, so two at once would act on each other's objects.
//! Tests that only read or write objects no controller acts on may share it and run in
//! parallel. Within its turn a test is isolated by unique names ([`Cluster::name`],
//! [`Cluster::uid`]): nothing a test makes collides with what an earlier (or failed) run
//! left behind.
//!
//! **Clean-up on drop, even when the test panics.** Whatever the harness creates is
//! deleted when the [`Cluster`] is dropped, in an order that cannot poison the next test:
//! webhook configurations first (a configuration pointing at a dead server with
//! `failurePolicy: Fail` would refuse every later request), then Users and Sessions (their
//! finalizer is removed, as no controller may be left to do it), their namespaces and
//! persistent volumes, then anything registered with [`Cluster::delete_on_drop`]. A
//! [`Serve`] is killed on drop and, if the test is failing, prints the tail of its log.
//!
//! **Clients.** [`Cluster::admin`] is the kubeconfig's identity; [`client_as`] impersonates
//! a person (group `system:authenticated`), [`client_as_service_account`] a ServiceAccount
//! with its groups. [`kubeconfig_with_token`] writes a kubeconfig for a real token (e.g.
//! a chart ServiceAccount's, from the TokenRequest API) to run `serve` as that identity.
//!
//! **Waiting.** Never assume what a controller does; poll with [`eventually`] (every 250 ms,
//! failing the test with what it waited for). [`Cluster::user`] and
//! [`Cluster::session`] return once the object is `Deployed`; [`wait_admitting`] waits
//! until pods in a namespace are admitted (the namespace's `default` ServiceAccount exists
//! and the webhooks answer).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenRequest};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams,
    PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, CustomResourceExt, Resource, ResourceExt};
use serde_json::json;
use tempfile::TempDir;

use homestead_core::resources::{Phase, Project, ResourceStatus, Session, User};
use homestead_core::webhooks::{self as desired, Registration, Target};

/// The variable naming the test cluster's kubeconfig.
pub const KUBECONFIG_VAR: &str = "HOMESTEAD_TEST_KUBECONFIG";
/// Field manager of everything the harness applies.
pub const MANAGER: &str = "homestead-test";
/// How long a test waits for a controller by default.
pub const WAIT: Duration = Duration::from_secs(60);

/// The test cluster's kubeconfig.
pub fn kubeconfig_path() -> PathBuf {
    PathBuf::from(std::env::var(KUBECONFIG_VAR).unwrap_or_else(|_| {
        panic!("set {KUBECONFIG_VAR} to a kubeconfig with cluster-admin (tests/run.sh does)")
    }))
}

async fn kube_config(path: &Path) -> kube::Config {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let file = Kubeconfig::read_from(path).expect("a readable kubeconfig");
    kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .expect("a usable kubeconfig")
}

/// A client acting as the kubeconfig's identity (cluster-admin).
pub async fn admin_client() -> Client {
    Client::try_from(kube_config(&kubeconfig_path()).await).expect("client")
}

/// A client impersonating `user` with `groups` (plus `system:authenticated`).
pub async fn client_with_groups(user: &str, groups: &[&str]) -> Client {
    let mut config = kube_config(&kubeconfig_path()).await;
    config.auth_info.impersonate = Some(user.to_owned());
    let mut all: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    all.push("system:authenticated".into());
    config.auth_info.impersonate_groups = Some(all);
    Client::try_from(config).expect("client")
}

/// A client impersonating the person `user`.
pub async fn client_as(user: &str) -> Client {
    client_with_groups(user, &[]).await
}

/// A client impersonating ServiceAccount `namespace/name`, with the groups a token of it has.
pub async fn client_as_service_account(namespace: &str, name: &str) -> Client {
    client_with_groups(
        &format!("system:serviceaccount:{namespace}:{name}"),
        &[
            "system:serviceaccounts",
            &format!("system:serviceaccounts:{namespace}"),
        ],
    )
    .await
}

/// The username the API server sees for `client`.
pub async fn whoami(client: &Client) -> String {
    let review: SelfSubjectReview = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"
    }))
    .expect("review");
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .expect("SelfSubjectReview");
    answer
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .expect("a username")
}

/// A token of ServiceAccount `namespace/name` (TokenRequest API, one hour).
pub async fn service_account_token(admin: &Client, namespace: &str, name: &str) -> String {
    let request: TokenRequest = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": [], "expirationSeconds": 3600}
    }))
    .expect("token request");
    Api::<ServiceAccount>::namespaced(admin.clone(), namespace)
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .expect("a token")
        .status
        .expect("token status")
        .token
}

/// Writes a kubeconfig into `dir` that reaches the test cluster with bearer `token`, its
/// context in `namespace` if given.
pub fn kubeconfig_with_token(dir: &Path, token: &str, namespace: Option<&str>) -> PathBuf {
    let file = Kubeconfig::read_from(kubeconfig_path()).expect("kubeconfig");
    let context = file.current_context.clone().unwrap_or_default();
    let cluster = file
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .expect("the current context names a cluster");
    let named = file
        .clusters
        .iter()
        .find(|c| c.name == cluster)
        .cloned()
        .expect("the cluster");
    let value = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [named],
        "users": [{"name": "token", "user": {"token": token}}],
        "contexts": [{"name": "token", "context": {"cluster": cluster, "user": "token", "namespace": namespace}}],
        "current-context": "token",
    });
    let path = dir.join("token.kubeconfig");
    std::fs::write(&path, serde_json::to_vec_pretty(&value).expect("json")).expect("write");
    path
}

/// Writes a copy of the harness's kubeconfig into `dir` whose current context's namespace
/// is `namespace` (what `serve` outside a cluster takes as its default namespace).
pub fn kubeconfig_in_namespace(dir: &Path, namespace: &str) -> PathBuf {
    let mut file = Kubeconfig::read_from(kubeconfig_path()).expect("kubeconfig");
    let current = file.current_context.clone().unwrap_or_default();
    for named in &mut file.contexts {
        if named.name == current
            && let Some(context) = named.context.as_mut()
        {
            context.namespace = Some(namespace.to_owned());
        }
    }
    let path = dir.join("namespaced.kubeconfig");
    // JSON is YAML: kubeconfig readers take it.
    std::fs::write(&path, serde_json::to_vec_pretty(&file).expect("json")).expect("write");
    path
}

/// A loopback port nothing listens on.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `f` every 250 ms until it returns a value; fails the test after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The HTTP status code of an API error, or a panic naming what was expected.
pub fn status_code<T: std::fmt::Debug>(
    result: Result<T, kube::Error>,
    what: &str,
) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message),
        other => panic!("{what}: expected an API error, got {other:?}"),
    }
}

/// What [`Cluster`] removes on drop, in `order`.
struct Leftover {
    order: u8,
    resource: ApiResource,
    namespace: Option<String>,
    /// One object by name, or every object matching `selector`.
    name: Option<String>,
    selector: Option<String>,
    strip_finalizers: bool,
}

/// A person made by [`Cluster::user`].
#[derive(Debug, Clone)]
pub struct Person {
    /// `spec.username` (also the object name).
    pub username: String,
    /// uid (= gid).
    pub uid: i64,
    /// The namespace homestead made (`status.namespace`).
    pub namespace: String,
}

/// A session made by [`Cluster::session`].
#[derive(Debug, Clone)]
pub struct Visit {
    /// Object name, also its namespace.
    pub name: String,
    /// The session gid.
    pub gid: i64,
}

/// The cluster during one test's turn; see the module comment.
pub struct Cluster {
    /// Cluster-admin client.
    pub admin: Client,
    /// The username of [`Cluster::admin`].
    pub admin_name: String,
    suffix: String,
    next_id: AtomicI64,
    leftovers: Mutex<Vec<Leftover>>,
    _turn: File,
}

impl Cluster {
    /// Takes the cluster for this test alone (it runs a controller or registers webhooks).
    pub async fn exclusive() -> Self {
        Self::start(true).await
    }

    /// Shares the cluster with other shared tests (no controller, no webhooks).
    pub async fn shared() -> Self {
        Self::start(false).await
    }

    async fn start(exclusive: bool) -> Self {
        let path = kubeconfig_path();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        path.hash(&mut hasher);
        let lock = std::env::temp_dir().join(format!("homestead-tests-{:x}.lock", hasher.finish()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .expect("the lock file");
        let file = tokio::task::spawn_blocking(move || {
            if exclusive {
                file.lock()
            } else {
                file.lock_shared()
            }
            .expect("lock");
            file
        })
        .await
        .expect("waiting for the cluster");
        let admin = admin_client().await;
        prepare(&admin).await;
        let admin_name = whoami(&admin).await;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let seed = u64::from(nanos) ^ u64::from(std::process::id()).rotate_left(20);
        let number = seed % 60_000;
        Self {
            admin,
            admin_name,
            suffix: format!("{number:05}"),
            next_id: AtomicI64::new(100_000 + i64::try_from(number).unwrap_or(0) * 50),
            leftovers: Mutex::default(),
            _turn: file,
        }
    }

    /// `base` made unique to this run (`base-NNNNN`); a DNS-1123 label if `base` is one.
    pub fn name(&self, base: &str) -> String {
        format!("{base}-{}", self.suffix)
    }

    /// A number unique to this run (for uids, gids, proposal numbers).
    pub fn uid(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The digits that make this run's names unique.
    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    fn remember(&self, leftover: Leftover) {
        self.leftovers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(leftover);
    }

    /// Deletes `K` `name` (in `namespace`) when the test ends.
    pub fn delete_on_drop<K: Resource<DynamicType = ()>>(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) {
        let resource = ApiResource::erase::<K>(&());
        let order = match resource.kind.as_str() {
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => 0,
            "User" | "Session" | "Project" => 1,
            "Namespace" => 2,
            _ => 3,
        };
        self.remember(Leftover {
            order,
            strip_finalizers: order == 1,
            resource,
            namespace: namespace.map(str::to_owned),
            name: Some(name.to_owned()),
            selector: None,
        });
    }

    /// Deletes every `K` matching the label `selector` when the test ends.
    pub fn delete_labelled_on_drop<K: Resource<DynamicType = ()>>(&self, selector: &str) {
        self.remember(Leftover {
            order: 4,
            resource: ApiResource::erase::<K>(&()),
            namespace: None,
            name: None,
            selector: Some(selector.to_owned()),
            strip_finalizers: false,
        });
    }

    /// Applies a User `{base}-NNNNN` with a fresh uid (= gid) and `groups`, and returns it
    /// once `Deployed`. It, its namespace and its volumes go when the test ends.
    pub async fn user(&self, base: &str, groups: &[i64]) -> Person {
        let username = self.name(base);
        let uid = self.uid();
        let user: User = serde_json::from_value(json!({
            "apiVersion": "homestead.dev/v1alpha1", "kind": "User",
            "metadata": {"name": username},
            "spec": {"username": username, "uid": uid, "gid": uid, "supplementalGroups": groups}
        }))
        .expect("user");
        self.apply_user(&user).await;
        let deployed = wait_phase(
            &Api::<User>::all(self.admin.clone()),
            &username,
            Phase::Deployed,
        )
        .await;
        let namespace = deployed
            .status
            .and_then(|s| s.namespace)
            .expect("status.namespace");
        self.delete_on_drop::<Namespace>(None, &namespace);
        Person {
            username,
            uid,
            namespace,
        }
    }

    /// Applies `user` as given (nothing waited for); it, its namespace and its volumes go
    /// when the test ends.
    pub async fn apply_user(&self, user: &User) {
        let name = user.name_any();
        self.delete_on_drop::<User>(None, &name);
        self.delete_labelled_on_drop::<PersistentVolume>(&format!("homestead.dev/user={name}"));
        self.delete_on_drop::<Namespace>(None, &format!("home-{name}"));
        Api::<User>::all(self.admin.clone())
            .patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(user),
            )
            .await
            .expect("apply User");
    }

    /// Applies a Session (proposal `ee` and a fresh number, visit 1) with `members` and a
    /// fresh gid, and returns it once `Deployed`.
    pub async fn session(&self, members: &[&Person]) -> Visit {
        let number = self.uid();
        let gid = self.uid();
        let name = format!("ee{number}-1");
        let members: Vec<&str> = members.iter().map(|p| p.username.as_str()).collect();
        let session: Session = serde_json::from_value(json!({
            "apiVersion": "homestead.dev/v1alpha1", "kind": "Session",
            "metadata": {"name": name},
            "spec": {
                "proposalCode": "ee", "proposalNumber": number, "visit": 1, "instrument": "i03",
                "startDate": "2024-03-15 9:00:00.0", "endDate": "2034-05-24 9:00:00.0",
                "dataDirectory": format!("/tmp/homestead-e2e/data/{name}/"), "gid": gid,
                "members": members
            }
        }))
        .expect("session");
        self.apply_session(&session).await;
        wait_phase(
            &Api::<Session>::all(self.admin.clone()),
            &name,
            Phase::Deployed,
        )
        .await;
        Visit { name, gid }
    }

    /// Applies `session` as given (nothing waited for); it, its namespace and its volumes
    /// go when the test ends.
    pub async fn apply_session(&self, session: &Session) {
        let name = session.name_any();
        self.delete_on_drop::<Session>(None, &name);
        self.delete_labelled_on_drop::<PersistentVolume>(&format!("homestead.dev/session={name}"));
        self.delete_on_drop::<Namespace>(None, &name);
        Api::<Session>::all(self.admin.clone())
            .patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(session),
            )
            .await
            .expect("apply Session");
    }

    /// Starts `homestead serve` against the cluster (see [`Serve::prepare`]) and, unless
    /// told not to, waits until it is ready.
    pub async fn serve(&self, options: ServeOptions) -> Serve {
        let mut serve = Serve::prepare();
        serve.launch(self, options).await;
        serve
    }

    /// The configuration tests run `serve` with unless they give their own: defaults, with
    /// the harness's identity as homestead's own (it may delete managed namespaces).
    pub fn default_config(&self) -> String {
        format!("homesteadUsernames: [{:?}]\n", self.admin_name)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut leftovers = std::mem::take(
            &mut *self
                .leftovers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        leftovers.sort_by_key(|l| l.order);
        // A fresh runtime on its own thread: drop may run inside the test's runtime (or
        // while it unwinds), where blocking on a future is not allowed.
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(clean_up(leftovers));
        })
        .join();
        if done.is_err() {
            eprintln!("cluster clean-up panicked; later tests may see leftovers");
        }
    }
}

async fn clean_up(leftovers: Vec<Leftover>) {
    let client = admin_client().await;
    for leftover in leftovers {
        let api: Api<DynamicObject> = match &leftover.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &leftover.resource),
            None => Api::all_with(client.clone(), &leftover.resource),
        };
        let names = match (&leftover.name, &leftover.selector) {
            (Some(name), _) => vec![name.clone()],
            (None, Some(selector)) => api
                .list_metadata(&ListParams::default().labels(selector))
                .await
                .map(|l| l.items.iter().map(ResourceExt::name_any).collect())
                .unwrap_or_default(),
            (None, None) => Vec::new(),
        };
        for name in names {
            if let Err(e) = api.delete(&name, &DeleteParams::background()).await
                && !matches!(&e, kube::Error::Api(s) if s.code == 404)
            {
                eprintln!("clean-up: deleting {} {name}: {e}", leftover.resource.kind);
            }
            if leftover.strip_finalizers {
                let patch = json!({"metadata": {"finalizers": null}});
                let _ = api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
            }
        }
    }
}

/// Installs (server-side apply) and waits until established a minimal CRD for another
/// project's kind — an Argo Workflow, a Kubeflow PyTorchJob — with its group, version, kind
/// and plural and any spec and status (no status subresource). Left installed: every test
/// that needs the kind installs the same one.
pub async fn install_open_crd(
    admin: &Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) {
    let name = format!("{plural}.{group}");
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {
            "group": group,
            "names": {"kind": kind, "listKind": format!("{kind}List"), "plural": plural,
                      "singular": kind.to_ascii_lowercase()},
            "scope": "Namespaced",
            "versions": [{
                "name": version, "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    },
                    "required": ["metadata", "spec"]
                }}
            }]
        }
    }))
    .expect("crd");
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    crds.patch(
        &name,
        &PatchParams::apply("homestead-tests").force(),
        &Patch::Apply(crd),
    )
    .await
    .unwrap_or_else(|e| panic!("apply the {kind} CRD: {e}"));
    wait_established(&crds, &name).await;
}

/// Waits until the CRD `name` is established (its resource is served).
async fn wait_established(crds: &Api<CustomResourceDefinition>, name: &str) {
    eventually(&format!("CRD {name} established"), WAIT, || {
        let crds = crds.clone();
        async move {
            let crd = crds.get(name).await.ok()?;
            crd.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        }
    })
    .await;
}

/// Installs the CRDs (as `homestead crds` prints them) and waits for what a fresh control
/// plane takes a few seconds to do: the CRDs established, and the aggregated `edit`
/// ClusterRole filled in by the controller-manager (until then a user bound to it may do
/// nothing at all).
async fn prepare(admin: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    for crd in [User::crd(), Session::crd(), Project::crd()] {
        let name = crd.name_any();
        let live = crds.get_opt(&name).await.expect("read CRD");
        if live.as_ref().map(|c| &c.spec) != Some(&crd.spec) {
            crds.patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&crd),
            )
            .await
            .expect("apply CRD");
        }
        wait_established(&crds, &name).await;
    }
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    eventually("ClusterRole edit aggregated", WAIT, || {
        let roles = roles.clone();
        async move {
            let role = roles.get("edit").await.ok()?;
            role.rules.is_some_and(|r| !r.is_empty()).then_some(())
        }
    })
    .await;
}

/// Something with a homestead status.
pub trait HasStatus {
    /// Its status.
    fn homestead_status(&self) -> Option<&ResourceStatus>;
}
impl HasStatus for User {
    fn homestead_status(&self) -> Option<&ResourceStatus> {
        self.status.as_ref()
    }
}
impl HasStatus for Session {
    fn homestead_status(&self) -> Option<&ResourceStatus> {
        self.status.as_ref()
    }
}
impl HasStatus for Project {
    fn homestead_status(&self) -> Option<&ResourceStatus> {
        self.status.as_ref().map(|s| &s.common)
    }
}

/// Waits until `name` reaches `phase` and returns it.
pub async fn wait_phase<K>(api: &Api<K>, name: &str, phase: Phase) -> K
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + HasStatus,
{
    eventually(&format!("{name} {phase:?}"), WAIT, || async move {
        let obj = api.get(name).await.ok()?;
        (obj.homestead_status().and_then(|s| s.phase) == Some(phase)).then_some(obj)
    })
    .await
}

/// Waits until a plain pod created by `client` in `namespace` is admitted and mutated to
/// `uid` (checked with a dry run): the namespace's `default` ServiceAccount exists and the
/// webhooks answer.
pub async fn wait_admitting(client: &Client, namespace: &str, uid: i64) {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let probe = pod(
        namespace,
        "probe",
        json!({"containers": [{"name": "c", "image": "busybox"}]}),
    );
    eventually(&format!("pods admitted in {namespace}"), WAIT, || {
        let (accounts, pods, probe) = (accounts.clone(), pods.clone(), probe.clone());
        async move {
            let _ = accounts.get_opt("default").await;
            let stored = pods
                .create(
                    &PostParams {
                        dry_run: true,
                        field_manager: None,
                    },
                    &probe,
                )
                .await
                .ok()?;
            let sc = stored.spec?.security_context?;
            (sc.run_as_user == Some(uid)).then_some(())
        }
    })
    .await;
}

/// A Pod named `name` in `namespace` with `spec`.
pub fn pod(namespace: &str, name: &str, spec: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec
    }))
    .expect("pod")
}

/// How [`Cluster::serve`] starts `homestead serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The configuration file's text; `None`: [`Cluster::default_config`].
    pub config: Option<String>,
    /// Further flags.
    pub args: Vec<String>,
    /// The kubeconfig to run with; `None`: the harness's (cluster-admin).
    pub kubeconfig: Option<PathBuf>,
    /// Wait for `/readyz` before returning.
    pub wait_ready: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            config: None,
            args: Vec::new(),
            kubeconfig: None,
            wait_ready: true,
        }
    }
}

impl ServeOptions {
    /// With this configuration file text.
    pub fn config(text: impl Into<String>) -> Self {
        Self {
            config: Some(text.into()),
            ..Self::default()
        }
    }

    /// With these further flags.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }
}

/// A running `homestead serve`, logging to a file in its directory; killed on drop.
pub struct Serve {
    child: Option<Child>,
    /// Its certificates (`certs/`), configuration and log.
    pub dir: TempDir,
    /// Admission port (TLS, 127.0.0.1).
    pub port: u16,
    /// Admin port (plain HTTP, 127.0.0.1).
    pub admin_port: u16,
    args: Vec<String>,
    log: PathBuf,
}

impl Serve {
    /// A server not started yet: its directory, certificates (`homestead certs` for
    /// 127.0.0.1 and localhost) and ports are chosen, so what must know its URL or CA
    /// (a chart install, a webhook registration) can be set up before [`Serve::launch`].
    pub fn prepare() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new(env!("CARGO_BIN_EXE_homestead"))
            .args(["certs", "--out"])
            .arg(dir.path().join("certs"))
            .args(["--ip", "127.0.0.1", "--dns", "localhost"])
            .stdout(Stdio::null())
            .status()
            .expect("homestead certs");
        assert!(status.success(), "homestead certs");
        Self {
            child: None,
            log: dir.path().join("serve.log"),
            dir,
            port: free_port(),
            admin_port: free_port(),
            args: Vec::new(),
        }
    }

    /// Starts it with `options` (and, unless told not to, waits until it is ready).
    pub async fn launch(&mut self, cluster: &Cluster, options: ServeOptions) {
        let config = self.dir.path().join("config.yaml");
        let text = options.config.unwrap_or_else(|| cluster.default_config());
        std::fs::write(&config, text).expect("config");
        let kubeconfig = options.kubeconfig.unwrap_or_else(kubeconfig_path);
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--certs-dir".into(),
            self.certs().display().to_string(),
            "--config".into(),
            config.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{}", self.port),
            "--admin-listen".into(),
            format!("127.0.0.1:{}", self.admin_port),
            "--drain-delay".into(),
            "0s".into(),
            "--shutdown-grace".into(),
            "2s".into(),
        ];
        // A Lease and identity of its own, unless the test names them.
        for (flag, value) in [("--identity", "serve"), ("--lease-name", "homestead")] {
            if !options.args.iter().any(|a| a == flag) {
                args.extend([flag.to_owned(), cluster.name(value)]);
            }
        }
        args.extend(options.args);
        self.args = args;
        self.start();
        if options.wait_ready {
            self.wait_ready().await;
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The directory with `ca.crt`, `tls.crt`, `tls.key`.
    pub fn certs(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// The CA that signed the serving certificate (PEM).
    pub fn ca(&self) -> Vec<u8> {
        std::fs::read(self.certs().join("ca.crt")).expect("ca.crt")
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Replaces the configuration file (read at the next [`Serve::start`]).
    pub fn set_config(&self, text: &str) {
        std::fs::write(self.dir.path().join("config.yaml"), text).expect("config");
    }

    /// Stops and starts it again, and waits until it is ready.
    pub async fn restart(&mut self) {
        self.stop();
        self.start();
        self.wait_ready().await;
    }

    /// Starts the process again after [`Serve::stop`], appending to the same log.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_homestead"))
            .args(&self.args)
            .env("RUST_LOG", "info,homestead=debug")
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("homestead serve");
        self.child = Some(child);
    }

    /// Stops it with SIGTERM (a graceful shutdown) and waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = i32::try_from(child.id()).expect("pid");
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `GET path` on the admin port: (status, body).
    pub async fn admin_get(&self, path: &str) -> Option<(u16, String)> {
        admin_get(self.admin_port, path).await
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        eventually("serve ready", WAIT, || async move {
            match self.admin_get("/readyz").await {
                Some((200, _)) => Some(()),
                _ => None,
            }
        })
        .await;
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.admin_get("/metrics")
            .await
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// The value of the metric line starting with `series` (name and labels), if present.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        metric_value(&self.metrics().await, series)
    }

    /// Registers both webhook configurations exactly as the chart does (rules, selectors,
    /// `failurePolicy: Fail`), by URL to this server, under a name unique to the test;
    /// returns the name. They are deleted when the test ends. Waits until the API server
    /// calls them (a User whose name does not match its username is refused).
    pub async fn register_webhooks(&self, cluster: &Cluster) -> String {
        let name = cluster.name("homestead");
        let registration = Registration {
            target: Target::Url(self.url()),
            namespace: "homestead".into(),
            excluded_namespaces: Vec::new(),
            failure_policy: "Fail".into(),
            timeout_seconds: 10,
            // The configured kinds' rules, from the server's configuration, as the leader
            // adds them.
            workload_kinds: std::fs::read_to_string(self.dir.path().join("config.yaml"))
                .ok()
                .and_then(|text| homestead_core::config::Config::from_yaml(&text).ok())
                .map(|config| homestead_core::webhooks::KindRule::from_config(&config))
                .unwrap_or_default(),
        };
        let ca = self.ca();
        cluster.delete_on_drop::<MutatingWebhookConfiguration>(None, &name);
        cluster.delete_on_drop::<ValidatingWebhookConfiguration>(None, &name);
        let meta = ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        };
        let mutating = MutatingWebhookConfiguration {
            metadata: meta.clone(),
            webhooks: Some(desired::mutating(&registration, Some(&ca))),
        };
        let validating = ValidatingWebhookConfiguration {
            metadata: meta,
            webhooks: Some(desired::validating(&registration, Some(&ca))),
        };
        Api::<MutatingWebhookConfiguration>::all(cluster.admin.clone())
            .create(&PostParams::default(), &mutating)
            .await
            .expect("register the mutating webhook");
        Api::<ValidatingWebhookConfiguration>::all(cluster.admin.clone())
            .create(&PostParams::default(), &validating)
            .await
            .expect("register the validating webhooks");
        wait_validating(&cluster.admin).await;
        name
    }
}

/// Waits until homestead's validating webhook answers for Users: a User whose name is not
/// the object name of its username is refused (a dry run, so nothing is stored).
pub async fn wait_validating(admin: &Client) {
    let users: Api<User> = Api::all(admin.clone());
    let probe: User = serde_json::from_value(json!({
        "apiVersion": "homestead.dev/v1alpha1", "kind": "User",
        "metadata": {"name": "webhook-probe"},
        "spec": {"username": "someone-else", "uid": 1, "gid": 1}
    }))
    .expect("probe");
    eventually("the validating webhook to answer", WAIT, || {
        let (users, probe) = (users.clone(), probe.clone());
        async move {
            let params = PostParams {
                dry_run: true,
                field_manager: None,
            };
            match users.create(&params, &probe).await {
                // homestead's own denial, not the API server failing to call it (a TLS
                // error also names the webhook).
                Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("someone-else") => {
                    Some(())
                }
                _ => None,
            }
        }
    })
    .await;
}

/// `GET path` on a local admin port (plain HTTP/1.0): (status, body), `None` when nothing
/// answers.
pub async fn admin_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await.ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// The sum over the series of metric `name` whose labels contain every one of `labels`
/// (e.g. `result="applied"`); 0 when there is none.
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?;
            (rest.is_empty() || rest.starts_with('{')).then_some(())?;
            labels
                .iter()
                .all(|want| rest.contains(want))
                .then_some(())?;
            value.parse::<f64>().ok()
        })
        .sum()
}

/// The value of the first line of Prometheus `text` that starts with `series`.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(80)..];
            eprintln!("--- last {} lines of homestead serve's log ---", tail.len());
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

/// Labels as a map (empty when absent).
pub fn labels_of<K: Resource>(obj: &K) -> BTreeMap<String, String> {
    obj.meta().labels.clone().unwrap_or_default()
}
