use std::io::Write;

use lumbung_ingest::{DocumentState, FailureKind};
use lumbung_server::App;

use crate::harness;

/// A DOCX whose document.xml unpacks to `unpacked_bytes` (spaces compress about a thousandfold).
fn expanding_docx(unpacked_bytes: usize) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    writer.start_file("[Content_Types].xml", options).unwrap();
    writer.write_all(b"<Types/>").unwrap();
    writer.start_file("word/document.xml", options).unwrap();
    writer
        .write_all(b"<w:document xmlns:w=\"urn:w\"><w:body><w:p><w:r><w:t>")
        .unwrap();
    writer.write_all(&vec![b' '; unpacked_bytes]).unwrap();
    writer
        .write_all(b"</w:t></w:r></w:p></w:body></w:document>")
        .unwrap();
    writer.finish().unwrap().into_inner()
}

/// Corrupt and encrypted PDFs, binary bytes posing as text, an unsupported type, a DOCX that
/// expands past the configured bound and a PDF over the page bound are recorded with their
/// reason; the good files beside them (Markdown, GBK and UTF-16 text, a spreadsheet) are
/// indexed and searchable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_are_recorded_and_the_rest_of_the_folder_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = harness::test_config(dir.path());
    config.ingest.max_zip_entry_bytes = 1 << 20;
    config.ingest.max_pages = 1;
    let kb_dir = config.ingest_root.join("mixed");
    std::fs::create_dir_all(&kb_dir).unwrap();
    let good =
        "# Compressor maintenance\n\nDrain the condensate trap of compressor C-7 every Monday.\n";
    std::fs::write(kb_dir.join("compressor.md"), good).unwrap();
    std::fs::write(
        kb_dir.join("broken.pdf"),
        b"%PDF-1.7\n1 0 obj << /Type /Catalog",
    )
    .unwrap();
    std::fs::write(kb_dir.join("binary.txt"), [0xff, 0xfe, 0x00, 0xc3, 0x28]).unwrap();
    std::fs::write(kb_dir.join("drawing.dwg"), b"AC1032").unwrap();
    let xlsx =
        harness::repo_root().join("crates/lumbung-extract/tests/fixtures/production-q3.xlsx");
    std::fs::copy(xlsx, kb_dir.join("production-q3.xlsx")).unwrap();
    std::fs::write(kb_dir.join("~$compressor.docx"), b"lock").unwrap();
    let fixtures = harness::repo_root().join("crates/lumbung-extract/tests/fixtures");
    for (fixture, name) in [
        ("hot-work-gbk.txt", "hot-work-gbk.txt"),
        ("shift-handover-utf16.txt", "shift-handover-utf16.txt"),
        ("encrypted-user-password.pdf", "encrypted.pdf"),
        ("two-pages.pdf", "two-pages.pdf"),
    ] {
        std::fs::copy(fixtures.join(fixture), kb_dir.join(name)).unwrap();
    }
    std::fs::write(kb_dir.join("expanding.docx"), expanding_docx(2 << 20)).unwrap();

    let app = tokio::task::spawn_blocking(move || App::open(config))
        .await
        .unwrap()
        .unwrap();
    let app = std::sync::Arc::new(app);
    let report = app.sync_all().await.unwrap();
    assert_eq!(
        (report.indexed, report.failed, report.skipped),
        (4, 5, 1),
        "{report:?}"
    );

    let kb = lumbung_core::KbGeneration::first(lumbung_core::KbName::new("mixed").unwrap());
    let records = app.ingestor().unwrap().catalog().list(&kb).unwrap();
    let state_of = |path: &str| {
        let record = records.iter().find(|r| r.path.as_str() == path).unwrap();
        (record.state, record.error.clone().unwrap_or_default())
    };
    let kind_of = |path: &str| {
        let record = records.iter().find(|r| r.path.as_str() == path).unwrap();
        record.failure
    };
    for (path, kind) in [
        ("broken.pdf", FailureKind::Corrupt),
        ("binary.txt", FailureKind::Corrupt),
        ("drawing.dwg", FailureKind::Unsupported),
        ("encrypted.pdf", FailureKind::Encrypted),
        ("expanding.docx", FailureKind::TooLarge),
        ("two-pages.pdf", FailureKind::TooLarge),
    ] {
        assert_eq!(kind_of(path), Some(kind), "{path}");
    }
    let failures: Vec<(FailureKind, u32)> = lumbung_ingest::KbSummary::of(&records)
        .failures
        .iter()
        .collect();
    assert_eq!(
        failures,
        [
            (FailureKind::Unsupported, 1),
            (FailureKind::TooLarge, 2),
            (FailureKind::Corrupt, 2),
            (FailureKind::Encrypted, 1),
        ]
    );
    assert_eq!(records.len(), 10, "the lock file is ignored: {records:?}");
    let (state, error) = state_of("broken.pdf");
    assert_eq!(state, DocumentState::Failed);
    assert!(error.to_lowercase().contains("pdf"), "{error}");
    let (state, error) = state_of("binary.txt");
    assert_eq!(state, DocumentState::Failed);
    assert!(error.contains("binary content"), "{error}");
    let (state, error) = state_of("drawing.dwg");
    assert_eq!(state, DocumentState::Skipped);
    assert!(error.contains("dwg"), "{error}");
    let (state, error) = state_of("encrypted.pdf");
    assert_eq!(state, DocumentState::Failed);
    assert!(error.contains("encrypted"), "{error}");
    let (state, error) = state_of("expanding.docx");
    assert_eq!(state, DocumentState::Failed);
    assert!(error.contains("ingest.max_zip_entry_bytes"), "{error}");
    let (state, error) = state_of("two-pages.pdf");
    assert_eq!(state, DocumentState::Failed);
    assert!(error.contains("ingest.max_pages = 1"), "{error}");
    for indexed in [
        "compressor.md",
        "hot-work-gbk.txt",
        "shift-handover-utf16.txt",
        "production-q3.xlsx",
    ] {
        assert_eq!(state_of(indexed).0, DocumentState::Indexed, "{indexed}");
    }

    let request = lumbung_search::SearchRequest {
        query: "condensate trap compressor".to_string(),
        scope: lumbung_search::Scope::resolved(vec![
            app.ingestor().unwrap().serving(kb.kb()).unwrap(),
        ]),
        top_k: 5,
        retriever: lumbung_search::Retriever::Hybrid,
    };
    let passages = app.engine.search(&request).await.unwrap();
    assert_eq!(
        passages[0].chunk.citation.document_path.as_str(),
        "compressor.md"
    );
    // Text in legacy encodings is decoded before it is indexed.
    for (question, path) in [
        ("动火作业前必须办理什么", "hot-work-gbk.txt"),
        ("Kenapa Line 3 berhenti?", "shift-handover-utf16.txt"),
    ] {
        let request = lumbung_search::SearchRequest {
            query: question.to_string(),
            ..request.clone()
        };
        let passages = app.engine.search(&request).await.unwrap();
        assert_eq!(
            passages[0].chunk.citation.document_path.as_str(),
            path,
            "{question}"
        );
    }

    // A spreadsheet row keeps its column headers, so a cell is found as "column: value".
    let request = lumbung_search::SearchRequest {
        query: "scrap rate of PPR-9090 on line L2".to_string(),
        ..request
    };
    let passages = app.engine.search(&request).await.unwrap();
    let top = &passages[0].chunk;
    assert_eq!(top.citation.document_path.as_str(), "production-q3.xlsx");
    assert!(
        top.text.contains("Line: L2; Product: PPR-9090"),
        "{}",
        top.text
    );
}
