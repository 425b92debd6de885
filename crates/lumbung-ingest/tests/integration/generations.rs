//! A rebuild stopped by a shutdown is resumed by the next start and ends with one generation;
//! a knowledge base is embedded with the model its settings name.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lumbung_core::{Generation, IngestConfig, KbGeneration};
use lumbung_ingest::{JobState, KbSettings};

use crate::{Fixture, SECOND_MODEL, kb, model_name};

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

/// A knowledge base whose `kb.toml` names the second model is embedded with it, into that
/// model's store only, and a rebuild after the line is removed moves it back. Deleted with its
/// folder kept and created again, its fresh generation takes the model its settings name then.
#[test]
fn a_knowledge_base_is_embedded_with_the_model_its_settings_name() {
    let fixture = Fixture::with_second_model(IngestConfig {
        retire_after_ms: 0,
        ..IngestConfig::default()
    });
    let second = fixture.second_vectors.clone().unwrap();
    let ingestor = &fixture.ingestor;
    let dir = fixture.kb_dir("kiln");
    std::fs::write(
        dir.join("kiln.md"),
        "# Kiln K-3\n\nRelight the burner of kiln K-3 only after a purge of five minutes.\n",
    )
    .unwrap();
    let settings = |model: Option<&str>| {
        let settings = KbSettings {
            embedding_model: model.map(str::to_string),
            ..KbSettings::default()
        };
        std::fs::write(
            dir.join("kb.toml"),
            toml_line(settings.embedding_model.as_deref()),
        )
        .unwrap();
        settings
    };
    settings(Some(SECOND_MODEL));
    ingestor.sync_kb(&kb("kiln"), false, &|_| {}).unwrap();
    let (first, model) = ingestor.serving(&kb("kiln")).unwrap();
    assert_eq!(model.as_str(), SECOND_MODEL);
    assert_eq!(second.count(&first, None).unwrap(), 1);
    assert_eq!(fixture.vectors.count(&first, None).unwrap(), 0);
    assert!(ingestor.verify(&kb("kiln")).unwrap().is_empty());

    // Back to the default model by a rebuild; the second model's store lets go of it.
    settings(None);
    assert_eq!(
        ingestor.status(&kb("kiln")).unwrap().next_model,
        Ok(model_name())
    );
    ingestor.start_reindex(&kb("kiln")).unwrap();
    ingestor.wait_for_job(&kb("kiln"));
    let (rebuilt, model) = ingestor.serving(&kb("kiln")).unwrap();
    assert_eq!((rebuilt.generation().get(), model), (2, model_name()));
    assert_eq!(fixture.vectors.count(&rebuilt, None).unwrap(), 1);
    assert_eq!(second.count(&first, None).unwrap(), 0);
    assert!(ingestor.verify(&kb("kiln")).unwrap().is_empty());

    // Deleted, folder kept; taken back naming the second model again.
    ingestor.delete_kb(&kb("kiln"), false).unwrap();
    let wanted = settings(Some(SECOND_MODEL));
    ingestor.create_kb(&kb("kiln"), &wanted).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let serving = loop {
        let (generation, model) = ingestor.serving(&kb("kiln")).unwrap();
        if second.count(&generation, None).unwrap() == 1 {
            break (generation, model);
        }
        assert!(
            Instant::now() < deadline,
            "the taken-back folder was not indexed"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(serving.1.as_str(), SECOND_MODEL);
    assert!(serving.0.generation().get() > 2);
    // The sync `create_kb` started holds the ingestor until it ends; the stores must close
    // before the fixture's folder goes.
    while Arc::strong_count(&fixture.ingestor) > 1 {
        assert!(Instant::now() < deadline, "the create thread did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn toml_line(model: Option<&str>) -> String {
    model.map_or_else(String::new, |model| {
        format!("embedding_model = \"{model}\"\n")
    })
}
