//! The physical limit of homestead's admission stack: the same TLS 1.3 + HTTP/1.1 server
//! (rustls with ring, hyper 1 through hyper-util's auto builder, the serving certificate
//! and rustls configuration of `homestead serve --dev`, a multi-threaded tokio runtime,
//! homestead's global allocator)
//! that reads each request body whole and answers a fixed response file — the bytes
//! homestead answers for the benchmark review — with no admission work at all.
//!
//! It takes the arguments `loadgen --spawn` passes to homestead (`serve --dev --listen
//! ADDR --admin-listen ADDR`), answers `GET /readyz` on the admin address, and stops on
//! SIGTERM, so the load generator drives it exactly as it drives homestead.
//! `examples/loadgen/limit.sh` measures both alternately and prints the ratio.
//!
//! ```text
//! LIMIT_RESPONSE=response.json target/release/examples/loadgen --spawn target/release/examples/limit
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use homestead::certs::CertificateFiles;
use homestead::server::dev::{DEV_CERTS_DIR, ensure_certificates};
use homestead::server::tls::{ReloadingCertificate, server_config};

// homestead's allocator (src/main.rs): part of the stack the limit shares.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(about = "homestead's TLS and HTTP stack answering a fixed response: the limit")]
struct Args {
    /// `serve`, as given to homestead (ignored).
    #[arg(value_name = "COMMAND")]
    _command: Option<String>,
    /// As given to homestead (the limit always uses the development certificates).
    #[arg(long = "dev")]
    _dev: bool,
    /// TLS listener.
    #[arg(long, default_value = "127.0.0.1:18443")]
    listen: SocketAddr,
    /// Plain-HTTP listener answering `/readyz`.
    #[arg(long, default_value = "127.0.0.1:18080")]
    admin_listen: SocketAddr,
    /// The response body answered to every request.
    #[arg(long, env = "LIMIT_RESPONSE")]
    response: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let response = Bytes::from(
        std::fs::read(&args.response)
            .with_context(|| format!("reading {}", args.response.display()))?,
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = Path::new(DEV_CERTS_DIR);
    ensure_certificates(dir)?;
    let certificate = Arc::new(ReloadingCertificate::load(CertificateFiles::in_dir(dir))?);
    let acceptor = TlsAcceptor::from(Arc::new(server_config(certificate)?));
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(args, acceptor, response))
}

/// The HTTP/1.1 settings of homestead's admission connections.
fn http1() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .keep_alive(true);
    builder.http1_only()
}

async fn serve(args: Args, acceptor: TlsAcceptor, response: Bytes) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen).await?;
    let admin = TcpListener::bind(args.admin_listen).await?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = admin.accept().await {
            let ok = service_fn(|_| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), ok),
            );
        }
    });
    let builder = Arc::new(http1());
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (tcp, _) = tokio::select! {
            _ = terminate.recv() => return Ok(()),
            accepted = listener.accept() => accepted?,
        };
        let (acceptor, builder, response) = (acceptor.clone(), builder.clone(), response.clone());
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = service_fn(move |request: hyper::Request<Incoming>| {
                let response = response.clone();
                async move {
                    // Read the body whole, as homestead does, and drop it.
                    let status = match request.into_body().collect().await {
                        Ok(_) => StatusCode::OK,
                        Err(_) => StatusCode::BAD_REQUEST,
                    };
                    let mut answer = Response::new(Full::new(response));
                    *answer.status_mut() = status;
                    answer.headers_mut().insert(
                        header::CONTENT_TYPE,
                        header::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, Infallible>(answer)
                }
            });
            let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
        });
    }
}
