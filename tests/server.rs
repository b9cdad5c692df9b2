//! The admission server over real sockets, with a real TLS client (tokio-rustls + hyper).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Version, header};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use homestead::certs::CertificateFiles;
use homestead::certs::{CertificateAuthority, write_atomic};
use homestead::embedded::{EXAMPLE_CONFIG, EXAMPLE_DIRECTORY, EXAMPLE_REVIEW};
use homestead::server::{self, Running, ServerSettings};
use homestead::state::SharedState;
use homestead_core::config::Config;
use homestead_core::directory::Directory;
use prometheus_client::registry::Registry;

const DAY: Duration = Duration::from_secs(86_400);

struct Harness {
    running: Running,
    state: Arc<SharedState>,
    ca: CertificateAuthority,
    files: CertificateFiles,
    _dir: tempfile::TempDir,
}

fn example_state(synced: bool) -> Arc<SharedState> {
    let config = Config::from_yaml(EXAMPLE_CONFIG).expect("example config");
    let (directory, problems) =
        Directory::from_yaml(&config, EXAMPLE_DIRECTORY).expect("example directory");
    assert!(problems.is_empty(), "{problems:?}");
    let state = SharedState::new(Arc::new(config));
    state.directory.store(directory);
    if synced {
        state.directory.mark_synced();
    }
    state
}

fn issue(ca: &CertificateAuthority, files: &CertificateFiles) {
    let pair = ca
        .issue_serving(&["localhost".into()], &["127.0.0.1".parse().unwrap()], DAY)
        .unwrap();
    // Key first, then certificate, each replaced atomically: what `homestead certs` does.
    write_atomic(&files.key, pair.key_pem.as_bytes(), true).unwrap();
    write_atomic(&files.cert, pair.cert_pem.as_bytes(), false).unwrap();
}

async fn start_with(state: Arc<SharedState>, tune: impl FnOnce(&mut ServerSettings)) -> Harness {
    homestead::certs::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let files = CertificateFiles::in_dir(dir.path());
    let ca = CertificateAuthority::generate("test CA", DAY).unwrap();
    issue(&ca, &files);
    let mut settings = ServerSettings::new(
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        files.clone(),
    );
    settings.limits.header_read_timeout = Duration::from_millis(500);
    settings.shutdown.drain_delay = Duration::ZERO;
    settings.shutdown.grace_period = Duration::from_secs(5);
    tune(&mut settings);
    let running = server::start(settings, state.clone(), Registry::default())
        .await
        .unwrap();
    Harness {
        running,
        state,
        ca,
        files,
        _dir: dir,
    }
}

async fn start() -> Harness {
    start_with(example_state(true), |_| {}).await
}

fn client_config(ca: &CertificateAuthority, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

async fn tls_connect(
    addr: SocketAddr,
    ca: &CertificateAuthority,
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(client_config(ca, alpn))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn http1(h: &Harness) -> Sender {
    let tls = tls_connect(h.running.addr, &h.ca, &[b"http/1.1"])
        .await
        .unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

fn post(path: &str, content_type: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::HOST, "localhost")
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .unwrap()
}

async fn json_body(response: Response<Incoming>) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)));
    (status, value)
}

async fn send(h: &Harness, request: Request<Full<Bytes>>) -> (StatusCode, Value) {
    let mut sender = http1(h).await;
    json_body(sender.send_request(request).await.unwrap()).await
}

fn review_with(uid: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut review: Value = serde_json::from_str(EXAMPLE_REVIEW).unwrap();
    review["request"]["uid"] = json!(uid);
    edit(&mut review);
    serde_json::to_vec(&review).unwrap()
}

fn privileged(review: &mut Value) {
    review["request"]["object"]["spec"]["containers"][0]["securityContext"] =
        json!({"privileged": true, "runAsUser": 1001});
}

async fn good_request_succeeds(h: &Harness, uid: &str) {
    let (status, body) = send(
        h,
        post("/mutate", "application/json", review_with(uid, |_| {})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"]["uid"], uid);
    assert_eq!(body["response"]["allowed"], true);
}

async fn admin_get(addr: SocketAddr, path: &str) -> (StatusCode, String) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = sender
        .send_request(
            Request::get(path)
                .header(header::HOST, "localhost")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn mutate_and_validate_round_trips_echo_the_uid() {
    let h = start().await;
    let mut sender = http1(&h).await;

    // A plain pod by ada in her namespace gets a JSON Patch.
    let response = sender
        .send_request(post(
            "/mutate",
            "application/json",
            review_with("uid-mutate-1", |_| {}),
        ))
        .await
        .unwrap();
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let (status, body) = json_body(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(body["kind"], "AdmissionReview");
    assert_eq!(body["response"]["uid"], "uid-mutate-1");
    assert_eq!(body["response"]["allowed"], true);
    assert_eq!(body["response"]["patchType"], "JSONPatch");
    assert!(
        body["response"]["patch"]
            .as_str()
            .is_some_and(|p| !p.is_empty())
    );

    // Same kept-alive connection: a privileged pod is denied by the validating webhook.
    let (status, body) = json_body(
        sender
            .send_request(post(
                "/validate",
                "application/json; charset=utf-8",
                review_with("uid-validate-1", privileged),
            ))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["response"]["uid"], "uid-validate-1");
    assert_eq!(body["response"]["allowed"], false, "{body}");
    assert!(body["response"].get("patch").is_none());
    let message = body["response"]["status"]["message"].as_str().unwrap_or("");
    assert!(message.contains("privileged"), "{body}");

    h.running.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_its_status_and_the_server_keeps_serving() {
    let h = start().await;
    let good = review_with("uid-good", |_| {});
    let big = vec![b' '; 3 * 1024 * 1024 + 1];
    let cases: Vec<(Request<Full<Bytes>>, StatusCode, &str)> = vec![
        (
            post("/nowhere", "application/json", good.clone()),
            StatusCode::NOT_FOUND,
            "/nowhere",
        ),
        (
            Request::get("/mutate")
                .header(header::HOST, "localhost")
                .body(Full::new(Bytes::new()))
                .unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "GET",
        ),
        (
            post("/mutate", "text/plain", good.clone()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "text/plain",
        ),
        (
            post(
                "/validate",
                "application/json; charset=latin1",
                good.clone(),
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "latin1",
        ),
        (
            post("/mutate", "application/json", big),
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than",
        ),
        (
            post("/mutate", "application/json", "{not json"),
            StatusCode::BAD_REQUEST,
            "not a JSON AdmissionReview",
        ),
        (
            post(
                "/validate",
                "application/json",
                r#"{"apiVersion":"v1","kind":"Pod"}"#,
            ),
            StatusCode::BAD_REQUEST,
            "admission.k8s.io/v1",
        ),
        (
            post(
                "/mutate",
                "application/json",
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
            ),
            StatusCode::BAD_REQUEST,
            "no request",
        ),
    ];
    for (i, (request, expected, mentions)) in cases.into_iter().enumerate() {
        let what = format!("{} {}", request.method(), request.uri());
        let (status, body) = send(&h, request).await;
        assert_eq!(status, expected, "{what}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(mentions),
            "{what}: {error:?} should mention {mentions:?}"
        );
        good_request_succeeds(&h, &format!("uid-after-{i}")).await;
    }

    // A chunked body (no Content-Length) over the limit is cut off too.
    let mut sender = {
        let tls = tls_connect(h.running.addr, &h.ca, &[b"http/1.1"])
            .await
            .unwrap();
        let (sender, conn) =
            hyper::client::conn::http1::handshake::<_, StreamBody<_>>(TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        sender
    };
    let chunks = (0..4).map(|_| {
        Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(vec![b' '; 1024 * 1024])))
    });
    let request = Request::post("/mutate")
        .header(header::HOST, "localhost")
        .header(header::CONTENT_TYPE, "application/json")
        .body(StreamBody::new(futures::stream::iter(chunks)))
        .unwrap();
    let (status, body) = json_body(sender.send_request(request).await.unwrap()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    good_request_succeeds(&h, "uid-after-chunked").await;

    h.running.shutdown().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let h = start().await;
    let mut tls = tls_connect(h.running.addr, &h.ca, &[b"http/1.1"])
        .await
        .unwrap();
    tls.write_all(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: appl")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    // The header-read timeout is 500 ms; the connection must be closed well within 5 s.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
    match read {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => assert!(
            matches!(
                e.kind(),
                ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
            ),
            "{e}"
        ),
        Err(_) => panic!("a client that never finished its headers was not cut off"),
    }
    assert!(
        !String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"),
        "no review was answered"
    );
    good_request_succeeds(&h, "uid-after-slow").await;
    h.running.shutdown().await;
}

/// curl speaks HTTP/2 as the API server's client does: a stream reset before it has sent
/// the whole body is an error (exit 92), whatever the server answered.
#[tokio::test]
async fn an_oversized_body_over_h2_gets_413_not_a_reset() {
    let h = start().await;
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(&body, vec![b' '; 4 * 1024 * 1024]).unwrap();
    for chunked in [false, true] {
        let mut curl = std::process::Command::new("curl");
        curl.args([
            "-sk",
            "--http2",
            "-o",
            "-",
            "-w",
            "\n%{http_code} %{http_version}",
        ])
        .args(["-H", "Content-Type: application/json"]);
        if chunked {
            curl.args(["-H", "Transfer-Encoding: chunked"]);
        }
        curl.arg("--data-binary")
            .arg(format!("@{}", body.display()))
            .arg(format!(
                "https://127.0.0.1:{}/mutate",
                h.running.addr.port()
            ));
        let out = tokio::task::spawn_blocking(move || curl.output())
            .await
            .unwrap()
            .expect("curl");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "chunked {chunked}: curl {:?}: {stdout}",
            out.status
        );
        assert!(stdout.ends_with("413 2"), "chunked {chunked}: {stdout}");
        assert!(
            stdout.contains("larger than"),
            "chunked {chunked}: {stdout}"
        );
    }
    good_request_succeeds(&h, "uid-after-h2-large").await;
    h.running.shutdown().await;
}

#[tokio::test]
async fn h2_is_negotiated_by_alpn() {
    let h = start().await;
    let tls = tls_connect(h.running.addr, &h.ca, &[b"h2", b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    // Several concurrent streams on the one connection.
    let mut responses = Vec::new();
    for i in 0..8 {
        let request = Request::post(format!(
            "https://localhost:{}/mutate",
            h.running.addr.port()
        ))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(review_with(
            &format!("h2-{i}"),
            |_| {},
        ))))
        .unwrap();
        responses.push(sender.send_request(request));
    }
    for (i, response) in responses.into_iter().enumerate() {
        let response = response.await.unwrap();
        assert_eq!(response.version(), Version::HTTP_2);
        let (status, body) = json_body(response).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["response"]["uid"], format!("h2-{i}"));
    }
    h.running.shutdown().await;
}

/// A TLS 1.1 ClientHello with no extensions (so no supported_versions): legacy only.
fn tls11_client_hello() -> Vec<u8> {
    let mut hello = vec![0x03, 0x02]; // client_version TLS 1.1
    hello.extend_from_slice(&[0x42; 32]); // random
    hello.push(0); // session id
    hello.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // two TLS 1.0-1.2 suites
    hello.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0x00];
    handshake.extend_from_slice(&u16::try_from(hello.len()).unwrap().to_be_bytes());
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x02];
    record.extend_from_slice(&u16::try_from(handshake.len()).unwrap().to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf))
        .await
        .expect("the server should close the connection");
    buf
}

#[tokio::test]
async fn tls_1_1_and_plain_http_are_refused() {
    let h = start().await;

    let answer = raw_exchange(h.running.addr, &tls11_client_hello()).await;
    // Either nothing or an alert record (content type 21); never a ServerHello (22).
    assert!(
        answer.is_empty() || answer[0] == 0x15,
        "TLS 1.1 hello answered with {answer:02x?}"
    );
    // Sanity check of the probe: a TLS 1.2 client is served.
    let tls12 = {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(h.ca.cert_pem().as_bytes()).unwrap())
            .unwrap();
        rustls::ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS12])
            .with_root_certificates(roots)
            .with_no_client_auth()
    };
    let tcp = TcpStream::connect(h.running.addr).await.unwrap();
    let tls = TlsConnector::from(Arc::new(tls12))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );

    let request = format!(
        "POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        EXAMPLE_REVIEW.len(),
        EXAMPLE_REVIEW
    );
    let answer = raw_exchange(h.running.addr, request.as_bytes()).await;
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"),
        "plain HTTP was served: {}",
        String::from_utf8_lossy(&answer)
    );
    good_request_succeeds(&h, "uid-after-refusals").await;
    h.running.shutdown().await;
}

async fn presented_leaf(h: &Harness) -> Vec<u8> {
    let tls = tls_connect(h.running.addr, &h.ca, &[b"http/1.1"])
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn leaf_on_disk(path: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(path).unwrap().to_vec()
}

#[tokio::test]
async fn certificates_rotate_without_a_restart_and_half_written_pairs_are_not_served() {
    let h = start().await;
    let first = leaf_on_disk(&h.files.cert);
    assert_eq!(presented_leaf(&h).await, first);

    // A complete new pair: the next connection presents it.
    issue(&h.ca, &h.files);
    let second = leaf_on_disk(&h.files.cert);
    assert_ne!(first, second);
    assert_eq!(presented_leaf(&h).await, second);

    // Half-written: a new certificate whose key is not there yet.
    let third = h.ca.issue_serving(&["localhost".into()], &[], DAY).unwrap();
    write_atomic(&h.files.cert, third.cert_pem.as_bytes(), false).unwrap();
    assert_eq!(presented_leaf(&h).await, second);
    // A truncated key written in place is not served either.
    std::fs::write(&h.files.key, &third.key_pem.as_bytes()[..40]).unwrap();
    assert_eq!(presented_leaf(&h).await, second);
    good_request_succeeds(&h, "uid-during-half-written").await;
    // Once the key is whole, the new pair is served.
    std::fs::write(&h.files.key, third.key_pem.as_bytes()).unwrap();
    let expected = CertificateDer::from_pem_slice(third.cert_pem.as_bytes())
        .unwrap()
        .to_vec();
    assert_eq!(presented_leaf(&h).await, expected);

    h.running.shutdown().await;
}

#[tokio::test]
async fn certificates_rotate_under_load_with_no_failed_request() {
    let h = Arc::new(start().await);
    let mut clients = Vec::new();
    for c in 0..4 {
        let h = h.clone();
        clients.push(tokio::spawn(async move {
            let mut leaves = std::collections::HashSet::new();
            for i in 0..40 {
                // A new connection each time, so rotations are picked up mid-run.
                let tls = tls_connect(h.running.addr, &h.ca, &[b"http/1.1"])
                    .await
                    .unwrap();
                leaves.insert(tls.get_ref().1.peer_certificates().unwrap()[0].to_vec());
                let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                    .await
                    .unwrap();
                tokio::spawn(conn);
                let uid = format!("load-{c}-{i}");
                let (status, body) = json_body(
                    sender
                        .send_request(post(
                            "/mutate",
                            "application/json",
                            review_with(&uid, |_| {}),
                        ))
                        .await
                        .unwrap(),
                )
                .await;
                assert_eq!(status, StatusCode::OK, "{body}");
                assert_eq!(body["response"]["uid"], uid.as_str());
            }
            leaves.len()
        }));
    }
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        issue(&h.ca, &h.files);
    }
    let mut most = 0;
    for client in clients {
        most = most.max(client.await.unwrap());
    }
    assert!(most > 1, "no client saw a rotated certificate");
    let (_, metrics) = admin_get(h.running.admin_addr, "/metrics").await;
    assert!(
        metrics.contains(r#"homestead_tls_certificate_reloads_total{result="reloaded"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_and_refuses_new_connections() {
    let h = start_with(example_state(true), |s| {
        s.shutdown.drain_delay = Duration::from_millis(300);
    })
    .await;
    let (status, _) = admin_get(h.running.admin_addr, "/readyz").await;
    assert_eq!(status, StatusCode::OK);

    // An in-flight request: headers and half the body sent, the rest held back.
    let in_flight = HalfSent::start(&h, "uid-in-flight").await;
    // Wait until the server is handling it.
    let metrics_addr = h.running.admin_addr;
    wait_for(|| async move {
        admin_get(metrics_addr, "/metrics")
            .await
            .1
            .contains("homestead_admission_in_flight_requests 1")
    })
    .await;

    let addr = h.running.addr;
    let admin = h.running.admin_addr;
    h.running.begin_shutdown();
    // Readiness fails first ...
    let (status, body_text) = admin_get(admin, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body_text.contains("shutting down"));
    // ... then the listener closes: new connections are refused.
    wait_for(|| async move {
        matches!(TcpStream::connect(addr).await, Err(e) if e.kind() == ErrorKind::ConnectionRefused)
    })
    .await;

    // The in-flight request still completes, and the connection is told to close.
    let response = in_flight.finish().await;
    assert_eq!(
        response
            .headers()
            .get(header::CONNECTION)
            .map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );
    let (status, value) = json_body(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(value["response"]["uid"], "uid-in-flight");

    tokio::time::timeout(Duration::from_secs(5), h.running.wait())
        .await
        .expect("the server stops once the in-flight request is done");
    assert!(TcpStream::connect(admin).await.is_err());
}

#[tokio::test]
async fn a_request_without_a_free_slot_waits_for_one() {
    let h = start_with(example_state(true), |s| {
        s.limits.max_concurrent_requests = 1;
    })
    .await;
    // The only slot is held by a request whose body is half sent.
    let holding = HalfSent::start(&h, "uid-holding").await;
    let admin = h.running.admin_addr;
    let in_flight = |n: u32| async move {
        admin_get(admin, "/metrics")
            .await
            .1
            .contains(&format!("homestead_admission_in_flight_requests {n}"))
    };
    wait_for(|| in_flight(1)).await;

    // A second request waits for the slot ...
    let mut second = http1(&h).await;
    let waiting = tokio::spawn(async move {
        let request = post(
            "/mutate",
            "application/json",
            review_with("uid-waiting", |_| {}),
        );
        json_body(second.send_request(request).await.unwrap()).await
    });
    wait_for(|| in_flight(2)).await;
    assert!(!waiting.is_finished());

    // ... and is answered once the first one is done with it.
    let (status, value) = json_body(holding.finish().await).await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(value["response"]["uid"], "uid-holding");
    let (status, value) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(value["response"]["uid"], "uid-waiting");
}

#[tokio::test]
async fn shutdown_cuts_requests_that_outlive_the_grace_period() {
    let h = start_with(example_state(true), |s| {
        s.shutdown.grace_period = Duration::from_millis(300);
    })
    .await;
    // Headers sent, body never finished.
    let mut tls = tls_connect(h.running.addr, &h.ca, &[b"http/1.1"])
        .await
        .unwrap();
    tls.write_all(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(5), h.running.shutdown())
        .await
        .expect("shutdown ends after the grace period");
}

#[tokio::test]
async fn readiness_waits_for_the_directory_and_metrics_count_requests() {
    let state = example_state(false);
    let h = start_with(state, |_| {}).await;
    let (status, body) = admin_get(h.running.admin_addr, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("directory not synced"), "{body}");
    let (status, _) = admin_get(h.running.admin_addr, "/livez").await;
    assert_eq!(status, StatusCode::OK);
    h.state.directory.mark_synced();
    let (status, _) = admin_get(h.running.admin_addr, "/readyz").await;
    assert_eq!(status, StatusCode::OK);

    good_request_succeeds(&h, "m-1").await;
    good_request_succeeds(&h, "m-2").await;
    let (status, _) = send(
        &h,
        post(
            "/validate",
            "application/json",
            review_with("m-3", privileged),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(&h, post("/mutate", "text/plain", "x")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let (status, metrics) = admin_get(h.running.admin_addr, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for expected in [
        r#"homestead_admission_requests_total{webhook="mutate",kind="Pod",operation="CREATE",result="patched"} 2"#,
        r#"homestead_admission_requests_total{webhook="validate",kind="Pod",operation="CREATE",result="denied"} 1"#,
        r#"homestead_http_errors_total{status="415"} 1"#,
        r#"homestead_admission_duration_seconds_count{webhook="mutate"} 2"#,
        r#"homestead_admission_duration_seconds_bucket{le="0.0005",webhook="mutate"}"#,
        "homestead_admission_in_flight_requests 0",
    ] {
        assert!(metrics.contains(expected), "missing {expected}\n{metrics}");
    }
    // One denial, labelled with the core's stable reason code (a snake_case word).
    let denials: Vec<&str> = metrics
        .lines()
        .filter(|l| {
            l.starts_with(r#"homestead_admission_denials_total{webhook="validate",reason=""#)
        })
        .collect();
    assert_eq!(denials.len(), 1, "{metrics}");
    let reason = denials[0].split('"').nth(3).unwrap_or_default();
    assert!(
        !reason.is_empty() && reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "{reason:?}"
    );
    assert!(denials[0].ends_with("} 1"), "{}", denials[0]);
    let expiry = metrics
        .lines()
        .find_map(|l| l.strip_prefix("homestead_tls_certificate_expiry_timestamp_seconds "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("certificate expiry gauge");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        expiry > now && expiry <= now + DAY.as_secs(),
        "{expiry} vs {now}"
    );
    h.running.shutdown().await;
}

/// A `/mutate` request of the review `uid` whose headers and first half of the body are
/// sent, on a connection of its own; the rest is held back until [`HalfSent::finish`].
struct HalfSent {
    response: tokio::task::JoinHandle<hyper::Result<hyper::Response<hyper::body::Incoming>>>,
    tx: tokio::sync::mpsc::Sender<Result<Frame<Bytes>, std::convert::Infallible>>,
    rest: Vec<u8>,
}

impl HalfSent {
    async fn start(h: &Harness, uid: &str) -> Self {
        let tls = tls_connect(h.running.addr, &h.ca, &[b"http/1.1"])
            .await
            .unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, StreamBody<_>>(TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        let body = review_with(uid, |_| {});
        let (first, rest) = body.split_at(body.len() / 2);
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tx.send(Ok(Frame::data(Bytes::copy_from_slice(first))))
            .await
            .unwrap();
        let request = Request::post("/mutate")
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, body.len())
            .body(StreamBody::new(tokio_stream_from(rx)))
            .unwrap();
        Self {
            response: tokio::spawn(sender.send_request(request)),
            tx,
            rest: rest.to_vec(),
        }
    }

    /// Sends the rest of the body and returns the response.
    async fn finish(self) -> hyper::Response<hyper::body::Incoming> {
        self.tx
            .send(Ok(Frame::data(Bytes::from(self.rest))))
            .await
            .unwrap();
        drop(self.tx);
        self.response.await.unwrap().unwrap()
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn wait_for<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("condition not met within 3 s");
}
