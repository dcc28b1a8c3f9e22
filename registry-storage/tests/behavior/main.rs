//! One behaviour suite for every backend: each test is generic over a
//! [`Backend`] that makes fresh stores, and the `suite!` macro instantiates
//! it for memory, fs (`OpendalStore::fs`, the direct file I/O backend), fs
//! through a plain OpenDAL operator (`fs_opendal`: the generic backend on a
//! directory), and S3 when `REGISTRY_TEST_S3_URL` is set.

mod blobs;
mod gc;
mod listings;
mod manifests;
mod mirror;
mod races;
mod retention;
mod support;
mod uploads;

macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(&super::support::Memory::new()).await }
            )*
        }
        mod fs {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(&super::support::Fs::new()).await }
            )*
        }
        mod fs_opendal {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(&super::support::FsOpendal::new()).await }
            )*
        }
        /// Run with `REGISTRY_TEST_S3_URL=s3://bucket?endpoint=... cargo test
        /// -p registry-storage --all-features --test behavior -- --ignored s3::`
        /// (the test script does, against a local S3 server).
        mod s3 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs an S3 server: set REGISTRY_TEST_S3_URL"]
            async fn $test() {
                let b = super::support::S3::from_env()
                    .expect("REGISTRY_TEST_S3_URL must be set for the S3 suite");
                super::$test(&b).await
            }
            )*
        }
    };
}

use blobs::*;
use gc::*;
use listings::*;
use manifests::*;
use mirror::*;
use races::*;
use retention::*;
use uploads::*;

suite!(
    blob_put_stat_read,
    blob_range_reads,
    blob_wrong_digest_leaves_nothing,
    blob_wrong_length_is_size_invalid,
    blob_put_notice_only_for_verified_bodies,
    blob_put_is_idempotent,
    blob_delete_unlinks_only,
    blob_mount,
    blob_empty,
    blob_sha512,
    upload_chunked_in_order,
    upload_wrong_offset,
    upload_racing_writers_one_wins,
    upload_racing_appenders_one_wins,
    upload_continued_by_another_store,
    upload_cancel,
    upload_unknown_ids,
    upload_failed_stream_keeps_offset,
    upload_digest_mismatch_ends_session,
    backend_honours_conditional_writes,
    abandoned_uploads_are_purged,
    orphan_upload_leftovers_are_purged,
    manifest_put_get_by_tag_and_digest,
    manifest_missing_references,
    manifest_digest_reference_must_match,
    manifest_tag_race,
    manifest_delete,
    tags_listing_and_pagination,
    referrers,
    referrers_listed_without_reading_manifests,
    referrers_from_links_without_descriptors,
    referrers_in_pages,
    referrers_pushed_at_once_are_all_listed,
    tags_in_pages_in_lexical_order,
    catalog,
    layout_is_distributions,
    race_tag_push_vs_manifest_delete,
    race_tag_move_vs_old_manifest_delete,
    race_tag_delete_vs_tag_push,
    race_upload_completion,
    race_chunk_vs_completion,
    gc_removes_what_no_tag_reaches,
    gc_keeps_index_children_and_referrers,
    gc_grace_keeps_recent_content,
    gc_push_of_a_doomed_blob_is_refused,
    gc_keeps_what_a_push_under_way_references,
    race_gc_vs_pushes_of_old_blobs,
    gc_upload_onto_a_doomed_blob_waits_and_stores_it_again,
    retention_keeps_the_newest_and_matching_tags,
    retention_keeps_what_was_pulled,
    mirror_fetch_leases_have_one_holder,
    mirror_expired_leases_go_to_one_taker,
    mirror_adopts_bytes_stored_elsewhere,
    mirror_manifests_are_stored_before_their_references,
);
