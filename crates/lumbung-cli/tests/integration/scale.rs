//! The small setting of `lumbung bench --scale`: 20,000 chunks over 50 knowledge bases, with the
//! graph built and its recall checked against exact search. It checks recall, not time (the
//! timings it prints come from a debug build).

use crate::harness::{lumbung_with_model, repo_root};

#[test]
fn the_scale_benchmark_builds_graphs_that_find_what_exact_search_finds() {
    let corpora = repo_root().join("../shared/eval");
    if !corpora.join("scifact/corpus.jsonl").is_file() {
        eprintln!(
            "SKIPPED the_scale_benchmark_builds_graphs_that_find_what_exact_search_finds: {} is \
             absent (the evaluation collections are not part of the repository)",
            corpora.display()
        );
        return;
    }
    let output = lumbung_with_model()
        .current_dir(repo_root())
        .args(["bench", "--scale", "20000", "--kbs", "50"])
        .args(["--sample-documents", "9", "--queries", "9", "--rounds", "1"])
        .args(["--min-recall", "0.9"])
        .arg("--corpora")
        .arg(&corpora)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Every scope was measured, by the graph, and then served and searched.
    for line in ["one ", "ten ", "all "] {
        assert!(
            stdout.lines().any(|l| l.starts_with(line)),
            "no recall row {line:?}:\n{stdout}"
        );
    }
    let built = stdout
        .lines()
        .find(|l| l.starts_with("build:"))
        .unwrap_or_else(|| panic!("no build line:\n{stdout}"));
    assert!(!built.contains(" 0 of "), "no point is in a graph: {built}");
    assert!(
        stdout.contains("vector store WAL emptied"),
        "the WAL's emptying is timed: {stdout}"
    );
    assert!(stdout.contains("hybrid   all"), "{stdout}");
    assert!(stdout.contains("RSS after the searches"), "{stdout}");
}
