//! The short setting of `lumbung bench --churn`: two rounds of edits, renames, deletions and
//! re-additions through the watcher lose and double nothing (`lumbung check` after each round),
//! fail no search, and leave the vector store's write-ahead log emptied and the data
//! directory within 1.5 times its size after the first round. (Without the log's replacement
//! the log alone passed 1 MiB in the second round; the long run's figures are in
//! `docs/operations.md`.)

use crate::harness::{lumbung_with_model, repo_root};

#[test]
fn a_short_churn_loses_no_chunk_and_fails_no_search() {
    let output = lumbung_with_model()
        .current_dir(repo_root())
        .args(["bench", "--churn", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // round, five sizes, peak, rss, chunks, problems, searches, failed, seconds
    let rounds: Vec<Vec<&str>> = stdout
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|fields| fields.len() == 13 && fields[0].parse::<usize>().is_ok())
        .collect();
    assert_eq!(rounds.len(), 2, "{stdout}");
    for round in &rounds {
        let chunks: u64 = round[8].parse().unwrap();
        assert!(chunks > 150, "{stdout}");
        assert_eq!(round[9], "0", "lumbung check found differences:\n{stdout}");
        assert_eq!(round[11], "0", "searches failed:\n{stdout}");
    }
    let mib = |round: &[&str], column: usize| round[column].parse::<f64>().unwrap();
    assert!(
        mib(&rounds[1], 2) <= 1.0,
        "the log was not emptied:\n{stdout}"
    );
    assert!(
        mib(&rounds[1], 5) <= 1.5 * mib(&rounds[0], 5),
        "the data directory grew:\n{stdout}"
    );
    assert!(stdout.contains("failed: 0"), "{stdout}");
    assert!(
        stdout.contains("growth from round 1 to round 2"),
        "{stdout}"
    );
}
