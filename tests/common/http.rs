//! Talking to a server over HTTP: the test kit's [`Client`] on its HTTP
//! transport, made from a [`TestServer`]; and [`Served`], the endpoint
//! suite's transport to a server of its own.

use std::path::PathBuf;

pub use registry_testkit::Reply;
use registry_testkit::{Body, Http, Transport};

use super::process::TestServer;

/// A client of one server over HTTP (`Client::new(&server)`).
pub type Client = registry_testkit::Client<Http>;

impl From<&TestServer> for Http {
    fn from(server: &TestServer) -> Http {
        Http::new(server.url(""))
    }
}

/// A server started for one test and the HTTP transport to it: the
/// endpoint suite on the real binary, whose store it can look into.
pub struct Served {
    http: Http,
    server: TestServer,
}

impl Served {
    /// A fresh server with the default options, on filesystem storage in
    /// its temporary directory, and a client of it.
    pub fn client() -> registry_testkit::Client<Served> {
        let server = TestServer::start();
        registry_testkit::Client::with(Served {
            http: Http::from(&server),
            server,
        })
    }
}

impl Transport for Served {
    fn send(&self, request: http::Request<Body>) -> Reply {
        self.http.send(request)
    }

    fn storage(&self) -> Option<PathBuf> {
        Some(self.server.storage())
    }
}
