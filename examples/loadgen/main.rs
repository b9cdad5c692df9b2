//! Load generator for the admission server: N kept-alive TLS connections posting one
//! AdmissionReview for T seconds, as fast as possible or at a fixed total rate. Prints
//! requests/s and latency percentiles, and the server's peak RSS when it runs the server
//! itself (`--spawn`) or is given its pid (`--pid`).
//!
//! ```text
//! cargo build --release --examples
//! target/release/examples/loadgen --spawn target/release/homestead --connections 8 --duration 10s
//! target/release/examples/loadgen --spawn target/release/homestead --connections 8 --duration 10s --rate 5000
//! ```
//!
//! With `--spawn BIN` it runs `BIN serve --dev` on the given addresses from the current
//! directory (certificates in `certs/`, written if missing) and stops it with SIGTERM at
//! the end.
//!
//! In fixed-rate mode a pacing thread releases requests at their due times (a thread
//! sleep is precise to tens of microseconds; tokio's timer only to its millisecond
//! ticks), round-robin over the connections, and each request's latency is measured from
//! when it fell due: a request that falls due while its connection still waits for the
//! previous response is charged the wait, so a stalled server is not hidden (no
//! coordinated omission). How late requests left after falling due is printed as the
//! send lag, the generator's own share of the figures.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use http::{Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

#[derive(Debug, Parser)]
#[command(about = "Drive the homestead admission server over TLS and measure it")]
struct Args {
    /// Admission listener to drive.
    #[arg(long, default_value = "127.0.0.1:18443")]
    addr: SocketAddr,
    /// Admin listener (readiness is awaited there when spawning).
    #[arg(long, default_value = "127.0.0.1:18080")]
    admin_addr: SocketAddr,
    /// CA certificate to trust.
    #[arg(long, default_value = "certs/ca.crt")]
    ca: PathBuf,
    /// AdmissionReview body to post.
    #[arg(long, default_value = "examples/loadgen/review-pod-8k.json")]
    review: PathBuf,
    /// Webhook path.
    #[arg(long, default_value = "/mutate")]
    path: String,
    /// Kept-alive connections.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// How long to measure.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Load before measuring (not counted).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Total requests per second across all connections (default: as fast as possible).
    #[arg(long)]
    rate: Option<f64>,
    /// Use h2 instead of HTTP/1.1.
    #[arg(long)]
    h2: bool,
    /// Run `BIN serve --dev --listen ADDR --admin-listen ADMIN_ADDR` as a child process.
    #[arg(long, value_name = "BIN")]
    spawn: Option<PathBuf>,
    /// Pid of an already running server, for its peak RSS.
    #[arg(long, conflicts_with = "spawn")]
    pid: Option<u32>,
    /// Worker threads of the load generator's runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Offer only this TLS cipher suite (rustls name, e.g. TLS13_AES_128_GCM_SHA256, what
    /// Go clients such as the API server choose first; default: rustls's order, which
    /// puts TLS13_AES_256_GCM_SHA384 first).
    #[arg(long)]
    cipher_suite: Option<String>,
    /// Write the body of a successful response here (the limit server answers it).
    #[arg(long, value_name = "FILE")]
    save_response: Option<PathBuf>,
}

struct Outcome {
    latencies_us: Vec<u32>,
    /// Fixed rate: how late each request left after it fell due.
    send_lag_us: Vec<u32>,
    errors: u64,
    /// The body of the last successful response.
    answer: Option<Bytes>,
    /// TLS version, cipher suite and ALPN protocol the connection negotiated.
    tls: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut child = match &args.spawn {
        Some(bin) => Some(spawn_server(bin, &args)?),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let pid = child.as_ref().map(Child::id).or(args.pid);
    let result = runtime.block_on(run(&args, pid));
    if let Some(pid) = pid {
        match peak_rss(pid) {
            Ok((hwm, rss)) => println!("server peak RSS (VmHWM): {hwm}   current RSS: {rss}"),
            Err(e) => println!("server RSS unavailable: {e:#}"),
        }
    }
    if let Some(child) = child.as_mut() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let status = child.wait()?;
        println!("server exited: {status}");
    }
    result
}

fn spawn_server(bin: &PathBuf, args: &Args) -> anyhow::Result<Child> {
    let child = Command::new(bin)
        .args(["serve", "--dev", "--listen"])
        .arg(args.addr.to_string())
        .arg("--admin-listen")
        .arg(args.admin_addr.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if ready(args.admin_addr) {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the server did not become ready on {}", args.admin_addr)
}

fn ready(admin: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut tcp) = std::net::TcpStream::connect(admin) else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(1)));
    if tcp
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

fn peak_rss(pid: u32) -> anyhow::Result<(String, String)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| "?".to_owned())
    };
    Ok((field("VmHWM:"), field("VmRSS:")))
}

/// CPU time (user + system) a process has used, from /proc/<pid>/stat (Linux).
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
}

async fn run(args: &Args, server_pid: Option<u32>) -> anyhow::Result<()> {
    let body = Bytes::from(
        std::fs::read(&args.review)
            .with_context(|| format!("reading {}", args.review.display()))?,
    );
    let mut roots = rustls::RootCertStore::empty();
    roots.add(
        CertificateDer::from_pem_file(&args.ca)
            .with_context(|| format!("reading {}", args.ca.display()))?,
    )?;
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(name) = &args.cipher_suite {
        provider
            .cipher_suites
            .retain(|suite| format!("{:?}", suite.suite()) == *name);
        if provider.cipher_suites.is_empty() {
            bail!("no cipher suite named {name}");
        }
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![if args.h2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    let connector = TlsConnector::from(Arc::new(tls));

    let start = tokio::time::Instant::now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let mut tasks = Vec::new();
    let mut schedules = Vec::new();
    for _ in 0..args.connections {
        let connector = connector.clone();
        let body = body.clone();
        let addr = args.addr;
        let path = args.path.clone();
        let h2 = args.h2;
        let schedule = match args.rate {
            Some(_) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                schedules.push(tx);
                Some(rx)
            }
            None => None,
        };
        tasks.push(tokio::spawn(async move {
            drive(connector, addr, path, body, h2, schedule, measure_from, end).await
        }));
    }
    if let Some(rate) = args.rate {
        let interval = Duration::from_secs_f64(1.0 / rate);
        let (start, end) = (start.into_std(), end.into_std());
        std::thread::Builder::new()
            .name("pacer".into())
            .spawn(move || pace(schedules, start, end, interval))?;
    }
    tokio::time::sleep_until(measure_from).await;
    let server_pid = server_pid.map(|p| p.to_string());
    let cpu_before = (server_pid.as_deref().and_then(cpu_time), cpu_time("self"));
    tokio::time::sleep_until(end).await;
    let cpu_after = (server_pid.as_deref().and_then(cpu_time), cpu_time("self"));
    let mut latencies = Vec::new();
    let mut send_lags = Vec::new();
    let mut errors = 0;
    let mut answer = None;
    let mut negotiated = Vec::new();
    for task in tasks {
        let outcome = task.await??;
        latencies.extend(outcome.latencies_us);
        send_lags.extend(outcome.send_lag_us);
        errors += outcome.errors;
        answer = answer.or(outcome.answer);
        if !negotiated.contains(&outcome.tls) {
            negotiated.push(outcome.tls);
        }
    }
    if let Some(path) = &args.save_response {
        let answer = answer.context("no successful response to save")?;
        std::fs::write(path, &answer).with_context(|| format!("writing {}", path.display()))?;
    }
    latencies.sort_unstable();
    send_lags.sort_unstable();
    let seconds = args.duration.as_secs_f64();
    let pct = |p: f64| percentile(&latencies, p);
    println!(
        "{} connections, {}, {} body of {} bytes to {}{}",
        args.connections,
        if args.h2 { "h2" } else { "HTTP/1.1" },
        match args.rate {
            Some(rate) => format!("fixed rate {rate}/s"),
            None => "closed loop".into(),
        },
        body.len(),
        args.addr,
        args.path
    );
    println!("TLS: {}", negotiated.join("; "));
    println!(
        "requests: {}   errors: {}   duration: {:.1} s   requests/s: {:.0}",
        latencies.len(),
        errors,
        seconds,
        latencies.len() as f64 / seconds
    );
    let used = |before: Option<Duration>, after: Option<Duration>| {
        before
            .zip(after)
            .map(|(b, a)| a.saturating_sub(b).as_secs_f64())
    };
    if let Some(server_cpu) = used(cpu_before.0, cpu_after.0) {
        println!(
            "server CPU: {:.2} s over {:.1} s ({:.0}% of one core) = {:.0} requests per CPU-second",
            server_cpu,
            seconds,
            100.0 * server_cpu / seconds,
            latencies.len() as f64 / server_cpu.max(f64::EPSILON)
        );
    }
    if let Some(own) = used(cpu_before.1, cpu_after.1) {
        println!(
            "load generator CPU: {:.2} s ({:.0}% of one core)",
            own,
            100.0 * own / seconds
        );
    }
    println!(
        "latency p50: {}   p90: {}   p99: {}   p99.9: {}   max: {}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
    if !send_lags.is_empty() {
        println!(
            "send lag (sent - due): p50: {}   p99: {}   max: {}",
            percentile(&send_lags, 0.5),
            percentile(&send_lags, 0.99),
            percentile(&send_lags, 1.0)
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    connector: TlsConnector,
    addr: SocketAddr,
    path: String,
    body: Bytes,
    h2: bool,
    mut schedule: Option<tokio::sync::mpsc::UnboundedReceiver<tokio::time::Instant>>,
    measure_from: tokio::time::Instant,
    end: tokio::time::Instant,
) -> anyhow::Result<Outcome> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let tls = connector
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let session = tls.get_ref().1;
    let tls_text = format!(
        "{:?} {:?}, ALPN {}",
        session.protocol_version().context("no TLS version")?,
        session
            .negotiated_cipher_suite()
            .context("no cipher suite")?
            .suite(),
        session
            .alpn_protocol()
            .map_or("none".into(), String::from_utf8_lossy)
    );
    let io = TokioIo::new(tls);
    let mut outcome = Outcome {
        latencies_us: Vec::with_capacity(100_000),
        send_lag_us: Vec::with_capacity(if schedule.is_some() { 100_000 } else { 0 }),
        errors: 0,
        answer: None,
        tls: tls_text,
    };
    enum Sender {
        H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
        H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
    }
    let mut sender = if h2 {
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(conn);
        Sender::H2(sender)
    } else {
        let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(conn);
        Sender::H1(sender)
    };
    let uri = format!("https://localhost:{}{}", addr.port(), path);
    loop {
        let due = match &mut schedule {
            // The pacer stops (and drops its senders) at the end.
            Some(schedule) => match schedule.recv().await {
                Some(due) => due,
                None => break,
            },
            None => tokio::time::Instant::now(),
        };
        if due >= end {
            break;
        }
        if schedule.is_some() && due >= measure_from {
            let lag = due.elapsed().as_micros();
            outcome
                .send_lag_us
                .push(u32::try_from(lag).unwrap_or(u32::MAX));
        }
        let request = Request::post(&uri)
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body.clone()))?;
        let response = match &mut sender {
            Sender::H1(s) => match s.ready().await {
                Ok(()) => s.send_request(request).await,
                Err(e) => Err(e),
            },
            Sender::H2(s) => match s.ready().await {
                Ok(()) => s.send_request(request).await,
                Err(e) => Err(e),
            },
        };
        let (ok, failure) = match response {
            Ok(response) => {
                let status = response.status();
                let collected = response.into_body().collect().await;
                match collected {
                    Ok(body) if status.is_success() => {
                        if outcome.answer.is_none() {
                            outcome.answer = Some(body.to_bytes());
                        }
                        (true, String::new())
                    }
                    Ok(body) => (
                        false,
                        format!("{status}: {}", String::from_utf8_lossy(&body.to_bytes())),
                    ),
                    Err(e) => (false, format!("{status}, reading the body: {e}")),
                }
            }
            Err(e) => (false, e.to_string()),
        };
        let done = tokio::time::Instant::now();
        if due >= measure_from {
            if ok {
                let micros = done.duration_since(due).as_micros();
                outcome
                    .latencies_us
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
            } else {
                outcome.errors += 1;
            }
        }
        if !ok && matches!(&sender, Sender::H1(s) if s.is_closed()) {
            bail!("connection closed by the server after: {failure}");
        }
    }
    Ok(outcome)
}

/// The `p` quantile of sorted microsecond figures, in milliseconds.
fn percentile(sorted: &[u32], p: f64) -> String {
    if sorted.is_empty() {
        return "-".into();
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    format!("{:.3} ms", f64::from(sorted[idx]) / 1000.0)
}

/// Releases request `k` at `start + k * interval` to connection `k mod n`, until `end`.
/// Runs on its own thread: `std::thread::sleep` wakes within tens of microseconds of its
/// deadline, where tokio's timer rounds up to its next millisecond tick.
fn pace(
    connections: Vec<tokio::sync::mpsc::UnboundedSender<tokio::time::Instant>>,
    start: Instant,
    end: Instant,
    interval: Duration,
) {
    let mut due = start;
    for k in 0usize.. {
        if due >= end {
            break;
        }
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let connection = &connections[k % connections.len()];
        // A connection that failed has dropped its receiver; its share is not sent.
        let _ = connection.send(tokio::time::Instant::from_std(due));
        due += interval;
    }
}
