//! `registry gc`: plan, and with `--commit` make, a garbage collection of a
//! store (docs/GC.md); safe while servers run on it.

use registry_storage::gc::{GcOptions, GcReport};

use super::cli::GcArgs;
use super::config::{Settings, retention};

/// Collect, print one line per removal (or a JSON report) and the summary
/// line last.
pub fn run(args: &GcArgs) -> Result<(), String> {
    let (runtime, store) = super::offline::open(&args.store.storage)?;
    let retention = match &args.config {
        Some(path) => {
            let settings = Settings::from_file(path).map_err(|e| e.0)?;
            retention(&settings.gc_retention)
        }
        None => Default::default(),
    };
    let options = GcOptions::default()
        .with_retention(retention)
        .with_grace(args.grace)
        .with_delete_untagged(args.delete_untagged)
        .with_commit(args.commit);
    let report = runtime
        .block_on(store.collect_garbage(&options))
        .map_err(|e| format!("collecting garbage in {}: {e}", args.store.storage))?;
    if args.json {
        println!("{}", to_json(&report));
    } else {
        print_lines(&report);
    }
    println!("{}", report.summary());
    Ok(())
}

fn print_lines(report: &GcReport) {
    let verb = if report.committed {
        "removed"
    } else {
        "would remove"
    };
    for t in &report.tags {
        let verb = if t.removed { verb } else { "kept" };
        println!(
            "{verb} tag {}:{} -> {}: {}",
            t.repository, t.tag, t.digest, t.why
        );
    }
    for m in &report.manifests {
        println!(
            "{verb} manifest {}@{}: {}",
            m.repository,
            m.digest,
            m.reason.as_str()
        );
    }
    for l in &report.links {
        println!(
            "{verb} link {} -> {}: {}",
            l.repository,
            l.digest,
            l.reason.as_str()
        );
    }
    for b in &report.blobs {
        println!(
            "{verb} blob {} ({} bytes): {}",
            b.digest,
            b.size,
            b.reason.as_str()
        );
    }
    for d in &report.kept_for_pushes {
        println!("kept {d}: a manifest push under way references it");
    }
}

/// The report as one JSON object.
fn to_json(report: &GcReport) -> serde_json::Value {
    serde_json::json!({
        "committed": report.committed,
        "tags": report.tags.iter().map(|t| serde_json::json!({
            "repository": t.repository.as_str(),
            "tag": t.tag.as_str(),
            "digest": t.digest.to_string(),
            "removed": t.removed,
            "reason": t.why,
        })).collect::<Vec<_>>(),
        "manifests": report.manifests.iter().map(|m| serde_json::json!({
            "repository": m.repository.as_str(),
            "digest": m.digest.to_string(),
            "reason": m.reason.as_str(),
        })).collect::<Vec<_>>(),
        "links": report.links.iter().map(|l| serde_json::json!({
            "repository": l.repository.as_str(),
            "digest": l.digest.to_string(),
            "reason": l.reason.as_str(),
        })).collect::<Vec<_>>(),
        "blobs": report.blobs.iter().map(|b| serde_json::json!({
            "digest": b.digest.to_string(),
            "size": b.size,
            "reason": b.reason.as_str(),
        })).collect::<Vec<_>>(),
        "kept_for_pushes": report.kept_for_pushes.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "bytes": report.bytes(),
        "live_manifests": report.live_manifests,
        "live_blobs": report.live_blobs,
    })
}
