//! Every hostile input kept in tests/hostile/ (crashes found by scripts/fuzz.sh) and a fixed sweep
//! of truncated and byte-flipped fixture files, through the fuzz targets' own harness: each must
//! end in an error or a result, never a panic, and well within a time bound.
use std::sync::mpsc;
use std::time::Duration;

#[path = "hostile/harness.rs"]
mod harness;
#[path = "hostile/cases.rs"]
mod cases;

/// Generous: the tiny fixture models load in milliseconds; this only tells a hang from a run.
const BOUND: Duration = Duration::from_secs(60);

/// `harness::run` on its own thread: `Err` names a panic or a run past `BOUND`.
fn run_bounded(target: &'static str, bytes: Vec<u8>) -> Result<(), String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(|| harness::run(target, &bytes));
        let _ = send.send(outcome);
    });
    match receive.recv_timeout(BOUND) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(panic)) => Err(format!(
            "panicked: {}",
            panic.downcast_ref::<String>().cloned().or(panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
        )),
        Err(_) => Err(format!("still running after {BOUND:?}")),
    }
}

#[test]
fn kept_hostile_inputs_end_cleanly() {
    let failures: Vec<String> = cases::CASES
        .iter()
        .filter_map(|(target, name, bytes)| run_bounded(target, bytes.to_vec()).err().map(|e| format!("{target}/{name}: {e}")))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn truncated_and_flipped_fixture_files_end_cleanly() {
    let mut failures = Vec::new();
    for target in harness::TARGETS {
        let Some(seed) = harness::seed(target) else { continue };
        for (i, bytes) in harness::mutants(seed, 48).enumerate() {
            if let Err(e) = run_bounded(target, bytes) {
                failures.push(format!("{target} mutant {i}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn deeply_nested_json_ends_cleanly() {
    let failures: Vec<String> = harness::deeply_nested()
        .into_iter()
        .enumerate()
        .filter_map(|(i, (target, bytes))| run_bounded(target, bytes).err().map(|e| format!("{target} case {i}: {e}")))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_case_list_names_every_kept_file() {
    // scripts/hostile-cases.sh writes cases.rs from the directories; a file added by hand without
    // it would be silently skipped.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    let mut on_disk = Vec::new();
    for target in std::fs::read_dir(&dir).unwrap().flatten().filter(|e| e.path().is_dir()) {
        let target_name = target.file_name().to_string_lossy().into_owned();
        assert!(harness::TARGETS.contains(&target_name.as_str()), "tests/hostile/{target_name} is no fuzz target");
        for file in std::fs::read_dir(target.path()).unwrap().flatten() {
            on_disk.push(format!("{target_name}/{}", file.file_name().to_string_lossy()));
        }
    }
    let mut listed: Vec<String> = cases::CASES.iter().map(|(t, n, _)| format!("{t}/{n}")).collect();
    on_disk.sort();
    listed.sort();
    assert_eq!(listed, on_disk, "run scripts/hostile-cases.sh");
}
