//! TLS with rustls from PEM files, reloaded on SIGHUP.
//!
//! The certificate chain and private key are read at start-up (a bad file
//! is a start-up error). On SIGHUP both are read again into a new
//! `ServerConfig`, which is swapped in for the connections accepted from
//! then on; connections already open keep the configuration they were
//! accepted with, so nothing is dropped. A reload that fails (missing file,
//! key not matching the certificate, ...) is logged and the old certificate
//! stays in use.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::signal::unix::{SignalKind, signal};
use tokio_rustls::TlsAcceptor;

/// The PEM files to serve TLS with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The current TLS configuration, swapped on reload.
#[derive(Debug)]
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl Tls {
    /// Load `files`. Errors are one line naming the file at fault.
    pub fn load(files: TlsFiles) -> Result<Arc<Tls>, String> {
        let config = server_config(&files)?;
        Ok(Arc::new(Tls {
            files,
            current: RwLock::new(config),
        }))
    }

    /// An acceptor with the configuration in force now.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }

    /// Read the files again; on success new connections use them, on
    /// failure nothing changes.
    pub fn reload(&self) -> Result<(), String> {
        let config = server_config(&self.files)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = config;
        Ok(())
    }

    /// Reload on every SIGHUP, for as long as the returned task runs. The
    /// handler is installed before this returns, so a SIGHUP sent after
    /// start-up never kills the process.
    pub fn reload_on_sighup(self: &Arc<Self>) -> Result<tokio::task::JoinHandle<()>, String> {
        let mut hangup = signal(SignalKind::hangup())
            .map_err(|e| format!("cannot install SIGHUP handler: {e}"))?;
        let tls = self.clone();
        Ok(tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                match tls.reload() {
                    Ok(()) => tracing::info!(
                        cert = %tls.files.cert.display(),
                        key = %tls.files.key.display(),
                        "SIGHUP: TLS certificate and key reloaded"
                    ),
                    Err(error) => tracing::error!(
                        %error,
                        "SIGHUP: TLS reload failed; keeping the certificate in use"
                    ),
                }
            }
        }))
    }
}

/// A rustls server configuration from PEM files: HTTP/1.1 only, TLS 1.2
/// and 1.3 with rustls's safe defaults, no client certificates.
fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, String> {
    let certs = read_certs(&files.cert)?;
    let key = read_key(&files.key)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "TLS certificate {} and key {} cannot be used together: {e}",
                files.cert.display(),
                files.key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bad =
        |e: &dyn std::fmt::Display| format!("cannot read TLS certificate {}: {e}", path.display());
    let bytes = std::fs::read(path).map_err(|e| bad(&e))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    if certs.is_empty() {
        return Err(bad(&"no PEM CERTIFICATE block in the file"));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read TLS key {}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        format!(
            "cannot read TLS key {}: {e} (expected a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block)",
            path.display()
        )
    })
}

/// TLS as configured: off, or both files, or only one of them (an error
/// reported at start-up).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TlsSetting {
    /// Plain HTTP.
    #[default]
    Off,
    /// TLS with these files.
    On(TlsFiles),
    /// Only one of `tls_cert` and `tls_key` was given.
    Incomplete(&'static str),
}

impl TlsSetting {
    /// The setting for the given files.
    pub fn resolve(cert: Option<PathBuf>, key: Option<PathBuf>) -> TlsSetting {
        match (cert, key) {
            (None, None) => TlsSetting::Off,
            (Some(cert), Some(key)) => TlsSetting::On(TlsFiles { cert, key }),
            (Some(_), None) => {
                TlsSetting::Incomplete("tls_cert (--tls-cert) is set without tls_key (--tls-key)")
            }
            (None, Some(_)) => {
                TlsSetting::Incomplete("tls_key (--tls-key) is set without tls_cert (--tls-cert)")
            }
        }
    }
}
