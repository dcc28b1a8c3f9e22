//! Races between two requests sent at once to two different processes of
//! a fleet (three `registry serve` on one store): a tag pushed while its
//! manifest is deleted, an upload completed while cancelled, a blob link
//! deleted while mounted, and so on.
//!
//! Each race runs `RACE_ROUNDS` rounds (default 40), each in a fresh
//! repository `race/<race>/r<round>`. In a round the two racing requests
//! leave two threads released by one `Barrier`, to two different processes
//! (the pair rotates over the six ordered pairs); the setup goes through
//! the third. In most rounds one of the two then waits a fraction of how
//! long the other took in the round before ([`STAGGER`]), so that the
//! rounds sweep the overlap of the two requests from end to end. After the round every process is asked for the end state:
//! no 5xx, each answer one that some serial order of the two requests
//! gives, each tag of the round either resolving to the same readable
//! manifest everywhere (and listed in `tags/list`) or absent everywhere
//! (and not listed), each blob that got a 201 reading back right unless the
//! race may legitimately have removed it.
//!
//! Violations are collected per round, not asserted one by one: a test
//! fails at the end with a summary of every violated round, and prints its
//! counts when it passes too. Answers that no serial order gives but that
//! leave a consistent store (e.g. both a completion and a cancel of one
//! upload succeeding) are counted as notes, not violations.
//!
//! The `fs_*` tests share one directory; the `s3_*` tests share one bucket
//! of the S3 server named by `REGISTRY_TEST_S3_URL` (`scripts/test.sh`
//! starts moto and sets it); without it they are ignored, not passed.

mod common;

use std::collections::BTreeMap;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::fleet::Fleet;
use common::http::{Client, Reply};
use registry_testkit::content::{OCI_MANIFEST, digest, image_manifest};

/// Rounds per race unless `RACE_ROUNDS` says otherwise.
const DEFAULT_ROUNDS: usize = 40;
/// Violated rounds detailed in a failure's message unless `RACE_DETAIL`
/// says otherwise.
const DEFAULT_DETAILED_ROUNDS: usize = 12;
/// Problems detailed per round.
const MAX_PROBLEMS_PER_ROUND: usize = 3;
/// The ordered pairs of processes that race; round `r` uses
/// `PAIRS[r % 6]`, the remaining process does the setup.
const PAIRS: [(usize, usize); 6] = [(0, 1), (1, 2), (2, 0), (1, 0), (2, 1), (0, 2)];
/// How much later than the other each racing request leaves, round after
/// round: a fraction of how long the other took in the previous round
/// (positive: the first request waits, negative: the second). Released at
/// the same instant, the shorter request is often done before the longer
/// one reaches its critical step; staggering sweeps the overlap across it.
const STAGGER: [f64; 16] = [
    0.0, 0.1, -0.1, 0.25, -0.25, 0.4, -0.4, 0.55, 0.0, -0.55, 0.7, -0.7, 0.85, -0.85, 0.95, -0.95,
];
/// The tag every manifest race is about.
const TAG: &str = "t";

fn env_number(var: &str, default: usize) -> usize {
    match std::env::var(var) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// An answer the race allows: a status, and for errors the OCI error code.
type Allowed = (u16, Option<&'static str>);

/// The OCI error codes of a body, if it is an error body.
fn error_codes(r: &Reply) -> Vec<String> {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&r.body) else {
        return Vec::new();
    };
    json["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["code"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `404 MANIFEST_UNKNOWN`, `500 <body>`, `201`: a short account of an answer.
fn describe(r: &Reply) -> String {
    let codes = error_codes(r);
    if !codes.is_empty() && r.status >= 500 {
        // What went wrong inside, e.g. `500 UNKNOWN "deleting directory: ..."`.
        let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let message = json["errors"][0]["message"].as_str().unwrap_or("");
        let short: String = message.chars().take(100).collect();
        format!("{} {} {short:?}", r.status, codes.join(","))
    } else if !codes.is_empty() {
        format!("{} {}", r.status, codes.join(","))
    } else if r.body.is_empty() || r.status < 300 {
        r.status.to_string()
    } else {
        let text = String::from_utf8_lossy(&r.body);
        let short: String = text.chars().take(100).collect();
        format!("{} {short:?}", r.status)
    }
}

fn is(r: &Reply, status: u16, code: &str) -> bool {
    r.status == status && error_codes(r).iter().any(|c| c == code)
}

/// What the three processes say about a tag or a digest.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// Absent on every process.
    Absent,
    /// Resolves to this digest on every process.
    Present(String),
    /// The processes disagree, or one answered wrongly (already recorded).
    Broken,
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seen::Absent => write!(f, "absent"),
            Seen::Present(d) => write!(f, "-> {}", short(d)),
            Seen::Broken => write!(f, "inconsistent"),
        }
    }
}

/// `sha256:0123456789ab`: enough of a digest to tell them apart.
fn short(d: &str) -> &str {
    &d[..d.len().min(19)]
}

/// One round of one race: its repository, the clients of the three
/// processes, which two race, and what went wrong.
struct Round<'f> {
    n: usize,
    repo: String,
    clients: &'f [Client],
    /// The processes the two racing requests go to.
    a: usize,
    b: usize,
    /// The process that does the setup.
    setup: usize,
    /// How long each racing request took in the previous round.
    previous: Option<(Duration, Duration)>,
    /// How long each racing request took in this round.
    took: Option<(Duration, Duration)>,
    problems: Vec<String>,
    notes: Vec<&'static str>,
}

impl<'f> Round<'f> {
    fn new(
        race: &str,
        n: usize,
        clients: &'f [Client],
        previous: Option<(Duration, Duration)>,
    ) -> Round<'f> {
        let (a, b) = PAIRS[n % PAIRS.len()];
        Round {
            n,
            repo: format!("race/{race}/r{n}"),
            clients,
            a,
            b,
            setup: 3 - a - b,
            previous,
            took: None,
            problems: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn problem(&mut self, p: String) {
        self.problems.push(p);
    }

    fn setup_client(&self) -> &'f Client {
        &self.clients[self.setup]
    }

    /// A setup step must answer `want`; otherwise the round is a violation
    /// and stops.
    fn step(&mut self, what: &str, r: Reply, want: u16) -> Option<Reply> {
        if r.status == want {
            Some(r)
        } else {
            self.problem(format!(
                "setup {what} answered {} on process {}",
                describe(&r),
                self.setup
            ));
            None
        }
    }

    /// Link `bytes` as a blob in `repo` with one request (`POST ?digest=`).
    fn setup_blob(&mut self, repo: &str, bytes: &[u8]) -> Option<String> {
        let d = digest(bytes);
        let r = self.setup_client().post(
            &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
            &[("Content-Type", "application/octet-stream")],
            bytes,
        );
        self.step(&format!("push of blob {}", short(&d)), r, 201)?;
        Some(d)
    }

    /// Image manifests over one config blob pushed to the round's
    /// repository, one per variant, told apart by an annotation; their
    /// bytes and digests.
    fn setup_manifests<const N: usize>(
        &mut self,
        variants: [&str; N],
    ) -> Option<[(Vec<u8>, String); N]> {
        let config = format!("{{\"round\":\"{}\"}}", self.repo);
        let repo = self.repo.clone();
        self.setup_blob(&repo, config.as_bytes())?;
        Some(variants.map(|variant| {
            let mut m: serde_json::Value =
                serde_json::from_slice(&image_manifest(config.as_bytes(), &[], None, None))
                    .unwrap();
            m["annotations"] = serde_json::json!({ "round": self.repo, "variant": variant });
            let bytes = serde_json::to_vec(&m).unwrap();
            let d = digest(&bytes);
            (bytes, d)
        }))
    }

    fn setup_put_manifest(&mut self, reference: &str, bytes: &[u8]) -> Option<()> {
        let r = self
            .setup_client()
            .put_manifest(&self.repo, reference, OCI_MANIFEST, bytes);
        self.step(&format!("PUT manifest {}", short(reference)), r, 201)?;
        Some(())
    }

    /// An upload session in the round's repository holding `chunk`; its
    /// `Location`.
    fn setup_upload(&mut self, chunk: &[u8]) -> Option<String> {
        let c = self.setup_client();
        let start = c.post(&format!("/v2/{}/blobs/uploads/", self.repo), &[], b"");
        let start = self.step("POST upload", start, 202)?;
        let location = start.must("Location").to_owned();
        if chunk.is_empty() {
            return Some(location);
        }
        let range = format!("0-{}", chunk.len() - 1);
        let r = c.patch(
            &location,
            &[
                ("Content-Range", &range),
                ("Content-Type", "application/octet-stream"),
            ],
            chunk,
        );
        let r = self.step("PATCH first chunk", r, 202)?;
        Some(r.must("Location").to_owned())
    }

    /// Send `a` to process `self.a` and `b` to process `self.b` from two
    /// threads released together (one of them maybe a little later, see
    /// [`STAGGER`]). `None` (and a violation) if either request failed
    /// below HTTP.
    fn race(
        &mut self,
        a: impl FnOnce(&Client) -> Reply + Send,
        b: impl FnOnce(&Client) -> Reply + Send,
    ) -> Option<(Reply, Reply)> {
        let (ca, cb) = (&self.clients[self.a], &self.clients[self.b]);
        let (wait_a, wait_b) = self.stagger();
        let barrier = Barrier::new(2);
        let (ra, rb) = std::thread::scope(|s| {
            let ha = s.spawn(|| {
                barrier.wait();
                std::thread::sleep(wait_a);
                let start = Instant::now();
                (a(ca), start.elapsed())
            });
            let hb = s.spawn(|| {
                barrier.wait();
                std::thread::sleep(wait_b);
                let start = Instant::now();
                (b(cb), start.elapsed())
            });
            (ha.join(), hb.join())
        });
        let mut failed = |p: usize, e: Box<dyn std::any::Any + Send>| {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            self.problems
                .push(format!("request to process {p} failed: {msg}"));
        };
        match (ra, rb) {
            (Ok((ra, ta)), Ok((rb, tb))) => {
                self.took = Some((ta, tb));
                Some((ra, rb))
            }
            (ra, rb) => {
                if let Err(e) = ra {
                    failed(self.a, e);
                }
                if let Err(e) = rb {
                    failed(self.b, e);
                }
                None
            }
        }
    }

    /// How long each racing request waits after the barrier.
    fn stagger(&self) -> (Duration, Duration) {
        let f = STAGGER[self.n % STAGGER.len()];
        match self.previous {
            Some((_, tb)) if f > 0.0 => (tb.mul_f64(f), Duration::ZERO),
            Some((ta, _)) if f < 0.0 => (Duration::ZERO, ta.mul_f64(-f)),
            _ => (Duration::ZERO, Duration::ZERO),
        }
    }

    /// A racing request's answer must be one of `allowed`; a 5xx is
    /// always a violation. Whether it was allowed.
    fn answer(&mut self, what: &str, process: usize, r: &Reply, allowed: &[Allowed]) -> bool {
        let ok = allowed.iter().any(|&(status, code)| match code {
            None => r.status == status,
            Some(code) => is(r, status, code),
        });
        if !ok {
            let kind = if r.status >= 500 { "5xx: " } else { "" };
            self.problem(format!(
                "{kind}{what} answered {} on process {process}",
                describe(r)
            ));
        }
        ok
    }

    /// Whether `tag` is in `GET /v2/<repo>/tags/list` on process `i`
    /// (`404 NAME_UNKNOWN` counts as not listed); `None` on a wrong answer.
    fn listed(&mut self, i: usize, tag: &str) -> Option<bool> {
        let r = self.clients[i].get(&format!("/v2/{}/tags/list", self.repo), &[]);
        if is(&r, 404, "NAME_UNKNOWN") {
            return Some(false);
        }
        if r.status != 200 {
            self.problem(format!(
                "tags/list answered {} on process {i}",
                describe(&r)
            ));
            return None;
        }
        let json: serde_json::Value = match serde_json::from_slice(&r.body) {
            Ok(json) => json,
            Err(e) => {
                self.problem(format!("tags/list is not JSON on process {i}: {e}"));
                return None;
            }
        };
        let tags = json["tags"].as_array().cloned().unwrap_or_default();
        Some(tags.iter().any(|t| t.as_str() == Some(tag)))
    }

    /// The manifest `reference` resolves to on process `i`: `Some(Some((d, bytes)))`
    /// when read (and its bytes hash to `d` and the `Docker-Content-Digest`
    /// says `d`), `Some(None)` on `404 MANIFEST_UNKNOWN`, `None` on anything
    /// else.
    fn manifest_on(&mut self, i: usize, reference: &str) -> Option<Option<(String, Vec<u8>)>> {
        let r = self.clients[i].get(&format!("/v2/{}/manifests/{reference}", self.repo), &[]);
        if is(&r, 404, "MANIFEST_UNKNOWN") {
            return Some(None);
        }
        if r.status != 200 {
            self.problem(format!(
                "GET manifest {} answered {} on process {i}",
                short(reference),
                describe(&r)
            ));
            return None;
        }
        let d = digest(&r.body);
        if r.header("Docker-Content-Digest") != Some(d.as_str()) {
            self.problem(format!(
                "GET manifest {} on process {i}: Docker-Content-Digest {:?} but the body is {}",
                short(reference),
                r.header("Docker-Content-Digest"),
                short(&d)
            ));
            return None;
        }
        Some(Some((d, r.body)))
    }

    /// Agreement of the three per-process answers, or a violation.
    fn agree(&mut self, what: &str, each: Vec<Option<Seen>>) -> Seen {
        if each.iter().any(Option::is_none) {
            return Seen::Broken;
        }
        let each: Vec<Seen> = each.into_iter().map(Option::unwrap).collect();
        if each.iter().all(|s| s == &each[0]) {
            return each[0].clone();
        }
        let said: Vec<String> = (each.iter().enumerate())
            .map(|(i, s)| format!("process {i}: {s}"))
            .collect();
        self.problem(format!("processes disagree on {what}: {}", said.join(", ")));
        Seen::Broken
    }

    /// A tag's state on all three processes. Present means: `GET` of the tag
    /// answers 200 with the same manifest everywhere, which is also
    /// readable by its digest, and the tag is in `tags/list`. Absent means:
    /// `404 MANIFEST_UNKNOWN` everywhere and not in `tags/list` anywhere.
    fn tag_state(&mut self, tag: &str) -> Seen {
        let mut each = Vec::new();
        for i in 0..self.clients.len() {
            let got = self.manifest_on(i, tag);
            let listed = self.listed(i, tag);
            let seen = match got {
                None => None,
                Some(None) => {
                    if listed == Some(true) {
                        self.problem(format!("tag {tag} listed but GET 404 on process {i}"));
                        None
                    } else {
                        Some(Seen::Absent)
                    }
                }
                Some(Some((d, bytes))) => {
                    if listed == Some(false) {
                        self.problem(format!(
                            "tag {tag} resolves on process {i} but is not in tags/list"
                        ));
                    }
                    match self.manifest_on(i, &d) {
                        Some(Some((_, by_digest))) if by_digest == bytes => Some(Seen::Present(d)),
                        Some(Some(_)) => {
                            self.problem(format!(
                                "tag {tag} -> {} on process {i}, which by digest reads other bytes",
                                short(&d)
                            ));
                            None
                        }
                        Some(None) => {
                            self.problem(format!(
                                "tag {tag} -> {} on process {i}, which by digest is 404 (dangling tag)",
                                short(&d)
                            ));
                            None
                        }
                        None => None,
                    }
                }
            };
            each.push(seen);
        }
        self.agree(&format!("tag {tag}"), each)
    }

    /// Whether the manifest `d` is readable by digest on all three
    /// processes (`Some(true)`), absent from all (`Some(false)`), or
    /// neither (a violation, `None`).
    fn manifest_state(&mut self, d: &str) -> Option<bool> {
        let mut each = Vec::new();
        for i in 0..self.clients.len() {
            each.push(match self.manifest_on(i, d) {
                Some(Some((got, _))) if got == d => Some(Seen::Present(got)),
                Some(Some((got, _))) => {
                    self.problem(format!(
                        "GET manifest {} on process {i} returned {}",
                        short(d),
                        short(&got)
                    ));
                    None
                }
                Some(None) => Some(Seen::Absent),
                None => None,
            });
        }
        match self.agree(&format!("manifest {}", short(d)), each) {
            Seen::Present(_) => Some(true),
            Seen::Absent => Some(false),
            Seen::Broken => None,
        }
    }

    /// Whether blob `d` reads back as `bytes` from `repo` on all three
    /// processes (`Some(true)`), is `404 BLOB_UNKNOWN` on all
    /// (`Some(false)`), or neither (a violation, `None`).
    fn blob_state(&mut self, repo: &str, d: &str, bytes: &[u8]) -> Option<bool> {
        let mut each = Vec::new();
        for i in 0..self.clients.len() {
            let r = self.clients[i].get(&format!("/v2/{repo}/blobs/{d}"), &[]);
            each.push(if r.status == 200 && r.body == bytes {
                Some(Seen::Present(d.to_owned()))
            } else if r.status == 200 {
                self.problem(format!(
                    "blob {} in {repo} on process {i}: {} bytes that hash to {}",
                    short(d),
                    r.body.len(),
                    short(&digest(&r.body))
                ));
                None
            } else if is(&r, 404, "BLOB_UNKNOWN") {
                Some(Seen::Absent)
            } else {
                self.problem(format!(
                    "GET blob {} in {repo} answered {} on process {i}",
                    short(d),
                    describe(&r)
                ));
                None
            });
        }
        match self.agree(&format!("blob {} in {repo}", short(d)), each) {
            Seen::Present(_) => Some(true),
            Seen::Absent => Some(false),
            Seen::Broken => None,
        }
    }

    /// The upload at `location` is gone: `404 BLOB_UPLOAD_UNKNOWN` on
    /// every process.
    fn upload_gone(&mut self, location: &str) {
        for i in 0..self.clients.len() {
            let r = self.clients[i].get(location, &[]);
            if !is(&r, 404, "BLOB_UPLOAD_UNKNOWN") {
                self.problem(format!(
                    "the upload still answers {} on process {i}",
                    describe(&r)
                ));
            }
        }
    }
}

/// The bytes of a round's blob: distinct per race and round, `len` long.
fn blob_bytes(repo: &str, len: usize) -> Vec<u8> {
    let seed = repo
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31) ^ b as u32);
    let mut data: Vec<u8> = repo.as_bytes().to_vec();
    data.extend((0..len as u32).map(|i| (i.wrapping_mul(seed | 1) >> 7) as u8));
    data.truncate(len);
    data
}

/// Completion's (and a monolithic push's) allowed answers.
const COMPLETE: &[Allowed] = &[(201, None), (404, Some("BLOB_UPLOAD_UNKNOWN"))];
/// A cancel's allowed answers.
const CANCEL: &[Allowed] = &[(204, None), (404, Some("BLOB_UPLOAD_UNKNOWN"))];

/// The completing `PUT` of an upload, checked: allowed answer, and on 201
/// the right `Docker-Content-Digest`. Whether it answered 201.
fn completed(round: &mut Round, process: usize, r: &Reply, d: &str) -> bool {
    if !round.answer("completing PUT", process, r, COMPLETE) || r.status != 201 {
        return false;
    }
    if r.header("Docker-Content-Digest") != Some(d) {
        round.problem(format!(
            "completing PUT on process {process}: 201 with Docker-Content-Digest {:?}",
            r.header("Docker-Content-Digest")
        ));
    }
    true
}

/// Race 1. M is stored by digest; `PUT T` with M's bytes races
/// `DELETE <M>`. Serial orders: the tag then the delete (which takes the
/// tag with it): T and M absent; the delete then the tag (which stores M
/// again): T -> M, M readable.
fn tag_put_vs_digest_delete(round: &mut Round) -> Option<()> {
    let [(m, dm)] = round.setup_manifests(["m"])?;
    round.setup_put_manifest(&dm, &m)?;
    let repo = round.repo.clone();
    let (put, del) = round.race(
        |c| c.put_manifest(&repo, TAG, OCI_MANIFEST, &m),
        |c| c.delete(&format!("/v2/{repo}/manifests/{dm}")),
    )?;
    let (a, b) = (round.a, round.b);
    round.answer("PUT of the tag", a, &put, &[(201, None)]);
    round.answer("DELETE by digest", b, &del, &[(202, None)]);
    let tag = round.tag_state(TAG);
    let by_digest = round.manifest_state(&dm);
    match (&tag, by_digest) {
        (Seen::Present(d), Some(true)) if *d == dm => {}
        (Seen::Absent, Some(false)) => {}
        (Seen::Broken, _) | (_, None) => {}
        (tag, Some(m)) => round.problem(format!(
            "end state: tag {TAG} {tag} but M {}",
            if m {
                "readable by digest"
            } else {
                "absent by digest"
            }
        )),
    }
    Some(())
}

/// Race 2. T -> M1; `PUT T` with M2 races `DELETE <M1>`. Every serial
/// order leaves T -> M2 (the delete takes T only if it still points at
/// M1, and the put writes T again after it), and M1 gone.
fn tag_update_vs_old_digest_delete(round: &mut Round) -> Option<()> {
    let [(m1, d1), (m2, d2)] = round.setup_manifests(["m1", "m2"])?;
    round.setup_put_manifest(TAG, &m1)?;
    let repo = round.repo.clone();
    let (put, del) = round.race(
        |c| c.put_manifest(&repo, TAG, OCI_MANIFEST, &m2),
        |c| c.delete(&format!("/v2/{repo}/manifests/{d1}")),
    )?;
    let (a, b) = (round.a, round.b);
    round.answer("PUT of the tag", a, &put, &[(201, None)]);
    let deleted = round.answer("DELETE of M1 by digest", b, &del, &[(202, None)]);
    match round.tag_state(TAG) {
        Seen::Present(d) if d == d2 => {}
        Seen::Broken => {}
        seen => round.problem(format!(
            "lost update: tag {TAG} {seen}, not -> M2 {}",
            short(&d2)
        )),
    }
    if round.manifest_state(&d2) == Some(false) {
        round.problem("M2 is not readable by digest".to_owned());
    }
    if deleted && round.manifest_state(&d1) == Some(true) {
        round.problem("M1 is still readable by digest after its DELETE answered 202".to_owned());
    }
    Some(())
}

/// A blob for the upload races, split into the chunk PATCHed before the
/// race and the final `PUT`'s body: even rounds send a final body, odd
/// rounds complete with an empty one.
fn upload_parts(round: &Round) -> (Vec<u8>, usize) {
    let data = blob_bytes(&round.repo, 96 * 1024 + round.n);
    let split = if round.n.is_multiple_of(2) {
        64 * 1024
    } else {
        data.len()
    };
    (data, split)
}

/// Race 3. An upload holding one chunk; its completing `PUT` races its
/// cancel (`DELETE`).
fn complete_vs_cancel(round: &mut Round) -> Option<()> {
    let (data, split) = upload_parts(round);
    let d = digest(&data);
    let location = round.setup_upload(&data[..split])?;
    let put_url = Client::with_query(&location, &format!("digest={d}"));
    let (done, cancel) = round.race(
        |c| {
            c.put(
                &put_url,
                &[("Content-Type", "application/octet-stream")],
                &data[split..],
            )
        },
        |c| c.delete(&location),
    )?;
    let (a, b) = (round.a, round.b);
    let ok = completed(round, a, &done, &d);
    let cancelled = round.answer("cancel", b, &cancel, CANCEL) && cancel.status == 204;
    if ok && cancelled {
        round
            .notes
            .push("both the completion and the cancel succeeded");
    }
    if done.status == 404 && cancel.status == 404 {
        round
            .notes
            .push("both the completion and the cancel answered 404");
    }
    round.upload_gone(&location);
    let repo = round.repo.clone();
    match round.blob_state(&repo, &d, &data) {
        Some(false) if ok => {
            round.problem("the completion answered 201 but the blob is 404".to_owned())
        }
        Some(true) if done.status == 404 => round
            .notes
            .push("the completion answered 404 but the blob is linked"),
        _ => {}
    }
    Some(())
}

/// Race 4. Two completing `PUT`s of one upload (same digest, same body).
fn complete_vs_complete(round: &mut Round) -> Option<()> {
    let (data, split) = upload_parts(round);
    let d = digest(&data);
    let location = round.setup_upload(&data[..split])?;
    let put_url = Client::with_query(&location, &format!("digest={d}"));
    let put = |c: &Client| {
        c.put(
            &put_url,
            &[("Content-Type", "application/octet-stream")],
            &data[split..],
        )
    };
    let (one, two) = round.race(put, put)?;
    let (a, b) = (round.a, round.b);
    let ok_a = completed(round, a, &one, &d);
    let ok_b = completed(round, b, &two, &d);
    if !ok_a && !ok_b {
        round.problem(format!(
            "neither completion answered 201 ({}, {})",
            describe(&one),
            describe(&two)
        ));
    }
    if ok_a && ok_b {
        round.notes.push("both completions answered 201");
    }
    round.upload_gone(&location);
    let repo = round.repo.clone();
    if round.blob_state(&repo, &d, &data) == Some(false) {
        round.problem("the blob is 404 after its upload was completed".to_owned());
    }
    Some(())
}

/// Race 5. T -> M1; `DELETE` of the tag races `PUT T` with M2. Serial
/// orders: T absent, or T -> M2; both revisions stay.
fn tag_delete_vs_tag_put(round: &mut Round) -> Option<()> {
    let [(m1, d1), (m2, d2)] = round.setup_manifests(["m1", "m2"])?;
    round.setup_put_manifest(TAG, &m1)?;
    let repo = round.repo.clone();
    let (del, put) = round.race(
        |c| c.delete(&format!("/v2/{repo}/manifests/{TAG}")),
        |c| c.put_manifest(&repo, TAG, OCI_MANIFEST, &m2),
    )?;
    let (a, b) = (round.a, round.b);
    round.answer("DELETE of the tag", a, &del, &[(202, None)]);
    round.answer("PUT of the tag", b, &put, &[(201, None)]);
    match round.tag_state(TAG) {
        Seen::Absent | Seen::Broken => {}
        Seen::Present(d) if d == d2 => {}
        seen => round.problem(format!("tag {TAG} {seen}, neither absent nor -> M2")),
    }
    for (name, d) in [("M1", &d1), ("M2", &d2)] {
        if round.manifest_state(d) == Some(false) {
            round.problem(format!(
                "{name} is not readable by digest (only a tag was deleted)"
            ));
        }
    }
    Some(())
}

/// After a blob link delete raced a link write: B reads back right in R
/// on every process or is `404 BLOB_UNKNOWN` on every process (either
/// serial order), and any other repository keeps it.
fn after_link_race(round: &mut Round, b: &str, bytes: &[u8], keeps: Option<&str>) {
    let repo = round.repo.clone();
    round.blob_state(&repo, b, bytes);
    if let Some(other) = keeps
        && round.blob_state(other, b, bytes) == Some(false)
    {
        round.problem(format!("blob {} is gone from {other}", short(b)));
    }
}

/// Race 6a. B linked in R and in S; `DELETE` of R's link races a mount of
/// B into R from S.
fn blob_link_delete_vs_mount(round: &mut Round) -> Option<()> {
    let bytes = blob_bytes(&round.repo, 4096);
    let source = format!("{}-source", round.repo);
    let b = round.setup_blob(&source, &bytes)?;
    let repo = round.repo.clone();
    round.setup_blob(&repo, &bytes)?;
    let (del, mount) = round.race(
        |c| c.delete(&format!("/v2/{repo}/blobs/{b}")),
        |c| {
            c.post(
                &format!("/v2/{repo}/blobs/uploads/?mount={b}&from={source}"),
                &[],
                b"",
            )
        },
    )?;
    let (pa, pb) = (round.a, round.b);
    round.answer("DELETE of the blob link", pa, &del, &[(202, None)]);
    // S has B all along: the mount must succeed rather than open a session.
    if round.answer("mount", pb, &mount, &[(201, None)])
        && mount.header("Docker-Content-Digest") != Some(b.as_str())
    {
        round.problem(format!(
            "mount on process {pb}: 201 with Docker-Content-Digest {:?}",
            mount.header("Docker-Content-Digest")
        ));
    }
    after_link_race(round, &b, &bytes, Some(&source));
    Some(())
}

/// Race 6b. B linked in R; `DELETE` of R's link races the `PUT` that
/// completes a monolithic push of B into R (its `POST` done before).
fn blob_link_delete_vs_push(round: &mut Round) -> Option<()> {
    let bytes = blob_bytes(&round.repo, 4096);
    let repo = round.repo.clone();
    let b = round.setup_blob(&repo, &bytes)?;
    let location = round.setup_upload(b"")?;
    let put_url = Client::with_query(&location, &format!("digest={b}"));
    let (del, push) = round.race(
        |c| c.delete(&format!("/v2/{repo}/blobs/{b}")),
        |c| {
            c.put(
                &put_url,
                &[("Content-Type", "application/octet-stream")],
                &bytes,
            )
        },
    )?;
    let (pa, pb) = (round.a, round.b);
    round.answer("DELETE of the blob link", pa, &del, &[(202, None)]);
    if round.answer("push", pb, &push, &[(201, None)])
        && push.header("Docker-Content-Digest") != Some(b.as_str())
    {
        round.problem(format!(
            "push on process {pb}: 201 with Docker-Content-Digest {:?}",
            push.header("Docker-Content-Digest")
        ));
    }
    round.upload_gone(&location);
    after_link_race(round, &b, &bytes, None);
    Some(())
}

/// Race 7. An upload holding one chunk; its cancel races a `PATCH` of the
/// next chunk. Afterwards the upload is gone everywhere.
fn cancel_vs_patch(round: &mut Round) -> Option<()> {
    let data = blob_bytes(&round.repo, 96 * 1024);
    let split = 64 * 1024;
    let location = round.setup_upload(&data[..split])?;
    let range = format!("{split}-{}", data.len() - 1);
    let (cancel, patch) = round.race(
        |c| c.delete(&location),
        |c| {
            c.patch(
                &location,
                &[
                    ("Content-Range", &range),
                    ("Content-Type", "application/octet-stream"),
                ],
                &data[split..],
            )
        },
    )?;
    let (a, b) = (round.a, round.b);
    round.answer("cancel", a, &cancel, CANCEL);
    round.answer(
        "PATCH",
        b,
        &patch,
        &[(202, None), (404, Some("BLOB_UPLOAD_UNKNOWN")), (416, None)],
    );
    if cancel.status == 404 {
        round.notes.push("the cancel answered 404");
    }
    round.upload_gone(&location);
    Some(())
}

/// The same problem seen on several processes, said once: `tag t listed
/// but GET 404 on processes 0, 1, 2`.
fn merge_processes(problems: &[String]) -> Vec<String> {
    const MARK: &str = "on process ";
    let mut merged: Vec<(String, Vec<String>)> = Vec::new();
    for p in problems {
        let key_and_process = p.find(MARK).and_then(|at| {
            let rest = &p[at + MARK.len()..];
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            (end > 0).then(|| {
                let key = format!("{}{{}}{}", &p[..at], &rest[end..]);
                (key, rest[..end].to_owned())
            })
        });
        match key_and_process {
            Some((key, process)) => match merged.iter_mut().find(|(k, _)| *k == key) {
                Some((_, processes)) => processes.push(process),
                None => merged.push((key, vec![process])),
            },
            None => merged.push((p.clone(), Vec::new())),
        }
    }
    merged
        .into_iter()
        .map(|(key, processes)| match processes.len() {
            0 => key,
            1 => key.replace("{}", &format!("{MARK}{}", processes[0])),
            _ => key.replace("{}", &format!("on processes {}", processes.join(", "))),
        })
        .collect()
}

/// Run `one_round` `RACE_ROUNDS` times on a fresh fleet; fail at the end
/// with every violated round.
fn run(name: &str, fleet: Fleet, one_round: fn(&mut Round) -> Option<()>) {
    let clients: Vec<Client> = (0..3).map(|i| fleet.client(i)).collect();
    let race = name.split_once('_').map_or(name, |(_, race)| race);
    let total = env_number("RACE_ROUNDS", DEFAULT_ROUNDS);
    let detailed = env_number("RACE_DETAIL", DEFAULT_DETAILED_ROUNDS);
    let started = Instant::now();
    let mut violated: Vec<(usize, Vec<String>)> = Vec::new();
    let mut notes: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut previous = None;
    for n in 0..total {
        let mut round = Round::new(race, n, &clients, previous);
        let _ = one_round(&mut round);
        previous = round.took.or(previous);
        for note in round.notes {
            *notes.entry(note).or_default() += 1;
        }
        if !round.problems.is_empty() {
            violated.push((round.n, merge_processes(&round.problems)));
        }
    }
    let notes: Vec<String> = notes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" (notes, not violations: {})", notes.join("; "))
    };
    eprintln!(
        "race {name}: {} of {total} rounds violated, {:.1} s{notes}",
        violated.len(),
        started.elapsed().as_secs_f64()
    );
    if violated.is_empty() {
        return;
    }
    let details: Vec<String> = violated
        .iter()
        .take(detailed)
        .map(|(n, problems)| {
            let mut line = problems
                .iter()
                .take(MAX_PROBLEMS_PER_ROUND)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if problems.len() > MAX_PROBLEMS_PER_ROUND {
                line += &format!(" (+{} more)", problems.len() - MAX_PROBLEMS_PER_ROUND);
            }
            format!("r{n}[{:+.2}]: {line}", STAGGER[n % STAGGER.len()])
        })
        .collect();
    let more = if violated.len() > detailed {
        format!("; ... ({} more rounds)", violated.len() - detailed)
    } else {
        String::new()
    };
    panic!(
        "{race}: {} of {total} rounds violated: {}{more}",
        violated.len(),
        details.join("; ")
    );
}

#[test]
fn fs_tag_put_vs_digest_delete() {
    run(
        "fs_tag_put_vs_digest_delete",
        Fleet::on_fs(),
        tag_put_vs_digest_delete,
    );
}

#[test]
fn fs_tag_update_vs_old_digest_delete() {
    run(
        "fs_tag_update_vs_old_digest_delete",
        Fleet::on_fs(),
        tag_update_vs_old_digest_delete,
    );
}

#[test]
fn fs_complete_vs_cancel() {
    run("fs_complete_vs_cancel", Fleet::on_fs(), complete_vs_cancel);
}

#[test]
fn fs_complete_vs_complete() {
    run(
        "fs_complete_vs_complete",
        Fleet::on_fs(),
        complete_vs_complete,
    );
}

#[test]
fn fs_tag_delete_vs_tag_put() {
    run(
        "fs_tag_delete_vs_tag_put",
        Fleet::on_fs(),
        tag_delete_vs_tag_put,
    );
}

#[test]
fn fs_blob_link_delete_vs_mount() {
    run(
        "fs_blob_link_delete_vs_mount",
        Fleet::on_fs(),
        blob_link_delete_vs_mount,
    );
}

#[test]
fn fs_blob_link_delete_vs_push() {
    run(
        "fs_blob_link_delete_vs_push",
        Fleet::on_fs(),
        blob_link_delete_vs_push,
    );
}

#[test]
fn fs_cancel_vs_patch() {
    run("fs_cancel_vs_patch", Fleet::on_fs(), cancel_vs_patch);
}

#[test]
#[ignore = "needs an S3 server: set REGISTRY_TEST_S3_URL (scripts/test.sh does)"]
fn s3_tag_put_vs_digest_delete() {
    run(
        "s3_tag_put_vs_digest_delete",
        Fleet::on_s3(),
        tag_put_vs_digest_delete,
    );
}

#[test]
#[ignore = "needs an S3 server: set REGISTRY_TEST_S3_URL (scripts/test.sh does)"]
fn s3_tag_update_vs_old_digest_delete() {
    run(
        "s3_tag_update_vs_old_digest_delete",
        Fleet::on_s3(),
        tag_update_vs_old_digest_delete,
    );
}

#[test]
#[ignore = "needs an S3 server: set REGISTRY_TEST_S3_URL (scripts/test.sh does)"]
fn s3_complete_vs_cancel() {
    run("s3_complete_vs_cancel", Fleet::on_s3(), complete_vs_cancel);
}

#[test]
#[ignore = "needs an S3 server: set REGISTRY_TEST_S3_URL (scripts/test.sh does)"]
fn s3_complete_vs_complete() {
    run(
        "s3_complete_vs_complete",
        Fleet::on_s3(),
        complete_vs_complete,
    );
}

#[test]
#[ignore = "needs an S3 server: set REGISTRY_TEST_S3_URL (scripts/test.sh does)"]
fn s3_tag_delete_vs_tag_put() {
    run(
        "s3_tag_delete_vs_tag_put",
        Fleet::on_s3(),
        tag_delete_vs_tag_put,
    );
}

#[test]
#[ignore = "needs an S3 server: set REGISTRY_TEST_S3_URL (scripts/test.sh does)"]
fn s3_blob_link_delete_vs_mount() {
    run(
        "s3_blob_link_delete_vs_mount",
        Fleet::on_s3(),
        blob_link_delete_vs_mount,
    );
}

#[test]
#[ignore = "needs an S3 server: set REGISTRY_TEST_S3_URL (scripts/test.sh does)"]
fn s3_blob_link_delete_vs_push() {
    run(
        "s3_blob_link_delete_vs_push",
        Fleet::on_s3(),
        blob_link_delete_vs_push,
    );
}

#[test]
#[ignore = "needs an S3 server: set REGISTRY_TEST_S3_URL (scripts/test.sh does)"]
fn s3_cancel_vs_patch() {
    run("s3_cancel_vs_patch", Fleet::on_s3(), cancel_vs_patch);
}
