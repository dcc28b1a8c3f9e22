//! `rate`: a closed-loop request-rate test, like wrk's model (each
//! connection sends its next request when the previous answer is in), for
//! methods wrk cannot measure (`HEAD`: wrk's parser waits for the body that
//! the `Content-Length` announces). One HTTP/1.1 connection per task, all on
//! the client's single thread.
//!
//! Counted: requests sent after the warm-up and answered before the end.
//! Latency: from sending the request to the end of the response body.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpStream;

use crate::Result;

pub(crate) async fn run(
    url: &str,
    method: Method,
    headers: &[String],
    connections: usize,
    duration: f64,
    warmup: f64,
) -> Result<serde_json::Value> {
    let uri: Uri = url.parse()?;
    let authority = uri.authority().ok_or("URL without HOST:PORT")?.to_string();
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let mut extra = Vec::new();
    for h in headers {
        let (name, value) = h
            .split_once(':')
            .ok_or("--header must be \"Name: value\"")?;
        extra.push((
            HeaderName::from_bytes(name.trim().as_bytes())?,
            HeaderValue::from_str(value.trim())?,
        ));
    }
    let measure_from = Instant::now() + Duration::from_secs_f64(warmup);
    let end = measure_from + Duration::from_secs_f64(duration);
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let conn = Conn {
            authority: authority.clone(),
            path: path.clone(),
            method: method.clone(),
            headers: extra.clone(),
        };
        tasks.push(tokio::spawn(
            async move { conn.run(measure_from, end).await },
        ));
    }
    let (mut latencies_us, mut errors) = (Vec::new(), 0u64);
    for t in tasks {
        let (l, e) = t.await??;
        latencies_us.extend(l);
        errors += e;
    }
    latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((p * latencies_us.len() as f64).ceil() as usize).clamp(1, latencies_us.len());
        f64::from(latencies_us[i - 1]) / 1000.0
    };
    Ok(json!({
        "requests": latencies_us.len(),
        "errors": errors,
        "duration_s": duration,
        "rps": latencies_us.len() as f64 / duration,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
    }))
}

struct Conn {
    authority: String,
    path: String,
    method: Method,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Conn {
    /// Latencies (µs) of the successful requests in the window, and the
    /// number of non-200 answers in it.
    async fn run(self, measure_from: Instant, end: Instant) -> Result<(Vec<u32>, u64)> {
        let stream = TcpStream::connect(&self.authority).await?;
        stream.set_nodelay(true)?;
        let (mut sender, conn) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let (mut latencies, mut errors) = (Vec::new(), 0u64);
        while Instant::now() < end {
            let mut req = Request::builder()
                .method(self.method.clone())
                .uri(&self.path)
                .header(header::HOST, &self.authority);
            for (name, value) in &self.headers {
                req = req.header(name, value);
            }
            let req = req.body(Empty::new())?;
            sender.ready().await?;
            let sent = Instant::now();
            let res = sender.send_request(req).await?;
            let ok = res.status() == StatusCode::OK;
            res.into_body().collect().await?;
            let done = Instant::now();
            if sent >= measure_from && done <= end {
                if ok {
                    let us = done.duration_since(sent).as_micros();
                    latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
                } else {
                    errors += 1;
                }
            }
        }
        Ok((latencies, errors))
    }
}
