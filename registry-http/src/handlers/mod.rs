//! One module per family of endpoints. A handler takes validated values,
//! calls the store, and sets the headers; errors it returns go through the
//! error table.

mod blobs;
mod listing;
mod manifests;
mod referrers;
mod uploads;

use bytes::Bytes;
use http::request::Parts;
use http::{Response, StatusCode};
use registry_core::{ByteStream, Error, Result};

use crate::body::Body;
use crate::error::error_response;
use crate::headers::response;
use crate::route::{Route, Target};
use crate::router::Inner;

/// What a handler gets of the request body.
pub(crate) enum Input {
    /// The route takes no body; it was dropped unread.
    None,
    /// A streamed body; `None` if the request had none.
    Stream(Option<ByteStream>),
    /// A body read whole (manifests).
    Bytes(Bytes),
}

impl Input {
    fn into_stream(self) -> Option<ByteStream> {
        match self {
            Input::Stream(s) => s,
            Input::None | Input::Bytes(_) => None,
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Input::Bytes(b) => b,
            Input::None | Input::Stream(_) => Bytes::new(),
        }
    }
}

/// A handler's answer; an `Err` goes through the error table.
pub(crate) type Reply = Result<Response<Body>, Error>;

/// Call the handler of `route`.
pub(crate) async fn dispatch(
    inner: &Inner,
    route: Route,
    parts: &Parts,
    input: Input,
) -> Response<Body> {
    let target = Target::Endpoint(route.endpoint());
    let headers = &parts.headers;
    let reply = match route {
        Route::Base => Ok(base()),
        Route::Catalog { n, last } => listing::catalog(inner, n, last.as_ref()).await,
        Route::GetBlob { name, digest, head } => {
            blobs::get(inner, &name, &digest, head, headers).await
        }
        Route::DeleteBlob { name, digest } => blobs::delete(inner, &name, &digest).await,
        Route::StartUpload { name, mode } => {
            uploads::start(inner, parts, &name, mode, input.into_stream()).await
        }
        Route::UploadStatus { name, id } => uploads::status(inner, &name, &id).await,
        Route::PatchUpload { name, id } => {
            uploads::patch(inner, &name, &id, headers, input.into_stream()).await
        }
        Route::FinishUpload { name, id, digest } => {
            uploads::finish(inner, &name, &id, &digest, headers, input.into_stream()).await
        }
        Route::CancelUpload { name, id } => uploads::cancel(inner, &name, &id).await,
        Route::GetManifest {
            name,
            reference,
            head,
        } => manifests::get(inner, &name, &reference, head, headers).await,
        Route::PutManifest { name, reference } => {
            manifests::put(inner, &name, &reference, headers, input.into_bytes()).await
        }
        Route::DeleteManifest { name, reference } => {
            manifests::delete(inner, &name, &reference).await
        }
        Route::ListTags { name, n, last } => listing::tags(inner, &name, n, last.as_ref()).await,
        Route::ListReferrers {
            name,
            digest,
            artifact_type,
            n,
            last,
        } => {
            let query = referrers::Query {
                artifact_type: artifact_type.as_deref(),
                n,
                last: last.as_ref(),
            };
            referrers::list(inner, &name, &digest, query).await
        }
    };
    reply.unwrap_or_else(|e| error_response(&e, target))
}

/// end-1: the API is here. `{}` as distribution answers.
fn base() -> Response<Body> {
    let mut res = response(StatusCode::OK, Body::from("{}"));
    res.headers_mut().insert(http::header::CONTENT_TYPE, json());
    res
}

fn json() -> http::HeaderValue {
    http::HeaderValue::from_static("application/json")
}
