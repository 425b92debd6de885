use std::path::Path;
use std::process::Command;

/// The slice of SciFact checked in CI: its first queries and a corpus of their relevant
/// abstracts filled up with the first others.
const QUERIES: &str = "40";
const DOCUMENTS: &str = "200";

/// nDCG@10 measured on that slice when the check was set (`lumbung eval ../shared/eval/scifact
/// --max-queries 40 --max-documents 200`, see docs/evaluation.md), and how far a change may fall
/// below it before the check fails. Raise them when quality improves.
const BASELINE: [(&str, f64); 3] = [("bm25", 0.9021), ("dense", 0.8820), ("hybrid", 0.9127)];
const TOLERANCE: f64 = 0.02;

/// Retrieval quality must not drop: `lumbung eval` on a fixed slice of SciFact, each retriever
/// against its recorded nDCG@10. Skipped, saying so, where the collections are not checked out
/// next to the repository (they are not part of it).
#[test]
fn scifact_slice_keeps_its_ndcg() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let collection = root.join("../shared/eval/scifact");
    if !collection.join("corpus.jsonl").is_file() {
        eprintln!(
            "SKIPPED scifact_slice_keeps_its_ndcg: {} is absent (the evaluation collections are \
             not part of the repository)",
            collection.display()
        );
        return;
    }
    let runtime = root.join("runtime");
    let output = Command::new(env!("CARGO_BIN_EXE_lumbung"))
        .env_remove("LUMBUNG_CONFIG")
        .env(
            "LUMBUNG__EMBEDDING__MODEL_DIR",
            runtime.join("models/multilingual-e5-small"),
        )
        .env(
            "LUMBUNG__EMBEDDING__ONNXRUNTIME_LIBRARY",
            runtime.join("onnxruntime/libonnxruntime.so"),
        )
        .args([
            "eval",
            "--json",
            "--max-queries",
            QUERIES,
            "--max-documents",
            DOCUMENTS,
        ])
        .arg(&collection)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for (retriever, baseline) in BASELINE {
        let row = report["retrievers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["retriever"] == retriever)
            .unwrap();
        let ndcg = row["ndcg_at_10"].as_f64().unwrap();
        println!("{retriever}: nDCG@10 {ndcg:.4} (baseline {baseline:.4})");
        assert!(
            ndcg >= baseline - TOLERANCE,
            "{retriever}: nDCG@10 {ndcg:.4} fell more than {TOLERANCE} below {baseline:.4}"
        );
    }
}
