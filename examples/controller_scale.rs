//! Controller scale benchmark on a real control plane: USERS Users and SESSIONS Sessions
//! created at once; the time until every one is `Deployed`, the API requests that took
//! (the API server's `apiserver_request_total`, all clients, and homestead's own from the
//! API server's audit log), homestead's peak RSS; then homestead is restarted with nothing
//! changed and the next AFTER seconds are measured the same way, with the number of managed
//! objects whose resourceVersion changed.
//!
//! ```text
//! cargo build --release --bin homestead --example controller_scale
//! target/release/examples/controller_scale --users 1000 --sessions 100
//! ```
//!
//! It starts its own control plane with `CONTROLPLANE/up` (default
//! `../shared/controlplane`, audit logging at Metadata level added through
//! `APISERVER_EXTRA_ARGS`), runs `HOMESTEAD serve` (default `target/release/homestead`) as
//! cluster-admin on loopback, and stops both at the end. Objects are created by an
//! impersonated `homestead-bench` so the audit log tells its requests from homestead's.
//! Each Session has MEMBERS of the Users as members (a private claim each).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, PersistentVolume, PersistentVolumeClaim, ResourceQuota,
    Secret, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, CustomResourceExt, Resource, ResourceExt};
use serde_json::{Value, json};

use homestead_core::resources::{Phase, Project, Session, User};

#[derive(Parser, Debug)]
struct Args {
    /// Users to create.
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Sessions to create.
    #[arg(long, default_value_t = 100)]
    sessions: usize,
    /// Members of each Session (taken from the Users in turn).
    #[arg(long, default_value_t = 10)]
    members: usize,
    /// How long to measure after the restart.
    #[arg(long, default_value = "90s", value_parser = humantime::parse_duration)]
    after: Duration,
    /// Give up waiting for every object to be Deployed after this long (the figures are
    /// then printed for what was reached).
    #[arg(long, default_value = "900s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Before the restart, wait until every managed claim and volume is `Bound` (the PV
    /// binder has finished) and nothing managed changed for this long; `0s` restarts as
    /// soon as every owner is `Deployed`.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// Print what changed in each changed object after the restart (grouped).
    #[arg(long)]
    explain: bool,
    /// Creations in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// The control plane's directory (holding `up` and `down`).
    #[arg(long, default_value = "../shared/controlplane")]
    controlplane: PathBuf,
    /// The homestead binary.
    #[arg(long, default_value = "target/release/homestead")]
    homestead: PathBuf,
}

const BENCH_USER: &str = "homestead-bench";

const AUDIT_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
"#;

/// Requests by verb.
type Counts = BTreeMap<String, u64>;

fn writes(counts: &Counts, verbs: &[&str]) -> u64 {
    counts
        .iter()
        .filter(|(verb, _)| verbs.contains(&verb.as_str()))
        .map(|(_, n)| n)
        .sum()
}

fn total(counts: &Counts) -> u64 {
    counts.values().sum()
}

/// `apiserver_request_total` summed by verb.
async fn apiserver_requests(client: &Client) -> anyhow::Result<Counts> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    let mut counts = Counts::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let Some((labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Some(verb) = labels
            .split("verb=\"")
            .nth(1)
            .and_then(|v| v.split('"').next())
        else {
            continue;
        };
        let value: f64 = value.parse().unwrap_or(0.0);
        *counts.entry(verb.to_owned()).or_default() += value as u64;
    }
    Ok(counts)
}

fn diff(after: &Counts, before: &Counts) -> Counts {
    after
        .iter()
        .map(|(verb, n)| (verb.clone(), n - before.get(verb).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// The audit log from `offset`: requests by verb made as `username` (not impersonating),
/// and the offset reached. A request counts once: its ResponseComplete event, or for a
/// watch its ResponseStarted event.
fn audit_requests(path: &Path, offset: u64, username: &str) -> anyhow::Result<(Counts, u64)> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::new(file);
    let mut counts = Counts::new();
    let mut line = String::new();
    let mut at = offset;
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        at += n as u64;
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let verb = event["verb"].as_str().unwrap_or_default();
        let stage = event["stage"].as_str().unwrap_or_default();
        let counted = if verb == "watch" {
            "ResponseStarted"
        } else {
            "ResponseComplete"
        };
        if stage != counted
            || event["user"]["username"] != username
            || !event["impersonatedUser"].is_null()
        {
            continue;
        }
        *counts.entry(verb.to_owned()).or_default() += 1;
    }
    Ok((counts, at))
}

/// The write requests in the audit log from `offset`, by user (a ServiceAccount or an
/// impersonated user by its name), verb and resource(/subresource).
fn audit_writes(path: &Path, offset: u64) -> anyhow::Result<Counts> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut counts = Counts::new();
    for line in BufReader::new(file).lines() {
        let Ok(event) = serde_json::from_str::<Value>(&line?) else {
            continue;
        };
        let verb = event["verb"].as_str().unwrap_or_default();
        if event["stage"] != "ResponseComplete"
            || !matches!(verb, "create" | "update" | "patch" | "delete")
        {
            continue;
        }
        let user = event["impersonatedUser"]["username"]
            .as_str()
            .or(event["user"]["username"].as_str())
            .unwrap_or("?");
        let resource = event["objectRef"]["resource"].as_str().unwrap_or("?");
        let sub = event["objectRef"]["subresource"]
            .as_str()
            .map(|s| format!("/{s}"))
            .unwrap_or_default();
        *counts
            .entry(format!("{user} {verb} {resource}{sub}"))
            .or_default() += 1;
    }
    Ok(counts)
}

fn audit_end(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Every object homestead manages, as the API server holds it, by kind/namespace/name.
async fn managed_objects(client: &Client) -> anyhow::Result<BTreeMap<String, Value>> {
    async fn add<K>(client: &Client, out: &mut BTreeMap<String, Value>) -> anyhow::Result<()>
    where
        K: Resource<DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::all(client.clone());
        let params = ListParams::default().labels("app.kubernetes.io/managed-by=homestead");
        for item in api.list(&params).await?.items {
            out.insert(
                format!(
                    "{}/{}/{}",
                    K::kind(&()),
                    item.namespace().unwrap_or_default(),
                    item.name_any()
                ),
                serde_json::to_value(&item)?,
            );
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    add::<Namespace>(client, &mut out).await?;
    add::<ServiceAccount>(client, &mut out).await?;
    add::<RoleBinding>(client, &mut out).await?;
    add::<ConfigMap>(client, &mut out).await?;
    add::<Secret>(client, &mut out).await?;
    add::<ResourceQuota>(client, &mut out).await?;
    add::<LimitRange>(client, &mut out).await?;
    add::<PersistentVolumeClaim>(client, &mut out).await?;
    add::<PersistentVolume>(client, &mut out).await?;
    Ok(out)
}

/// resourceVersion of every object homestead manages, by kind/namespace/name.
fn versions_of(objects: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    objects
        .iter()
        .map(|(k, v)| {
            let rv = v["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default();
            (k.clone(), rv.to_owned())
        })
        .collect()
}

/// The paths (`a.b.c`) where `before` and `after` differ, leaving out what changes on every
/// write (resourceVersion, managedFields' times).
fn changed_paths(before: &Value, after: &Value, at: &str, out: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
            for k in keys {
                if at == ".metadata" && (k == "resourceVersion" || k == "managedFields") {
                    continue;
                }
                let next = format!("{at}.{k}");
                changed_paths(
                    b.get(k).unwrap_or(&Value::Null),
                    a.get(k).unwrap_or(&Value::Null),
                    &next,
                    out,
                );
            }
        }
        (b, a) if b != a => out.push(at.to_owned()),
        _ => {}
    }
}

/// Who wrote an object last: the managedFields entries (manager, operation, subresource)
/// whose time is the latest.
fn last_writers(object: &Value) -> String {
    let entries = object["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let latest = entries
        .iter()
        .filter_map(|e| e["time"].as_str())
        .max()
        .unwrap_or_default()
        .to_owned();
    let mut who: Vec<String> = entries
        .iter()
        .filter(|e| e["time"].as_str() == Some(latest.as_str()))
        .map(|e| {
            format!(
                "{} {}{}",
                e["manager"].as_str().unwrap_or("?"),
                e["operation"].as_str().unwrap_or("?"),
                e["subresource"]
                    .as_str()
                    .map(|s| format!("/{s}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    who.sort();
    who.join(" + ")
}

/// Objects changed between `before` and `after`, grouped by kind, what changed and who
/// wrote last, with a count each.
fn explain_changes(
    before: &BTreeMap<String, Value>,
    after: &BTreeMap<String, Value>,
) -> BTreeMap<String, usize> {
    let mut groups = BTreeMap::new();
    for (key, now) in after {
        let Some(was) = before.get(key) else {
            *groups
                .entry(format!("{} (new)", key.split('/').next().unwrap_or("?")))
                .or_default() += 1;
            continue;
        };
        if was["metadata"]["resourceVersion"] == now["metadata"]["resourceVersion"] {
            continue;
        }
        let mut paths = Vec::new();
        changed_paths(was, now, "", &mut paths);
        let kind = key.split('/').next().unwrap_or("?");
        *groups
            .entry(format!(
                "{kind}: [{}] by {}",
                paths.join(" "),
                last_writers(now)
            ))
            .or_default() += 1;
    }
    groups
}

/// Every User and Session, by `Kind/name`.
async fn owner_objects(client: &Client) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for u in Api::<User>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
    {
        out.insert(format!("User/{}", u.name_any()), serde_json::to_value(&u)?);
    }
    for s in Api::<Session>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
    {
        out.insert(
            format!("Session/{}", s.name_any()),
            serde_json::to_value(&s)?,
        );
    }
    Ok(out)
}

fn changed(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> usize {
    after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .count()
}

struct Serve {
    child: Option<Child>,
    args: Vec<String>,
    bin: PathBuf,
    log: PathBuf,
}

impl Serve {
    fn start(&mut self) -> anyhow::Result<u32> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.bin)
            .args(&self.args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        let pid = child.id();
        self.child = Some(child);
        Ok(pid)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn admin_metric(port: u16, series: &str) -> Option<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .await
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await.ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

async fn wait_leader(port: u16) -> anyhow::Result<()> {
    let start = Instant::now();
    while admin_metric(port, "homestead_controller_leader ").await != Some(1.0) {
        if start.elapsed() > Duration::from_secs(120) {
            bail!("homestead did not become leader");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

struct ControlPlane {
    dir: PathBuf,
    state: PathBuf,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new(self.dir.join("down"))
            .arg(&self.state)
            .arg("--rm")
            .status();
    }
}

fn report(title: &str, seconds: f64, all: &Counts, ours: &Counts, objects: usize) {
    let all_writes = writes(all, &["POST", "PUT", "PATCH", "APPLY", "DELETE"]);
    let our_writes = writes(ours, &["create", "update", "patch", "delete"]);
    println!("\n{title} ({seconds:.1} s)");
    println!(
        "  all clients (apiserver_request_total): {} requests, {all_writes} writes  {all:?}",
        total(all)
    );
    println!(
        "  homestead (audit log):                 {} requests, {our_writes} writes  {ours:?}",
        total(ours)
    );
    if objects > 0 {
        println!(
            "  per managed object ({objects}): {:.2} requests, {:.2} writes by homestead",
            total(ours) as f64 / objects as f64,
            our_writes as f64 / objects as f64
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let work = tempfile::tempdir()?;
    let policy = work.path().join("audit-policy.yaml");
    std::fs::write(&policy, AUDIT_POLICY)?;
    let audit = work.path().join("audit.log");
    let state = work.path().join("controlplane");
    eprintln!("starting the control plane with audit logging");
    let up = Command::new(args.controlplane.join("up"))
        .arg(&state)
        .env(
            "APISERVER_EXTRA_ARGS",
            format!(
                "--audit-policy-file={} --audit-log-path={} --audit-log-mode=batch",
                policy.display(),
                audit.display()
            ),
        )
        .stderr(Stdio::inherit())
        .output()?;
    let _plane = ControlPlane {
        dir: args.controlplane.clone(),
        state: state.clone(),
    };
    if !up.status.success() {
        bail!("the control plane did not come up");
    }
    let kubeconfig = PathBuf::from(String::from_utf8(up.stdout)?.trim());
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&kubeconfig)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    let admin = Client::try_from(config.clone())?;
    let mut bench_config = config;
    bench_config.auth_info.impersonate = Some(BENCH_USER.into());
    bench_config.auth_info.impersonate_groups = Some(vec!["system:masters".into()]);
    let bench = Client::try_from(bench_config)?;

    // CRDs, the aggregated edit role, and who the admin is.
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    for crd in [User::crd(), Session::crd(), Project::crd()] {
        crds.patch(
            &crd.name_any(),
            &PatchParams::apply("bench").force(),
            &Patch::Apply(&crd),
        )
        .await?;
    }
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    loop {
        let edit = roles.get_opt("edit").await?;
        let crd_ready = crds
            .get("sessions.homestead.dev")
            .await?
            .status
            .is_some_and(|s| {
                s.conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        if crd_ready && edit.is_some_and(|r| r.rules.is_some_and(|r| !r.is_empty())) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let review: k8s_openapi::api::authentication::v1::SelfSubjectReview = serde_json::from_value(
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
    )?;
    let me = Api::all(admin.clone())
        .create(&PostParams::default(), &review)
        .await?
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .context("who am I")?;

    // homestead serve, as the admin.
    let certs = work.path().join("certs");
    let status = Command::new(&args.homestead)
        .args(["certs", "--out"])
        .arg(&certs)
        .args(["--ip", "127.0.0.1"])
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("homestead certs failed");
    }
    let config_file = work.path().join("config.yaml");
    std::fs::write(&config_file, format!("homesteadUsernames: [{me:?}]\n"))?;
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut serve = Serve {
        child: None,
        bin: args.homestead.clone(),
        log: work.path().join("serve.log"),
        args: vec![
            "serve".into(),
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--certs-dir".into(),
            certs.display().to_string(),
            "--config".into(),
            config_file.display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--admin-listen".into(),
            format!("127.0.0.1:{admin_port}"),
            "--lease-namespace".into(),
            "default".into(),
            "--drain-delay".into(),
            "0s".into(),
        ],
    };
    let pid = serve.start()?;
    wait_leader(admin_port).await?;

    // Converge: everything created at once.
    let users: Vec<User> = (0..args.users)
        .map(|i| {
            let name = format!("bench-{i:05}");
            serde_json::from_value(json!({
                "apiVersion": "homestead.dev/v1alpha1", "kind": "User",
                "metadata": {"name": name},
                "spec": {"username": name, "uid": 200_000 + i, "gid": 200_000 + i}
            }))
        })
        .collect::<Result<_, _>>()?;
    let sessions: Vec<Session> = (0..args.sessions)
        .map(|i| {
            let members: Vec<String> = (0..args.members)
                .map(|m| format!("bench-{:05}", (i * args.members + m) % args.users.max(1)))
                .collect();
            serde_json::from_value(json!({
                "apiVersion": "homestead.dev/v1alpha1", "kind": "Session",
                "metadata": {"name": format!("bb{}-1", 10_000 + i)},
                "spec": {
                    "proposalCode": "bb", "proposalNumber": 10_000 + i, "visit": 1, "instrument": "i03",
                    "startDate": "2024-03-15 9:00:00.0", "endDate": "2034-05-24 9:00:00.0",
                    "dataDirectory": format!("/data/bb{}-1/", 10_000 + i), "gid": 300_000 + i,
                    "members": members
                }
            }))
        })
        .collect::<Result<_, _>>()?;
    let offset = audit_end(&audit);
    let converge_offset = offset;
    let before = apiserver_requests(&admin).await?;
    let started = Instant::now();
    let user_api: Api<User> = Api::all(bench.clone());
    let session_api: Api<Session> = Api::all(bench.clone());
    futures::stream::iter(users.iter().map(|u| {
        let api = user_api.clone();
        async move { api.create(&PostParams::default(), u).await.map(|_| ()) }
    }))
    .buffer_unordered(args.concurrency)
    .try_collect::<Vec<()>>()
    .await?;
    futures::stream::iter(sessions.iter().map(|s| {
        let api = session_api.clone();
        async move { api.create(&PostParams::default(), s).await.map(|_| ()) }
    }))
    .buffer_unordered(args.concurrency)
    .try_collect::<Vec<()>>()
    .await?;
    let created = started.elapsed();
    let mut reached = String::from("all Deployed");
    loop {
        let u = user_api.list(&ListParams::default()).await?;
        let s = session_api.list(&ListParams::default()).await?;
        let deployed = |phase: Option<Phase>| phase == Some(Phase::Deployed);
        let done_u = u
            .items
            .iter()
            .filter(|x| deployed(x.status.as_ref().and_then(|s| s.phase)))
            .count();
        let done_s = s
            .items
            .iter()
            .filter(|x| deployed(x.status.as_ref().and_then(|s| s.phase)))
            .count();
        if done_u == args.users && done_s == args.sessions {
            break;
        }
        if started.elapsed() > args.timeout {
            reached = format!("NOT all Deployed: {done_u} Users, {done_s} Sessions");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let converged = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = apiserver_requests(&admin).await?;
    let (ours, offset) = audit_requests(&audit, offset, &me)?;
    let mut settled = String::new();
    if !args.settle.is_zero() {
        let (bound, quiet) = settle(&admin, args.settle, args.timeout).await?;
        settled = format!(
            "; every claim and volume Bound after {:.1} s, nothing changing after {:.1} s",
            (bound - started).as_secs_f64(),
            (quiet - started).as_secs_f64()
        );
    }
    let audit_before_restart = audit_end(&audit).max(offset);
    if args.explain {
        println!("writes until settled (audit log, by user, verb, resource):");
        for (what, n) in audit_writes(&audit, converge_offset)? {
            println!("  {n:6}  {what}");
        }
    }
    let objects_before = managed_objects(&admin).await?;
    let owners_before = owner_objects(&admin).await?;
    let versions = versions_of(&objects_before);
    let owners = versions_of(&owners_before);
    let objects = versions.len();
    println!(
        "{} Users + {} Sessions ({} members each): created in {:.1} s, {reached} after {:.1} s{settled}; {objects} managed objects; homestead peak RSS {:.1} MB",
        args.users,
        args.sessions,
        args.members,
        created.as_secs_f64(),
        converged.as_secs_f64(),
        peak_rss_mb(pid)
    );
    report(
        "converging",
        converged.as_secs_f64(),
        &diff(&after, &before),
        &ours,
        objects,
    );

    // Restart with nothing changed, and watch the next `after` seconds.
    serve.stop();
    let offset = audit_end(&audit).max(offset);
    let before = apiserver_requests(&admin).await?;
    let restarted = Instant::now();
    let pid = serve.start()?;
    tokio::time::sleep(args.after).await;
    let after = apiserver_requests(&admin).await?;
    let (ours, _) = audit_requests(&audit, offset, &me)?;
    let objects_after = managed_objects(&admin).await?;
    let versions_after = versions_of(&objects_after);
    let owners_objects_after = owner_objects(&admin).await?;
    let owners_after = versions_of(&owners_objects_after);
    report(
        "after a restart",
        restarted.elapsed().as_secs_f64(),
        &diff(&after, &before),
        &ours,
        objects,
    );
    println!(
        "  resourceVersions changed: {} of {} managed objects, {} of {} Users/Sessions; homestead peak RSS {:.1} MB",
        changed(&versions, &versions_after),
        versions.len(),
        changed(&owners, &owners_after),
        owners.len(),
        peak_rss_mb(pid)
    );
    if args.explain {
        println!("  what changed (kind: [paths] by the last writer):");
        let mut groups = explain_changes(&objects_before, &objects_after);
        groups.extend(explain_changes(&owners_before, &owners_objects_after));
        for (what, n) in groups {
            println!("    {n:6}  {what}");
        }
        println!("  writes after the restart (audit log, by user, verb, resource):");
        for (what, n) in audit_writes(&audit, audit_before_restart)? {
            println!("    {n:6}  {what}");
        }
    }
    serve.stop();
    Ok(())
}

/// Waits until every managed claim and volume is `Bound`, then until no managed object's
/// resourceVersion changed for `quiet`; the instants both were reached.
async fn settle(
    client: &Client,
    quiet: Duration,
    timeout: Duration,
) -> anyhow::Result<(Instant, Instant)> {
    let start = Instant::now();
    let phase = |v: &Value| v["status"]["phase"].as_str().map(str::to_owned);
    loop {
        let objects = managed_objects(client).await?;
        let unbound = objects
            .iter()
            .filter(|(k, _)| k.starts_with("Persistent"))
            .filter(|(_, v)| phase(v).as_deref() != Some("Bound"))
            .count();
        if unbound == 0 {
            break;
        }
        if start.elapsed() > timeout {
            bail!("{unbound} claims and volumes still not Bound");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let bound = Instant::now();
    let mut last = versions_of(&managed_objects(client).await?);
    let mut since = Instant::now();
    while since.elapsed() < quiet {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = versions_of(&managed_objects(client).await?);
        if now != last {
            last = now;
            since = Instant::now();
        }
        if start.elapsed() > timeout {
            bail!("managed objects still changing");
        }
    }
    Ok((bound, since))
}
