//! Test support for the registry's own tests, never published.
//!
//! The endpoint suite ([`suite`]) is written once against a [`Transport`]:
//! anything that takes an `http::Request` and answers with a [`Reply`].
//! `registry-http`'s tests instantiate it on `Router::handle`, in process;
//! the workspace's `tests/` on the real `registry serve` binary, over HTTP
//! ([`Http`]). [`endpoint_suite!`] writes one `#[test]` per suite test for a
//! transport. The [`Client`] and its push helpers are the only ones the
//! tests have; [`content`] makes the OCI content they push.
#![forbid(unsafe_code)]

mod client;
pub mod content;
mod http;
mod reply;
pub mod suite;

pub use client::{Body, Client, Transport};
pub use http::{Http, agent};
pub use reply::Reply;

/// One `#[test]` for every test of the endpoint [`suite`], each on a
/// fresh [`Client`] made by `$make` (an expression, evaluated per test),
/// which asserts that every answer carries the API version header.
///
/// ```text
/// mod in_process {
///     registry_testkit::endpoint_suite!(crate::common::client());
/// }
/// ```
#[macro_export]
macro_rules! endpoint_suite {
    ($make:expr) => {
        $crate::__endpoint_tests!(
            $make;
            api_version_check,
            unknown_paths_and_methods,
            pull_blob_whole_and_by_range,
            unknown_blob,
            push_blob_post_then_put,
            push_blob_in_one_post,
            push_blob_in_chunks,
            chunk_out_of_order_is_416,
            push_blob_streamed,
            last_chunk_in_the_put_without_range,
            empty_blob,
            upload_status,
            content_range_must_fit,
            cancel_upload,
            unknown_and_malformed_sessions,
            mount_from_another_repository,
            delete_blob,
            digest_mismatch_leaves_nothing,
            pull_manifest_by_tag_and_digest,
            push_manifest_by_tag_and_digest,
            content_negotiation,
            delete_tag_then_manifest,
            list_tags_with_pagination,
            catalog_with_pagination,
            referrers_with_and_without_filter,
            referrer_before_its_subject,
            bad_requests_get_their_error_code,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __endpoint_tests {
    ($make:expr; $($test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                let client = $crate::Client::checking_api_version($make);
                $crate::suite::$test(&client);
            }
        )*
    };
}
