//! `registry probe [URL]`: one `GET` of a running server's health endpoint
//! over plain HTTP, exiting 0 on a 2xx answer. The runtime image is `FROM
//! scratch`, without curl: its `HEALTHCHECK` runs this.

use http::{Request, Uri};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

use super::cli::ProbeArgs;

/// Run the probe; an error (not 2xx, no answer, a bad URL) is one line.
pub fn run(args: &ProbeArgs) -> Result<(), String> {
    let uri: Uri = args
        .url
        .parse()
        .map_err(|e| format!("invalid URL {:?}: {e}", args.url))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("{uri}: only http:// URLs can be probed"));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{uri}: no host"))?
        .clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let (status, body) = runtime
        .block_on(async { tokio::time::timeout(args.timeout, get(&uri, authority.as_str())).await })
        .map_err(|_| format!("{uri}: no answer within {:?}", args.timeout))??;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{uri}: {status}: {}", body.trim()))
    }
}

/// `GET uri` on a connection of its own; the status and the body's start.
async fn get(uri: &Uri, authority: &str) -> Result<(http::StatusCode, String), String> {
    let addr = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("{uri}: cannot connect to {addr}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("{uri}: {e}"))?;
    tokio::spawn(connection);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = Request::get(path)
        .header(http::header::HOST, authority)
        .header(http::header::USER_AGENT, "registry-probe")
        .body(registry_http::Body::empty())
        .map_err(|e| format!("{uri}: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("{uri}: {e}"))?;
    let status = response.status();
    // A health answer is a few lines; read at most a little of it.
    let body = http_body_util::Limited::new(response.into_body(), 4096)
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    Ok((status, body))
}
