//! `registry fsck`: report (and with `--repair`, fix) dangling tags and
//! similar leftovers in a store; see `registry_storage::fsck`.

use super::cli::FsckArgs;

/// Check the store, print one line per finding and a summary; an error
/// (exit 1) if problems remain.
pub fn run(args: &FsckArgs) -> Result<(), String> {
    let (runtime, store) = super::offline::open(&args.store.storage)?;
    let report = runtime
        .block_on(store.fsck(args.repair))
        .map_err(|e| format!("checking {}: {e}", args.store.storage))?;
    for (finding, repaired) in &report.findings {
        let state = if *repaired { "repaired" } else { "found" };
        println!("{state}: {finding}");
    }
    let remaining = report.remaining();
    println!(
        "fsck: {} repositories, {} problems found, {} repaired",
        report.repositories,
        report.findings.len(),
        report.findings.len() - remaining
    );
    if remaining > 0 {
        let hint = if args.repair {
            ""
        } else {
            " (run with --repair to fix)"
        };
        return Err(format!("{remaining} problems remain{hint}"));
    }
    Ok(())
}
