use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::auth::{Access, Authorizer, HtpasswdAuthorizer};

fn checks(h: &Htpasswd) -> usize {
    h.probe.total.load(Ordering::SeqCst)
}

fn parts(user: &str, password: &str) -> http::request::Parts {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    http::Request::get("/v2/")
        .header(http::header::AUTHORIZATION, format!("Basic {basic}"))
        .body(())
        .unwrap()
        .into_parts()
        .0
}

#[tokio::test]
async fn htpasswd_files() {
    let hash = bcrypt::hash("secret", 4).unwrap();
    let y = hash.replacen("$2b$", "$2y$", 1);
    let h = Htpasswd::parse(&format!("# users\n\nalice:{hash}\nbob:{y}\n")).unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h.verify("alice", "secret").await, Ok(true));
    assert_eq!(h.verify("alice", "secret").await, Ok(true), "remembered");
    assert_eq!(
        h.verify("bob", "secret").await,
        Ok(true),
        "$2y$ as htpasswd -B writes"
    );
    assert_eq!(h.verify("alice", "Secret").await, Ok(false));
    assert_eq!(h.verify("carol", "secret").await, Ok(false));
    for (text, expect) in [
        (
            "alice:$apr1$abc$def",
            "line 1: user \"alice\" has a non-bcrypt",
        ),
        ("x\nalice:{SHA}abc=", "line 1: expected user:hash"),
        ("bob:{SHA}abc=", "htpasswd -B"),
        ("carol:plain", "non-bcrypt"),
        ("dave:$2y$10$short", "malformed bcrypt"),
        (":$2y$", "empty user name"),
    ] {
        let e = Htpasswd::parse(text).unwrap_err();
        assert!(e.contains(expect), "{text}: {e}");
    }
    let dup = format!("a:{hash}\na:{hash}");
    assert!(Htpasswd::parse(&dup).unwrap_err().contains("twice"));
    assert!(h.dummy.starts_with("$2b$04$"), "{}", h.dummy);
}

#[tokio::test]
async fn repeated_credentials_cost_no_bcrypt() {
    let hash = bcrypt::hash("secret", 4).unwrap();
    let h = Htpasswd::parse(&format!("alice:{hash}\n")).unwrap();
    assert_eq!(h.verify("alice", "secret").await, Ok(true));
    assert_eq!(h.verify("alice", "wrong").await, Ok(false));
    assert_eq!(h.verify("mallory", "guess").await, Ok(false));
    assert_eq!(checks(&h), 3, "each new credential is checked once");
    for _ in 0..5 {
        assert_eq!(h.verify("alice", "secret").await, Ok(true));
        assert_eq!(h.verify("alice", "wrong").await, Ok(false));
        assert_eq!(h.verify("mallory", "guess").await, Ok(false));
    }
    assert_eq!(checks(&h), 3, "known successes and failures are remembered");
    // Another password, or the same password for another user, is new.
    assert_eq!(h.verify("alice", "wrong2").await, Ok(false));
    assert_eq!(h.verify("mallory", "secret").await, Ok(false));
    assert_eq!(checks(&h), 5);
    // A remembered failure never hides the right password.
    assert_eq!(h.verify("alice", "secret").await, Ok(true));
    assert_eq!(lock(&h.verified).len(), 1);
    assert_eq!(lock(&h.refused).len(), 4);
}

#[tokio::test]
async fn passwords_longer_than_bcrypt_reads_are_refused() {
    let long = "p".repeat(MAX_PASSWORD_BYTES);
    let hash = bcrypt::hash(&long, 4).unwrap();
    let h = Htpasswd::parse(&format!("alice:{hash}\n")).unwrap();
    assert_eq!(
        h.verify("alice", &long).await,
        Ok(true),
        "72 bytes are read whole"
    );
    // bcrypt alone would take these: it ignores what follows byte 72.
    assert!(bcrypt::verify(format!("{long}anything"), &hash).unwrap());
    for longer in [format!("{long}x"), format!("{long}anything")] {
        assert_eq!(h.verify("alice", &longer).await, Ok(false));
    }
    assert_eq!(checks(&h), 1, "refused without a check");
}

#[test]
fn cache_keys_hold_no_password_and_change_with_the_entry() {
    let hash = bcrypt::hash("secret", 4).unwrap();
    let h = Htpasswd::parse(&format!("alice:{hash}\n")).unwrap();
    let k = h.key("alice", "secret", &hash);
    assert_eq!(k, h.key("alice", "secret", &hash));
    assert_ne!(k, h.key("alice", "secret", &h.dummy), "another entry");
    assert_ne!(k, h.key("alicesecret", "", &hash), "length-prefixed");
    assert_ne!(k, h.key("alice", "Secret", &hash));
    let unsalted: [u8; 32] = Sha256::digest(b"secret").into();
    assert_ne!(k, unsalted);
    let other = Htpasswd::parse(&format!("alice:{hash}\n")).unwrap();
    assert_ne!(k, other.key("alice", "secret", &hash), "salted per process");
}

#[tokio::test]
async fn unknown_users_are_checked_against_a_dummy_of_the_highest_cost() {
    let cheap = bcrypt::hash("a", 4).unwrap();
    let dear = bcrypt::hash("b", 6).unwrap();
    let h = Htpasswd::parse(&format!("a:{cheap}\nb:{dear}\n")).unwrap();
    assert!(h.dummy.starts_with("$2b$06$"), "{}", h.dummy);
    assert_eq!(h.verify("nobody", "b").await, Ok(false));
    assert_eq!(checks(&h), 1, "an unknown user costs a bcrypt check too");
}

#[tokio::test]
async fn a_check_that_cannot_start_in_time_is_busy_and_not_remembered() {
    let hash = bcrypt::hash("secret", 4).unwrap();
    let users = Arc::new(
        Htpasswd::parse(&format!("alice:{hash}\n"))
            .unwrap()
            .with_verify_limits(VerifyLimits {
                concurrent: 1,
                wait: Duration::from_millis(50),
            }),
    );
    let held = users.slots.clone().acquire_owned().await.unwrap();
    assert_eq!(users.verify("alice", "secret").await, Err(Busy));
    let auth = HtpasswdAuthorizer::new(
        users.clone(),
        Arc::new(crate::auth::AccessRules::authenticated_users_only()),
    );
    let r = auth
        .authorize(&parts("alice", "secret"), &Access::base())
        .await
        .unwrap_err();
    assert_eq!(r.error().kind(), registry_core::ErrorKind::TooManyRequests);
    assert_eq!(r.headers()[http::header::RETRY_AFTER], "1");
    assert_eq!(checks(&users), 0);
    drop(held);
    assert_eq!(users.verify("alice", "secret").await, Ok(true));
    assert_eq!(checks(&users), 1, "a busy answer was not remembered");
}

/// The review's finding: two clients looping on a wrong password made a
/// logged-in user's requests wait for their bcrypt checks. Here eight such
/// loops run, each with a new wrong password every time (so nothing is
/// remembered), on a runtime of two workers; a logged-in user's requests
/// must still be answered at once, and at most one check runs at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_do_not_starve_a_logged_in_user() {
    // A cost that makes one check take a while even in an optimized build.
    let hash = bcrypt::hash("right", COST).unwrap();
    let started = Instant::now();
    assert!(bcrypt::verify("right", &hash).unwrap());
    let check = started.elapsed();
    let users = Arc::new(
        Htpasswd::parse(&format!("alice:{hash}\n"))
            .unwrap()
            .with_verify_limits(VerifyLimits {
                concurrent: 1,
                wait: Duration::from_secs(600),
            }),
    );
    let auth = Arc::new(HtpasswdAuthorizer::new(
        users.clone(),
        Arc::new(crate::auth::AccessRules::authenticated_users_only()),
    ));
    // Alice logged in before the attack.
    assert_eq!(users.verify("alice", "right").await, Ok(true));

    let stop = Arc::new(AtomicBool::new(false));
    // Without a bound of their own the loops could hold the workers
    // forever: they give up after a while whatever happens.
    let deadline = Instant::now() + check * 20;
    let attackers: Vec<_> = (0..8)
        .map(|i| {
            let (auth, stop) = (auth.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let wrong = parts("alice", &format!("wrong-{i}-{n}"));
                    let r = auth.authorize(&wrong, &Access::base()).await;
                    assert!(r.is_err());
                    n += 1;
                    // A real connection waits for its next request here.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    // Let the attack get going.
    while checks(&users) < 3 && Instant::now() < deadline {
        tokio::task::yield_now().await;
    }

    let mut waits = Vec::new();
    for _ in 0..9 {
        // Between requests, as a user's client would be: the attack goes
        // on meanwhile. (This thread is not one of the runtime's workers.)
        std::thread::sleep(check / 3);
        let auth = auth.clone();
        let asked = Instant::now();
        tokio::spawn(async move {
            auth.authorize(&parts("alice", "right"), &Access::base())
                .await
                .unwrap();
        })
        .await
        .unwrap();
        waits.push(asked.elapsed());
    }
    stop.store(true, Ordering::SeqCst);
    for a in attackers {
        a.await.unwrap();
    }
    waits.sort();
    let median = waits[waits.len() / 2];
    assert!(
        median < check / 4,
        "a logged-in user waited {median:?} (median of {waits:?}) while one check takes {check:?}"
    );
    assert!(checks(&users) >= 4, "the wrong passwords were checked");
    assert_eq!(
        users.probe.peak.load(Ordering::SeqCst),
        1,
        "at most one check at a time"
    );
}

const COST: u32 = 8;
