use std::sync::Arc;

use lumbung_index::contract::{Doc, ids_of};
use lumbung_index::{Error, LexicalIndex, TantivyLexicalIndex};

fn open(dir: &tempfile::TempDir) -> TantivyLexicalIndex {
    TantivyLexicalIndex::open(dir.path()).unwrap()
}

lumbung_index::lexical_index_contract!(|| {
    let dir = tempfile::tempdir().unwrap();
    let index: Arc<dyn LexicalIndex> = Arc::new(open(&dir));
    (dir, index)
});

#[test]
fn a_snapshot_reads_its_own_commit_whatever_is_committed_later() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(&dir);
    let a = Doc::new("a", "one.md", "v1");
    let b = Doc::new("b", "two.md", "v1");
    index
        .replace_document(&a.kb, &a.path, &a.chunks(&["boiler pressure check"]))
        .unwrap();
    index.commit().unwrap();
    let before = index.snapshot();
    index
        .replace_document(&b.kb, &b.path, &b.chunks(&["boiler pressure valve"]))
        .unwrap();
    index.delete_document(&a.kb, &a.path).unwrap();
    index.commit().unwrap();
    let scope = [a.kb.clone(), b.kb.clone()];
    assert_eq!(
        ids_of(&before.search("boiler", &scope, 10).unwrap()),
        [a.id(0)]
    );
    assert_eq!(before.get_chunks(&[a.id(0), b.id(0)]).unwrap().len(), 1);
    assert_eq!(
        ids_of(&index.search("boiler", &scope, 10).unwrap()),
        [b.id(0)]
    );
}

#[test]
fn committed_data_survives_reopening_and_uncommitted_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let committed = Doc::new("safety", "ppe.md", "v1");
    let staged = Doc::new("safety", "draft.md", "v1");
    {
        let index = open(&dir);
        index
            .replace_document(
                &committed.kb,
                &committed.path,
                &committed.chunks(&["wear a helmet on site"]),
            )
            .unwrap();
        index.commit().unwrap();
        index
            .replace_document(&staged.kb, &staged.path, &staged.chunks(&["helmet draft"]))
            .unwrap();
        assert!(
            matches!(
                TantivyLexicalIndex::open(dir.path()),
                Err(Error::Tantivy(_))
            ),
            "the writer lock is held"
        );
    }
    let index = open(&dir);
    assert_eq!(index.count_chunks(&committed.kb, None).unwrap(), 1);
    let hits = index
        .search("helmet", std::slice::from_ref(&committed.kb), 10)
        .unwrap();
    assert_eq!(ids_of(&hits), [committed.id(0)]);
    assert_eq!(
        hits[0].chunk,
        committed.chunks(&["wear a helmet on site"])[0]
    );
}

#[test]
fn an_index_from_another_analyzer_version_is_analysed_again_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let stamp = dir.path().join("lumbung-analyzer");
    let doc = Doc::new("plant", "forms.md", "v1");
    let chunks = doc.chunks(&["Form PPR-9087 goes to the shift leader.", "Unrelated."]);
    {
        let index = open(&dir);
        index.replace_document(&doc.kb, &doc.path, &chunks).unwrap();
        index.commit().unwrap();
    }
    let current = lumbung_index::analyzer::ANALYZER_VERSION;
    assert_eq!(std::fs::read_to_string(&stamp).unwrap(), current);

    std::fs::write(&stamp, "0 (an older analyzer)").unwrap();
    let index = open(&dir);
    assert_eq!(std::fs::read_to_string(&stamp).unwrap(), current);
    // Every chunk is there once, with all its fields, and searchable.
    assert_eq!(index.count_chunks(&doc.kb, None).unwrap(), 2);
    assert_eq!(index.get_chunks(&[doc.id(0), doc.id(1)]).unwrap(), chunks);
    let hits = index
        .search("ppr-9087", std::slice::from_ref(&doc.kb), 10)
        .unwrap();
    assert_eq!(ids_of(&hits), [doc.id(0)]);
}

#[test]
fn an_index_written_with_another_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut builder = tantivy::schema::Schema::builder();
    builder.add_text_field("text", tantivy::schema::TEXT | tantivy::schema::STORED);
    tantivy::Index::create_in_dir(dir.path(), builder.build()).unwrap();
    let err = TantivyLexicalIndex::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::IncompatibleFormat(_)), "{err:?}");
}

/// Every edit of a document deletes its old chunks: a segment a fifth deleted is merged away
/// on its own, where tantivy's default policy waits for eight segments of its size.
#[test]
fn deleted_chunks_are_merged_away() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(&dir);
    let texts: Vec<String> = (0..4)
        .map(|i| format!("torque step {i} of the press"))
        .collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    for n in 0..50 {
        let doc = Doc::new("work", &format!("wi-{n}.md"), "v1");
        index
            .replace_document(&doc.kb, &doc.path, &doc.chunks(&texts))
            .unwrap();
    }
    index.commit().unwrap();
    // A third of the documents edited: their 60 old chunks deleted, 60 new ones added.
    for n in 0..15 {
        let doc = Doc::new("work", &format!("wi-{n}.md"), "v2");
        index
            .replace_document(&doc.kb, &doc.path, &doc.chunks(&texts))
            .unwrap();
    }
    index.commit().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let sizes = index.segment_sizes().unwrap();
        let deleted: u32 = sizes.iter().map(|(_, deleted)| deleted).sum();
        let docs: u32 = sizes.iter().map(|(docs, _)| docs).sum();
        if deleted == 0 {
            assert_eq!(docs, 200, "{sizes:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deleted chunks still held: {sizes:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
