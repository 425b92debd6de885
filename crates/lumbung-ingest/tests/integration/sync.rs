use lumbung_core::{Chunk, ChunkId, DocumentPath, IngestConfig, Language};
use lumbung_ingest::{DocumentState, KbSettings, SyncReport};

use crate::{Fixture, kb, repo_root};

fn sync(fixture: &Fixture, name: &str, force: bool) -> SyncReport {
    let report = fixture.ingestor.sync_kb(&kb(name), force, &|_| {}).unwrap();
    let problems = fixture.ingestor.verify(&kb(name)).unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
    report
}

fn recorded_paths(fixture: &Fixture, name: &str) -> Vec<String> {
    let records = fixture
        .ingestor
        .catalog()
        .list(&fixture.active(name))
        .unwrap();
    records.iter().map(|r| r.path.to_string()).collect()
}

/// The stored chunks of one document, in order, from its catalog row.
fn stored_chunks(fixture: &Fixture, name: &str, path: &str) -> Vec<Chunk> {
    let path = DocumentPath::new(path).unwrap();
    let record = fixture
        .ingestor
        .catalog()
        .list(&fixture.active(name))
        .unwrap()
        .into_iter()
        .find(|record| record.path == path)
        .unwrap();
    let ids: Vec<ChunkId> = (0..record.chunks)
        .map(|ordinal| ChunkId::derive(&fixture.active(name), &path, &record.content_hash, ordinal))
        .collect();
    fixture.lexical.get_chunks(&ids).unwrap()
}

/// Paths of the chunks BM25 finds for `query` in knowledge base `name`.
fn lexical_paths(fixture: &Fixture, name: &str, query: &str) -> Vec<String> {
    let mut paths: Vec<String> = fixture
        .lexical
        .search(query, &[fixture.active(name)], 20)
        .unwrap()
        .into_iter()
        .map(|hit| hit.chunk.citation.document_path.to_string())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// A rename, a move into a sub-folder and a copy take the vectors of the document with the same
/// content instead of embedding again; a forced run embeds everything.
#[test]
fn renames_moves_and_copies_keep_their_vectors() {
    let fixture = Fixture::new(IngestConfig::default());
    let dir = fixture.kb_dir("it");
    let samples = repo_root().join("ingest/it-helpdesk");
    for file in ["vpn-access.md", "password-reset.md"] {
        std::fs::copy(samples.join(file), dir.join(file)).unwrap();
    }
    let first = sync(&fixture, "it", false);
    assert_eq!(first.indexed, 2, "{first:?}");
    assert!(first.chunks_written > 2, "{first:?}");
    assert_eq!(first.chunks_embedded, first.chunks_written);
    // Each chunk is stored with its language, its place in the document and its sentences,
    // every one of them embedded.
    let vpn = stored_chunks(&fixture, "it", "vpn-access.md");
    assert!(vpn.iter().all(|chunk| chunk.language == Language::En));
    assert!(vpn.iter().all(|chunk| {
        !chunk.sentences.is_empty() && chunk.sentences.iter().all(|s| s.embedding.is_some())
    }));
    assert!(
        vpn.iter().any(|chunk| chunk
            .context()
            .ends_with("ERR-VPN-809: certificate expired or missing")),
        "{:?}",
        vpn.iter().map(Chunk::context).collect::<Vec<_>>()
    );

    std::fs::create_dir_all(dir.join("guides")).unwrap();
    std::fs::rename(dir.join("vpn-access.md"), dir.join("guides/vpn.md")).unwrap();
    std::fs::copy(dir.join("password-reset.md"), dir.join("password-copy.md")).unwrap();
    let second = sync(&fixture, "it", false);
    assert_eq!(
        (
            second.indexed,
            second.reused_vectors,
            second.chunks_embedded,
            second.removed,
            second.unchanged
        ),
        (2, 2, 0, 1, 1),
        "{second:?}"
    );
    assert_eq!(
        recorded_paths(&fixture, "it"),
        ["guides/vpn.md", "password-copy.md", "password-reset.md"]
    );
    // The moved document kept its sentence embeddings too.
    let moved = stored_chunks(&fixture, "it", "guides/vpn.md");
    let sentences = |chunks: &[Chunk]| {
        chunks
            .iter()
            .map(|c| c.sentences.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(sentences(&moved), sentences(&vpn));
    // The same content in two files stays two documents, each with all its chunks.
    let chunks_of = |path: &str| {
        let path = lumbung_core::DocumentPath::new(path).unwrap();
        (
            fixture
                .lexical
                .count_chunks(&fixture.active("it"), Some(&path))
                .unwrap(),
            fixture
                .vectors
                .count(&fixture.active("it"), Some(&path))
                .unwrap(),
        )
    };
    let original = chunks_of("password-reset.md");
    assert!(original.0 > 0);
    assert_eq!(chunks_of("password-copy.md"), original);

    let forced = sync(&fixture, "it", true);
    assert_eq!(
        (forced.indexed, forced.reused_vectors),
        (3, 0),
        "{forced:?}"
    );
    assert_eq!(forced.chunks_embedded, forced.chunks_written);
}

/// An edit replaces the document's chunks; a new version that cannot be read is recorded as
/// failed and the previous chunks keep answering until a readable version arrives.
#[test]
fn an_edit_replaces_the_chunks_and_an_unreadable_version_keeps_the_old_ones() {
    let fixture = Fixture::new(IngestConfig::default());
    let dir = fixture.kb_dir("ops");
    let file = dir.join("compressor.md");
    std::fs::write(
        &file,
        "# Compressor\n\nDrain the condensate trap every Monday.\n",
    )
    .unwrap();
    sync(&fixture, "ops", false);
    assert_eq!(lexical_paths(&fixture, "ops", "Monday"), ["compressor.md"]);

    std::fs::write(
        &file,
        "# Compressor\n\nDrain the condensate trap every Friday.\n",
    )
    .unwrap();
    let edited = sync(&fixture, "ops", false);
    assert_eq!(edited.indexed, 1, "{edited:?}");
    assert!(lexical_paths(&fixture, "ops", "Monday").is_empty());
    assert_eq!(lexical_paths(&fixture, "ops", "Friday"), ["compressor.md"]);

    std::fs::write(&file, [0xff, 0xfe, 0x00, 0xc3, 0x28]).unwrap();
    let broken = sync(&fixture, "ops", false);
    assert_eq!(broken.failed, 1, "{broken:?}");
    let [record] = fixture
        .ingestor
        .catalog()
        .list(&fixture.active("ops"))
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(record.state, DocumentState::Failed);
    assert!(record.error.unwrap().contains("binary"));
    assert_eq!(lexical_paths(&fixture, "ops", "Friday"), ["compressor.md"]);

    std::fs::remove_file(&file).unwrap();
    let removed = sync(&fixture, "ops", false);
    assert_eq!(removed.removed, 1, "{removed:?}");
    assert!(lexical_paths(&fixture, "ops", "Friday").is_empty());
}

/// `kb.toml` describes the knowledge base and is not indexed; a broken one is reported with the
/// field at fault.
#[test]
fn kb_toml_describes_the_knowledge_base() {
    let fixture = Fixture::new(IngestConfig::default());
    let dir = fixture.kb_dir("safety");
    std::fs::write(
        dir.join("kb.toml"),
        "title = \"Safety\"\nlanguage = \"zh-CN\"\nescalation = \"EHS, ext. 119\"\n\
         readers = [\"safety-bot\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("ppe.md"),
        "# PPE\n\nWear a helmet on the shop floor.\n",
    )
    .unwrap();
    let report = sync(&fixture, "safety", false);
    assert_eq!((report.indexed, report.skipped), (1, 0), "{report:?}");
    let status = fixture.ingestor.status(&kb("safety")).unwrap();
    assert_eq!(
        status.settings,
        Ok(KbSettings {
            title: Some("Safety".into()),
            description: None,
            language: Some("zh-CN".into()),
            escalation: Some("EHS, ext. 119".into()),
            readers: vec!["safety-bot".into()],
            embedding_model: None,
        })
    );
    assert_eq!(status.summary.indexed, 1);

    std::fs::write(
        dir.join("kb.toml"),
        "title = \"Safety\"\nreader = [\"x\"]\n",
    )
    .unwrap();
    let error = fixture
        .ingestor
        .status(&kb("safety"))
        .unwrap()
        .settings
        .unwrap_err();
    assert!(error.contains("reader"), "{error}");
}
