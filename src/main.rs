//! `registry`: the reference OCI distribution server.
//!
//! Run `registry serve` to serve `./data` on `http://127.0.0.1:5000`;
//! `registry --help` lists the options. Everything lives in [`server`].

mod server;

fn main() -> std::process::ExitCode {
    server::main()
}
