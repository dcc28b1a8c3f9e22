//! A fleet: three `registry serve` processes on one store, as on three
//! hosts of a pool: one directory (`fs://`), or one bucket of the S3 server
//! named by `REGISTRY_TEST_S3_URL` (a fresh prefix per fleet).

use std::path::Path;

use super::http::Client;
use super::process::TestServer;

/// Three servers on one storage URL.
pub struct Fleet {
    servers: Vec<TestServer>,
    shared: Option<tempfile::TempDir>,
}

impl Fleet {
    /// Three servers on `storage`, keeping `shared` (the directory holding
    /// the store, if any) alive as long as the fleet.
    pub fn start(storage: &str, shared: Option<tempfile::TempDir>) -> Fleet {
        Fleet::start_with_env(storage, shared, &[])
    }

    /// [`Fleet::start`] with these environment variables set on every
    /// server.
    pub fn start_with_env(
        storage: &str,
        shared: Option<tempfile::TempDir>,
        env: &[(&str, &str)],
    ) -> Fleet {
        let servers = (0..3)
            .map(|_| {
                let mut launch = TestServer::launch()
                    .without_storage_flag()
                    .arg("--storage")
                    .arg(storage);
                for (k, v) in env {
                    launch = launch.env(k, *v);
                }
                launch.start()
            })
            .collect();
        Fleet { servers, shared }
    }

    /// Three servers on one fresh directory, `<shared dir>/store`.
    pub fn on_fs() -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("fs://{}", dir.path().join("store").display());
        Fleet::start(&url, Some(dir))
    }

    /// Three servers on a fresh prefix of the bucket named by
    /// `REGISTRY_TEST_S3_URL`.
    pub fn on_s3() -> Fleet {
        Fleet::start(&Fleet::s3_url("fleet"), None)
    }

    /// A fresh prefix, `<name>-<nanoseconds>`, of the bucket named by
    /// `REGISTRY_TEST_S3_URL`, as a storage URL.
    pub fn s3_url(name: &str) -> String {
        let base = std::env::var("REGISTRY_TEST_S3_URL")
            .expect("REGISTRY_TEST_S3_URL must name the S3 server for the s3 fleet tests");
        // `s3://bucket/<prefix>?query`.
        let (loc, query) = base.split_once('?').unwrap_or((&base, ""));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("{}/{name}-{nanos}?{query}", loc.trim_end_matches('/'))
    }

    /// A client of server `i` (modulo the fleet's size).
    pub fn client(&self, i: usize) -> Client {
        Client::new(&self.servers[i % self.servers.len()])
    }

    /// The directory holding an `fs` fleet's store (`<dir>/store`).
    pub fn shared_dir(&self) -> Option<&Path> {
        self.shared.as_ref().map(|d| d.path())
    }
}
