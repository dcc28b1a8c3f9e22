//! Authentication and access against the real `registry serve` process:
//! HTTP basic with an htpasswd file and access rules, bearer tokens from an
//! external issuer (every refusal the token spec calls for), and the
//! built-in token issuer end to end (also with skopeo). Every refusal
//! asserts the exact status, error code and challenge, and that the store
//! is unchanged.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::http::{Client, Reply};
use common::process::{TestServer, run_in, serve_in};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use registry_testkit::content::{OCI_MANIFEST, digest, image_manifest};
use serde_json::json;
use tempfile::TempDir;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/auth")
        .join(name)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An htpasswd file of bcrypt entries (cost 4, as fast as bcrypt goes),
/// `$2y$` as `htpasswd -B` writes them.
fn htpasswd(dir: &Path, users: &[(&str, &str)]) -> PathBuf {
    let text: String = users
        .iter()
        .map(|(u, p)| {
            let hash = bcrypt::hash(p, 4).unwrap().replacen("$2b$", "$2y$", 1);
            format!("{u}:{hash}\n")
        })
        .collect();
    let path = dir.join("htpasswd");
    std::fs::write(&path, text).unwrap();
    path
}

fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Every file under the storage root with its size: "the store is
/// unchanged" is this snapshot being equal before and after.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, u64> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<PathBuf, u64>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            let rel = e.path().strip_prefix(root).unwrap().to_owned();
            if meta.is_dir() {
                out.insert(rel.join(""), 0);
                walk(&e.path(), root, out);
            } else {
                out.insert(rel, meta.len());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Requests carrying one `Authorization` value (or none).
struct As<'a> {
    client: &'a Client,
    auth: Option<String>,
}

impl As<'_> {
    fn headers<'h>(&'h self, extra: &[(&'h str, &'h str)]) -> Vec<(&'h str, &'h str)> {
        let mut h = extra.to_vec();
        if let Some(a) = &self.auth {
            h.push(("Authorization", a.as_str()));
        }
        h
    }
    fn get(&self, path: &str) -> Reply {
        self.client.get(path, &self.headers(&[]))
    }
    fn delete(&self, path: &str) -> Reply {
        self.client.send("DELETE", path, &self.headers(&[]), None)
    }
    fn start_upload(&self, repo: &str) -> Reply {
        self.client.post(
            &format!("/v2/{repo}/blobs/uploads/"),
            &self.headers(&[]),
            b"",
        )
    }
    /// Push a blob monolithically; the final response.
    fn push_blob(&self, repo: &str, bytes: &[u8]) -> Reply {
        let start = self.start_upload(repo);
        if start.status != 202 {
            return start;
        }
        let url = Client::with_query(start.must("Location"), &format!("digest={}", digest(bytes)));
        self.client.put(
            &url,
            &self.headers(&[("Content-Type", "application/octet-stream")]),
            bytes,
        )
    }
    fn put_manifest(&self, repo: &str, tag: &str, bytes: &[u8]) -> Reply {
        self.client.put(
            &format!("/v2/{repo}/manifests/{tag}"),
            &self.headers(&[("Content-Type", OCI_MANIFEST)]),
            bytes,
        )
    }
    /// Push a small image; its manifest digest.
    fn push_image(&self, repo: &str, tag: &str, seed: &str) -> String {
        let config = format!("{{\"seed\":\"{seed}\"}}").into_bytes();
        let layer = format!("layer of {seed}").into_bytes();
        for blob in [&config, &layer] {
            let r = self.push_blob(repo, blob);
            assert_eq!(r.status, 201, "{r:?} {}", String::from_utf8_lossy(&r.body));
        }
        let manifest = image_manifest(&config, &[&layer], None, None);
        let r = self.put_manifest(repo, tag, &manifest);
        assert_eq!(r.status, 201, "{r:?} {}", String::from_utf8_lossy(&r.body));
        digest(&manifest)
    }
}

fn as_<'a>(client: &'a Client, auth: Option<String>) -> As<'a> {
    As { client, auth }
}

#[track_caller]
fn assert_challenge(r: &Reply, status: u16, code: &str, challenge: &str) {
    r.assert_error(status, code);
    assert_eq!(r.header("WWW-Authenticate"), Some(challenge), "{r:?}");
}

/// A server in `--auth htpasswd` mode with the config file's `[auth]`
/// table `auth_toml` (after `[auth]`).
fn start_with_config(dir: &TempDir, args: &[&str], auth_toml: &str) -> TestServer {
    let config = dir.path().join("registry.toml");
    std::fs::write(&config, format!("[auth]\n{auth_toml}")).unwrap();
    let mut launch = TestServer::launch()
        .arg("--config")
        .arg(config.display().to_string());
    for a in args {
        launch = launch.arg(*a);
    }
    launch.start()
}

const BASIC_RULES: &str = r#"
[auth.groups]
ci = ["alice"]

[[auth.rules]]
repository = "public/*"
anonymous = true
actions = ["pull"]

[[auth.rules]]
repository = "**"
groups = ["ci"]
actions = ["*"]
catalog = true

[[auth.rules]]
repository = "team/**"
users = ["bob"]
actions = ["pull"]

[[auth.rules]]
repository = "bob/**"
users = ["bob"]
actions = ["pull", "push"]
"#;

const BASIC_CHALLENGE: &str = "Basic realm=\"registry\"";

#[test]
fn basic_auth_with_rules() {
    let dir = TempDir::new().unwrap();
    let file = htpasswd(dir.path(), &[("alice", "alice-pw"), ("bob", "bob-pw")]);
    let server = start_with_config(
        &dir,
        &["--auth", "htpasswd", "--htpasswd", file.to_str().unwrap()],
        BASIC_RULES,
    );
    let c = Client::new(&server);
    let anon = as_(&c, None);
    let alice = as_(&c, Some(basic("alice", "alice-pw")));
    let bob = as_(&c, Some(basic("bob", "bob-pw")));

    // bcrypt reads 72 bytes of a password: the operator is told that
    // longer ones cannot be used (they are refused).
    assert!(
        server
            .logs()
            .iter()
            .any(|l| l.contains("WARN") && l.contains("longer than 72 bytes")),
        "{:#?}",
        server.logs()
    );

    // GET /v2/: the challenge without credentials, 200 with good ones.
    assert_challenge(&anon.get("/v2/"), 401, "UNAUTHORIZED", BASIC_CHALLENGE);
    assert_eq!(alice.get("/v2/").status, 200);
    assert_eq!(bob.get("/v2/").status, 200);

    // alice (group ci) may do everything.
    let public = alice.push_image("public/img", "v1", "public");
    let team = alice.push_image("team/app", "v1", "team");
    alice.push_image("secret/x", "v1", "secret");
    let before = snapshot(&server.storage());
    assert!(
        before.keys().any(|p| p.ends_with("data")),
        "snapshot sees the blobs"
    );

    // Wrong, unknown or malformed credentials: 401 even where anonymous
    // callers may read.
    for auth in [
        basic("alice", "wrong"),
        basic("mallory", "alice-pw"),
        basic("alice", ""),
        "Basic !!!".to_owned(),
        "Basic".to_owned(),
        bearer("not-a-token"),
    ] {
        let who = as_(&c, Some(auth.clone()));
        assert_challenge(&who.get("/v2/"), 401, "UNAUTHORIZED", BASIC_CHALLENGE);
        assert_challenge(
            &who.get("/v2/public/img/manifests/v1"),
            401,
            "UNAUTHORIZED",
            BASIC_CHALLENGE,
        );
        assert_challenge(
            &who.start_upload("public/img"),
            401,
            "UNAUTHORIZED",
            BASIC_CHALLENGE,
        );
    }

    // Two Authorization headers: refused, whichever comes first, even two
    // good ones.
    let (good, wrong) = (basic("alice", "alice-pw"), basic("mallory", "x"));
    for pair in [[&good, &wrong], [&wrong, &good], [&good, &good]] {
        let r = c.get(
            "/v2/public/img/manifests/v1",
            &[("Authorization", pair[0]), ("Authorization", pair[1])],
        );
        assert_challenge(&r, 401, "UNAUTHORIZED", BASIC_CHALLENGE);
    }

    // Anonymous: pull public/*, nothing else; refusals are 401 with the
    // challenge (logging in might help).
    assert_eq!(anon.get("/v2/public/img/manifests/v1").status, 200);
    assert_eq!(
        anon.get(&format!("/v2/public/img/manifests/{public}"))
            .status,
        200
    );
    assert_challenge(
        &anon.start_upload("public/img"),
        401,
        "UNAUTHORIZED",
        BASIC_CHALLENGE,
    );
    assert_challenge(
        &anon.get("/v2/team/app/manifests/v1"),
        401,
        "UNAUTHORIZED",
        BASIC_CHALLENGE,
    );
    assert_challenge(
        &anon.get("/v2/_catalog"),
        401,
        "UNAUTHORIZED",
        BASIC_CHALLENGE,
    );
    assert_challenge(
        &anon.delete(&format!("/v2/public/img/manifests/{public}")),
        401,
        "UNAUTHORIZED",
        BASIC_CHALLENGE,
    );

    // bob: pull team/**, push bob/**; anything else is 403 DENIED.
    assert_eq!(bob.get("/v2/team/app/manifests/v1").status, 200);
    assert_eq!(
        bob.get("/v2/public/img/manifests/v1").status,
        200,
        "anonymous grants apply"
    );
    bob.start_upload("team/app").assert_error(403, "DENIED");
    bob.put_manifest("team/app", "v2", b"{}")
        .assert_error(403, "DENIED");
    bob.delete(&format!("/v2/team/app/manifests/{team}"))
        .assert_error(403, "DENIED");
    bob.get("/v2/secret/x/manifests/v1")
        .assert_error(403, "DENIED");
    bob.get("/v2/_catalog").assert_error(403, "DENIED");
    assert_eq!(
        snapshot(&server.storage()),
        before,
        "refusals changed the store"
    );
    assert_eq!(alice.get("/v2/team/app/manifests/v1").status, 200);
    assert_eq!(alice.get("/v2/_catalog").status, 200);

    // Cross-repository mount: pull on the source mounts (201); without it
    // the mount becomes a plain upload session (202), leaking nothing.
    let layer = digest(b"layer of team");
    let m = c.post(
        &format!("/v2/bob/copy/blobs/uploads/?mount={layer}&from=team/app"),
        &bob.headers(&[]),
        b"",
    );
    assert_eq!(m.status, 201, "{m:?}");
    let secret_layer = digest(b"layer of secret");
    let m = c.post(
        &format!("/v2/bob/copy/blobs/uploads/?mount={secret_layer}&from=secret/x"),
        &bob.headers(&[]),
        b"",
    );
    assert_eq!(m.status, 202, "{m:?}");
    let h = bob.client.head(
        &format!("/v2/bob/copy/blobs/{secret_layer}"),
        &bob.headers(&[]),
    );
    assert_eq!(h.status, 404, "the secret blob was not mounted");
}

#[test]
fn htpasswd_start_up_errors() {
    let dir = TempDir::new().unwrap();
    let md5 = dir.path().join("md5");
    std::fs::write(&md5, "alice:$apr1$abcdefgh$0123456789abcdefghijkl\n").unwrap();
    let out = serve_in(
        dir.path(),
        &["--auth", "htpasswd", "--htpasswd", md5.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("only bcrypt entries") && stderr.contains("htpasswd -B"),
        "{stderr}"
    );

    let out = serve_in(dir.path(), &["--htpasswd", md5.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("auth mode is none"), "{stderr}");

    let out = run_in(
        dir.path(),
        &["serve", "--storage", "memory://", "--auth", "ldap"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid auth mode"));
}

const ISSUER: &str = "test-issuer";
const SERVICE: &str = "test-registry";
const REALM: &str = "https://auth.example/token";

fn claims(access: serde_json::Value) -> serde_json::Value {
    let t = now();
    json!({
        "iss": ISSUER, "sub": "tester", "aud": SERVICE,
        "exp": t + 300, "nbf": t - 5, "iat": t - 5, "jti": "x",
        "access": access,
    })
}

fn push_pull(repo: &str) -> serde_json::Value {
    json!([{ "type": "repository", "name": repo, "actions": ["pull", "push"] }])
}

fn sign(alg: Algorithm, key_file: &str, kid: Option<&str>, claims: &serde_json::Value) -> String {
    let pem = std::fs::read(fixture(key_file)).unwrap();
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem).unwrap(),
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
        _ => unreachable!(),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn token_server(keys: &str) -> TestServer {
    TestServer::launch()
        .arg("--auth")
        .arg("token")
        .arg("--token-keys")
        .arg(fixture(keys).display().to_string())
        .arg("--token-issuer")
        .arg(ISSUER)
        .arg("--token-service")
        .arg(SERVICE)
        .arg("--token-realm")
        .arg(REALM)
        .start()
}

fn challenge(scope: Option<&str>, error: Option<&str>) -> String {
    let mut c = format!("Bearer realm=\"{REALM}\",service=\"{SERVICE}\"");
    if let Some(s) = scope {
        c.push_str(&format!(",scope=\"{s}\""));
    }
    if let Some(e) = error {
        c.push_str(&format!(",error=\"{e}\""));
    }
    c
}

#[test]
fn bearer_tokens_from_an_external_issuer() {
    let server = token_server("issuer-ec.pub");
    let c = Client::new(&server);
    let anon = as_(&c, None);

    // The spec's challenges, on GET /v2/ too.
    assert_challenge(
        &anon.get("/v2/"),
        401,
        "UNAUTHORIZED",
        &challenge(None, None),
    );
    assert_challenge(
        &anon.start_upload("x/app"),
        401,
        "UNAUTHORIZED",
        &challenge(Some("repository:x/app:pull,push"), None),
    );
    assert_challenge(
        &anon.get("/v2/x/app/manifests/v1"),
        401,
        "UNAUTHORIZED",
        &challenge(Some("repository:x/app:pull"), None),
    );
    assert_challenge(
        &anon.get("/v2/_catalog"),
        401,
        "UNAUTHORIZED",
        &challenge(Some("registry:catalog:*"), None),
    );

    // A good token works for what it grants.
    let good = sign(
        Algorithm::ES256,
        "issuer-ec.key",
        None,
        &claims(push_pull("x/app")),
    );
    let writer = as_(&c, Some(bearer(&good)));
    assert_eq!(writer.get("/v2/").status, 200);
    // Two Authorization headers, even two good ones: refused.
    let twice = bearer(&good);
    let r = c.get(
        "/v2/x/app/manifests/v1",
        &[("Authorization", &twice), ("Authorization", &twice)],
    );
    assert_challenge(
        &r,
        401,
        "UNAUTHORIZED",
        &challenge(Some("repository:x/app:pull"), Some("invalid_request")),
    );
    let pushed = writer.push_image("x/app", "v1", "x");
    assert_eq!(writer.get("/v2/x/app/manifests/v1").status, 200);
    let before = snapshot(&server.storage());
    assert!(
        before.keys().any(|p| p.ends_with("data")),
        "snapshot sees the blobs"
    );

    // Every bad token: 401 UNAUTHORIZED, error="invalid_token", the scope
    // the request needed, and the store unchanged.
    let t = now();
    let header_none = b64url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64url(claims(push_pull("x/app")).to_string().as_bytes());
    let alg_none = format!("{header_none}.{payload}.");
    let hs256_with_public_key = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(push_pull("x/app")),
        &EncodingKey::from_secret(&std::fs::read(fixture("issuer-ec.pub")).unwrap()),
    )
    .unwrap();
    let mut expired = claims(push_pull("x/app"));
    expired["exp"] = json!(t - 3600);
    expired["nbf"] = json!(t - 7200);
    let mut not_yet = claims(push_pull("x/app"));
    not_yet["nbf"] = json!(t + 3600);
    not_yet["exp"] = json!(t + 7200);
    let mut wrong_aud = claims(push_pull("x/app"));
    wrong_aud["aud"] = json!("another-registry");
    let mut wrong_iss = claims(push_pull("x/app"));
    wrong_iss["iss"] = json!("evil-issuer");
    let mut no_exp = claims(push_pull("x/app"));
    no_exp.as_object_mut().unwrap().remove("exp");
    // A token for y/app with its payload swapped for x/app's: the
    // signature no longer matches.
    let for_y = sign(
        Algorithm::ES256,
        "issuer-ec.key",
        None,
        &claims(push_pull("y/app")),
    );
    let parts: Vec<&str> = for_y.split('.').collect();
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    let bad_tokens = [
        ("alg none", alg_none),
        ("HS256 with the public key", hs256_with_public_key),
        (
            "expired",
            sign(Algorithm::ES256, "issuer-ec.key", None, &expired),
        ),
        (
            "not yet valid",
            sign(Algorithm::ES256, "issuer-ec.key", None, &not_yet),
        ),
        (
            "wrong audience",
            sign(Algorithm::ES256, "issuer-ec.key", None, &wrong_aud),
        ),
        (
            "wrong issuer",
            sign(Algorithm::ES256, "issuer-ec.key", None, &wrong_iss),
        ),
        (
            "no exp",
            sign(Algorithm::ES256, "issuer-ec.key", None, &no_exp),
        ),
        ("tampered", tampered),
        (
            "untrusted key",
            sign(
                Algorithm::ES256,
                "untrusted-ec.key",
                None,
                &claims(push_pull("x/app")),
            ),
        ),
        (
            "RS256 key not configured",
            sign(
                Algorithm::RS256,
                "issuer-rsa.key",
                None,
                &claims(push_pull("x/app")),
            ),
        ),
        ("garbage", "a.b.c".to_owned()),
    ];
    let config = br#"{"seed":"refused"}"#;
    let manifest = image_manifest(config, &[], None, None);
    for (what, token) in &bad_tokens {
        let who = as_(&c, Some(bearer(token)));
        let r = who.start_upload("x/app");
        assert_challenge(
            &r,
            401,
            "UNAUTHORIZED",
            &challenge(Some("repository:x/app:pull,push"), Some("invalid_token")),
        );
        let r = who.put_manifest("x/app", "v2", &manifest);
        assert_eq!(r.status, 401, "{what}: {r:?}");
        let r = who.delete(&format!("/v2/x/app/manifests/{pushed}"));
        assert_eq!(r.status, 401, "{what}: {r:?}");
        let r = who.get("/v2/");
        assert_challenge(
            &r,
            401,
            "UNAUTHORIZED",
            &challenge(None, Some("invalid_token")),
        );
        assert_eq!(
            snapshot(&server.storage()),
            before,
            "{what} changed the store"
        );
    }

    // Good tokens lacking the scope: 401 with error="insufficient_scope"
    // naming the scope needed, so that clients ask for it.
    let pull_only = sign(
        Algorithm::ES256,
        "issuer-ec.key",
        None,
        &claims(json!([{ "type": "repository", "name": "x/app", "actions": ["pull"] }])),
    );
    let reader = as_(&c, Some(bearer(&pull_only)));
    assert_eq!(reader.get("/v2/x/app/manifests/v1").status, 200);
    assert_challenge(
        &reader.start_upload("x/app"),
        401,
        "UNAUTHORIZED",
        &challenge(
            Some("repository:x/app:pull,push"),
            Some("insufficient_scope"),
        ),
    );
    assert_challenge(
        &writer.delete(&format!("/v2/x/app/manifests/{pushed}")),
        401,
        "UNAUTHORIZED",
        &challenge(Some("repository:x/app:delete"), Some("insufficient_scope")),
    );
    assert_challenge(
        &writer.get("/v2/x/other/manifests/v1"),
        401,
        "UNAUTHORIZED",
        &challenge(Some("repository:x/other:pull"), Some("insufficient_scope")),
    );
    assert_challenge(
        &writer.get("/v2/_catalog"),
        401,
        "UNAUTHORIZED",
        &challenge(Some("registry:catalog:*"), Some("insufficient_scope")),
    );
    // A prefix or glob in a token is not a grant on other names.
    let prefix = sign(
        Algorithm::ES256,
        "issuer-ec.key",
        None,
        &claims(push_pull("x/*")),
    );
    assert_eq!(
        as_(&c, Some(bearer(&prefix))).start_upload("x/app").status,
        401
    );
    assert_eq!(
        snapshot(&server.storage()),
        before,
        "insufficient scopes changed the store"
    );

    // `*` grants every action, and the catalog needs registry:catalog:*.
    let all = sign(
        Algorithm::ES256,
        "issuer-ec.key",
        None,
        &claims(json!([
            { "type": "repository", "name": "x/app", "actions": ["*"] },
            { "type": "registry", "name": "catalog", "actions": ["*"] },
        ])),
    );
    let admin = as_(&c, Some(bearer(&all)));
    assert_eq!(admin.get("/v2/_catalog").status, 200);
    assert_eq!(
        admin
            .delete(&format!("/v2/x/app/manifests/{pushed}"))
            .status,
        202
    );
}

#[test]
fn bearer_tokens_checked_against_a_jwks() {
    let server = token_server("issuer-rsa.jwks.json");
    let c = Client::new(&server);
    let good = sign(
        Algorithm::RS256,
        "issuer-rsa.key",
        Some("test-rsa"),
        &claims(push_pull("r/app")),
    );
    as_(&c, Some(bearer(&good))).push_image("r/app", "v1", "r");
    let before = snapshot(&server.storage());
    assert!(
        before.keys().any(|p| p.ends_with("data")),
        "snapshot sees the blobs"
    );
    let no_kid = sign(
        Algorithm::RS256,
        "issuer-rsa.key",
        None,
        &claims(push_pull("r/app")),
    );
    assert_eq!(
        as_(&c, Some(bearer(&no_kid)))
            .get("/v2/r/app/manifests/v1")
            .status,
        200
    );
    // HS256 keyed with the JWKS text itself, and an EC token: refused.
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(push_pull("r/app")),
        &EncodingKey::from_secret(&std::fs::read(fixture("issuer-rsa.jwks.json")).unwrap()),
    )
    .unwrap();
    let ec = sign(
        Algorithm::ES256,
        "issuer-ec.key",
        Some("test-rsa"),
        &claims(push_pull("r/app")),
    );
    for token in [hs, ec] {
        assert_challenge(
            &as_(&c, Some(bearer(&token))).start_upload("r/app"),
            401,
            "UNAUTHORIZED",
            &challenge(Some("repository:r/app:pull,push"), Some("invalid_token")),
        );
    }
    assert_eq!(snapshot(&server.storage()), before);
}

const ISSUER_RULES: &str = r#"
[auth.groups]
ci = ["alice"]

[[auth.rules]]
repository = "public/*"
anonymous = true
actions = ["pull"]

[[auth.rules]]
repository = "team/**"
groups = ["ci"]
actions = ["pull", "push"]
"#;

/// Ask the built-in issuer for a token.
fn get_token(c: &Client, auth: Option<String>, query: &str) -> Reply {
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    c.get(&format!("/token?{query}"), &headers)
}

#[test]
fn builtin_issuer_end_to_end() {
    let dir = TempDir::new().unwrap();
    let file = htpasswd(dir.path(), &[("alice", "alice-pw"), ("bob", "bob-pw")]);
    let key = fixture("issuer-ec.key");
    let server = start_with_config(
        &dir,
        &[
            "--auth",
            "token",
            "--htpasswd",
            file.to_str().unwrap(),
            "--token-issuer-key",
            key.to_str().unwrap(),
        ],
        ISSUER_RULES,
    );
    let c = Client::new(&server);
    let realm = format!("http://{}/token", server.addr());
    let r = c.get("/v2/", &[]);
    assert_challenge(
        &r,
        401,
        "UNAUTHORIZED",
        &format!("Bearer realm=\"{realm}\",service=\"registry\""),
    );

    // Two Authorization headers: refused.
    let alice_basic = basic("alice", "alice-pw");
    let twice = c.get(
        "/token?service=registry&scope=repository:team/app:pull",
        &[
            ("Authorization", &alice_basic),
            ("Authorization", &alice_basic),
        ],
    );
    assert_eq!(twice.status, 401, "{twice:?}");

    // alice (ci) gets push on team/**, and pushes with the token.
    let r = get_token(
        &c,
        Some(basic("alice", "alice-pw")),
        "service=registry&scope=repository%3Ateam%2Fapp%3Apull%2Cpush&scope=repository:public/x:push",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
    let body = r.json();
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(body["access_token"], body["token"]);
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    let alice = as_(&c, Some(bearer(&token)));
    let pushed = alice.push_image("team/app", "v1", "team");
    // ... but not what the rules do not give her (public/x push).
    let before = snapshot(&server.storage());
    assert!(
        before.keys().any(|p| p.ends_with("data")),
        "snapshot sees the blobs"
    );
    let realm_challenge = |scope: &str, err: &str| {
        format!("Bearer realm=\"{realm}\",service=\"registry\",scope=\"{scope}\",error=\"{err}\"")
    };
    assert_challenge(
        &alice.start_upload("public/x"),
        401,
        "UNAUTHORIZED",
        &realm_challenge("repository:public/x:pull,push", "insufficient_scope"),
    );
    assert_challenge(
        &alice.delete(&format!("/v2/team/app/manifests/{pushed}")),
        401,
        "UNAUTHORIZED",
        &realm_challenge("repository:team/app:delete", "insufficient_scope"),
    );

    // bob (not in ci) and anonymous callers get tokens without push.
    for auth in [Some(basic("bob", "bob-pw")), None] {
        let r = get_token(
            &c,
            auth,
            "service=registry&scope=repository:team/app:pull,push",
        );
        assert_eq!(r.status, 200, "{r:?}");
        let t = r.json()["token"].as_str().unwrap().to_owned();
        let who = as_(&c, Some(bearer(&t)));
        assert_eq!(who.get("/v2/").status, 200);
        assert_challenge(
            &who.start_upload("team/app"),
            401,
            "UNAUTHORIZED",
            &realm_challenge("repository:team/app:pull,push", "insufficient_scope"),
        );
    }
    // Anonymous tokens do pull public/*.
    alice.push_image("team/app", "v1", "team");
    let r = get_token(&c, None, "service=registry&scope=repository:public/x:pull");
    let anon = as_(&c, Some(bearer(r.json()["token"].as_str().unwrap())));
    assert_eq!(
        anon.get("/v2/public/x/tags/list").status,
        404,
        "allowed, and absent"
    );

    // Wrong credentials: 401 with a Basic challenge, no token.
    for auth in [
        basic("alice", "nope"),
        basic("eve", "alice-pw"),
        "Basic @@".to_owned(),
    ] {
        let r = get_token(
            &c,
            Some(auth),
            "service=registry&scope=repository:team/app:pull",
        );
        assert_challenge(&r, 401, "UNAUTHORIZED", BASIC_CHALLENGE);
        assert!(r.json().get("token").is_none());
    }
    // Another service: 400.
    let r = get_token(
        &c,
        Some(basic("alice", "alice-pw")),
        "service=other&scope=repository:team/app:pull",
    );
    assert_eq!(r.status, 400, "{r:?}");
    // A token the issuer signed for another service is refused by the
    // registry (aud), as is one from an external issuer's key.
    let mut foreign = claims(push_pull("team/app"));
    foreign["iss"] = json!("registry-token-issuer");
    let foreign = sign(Algorithm::ES256, "untrusted-ec.key", None, &foreign);
    assert_eq!(
        as_(&c, Some(bearer(&foreign)))
            .start_upload("team/app")
            .status,
        401
    );
    assert_eq!(
        snapshot(&server.storage()),
        before,
        "refusals changed the store"
    );

    // skopeo logs in through the issuer and copies an image.
    if std::process::Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok()
    {
        let host = server.addr().to_string();
        let out = std::process::Command::new("skopeo")
            .args([
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                "--src-creds",
                "alice:alice-pw",
                "--dest-creds",
                "alice:alice-pw",
                &format!("docker://{host}/team/app:v1"),
                &format!("docker://{host}/team/copy:v1"),
            ])
            .env("HOME", dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r = get_token(
            &c,
            Some(basic("alice", "alice-pw")),
            "service=registry&scope=repository:team/copy:pull",
        );
        let t = r.json()["token"].as_str().unwrap().to_owned();
        assert_eq!(
            as_(&c, Some(bearer(&t)))
                .get("/v2/team/copy/manifests/v1")
                .status,
            200
        );
        // bob may not push there: skopeo fails, nothing is written.
        let out = std::process::Command::new("skopeo")
            .args([
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                "--src-creds",
                "alice:alice-pw",
                "--dest-creds",
                "bob:bob-pw",
                &format!("docker://{host}/team/app:v1"),
                &format!("docker://{host}/team/bob:v1"),
            ])
            .env("HOME", dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            !server
                .storage()
                .join("docker/registry/v2/repositories/team/bob")
                .exists()
        );
    }
}

#[test]
fn builtin_issuer_with_a_generated_key() {
    let dir = TempDir::new().unwrap();
    let file = htpasswd(dir.path(), &[("alice", "alice-pw")]);
    let server = TestServer::launch()
        .arg("--auth")
        .arg("token")
        .arg("--htpasswd")
        .arg(file.display().to_string())
        .start();
    assert!(
        server
            .wait_for_log(|l| l.contains("tokens die with this process"))
            .is_some()
    );
    let c = Client::new(&server);
    let r = get_token(
        &c,
        Some(basic("alice", "alice-pw")),
        "service=registry&scope=repository:a/b:pull,push",
    );
    let t = r.json()["token"].as_str().unwrap().to_owned();
    as_(&c, Some(bearer(&t))).push_image("a/b", "v1", "gen");
    // A token from the configured-key issuer is not one of this process's.
    let mut other = claims(push_pull("a/b"));
    other["iss"] = json!("registry-token-issuer");
    other["aud"] = json!("registry");
    let other = sign(Algorithm::ES256, "issuer-ec.key", None, &other);
    assert_eq!(
        as_(&c, Some(bearer(&other))).start_upload("a/b").status,
        401
    );
}
