use std::path::{Path, PathBuf};

use lumbung_core::{DocumentPath, KbName};
use lumbung_extract::{Format, extract};

use crate::crate_path;

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Every sample file shipped in `ingest/` must extract, or the demo and the lead's end-to-end
/// tests start from a broken knowledge base.
#[test]
fn every_sample_file_extracts_with_text() {
    let root = crate_path("../../ingest");
    let mut kbs = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let kb_dir = entry.unwrap().path();
        let name = kb_dir.file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            kb_dir.is_dir(),
            "{name}: files directly in ingest/ belong to no knowledge base"
        );
        KbName::new(name.as_str()).unwrap();
        kbs += 1;
        let mut files = Vec::new();
        files_under(&kb_dir, &mut files);
        // The knowledge base's settings (read by lumbung-ingest), not a document.
        files.retain(|file| file != &kb_dir.join("kb.toml"));
        assert!(files.len() >= 4, "{name} has only {} files", files.len());
        for file in files {
            let relative = file
                .strip_prefix(&kb_dir)
                .unwrap()
                .to_str()
                .unwrap()
                .replace('\\', "/");
            let path = DocumentPath::new(relative).unwrap();
            assert!(
                Format::from_path(&path).is_some(),
                "{name}/{path}: unsupported sample"
            );
            let bytes = std::fs::read(&file).unwrap();
            let doc = extract(&path, &bytes).unwrap_or_else(|err| panic!("{name}/{path}: {err}"));
            assert!(!doc.title.is_empty(), "{name}/{path}");
            assert!(!doc.sections.is_empty(), "{name}/{path}");
            assert!(
                doc.sections.iter().all(|s| !s.text.trim().is_empty()),
                "{name}/{path}"
            );
            if Format::from_path(&path) == Some(Format::Markdown) {
                // The Chinese samples put bold marks where CommonMark does not close them.
                let noisy = doc.sections.iter().find(|s| s.text.contains("**"));
                assert!(noisy.is_none(), "{name}/{path}: markup left in {noisy:?}");
            }
        }
    }
    assert!(
        kbs >= 3,
        "expected the three sample knowledge bases, found {kbs}"
    );
}

#[test]
fn sample_pdf_has_numbered_pages() {
    let file = crate_path("../../ingest/production-data/downtime-report-2026-10.pdf");
    let bytes = std::fs::read(&file).unwrap();
    let path = DocumentPath::new("downtime-report-2026-10.pdf").unwrap();
    let doc = extract(&path, &bytes).unwrap();
    assert_eq!(doc.title, "Hall B Downtime Report - October 2026");
    let pages: Vec<Option<u32>> = doc.sections.iter().map(|s| s.page).collect();
    assert_eq!(pages, vec![Some(1), Some(2)]);
    // docs/sample-knowledge-bases.md cites this fact as being on page 2.
    let fact = "barrel heater band of zone 3";
    let found: Vec<Option<u32>> = doc
        .sections
        .iter()
        .filter(|s| s.text.contains(fact))
        .map(|s| s.page)
        .collect();
    assert_eq!(found, vec![Some(2)]);
}
