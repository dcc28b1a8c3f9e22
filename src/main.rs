//! `registry`: the reference OCI distribution server.
//!
//! Run `registry serve` to serve `./data` on `http://127.0.0.1:5000`;
//! `registry --help` lists the options. Everything lives in [`server`].

// Only the command-line tests set environment variables (`unsafe` since
// Rust 2024); the server itself has no unsafe code.
#![deny(unsafe_code)]

mod server;

fn main() -> std::process::ExitCode {
    server::main()
}
