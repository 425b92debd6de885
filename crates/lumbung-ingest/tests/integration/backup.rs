//! Backups restored into another catalog and indexes, and the backups a restore refuses.

use lumbung_core::IngestConfig;

use crate::{Fixture, kb};

fn fixture_with_documents() -> Fixture {
    let fixture = Fixture::new(IngestConfig::default());
    let dir = fixture.kb_dir("ops");
    std::fs::write(
        dir.join("boiler.md"),
        "# Boiler B-2\n\nBlow down boiler B-2 every shift.\n\n## Records\n\nLog the \
         conductivity after each blow-down.\n",
    )
    .unwrap();
    std::fs::write(dir.join("notes.bin"), [0u8, 159, 146, 150]).unwrap();
    fixture
        .ingestor
        .sync_kb(&kb("ops"), false, &|_| {})
        .unwrap();
    fixture
}

#[test]
fn a_backup_restores_as_the_same_generation_and_checks_clean() {
    let source = fixture_with_documents();
    let backup = tempfile::tempdir().unwrap();
    let manifest = source.ingestor.backup(backup.path(), &[]).unwrap();
    assert_eq!(manifest.knowledge_bases.len(), 1);
    assert_eq!(manifest.knowledge_bases[0].documents, 2, "{manifest:?}");

    // A folder that is not empty is refused.
    let refused = source.ingestor.backup(backup.path(), &[]).unwrap_err();
    assert!(refused.to_string().contains("not empty"), "{refused}");

    let target = Fixture::new(IngestConfig::default());
    let restored = target.ingestor.restore(backup.path()).unwrap();
    assert_eq!(restored, manifest);
    assert!(target.ingestor.verify(&kb("ops")).unwrap().is_empty());
    let records = |fixture: &Fixture| {
        fixture
            .ingestor
            .catalog()
            .list(&fixture.active("ops"))
            .unwrap()
    };
    assert_eq!(records(&target), records(&source));
    let query = "boiler conductivity blow-down";
    let hits = |fixture: &Fixture| -> Vec<_> {
        fixture
            .lexical
            .search(query, &[fixture.active("ops")], 5)
            .unwrap()
            .into_iter()
            .map(|hit| hit.chunk)
            .collect()
    };
    assert_eq!(hits(&target), hits(&source));
    let again = target.ingestor.restore(backup.path()).unwrap_err();
    assert!(again.to_string().contains("already holds"), "{again}");
}

#[test]
fn a_restore_refuses_incomplete_newer_and_foreign_backups() {
    let source = fixture_with_documents();
    let backup = tempfile::tempdir().unwrap();
    source.ingestor.backup(backup.path(), &[]).unwrap();
    let target = Fixture::new(IngestConfig::default());

    let manifest_path = backup.path().join("MANIFEST.json");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    // A knowledge base embedded with a model this service does not load, or with another
    // dimension of it.
    let kb_model = "\"model\": \"multilingual-e5-small\"";
    assert!(manifest.contains(kb_model), "{manifest}");
    std::fs::write(
        &manifest_path,
        manifest.replace(kb_model, "\"model\": \"bge-m3\""),
    )
    .unwrap();
    let refused = target.ingestor.restore(backup.path()).unwrap_err();
    assert!(
        refused.to_string().contains("bge-m3") && refused.to_string().contains("does not load"),
        "{refused}"
    );
    std::fs::write(
        &manifest_path,
        manifest.replace("\"dimension\": 384", "\"dimension\": 1024"),
    )
    .unwrap();
    let refused = target.ingestor.restore(backup.path()).unwrap_err();
    assert!(
        refused.to_string().contains("configure the same model"),
        "{refused}"
    );

    std::fs::write(
        &manifest_path,
        manifest.replace("\"version\": 2", "\"version\": 99"),
    )
    .unwrap();
    let refused = target.ingestor.restore(backup.path()).unwrap_err();
    assert!(refused.to_string().contains("newer lumbung"), "{refused}");

    std::fs::write(
        &manifest_path,
        manifest.replace("\"lumbung-backup\"", "\"something-else\""),
    )
    .unwrap();
    let refused = target.ingestor.restore(backup.path()).unwrap_err();
    assert!(
        refused.to_string().contains("is not \"lumbung-backup\""),
        "{refused}"
    );

    std::fs::remove_file(&manifest_path).unwrap();
    let refused = target.ingestor.restore(backup.path()).unwrap_err();
    assert!(refused.to_string().contains("did not finish"), "{refused}");
    // Nothing was written by any refused restore.
    assert!(
        target
            .ingestor
            .catalog()
            .knowledge_bases()
            .unwrap()
            .is_empty()
    );
}

/// A document whose new versions fail (twice) keeps its last good version answering: the
/// catalog still accounts for its chunks (`lumbung check` passes), and a backup reads and
/// restores them.
#[test]
fn a_document_failing_again_keeps_its_served_version_checked_and_backed_up() {
    let source = fixture_with_documents();
    let dir = source.ingestor.root().join("ops");
    for empty in ["\n\n", "   \n"] {
        std::fs::write(dir.join("boiler.md"), empty).unwrap();
        source.ingestor.sync_kb(&kb("ops"), false, &|_| {}).unwrap();
        let records = source
            .ingestor
            .catalog()
            .list(&source.active("ops"))
            .unwrap();
        let boiler = records
            .iter()
            .find(|r| r.path.as_str() == "boiler.md")
            .unwrap();
        assert_eq!(
            boiler.state,
            lumbung_ingest::DocumentState::Failed,
            "{boiler:?}"
        );
        assert!(boiler.chunks > 0, "the old version's chunks stay counted");
        assert!(
            source.ingestor.verify(&kb("ops")).unwrap().is_empty(),
            "{:?}",
            source.ingestor.verify(&kb("ops"))
        );
        let hits = source
            .lexical
            .search("boiler conductivity blow-down", &[source.active("ops")], 5)
            .unwrap();
        assert!(hits[0].chunk.text.contains("conductivity"), "{hits:?}");
    }
    let backup = tempfile::tempdir().unwrap();
    let manifest = source.ingestor.backup(backup.path(), &[]).unwrap();
    assert!(manifest.knowledge_bases[0].chunks > 0, "{manifest:?}");
    let target = Fixture::new(IngestConfig::default());
    target.ingestor.restore(backup.path()).unwrap();
    assert!(target.ingestor.verify(&kb("ops")).unwrap().is_empty());
}
