//! The `registry` process: run it to completion, or start it as a server
//! on a free port with its storage in a temporary directory.
//!
//! Every process is started by [`TestServer`] or [`run`] and is killed by its
//! own PID when its handle is dropped; everything it writes stays inside the
//! handle's temporary directory.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The `registry` binary with a clean environment, run in `cwd`.
pub fn command(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_registry"));
    cmd.current_dir(cwd).stdin(Stdio::null());
    // Every setting the server reads from the environment starts with
    // REGISTRY_: none may leak in from the developer's shell.
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("REGISTRY_") {
            cmd.env_remove(var);
        }
    }
    cmd
}

/// Run the binary to completion (for `--help`, `version`, start-up errors),
/// in a fresh temporary directory. A server that unexpectedly starts is
/// killed after `START_TIMEOUT`.
pub fn run(args: &[&str]) -> Output {
    let dir = TempDir::new().unwrap();
    run_in(dir.path(), args, &[])
}

/// Like [`run`], in `cwd` and with extra environment variables.
pub fn run_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    run_in_for(cwd, args, env, START_TIMEOUT).expect("the command did not exit")
}

/// `registry serve --listen 127.0.0.1:0 --storage memory://` and `args`,
/// run to completion in `cwd`: for settings refused at start-up.
pub fn serve_in(cwd: &Path, args: &[&str]) -> Output {
    let all = [
        &["serve", "--listen", "127.0.0.1:0", "--storage", "memory://"],
        args,
    ]
    .concat();
    run_in(cwd, &all, &[])
}

/// Like [`run_in`], waiting at most `timeout`; `None` (the process killed)
/// if it did not exit by then. Its output goes to files, not pipes: a pipe
/// nobody reads while waiting fills up and stalls the process.
pub fn run_in_for(
    cwd: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> Option<Output> {
    let (mut out, mut err) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
    let mut child = command(cwd)
        .args(args)
        .envs(env.iter().copied())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap();
    let mut guard = KillOnDrop(Some(&mut child));
    let status = wait_timeout(guard.child(), timeout)?;
    guard.0.take();
    let read = |f: &mut std::fs::File| {
        let mut bytes = Vec::new();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut bytes).unwrap();
        bytes
    };
    Some(Output {
        status,
        stdout: read(&mut out),
        stderr: read(&mut err),
    })
}

/// Kills a child by its PID unless released.
struct KillOnDrop<'a>(Option<&'a mut Child>);

impl KillOnDrop<'_> {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }
}

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Wait for a child to exit, at most `timeout`.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How to start a server: extra arguments and environment, and where it runs.
pub struct Launch {
    args: Vec<String>,
    env: Vec<(String, String)>,
    storage_flag: bool,
    dir: Option<TempDir>,
    listen: String,
}

impl Launch {
    /// Listen on `addr` instead of `127.0.0.1:0` (a port the test chose,
    /// e.g. for servers that must know each other's URLs before they start).
    pub fn listen(mut self, addr: std::net::SocketAddr) -> Self {
        self.listen = addr.to_string();
        self
    }

    /// Add a command-line argument after `serve --listen 127.0.0.1:0`.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Set an environment variable.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_owned(), value.into()));
        self
    }

    /// Do not pass `--storage`: the server uses its configured or default
    /// storage (relative to its working directory, the temporary directory).
    pub fn without_storage_flag(mut self) -> Self {
        self.storage_flag = false;
        self
    }

    /// Run in this directory (e.g. one left by an earlier server).
    pub fn in_dir(mut self, dir: TempDir) -> Self {
        self.dir = Some(dir);
        self
    }

    /// Start the server and wait for its address.
    pub fn start(self) -> TestServer {
        let dir = self.dir.unwrap_or_else(|| TempDir::new().unwrap());
        let mut cmd = command(dir.path());
        cmd.args(["serve", "--listen", &self.listen]);
        if self.storage_flag {
            cmd.arg("--storage")
                .arg(format!("fs://{}", dir.path().join("data").display()));
        }
        cmd.args(&self.args)
            .envs(self.env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();

        // Both streams are drained for the process's whole life so that it
        // never blocks on a full pipe; the address is sent on as soon as the
        // start-up line shows it.
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let mut readers = Vec::new();
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let (logs, tx) = (logs.clone(), tx.clone());
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if let Some(addr) = listening_addr(&line) {
                        let _ = tx.send(addr);
                    }
                    logs.lock().unwrap().push(line);
                }
            }));
        }
        drop(tx);

        let mut server = TestServer {
            child: Some(child),
            addr: "0.0.0.0:0".parse().unwrap(),
            dir: Some(dir),
            logs,
            readers,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => server.addr = addr,
            Err(_) => {
                let status = server.child().try_wait().unwrap();
                panic!(
                    "server did not start (exit status {status:?}); output:\n{}",
                    server.logs().join("\n")
                );
            }
        }
        server
    }
}

/// The address in a line containing `listening on http://ADDR`.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = (line.split("listening on http://").nth(1))
        .or_else(|| line.split("listening on https://").nth(1))?;
    // Up to a space, or the closing quote of a JSON log line's message.
    rest.split(|c: char| c.is_whitespace() || c == '"')
        .next()?
        .parse()
        .ok()
}

/// A running `registry serve` on `127.0.0.1:<free port>`, storing in
/// `<temp dir>/data`. Killed by PID on drop.
pub struct TestServer {
    child: Option<Child>,
    addr: SocketAddr,
    dir: Option<TempDir>,
    logs: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// What is left of a server that was stopped.
pub struct Stopped {
    /// How it exited.
    pub status: ExitStatus,
    /// Its directory, e.g. to start another server on the same storage.
    pub dir: TempDir,
    /// Everything it printed.
    pub logs: Vec<String>,
}

impl TestServer {
    /// Start a server with the default options.
    pub fn start() -> TestServer {
        TestServer::launch().start()
    }

    /// Start building a server with more options.
    pub fn launch() -> Launch {
        Launch {
            args: Vec::new(),
            env: Vec::new(),
            storage_flag: true,
            dir: None,
            listen: "127.0.0.1:0".to_owned(),
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The temporary directory: the working directory of the server, with
    /// its storage in `data/`.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }

    /// The storage root, `<dir>/data`.
    pub fn storage(&self) -> PathBuf {
        self.dir().join("data")
    }

    /// Everything the process printed so far, line by line.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Wait until a printed line satisfies `pred`, at most 10 s.
    pub fn wait_for_log(&self, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(line) = self.logs().into_iter().find(|l| pred(l)) {
                return Some(line);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The process's PID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().unwrap()
    }

    /// Send SIGTERM to the process (by its PID).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Wait for the process to exit, at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_timeout(self.child(), timeout)
    }

    /// Stop the process (SIGTERM, then wait at most 30 s).
    pub fn stop(self) -> Stopped {
        self.terminate();
        self.stopped(Duration::from_secs(30))
    }

    /// Wait at most `timeout` for the process to exit (after a signal sent
    /// by the test) and collect what it left.
    pub fn stopped(mut self, timeout: Duration) -> Stopped {
        let status = self.wait(timeout).expect("server did not stop");
        for reader in std::mem::take(&mut self.readers) {
            reader.join().unwrap();
        }
        Stopped {
            status,
            dir: self.dir.take().unwrap(),
            logs: self.logs(),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
