//! Peer fetch between the hosts' blob caches (`--peers`, `--peers-dns`,
//! docs/CONSISTENCY.md "Peers"): the membership built from the settings,
//! the peer endpoint on the main listener (`/_registry/peer/v1/`), and the
//! counters as metrics. The decorator itself is `registry_peers::PeerStore`.
//!
//! The endpoint is answered by the server's hook, before the router: peer
//! requests need the shared secret instead of a client's credentials (the
//! asking host authorised its client already), and only blobs by digest
//! and the ping are served. A blob is read through this host's own blob
//! cache, inside [`registry_peers::serving_peer`], so the `PeerStore` under
//! the cache reads the store (never another peer) and the cache fills: the
//! owner serves the next host from it.

use std::sync::Arc;

use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use registry_core::{Digest, ErrorKind, RegistryStore, RepositoryName};
use registry_http::Body;
use registry_peers::protocol::{self, PeerPath};
use registry_peers::{Membership, PeerConfig, Peers, Secret};

use super::config::PeerSettings;
use super::limits::error_response;

/// The membership `settings` asks for, its health loop started; `None`
/// without `--peers` or `--peers-dns`. Errors are start-up errors.
pub fn build(settings: &PeerSettings) -> Result<Option<Arc<Peers>>, String> {
    let membership = match (&settings.urls[..], &settings.dns) {
        ([], None) => return Ok(None),
        ([], Some(dns)) => Membership::dns(dns)?,
        (urls, None) => Membership::urls(urls)?,
        (_, Some(_)) => return Err("give --peers or --peers-dns, not both".to_owned()),
    };
    let path = settings
        .secret_file
        .as_ref()
        .ok_or("peers need --peer-secret-file: the secret every peer shares")?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read peer secret file {}: {e}", path.display()))?;
    let secret = Secret::new(&text).map_err(|e| format!("{e} ({})", path.display()))?;
    let mut config = PeerConfig::new(membership, secret);
    if let Some(n) = settings.owners {
        config.owners = n.get();
    }
    if let Some(t) = settings.timeout {
        config.first_byte_timeout = t;
    }
    let peers = Peers::start(config)?;
    tracing::info!(
        instance = peers.instance_id(),
        owners = peers.config().owners,
        "peer fetch enabled"
    );
    Ok(Some(peers))
}

/// The peer endpoint: the membership (secret, instance id, counters) and
/// the store blobs are served from (this host's cache over its
/// `PeerStore`).
#[derive(Clone)]
pub struct PeerEndpoint {
    peers: Arc<Peers>,
    store: Arc<dyn RegistryStore>,
}

impl PeerEndpoint {
    /// Serve blobs of `store` to the members of `peers`.
    pub fn new(peers: Arc<Peers>, store: Arc<dyn RegistryStore>) -> Self {
        PeerEndpoint { peers, store }
    }

    /// The answer to a request under the peer prefix; `None` for any other
    /// path.
    pub async fn answer(&self, parts: &Parts) -> Option<Response<Body>> {
        let what = protocol::parse(parts.uri.path())?;
        let Some(given) = parts.headers.get(protocol::SECRET_HEADER) else {
            return Some(error_response(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "peer requests need the peer secret",
            ));
        };
        if !self.peers.authorized(given.as_bytes()) {
            return Some(error_response(
                StatusCode::FORBIDDEN,
                "DENIED",
                "wrong peer secret",
            ));
        }
        if parts.method != Method::GET && parts.method != Method::HEAD {
            return Some(error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "UNSUPPORTED",
                "peers only read",
            ));
        }
        Some(match what {
            PeerPath::Ping => {
                let mut res = Response::new(Body::from(self.peers.instance_id().to_owned()));
                res.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                res
            }
            PeerPath::Other => error_response(
                StatusCode::NOT_FOUND,
                "UNSUPPORTED",
                "only blobs by digest are served to peers",
            ),
            PeerPath::Blob(repo, digest) => {
                self.peers.served();
                self.blob(parts.method == Method::HEAD, &repo, &digest)
                    .await
            }
        })
    }

    async fn blob(&self, head: bool, repo: &RepositoryName, digest: &Digest) -> Response<Body> {
        let store = &self.store;
        let result = if head {
            registry_peers::serving_peer(store.stat_blob(repo, digest))
                .await
                .map(|info| (info.size, Body::empty()))
        } else {
            registry_peers::serving_peer(store.read_blob(repo, digest, None))
                .await
                .map(|read| {
                    (
                        read.info.size,
                        Body::stream(read.body, Some(read.info.size)),
                    )
                })
        };
        match result {
            Ok((size, body)) => {
                let mut res = Response::new(body);
                let h = res.headers_mut();
                h.insert(CONTENT_LENGTH, HeaderValue::from(size));
                h.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                if let Ok(v) = HeaderValue::from_str(&digest.to_string()) {
                    h.insert("docker-content-digest", v);
                }
                res
            }
            Err(e) => match e.kind() {
                ErrorKind::BlobUnknown | ErrorKind::NameUnknown => {
                    error_response(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown")
                }
                ErrorKind::Unavailable => error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    "the store does not answer",
                ),
                _ => {
                    tracing::warn!(%repo, %digest, error = %e, "serving a peer failed");
                    error_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "UNKNOWN",
                        "the blob could not be read",
                    )
                }
            },
        }
    }
}

/// The peer counters ([`registry_peers::PeerStats`]).
#[derive(Clone)]
pub struct PeerCollector(pub Arc<Peers>);

impl std::fmt::Debug for PeerCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerCollector")
    }
}

impl Collector for PeerCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let s = self.0.stats();
        let rows: [(&str, &str, u64); 5] = [
            (
                "registry_peer_requests",
                "Blob requests sent to peers.",
                s.requests,
            ),
            (
                "registry_peer_received_bytes",
                "Bytes of blobs received from peers.",
                s.bytes,
            ),
            (
                "registry_peer_fallbacks",
                "Whole-blob reads that went to the store after asking peers (no owner answered in time, or a peer's stream failed).",
                s.fallbacks,
            ),
            (
                "registry_peer_verification_failures",
                "Blobs from peers that did not verify (digest or size).",
                s.verification_failures,
            ),
            (
                "registry_peer_served",
                "Blob requests answered for peers.",
                s.served,
            ),
        ];
        for (name, help, value) in rows {
            e.encode_descriptor(name, help, None, MetricType::Counter)?
                .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
        e.encode_descriptor(
            "registry_peer_live_members",
            "Peers live now (this process included once it recognised itself).",
            None,
            MetricType::Gauge,
        )?
        .encode_gauge(&s.live_members)?;
        Ok(())
    }
}
