//! Talking to a server over HTTP: a [`Client`] whose helpers take a path
//! (or a `Location`) and return a fully read [`Resp`].

use std::time::Duration;

use super::content::{OCI_MANIFEST, digest, image_manifest};
use super::process::TestServer;

/// An HTTP client that returns every status as a response (no error for
/// 4xx/5xx), follows no redirect, uses no proxy and adds no `Accept` header.
pub fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .accept(ureq::config::AutoHeaderValue::None)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

/// A response, read in full.
#[derive(Debug)]
pub struct Resp {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: ureq::http::HeaderMap,
    /// The body (empty for HEAD).
    pub body: Vec<u8>,
}

impl Resp {
    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A header that must be present.
    pub fn must(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} header in {self:?}"))
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `code`s of an OCI error body, `{"errors":[{"code":...}]}`.
    pub fn error_codes(&self) -> Vec<String> {
        let json = self.json();
        let errors = json["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("not an error body: {json}"));
        errors
            .iter()
            .map(|e| e["code"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Assert the status and that the body is an OCI error with `code`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status,
            status,
            "{self:?} {:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.error_codes(),
            [code],
            "{:?}",
            String::from_utf8_lossy(&self.body)
        );
    }
}

/// An HTTP client for one server, with request helpers that take a path
/// (or an absolute URL, e.g. a `Location`) and return a [`Resp`].
pub struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    /// A client for `server`.
    pub fn new(server: &TestServer) -> Client {
        Client {
            agent: client(),
            base: server.url(""),
        }
    }

    /// An absolute URL for a path, or the URL itself if absolute.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Send a request. `body: None` sends none (no `Content-Length`).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let result = match body {
            Some(body) => self.agent.run(req.body(body.to_vec()).unwrap()),
            None => self.agent.run(req.body(()).unwrap()),
        };
        let mut resp = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let body = if method == "HEAD" {
            Vec::new()
        } else {
            resp.body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_vec()
                .unwrap()
        };
        Resp {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body,
        }
    }

    /// `GET`.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.send("GET", path, headers, None)
    }

    /// `HEAD`.
    pub fn head(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.send("HEAD", path, headers, None)
    }

    /// `DELETE`.
    pub fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, &[], None)
    }

    /// `POST` with a body (`Content-Length` is set, also when empty).
    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        self.send("POST", path, headers, Some(body))
    }

    /// `PUT` with a body.
    pub fn put(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        self.send("PUT", path, headers, Some(body))
    }

    /// `PATCH` with a body.
    pub fn patch(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        self.send("PATCH", path, headers, Some(body))
    }

    /// `PATCH` with a body of unknown length: chunked transfer encoding, no
    /// `Content-Length`, no `Content-Range` (a "streamed" upload).
    pub fn patch_streamed(&self, path: &str, body: &[u8]) -> Resp {
        let reader = std::io::Cursor::new(body.to_vec());
        let req = ureq::http::Request::builder()
            .method("PATCH")
            .uri(self.url(path))
            .header("Content-Type", "application/octet-stream")
            .body(ureq::SendBody::from_owned_reader(reader))
            .unwrap();
        let mut resp = self.agent.run(req).unwrap();
        let body = resp.body_mut().read_to_vec().unwrap();
        Resp {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body,
        }
    }

    /// `URL` with `query` appended (`?` or `&` as needed).
    pub fn with_query(url: &str, query: &str) -> String {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}{query}")
    }

    /// Push a blob monolithically (POST, then PUT with the content) and
    /// return its digest.
    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let d = digest(bytes);
        let start = self.post(&format!("/v2/{repo}/blobs/uploads/"), &[], b"");
        assert_eq!(start.status, 202, "{start:?}");
        let put = self.put(
            &Client::with_query(start.must("Location"), &format!("digest={d}")),
            &[("Content-Type", "application/octet-stream")],
            bytes,
        );
        assert_eq!(
            put.status,
            201,
            "{put:?} {}",
            String::from_utf8_lossy(&put.body)
        );
        d
    }

    /// Push a manifest of `media_type` under `reference` and return the
    /// response.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Resp {
        self.put(
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Content-Type", media_type)],
            bytes,
        )
    }

    /// Push a small image (config and one layer) tagged `tag`; return the
    /// manifest's bytes and digest.
    pub fn push_image(&self, repo: &str, tag: &str, seed: &str) -> (Vec<u8>, String) {
        let config = format!("{{\"seed\":\"{seed}\"}}").into_bytes();
        let layer = format!("layer of {seed}").into_bytes();
        self.push_blob(repo, &config);
        self.push_blob(repo, &layer);
        let manifest = image_manifest(&config, &[&layer], None, None);
        let put = self.put_manifest(repo, tag, OCI_MANIFEST, &manifest);
        assert_eq!(
            put.status,
            201,
            "{put:?} {}",
            String::from_utf8_lossy(&put.body)
        );
        let d = digest(&manifest);
        (manifest, d)
    }
}
