//! TLS against the real process: self-signed certificates made in the
//! test, a rustls client that checks them, a push and pull over TLS, and a
//! reload on SIGHUP that new connections see while an open keep-alive
//! connection goes on with the certificate it was accepted with; a failed
//! reload keeps the certificate in use.

mod common;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::process::TestServer;
use common::raw::{RawResponse, read_response};
use registry_testkit::content::digest;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A self-signed certificate for `localhost` and 127.0.0.1: PEM files and
/// the DER certificate.
struct Cert {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

fn make_cert() -> Cert {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    Cert {
        cert_pem: ck.cert.pem(),
        key_pem: ck.signing_key.serialize_pem(),
        der: ck.cert.der().clone(),
    }
}

fn install(cert: &Cert, dir: &Path) {
    std::fs::write(dir.join("cert.pem"), &cert.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &cert.key_pem).unwrap();
}

/// A client trusting `roots`.
fn client_config(roots: &[&Cert]) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for c in roots {
        store.add(c.der.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(store)
            .with_no_client_auth(),
    )
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn connect(addr: SocketAddr, config: &Arc<ClientConfig>) -> Tls {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let conn =
        ClientConnection::new(config.clone(), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    // Complete the handshake so that the peer's certificate is known.
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    tls
}

fn peer_cert(tls: &Tls) -> CertificateDer<'static> {
    tls.conn.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

/// Send one request on a keep-alive connection and read the answer.
fn send(tls: &mut Tls, method: &str, path: &str, body: &[u8]) -> RawResponse {
    let req = common::raw::request(method, path, &[], body);
    tls.write_all(&req).unwrap();
    tls.flush().unwrap();
    let mut reader = BufReader::new(tls);
    let res = read_response(&mut reader).unwrap().expect("a response");
    assert!(reader.buffer().is_empty(), "nothing after the response");
    res
}

/// Send SIGHUP to `server` (by its PID) and wait until it logs a line
/// containing `logged`.
fn sighup(server: &TestServer, logged: &str) {
    let ok = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    assert!(
        server.wait_for_log(|l| l.contains(logged)).is_some(),
        "no {logged:?} in {:?}",
        server.logs()
    );
}

#[test]
fn tls_serves_and_reloads_on_sighup_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (make_cert(), make_cert());
    install(&a, dir.path());
    let server = TestServer::launch()
        .arg("--tls-cert")
        .arg(dir.path().join("cert.pem").display().to_string())
        .arg("--tls-key")
        .arg(dir.path().join("key.pem").display().to_string())
        .start();
    assert!(
        server
            .wait_for_log(|l| l.contains("listening on https://"))
            .is_some(),
        "{:?}",
        server.logs()
    );
    let trust_both = client_config(&[&a, &b]);

    // Served with A; a push and pull over TLS.
    let mut kept = connect(server.addr(), &trust_both);
    assert_eq!(peer_cert(&kept), a.der);
    assert_eq!(send(&mut kept, "GET", "/v2/", b"").status, 200);
    let blob = b"over tls";
    let d = digest(blob);
    let put = send(
        &mut kept,
        "POST",
        &format!("/v2/tls/repo/blobs/uploads/?digest={d}"),
        blob,
    );
    assert_eq!(put.status, 201, "{put:?}");
    assert_eq!(
        send(&mut kept, "GET", &format!("/v2/tls/repo/blobs/{d}"), b"").body,
        blob
    );

    // A client that trusts only B cannot connect yet.
    let only_b = client_config(&[&b]);
    let tcp = TcpStream::connect(server.addr()).unwrap();
    let conn =
        ClientConnection::new(only_b.clone(), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut refused = StreamOwned::new(conn, tcp);
    assert!(
        refused
            .write_all(b"GET /v2/ HTTP/1.1\r\n\r\n")
            .and_then(|_| refused.flush())
            .is_err()
            || refused.conn.complete_io(&mut refused.sock).is_err()
    );

    // Reload with B.
    install(&b, dir.path());
    sighup(&server, "TLS certificate and key reloaded");
    let mut fresh = connect(server.addr(), &only_b);
    assert_eq!(peer_cert(&fresh), b.der);
    assert_eq!(send(&mut fresh, "GET", "/v2/", b"").status, 200);
    // The connection opened before the reload still works, with A.
    assert_eq!(send(&mut kept, "GET", "/v2/", b"").status, 200);
    assert_eq!(peer_cert(&kept), a.der);

    // A reload that fails keeps B.
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    sighup(&server, "TLS reload failed");
    let mut after = connect(server.addr(), &trust_both);
    assert_eq!(peer_cert(&after), b.der);
    assert_eq!(send(&mut after, "GET", "/v2/", b"").status, 200);
    assert_eq!(send(&mut fresh, "GET", "/v2/", b"").status, 200);

    // Plain HTTP on the TLS port gets no HTTP answer.
    let res = common::raw::exchange(
        server.addr(),
        b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n",
        false,
    );
    assert!(res.is_none(), "{res:?}");
    // The server is alive and well.
    assert!(server.logs().iter().all(|l| !l.contains("panicked")));
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (make_cert(), make_cert());
    std::fs::write(dir.path().join("cert.pem"), &a.cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), &b.key_pem).unwrap();
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    for (cert, key, expect) in [
        ("cert.pem", "key.pem", "cannot be used together"),
        ("empty.pem", "key.pem", "no PEM CERTIFICATE block"),
        ("cert.pem", "empty.pem", "cannot read TLS key"),
    ] {
        let out = common::process::serve_in(
            dir.path(),
            &[
                "--tls-cert",
                &dir.path().join(cert).display().to_string(),
                "--tls-key",
                &dir.path().join(key).display().to_string(),
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expect), "{cert} {key}: {stderr}");
    }
}

#[test]
fn curl_verifies_the_certificate() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("curl not installed: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = make_cert();
    install(&a, dir.path());
    let server = TestServer::launch()
        .arg("--tls-cert")
        .arg(dir.path().join("cert.pem").display().to_string())
        .arg("--tls-key")
        .arg(dir.path().join("key.pem").display().to_string())
        .start();
    let url = format!("https://localhost:{}/v2/", server.addr().port());
    let out = Command::new("curl")
        .args([
            "-sS",
            "--noproxy",
            "*",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg("--resolve")
        .arg(format!("localhost:{}:127.0.0.1", server.addr().port()))
        .arg("--cacert")
        .arg(dir.path().join("cert.pem"))
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{out:?}");
    // Without the CA, curl refuses the self-signed certificate.
    let out = Command::new("curl")
        .args(["-sS", "--noproxy", "*", "-o", "/dev/null"])
        .arg("--resolve")
        .arg(format!("localhost:{}:127.0.0.1", server.addr().port()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(!out.status.success());
}
