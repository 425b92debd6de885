//! A rebuild stopped by a shutdown is resumed by the next start and ends with one generation.

use lumbung_core::{Generation, IngestConfig, KbGeneration};
use lumbung_ingest::JobState;

use crate::{Fixture, kb};

#[test]
fn a_rebuild_stopped_by_a_shutdown_resumes_and_swaps() {
    let fixture = Fixture::new(IngestConfig {
        retire_after_ms: 0,
        ..IngestConfig::default()
    });
    let dir = fixture.kb_dir("line");
    for i in 0..12 {
        std::fs::write(
            dir.join(format!("step-{i:02}.md")),
            format!(
                "# Step {i}\n\nTighten clamp C-{i} to {} Nm before the press cycles.\n",
                20 + i
            ),
        )
        .unwrap();
    }
    let ingestor = &fixture.ingestor;
    ingestor.sync_kb(&kb("line"), false, &|_| {}).unwrap();
    let first = fixture.active("line");
    let first_rows = ingestor.catalog().list(&first).unwrap();

    let started = ingestor.start_reindex(&kb("line")).unwrap();
    assert_eq!(started.id, "line@2");
    // A shutdown: the build stops between two documents and stays recorded as building.
    ingestor.stop_jobs();
    let generations = ingestor.catalog().generations(&kb("line")).unwrap();
    let second = Generation::FIRST.next();
    if generations.building == Some(second) {
        assert_eq!(generations.active, Generation::FIRST);
        assert_eq!(ingestor.catalog().list(&first).unwrap(), first_rows);
        assert!(ingestor.verify(&kb("line")).unwrap().is_empty());
        assert_eq!(
            ingestor
                .job_status(&kb("line"))
                .unwrap()
                .unwrap()
                .record
                .state,
            JobState::Running
        );
        assert_eq!(ingestor.resume_jobs().unwrap(), ["line@2"]);
        ingestor.wait_for_job(&kb("line"));
    }
    // Resumed (or, on a fast machine, finished before the stop): the second generation serves.
    let generations = ingestor.catalog().generations(&kb("line")).unwrap();
    assert_eq!((generations.active, generations.building), (second, None));
    assert!(generations.retired.is_empty(), "{generations:?}");
    assert_eq!(
        ingestor
            .job_status(&kb("line"))
            .unwrap()
            .unwrap()
            .record
            .state,
        JobState::Succeeded
    );
    let rebuilt = KbGeneration::new(kb("line"), second);
    assert_eq!(ingestor.catalog().list(&rebuilt).unwrap().len(), 12);
    assert!(ingestor.catalog().list(&first).unwrap().is_empty());
    assert_eq!(fixture.lexical.count_chunks(&first, None).unwrap(), 0);
    assert_eq!(fixture.vectors.count(&first, None).unwrap(), 0);
    assert!(ingestor.verify(&kb("line")).unwrap().is_empty());
    // A sync after the swap writes the new generation.
    std::fs::write(dir.join("step-99.md"), "# Step 99\n\nRelease clamp C-99.\n").unwrap();
    let report = ingestor.sync_kb(&kb("line"), false, &|_| {}).unwrap();
    assert_eq!(report.indexed, 1);
    assert_eq!(ingestor.catalog().list(&rebuilt).unwrap().len(), 13);

    // Its folder removed: its documents go, and then the knowledge base, rebuilt or not.
    std::fs::remove_dir_all(&dir).unwrap();
    let report = ingestor.sync_all(false, &|_| {}).unwrap();
    assert_eq!(report.removed, 13);
    assert!(ingestor.knowledge_bases().unwrap().is_empty());
    assert!(ingestor.catalog().knowledge_bases().unwrap().is_empty());
    assert!(ingestor.registry().is_empty());
}
