//! The data directory's format stamp: when chunks start being stored or embedded differently,
//! an older data directory is rebuilt from the watched folders instead of being read wrongly.

use std::path::Path;

use lumbung_core::ModelName;

use crate::{Error, Result};

/// What the data directory holds, and how it was made. Bump it whenever a change needs every
/// document indexed again, or one an older lumbung would misread. 2: chunks indexed and
/// embedded with their title and headings, with their language and their sentences'
/// embeddings. 3: generations (`name@N` keys, the catalog's generation and job tables), which
/// format 2 data already is as generation 1, so it is taken as it is. 4: one embedded vector
/// store per embedding model, `vectors/<model>/`; older data has `vectors/` of `[embedding]`'s
/// model, which is moved there.
pub const DATA_FORMAT: u32 = 4;

/// Formats this one reads as they are, once their vector store is moved under its model.
const COMPATIBLE_FORMATS: [u32; 2] = [2, 3];

const STAMP_FILE: &str = "FORMAT";

/// The embedded vector stores, one folder per embedding model.
const VECTORS_DIR: &str = "vectors";
/// The embedded vector store of `model` in the data directory `dir`.
pub fn embedded_vectors(dir: &Path, model: &ModelName) -> std::path::PathBuf {
    dir.join(VECTORS_DIR).join(model.as_str())
}

/// Where format 3's store is while it moves to `vectors/<model>`.
const VECTORS_MOVING: &str = "vectors.moving";
const VECTORS_NEW: &str = "vectors.new";

/// The parts of the data directory that depend on the format.
const PARTS: [&str; 5] = [
    "catalog.redb",
    "lexical",
    VECTORS_DIR,
    VECTORS_MOVING,
    VECTORS_NEW,
];

/// What [`prepare`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepared {
    /// The directory was in the current format, or empty.
    Current,
    /// The directory held the given older format: its indexes and catalog were removed, so
    /// every document is indexed again by the next sync.
    Rebuilt { from: u32 },
    /// The directory held an older format that is read as it is; only its stamp changed.
    Upgraded { from: u32 },
}

/// Makes `dir` hold the current format: an empty or new directory is stamped; one in an older
/// format loses its indexes and catalog (they are rebuilt from the watched folders, which is
/// what they were made from); one written by a newer lumbung is refused, untouched.
///
/// The stamp is written last, so a crash half-way leaves an unstamped directory that the next
/// start clears again.
#[allow(clippy::disallowed_methods, reason = "at start-up, from App::open")]
pub fn prepare(dir: &Path, model: &ModelName) -> Result<Prepared> {
    fs_err::create_dir_all(dir)?;
    let stamp = dir.join(STAMP_FILE);
    let written = match fs_err::read_to_string(&stamp) {
        Ok(text) => Some(text.trim().parse::<u32>().map_err(|_| {
            Error::Startup(format!(
                "{}: {text:?} is not a data format number",
                stamp.display()
            ))
        })?),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(err.into()),
    };
    let has_data = PARTS.iter().any(|part| dir.join(part).exists());
    let outcome = match written {
        Some(format) if format == DATA_FORMAT => return Ok(Prepared::Current),
        Some(format) if format > DATA_FORMAT => {
            return Err(Error::Startup(format!(
                "{} holds data format {format}, written by a newer lumbung; this one reads \
                 format {DATA_FORMAT}",
                dir.display()
            )));
        }
        Some(format) if COMPATIBLE_FORMATS.contains(&format) => {
            move_vectors_under_model(dir, model)?;
            tracing::info!(
                from = format,
                to = DATA_FORMAT,
                "data directory format upgraded in place"
            );
            Prepared::Upgraded { from: format }
        }
        Some(format) => Prepared::Rebuilt { from: format },
        // Before the stamp existed everything was format 1.
        None if has_data => Prepared::Rebuilt { from: 1 },
        None => Prepared::Current,
    };
    if let Prepared::Rebuilt { from } = outcome {
        tracing::warn!(
            dir = %dir.display(),
            from,
            to = DATA_FORMAT,
            "the data directory is in an older format: removing its indexes and catalog; every \
             document is indexed again from the watched folders, and searches answer from the \
             documents indexed so far"
        );
        for part in PARTS {
            let path = dir.join(part);
            if path.is_dir() {
                fs_err::remove_dir_all(&path)?;
            } else if path.exists() {
                fs_err::remove_file(&path)?;
            }
        }
    }
    let staged = stamp.with_extension("staged");
    fs_err::write(&staged, format!("{DATA_FORMAT}\n"))?;
    fs_err::rename(&staged, &stamp)?;
    Ok(outcome)
}

/// Moves an older data directory's single vector store (`vectors/`, of `[embedding]`'s model)
/// to `vectors/<model>/`, by three renames; each start after a crash half-way takes up where
/// it stopped, found by which of the three names exist.
#[allow(clippy::disallowed_methods, reason = "at start-up, from prepare")]
fn move_vectors_under_model(dir: &Path, model: &ModelName) -> Result<()> {
    let (vectors, moving, new) = (
        dir.join(VECTORS_DIR),
        dir.join(VECTORS_MOVING),
        dir.join(VECTORS_NEW),
    );
    if !new.exists() {
        if !moving.exists() {
            if !vectors.exists() {
                return Ok(());
            }
            fs_err::rename(&vectors, &moving)?;
        }
        fs_err::create_dir_all(&new)?;
        fs_err::rename(&moving, new.join(model.as_str()))?;
    }
    fs_err::rename(&new, &vectors)?;
    tracing::info!(model = %model, "embedded vector store moved under its model's name");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "tests set up files and wait")]
mod tests {
    use super::*;

    fn model() -> ModelName {
        ModelName::new("multilingual-e5-small").unwrap()
    }

    #[test]
    fn a_new_directory_is_stamped_and_then_current() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        assert_eq!(prepare(&data, &model()).unwrap(), Prepared::Current);
        assert_eq!(
            fs_err::read_to_string(data.join(STAMP_FILE)).unwrap(),
            format!("{DATA_FORMAT}\n")
        );
        fs_err::create_dir_all(data.join("lexical")).unwrap();
        assert_eq!(prepare(&data, &model()).unwrap(), Prepared::Current);
        assert!(data.join("lexical").exists(), "current data is kept");
    }

    #[test]
    fn an_unstamped_directory_with_data_is_format_one_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(dir.path().join("lexical/segment")).unwrap();
        fs_err::create_dir_all(dir.path().join("vectors")).unwrap();
        fs_err::write(dir.path().join("catalog.redb"), b"old").unwrap();
        fs_err::write(dir.path().join("notes.txt"), b"not ours").unwrap();
        assert_eq!(
            prepare(dir.path(), &model()).unwrap(),
            Prepared::Rebuilt { from: 1 }
        );
        for part in PARTS {
            assert!(!dir.path().join(part).exists(), "{part} left behind");
        }
        assert!(dir.path().join("notes.txt").exists());
        assert_eq!(prepare(dir.path(), &model()).unwrap(), Prepared::Current);
    }

    #[test]
    fn format_two_is_read_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join(STAMP_FILE), "2\n").unwrap();
        fs_err::write(dir.path().join("catalog.redb"), b"kept").unwrap();
        assert_eq!(
            prepare(dir.path(), &model()).unwrap(),
            Prepared::Upgraded { from: 2 }
        );
        assert!(dir.path().join("catalog.redb").exists());
        assert_eq!(prepare(dir.path(), &model()).unwrap(), Prepared::Current);
    }

    /// Format 3's one vector store moves under the model's name, also when a crash stopped
    /// the move after any of its renames.
    #[test]
    fn format_three_vectors_move_under_the_model_whatever_step_a_crash_stopped() {
        let layout = |dir: &Path, names: &[&str]| {
            for name in names {
                fs_err::create_dir_all(dir.join(name)).unwrap();
            }
            fs_err::write(dir.join(STAMP_FILE), "3\n").unwrap();
        };
        // Before the move; after the first rename; after the second.
        let stopped_at = [
            vec!["vectors/segments"],
            vec!["vectors.moving/segments"],
            vec!["vectors.new/multilingual-e5-small/segments"],
        ];
        for names in stopped_at {
            let dir = tempfile::tempdir().unwrap();
            layout(dir.path(), &names);
            assert_eq!(
                prepare(dir.path(), &model()).unwrap(),
                Prepared::Upgraded { from: 3 },
                "{names:?}"
            );
            assert!(
                dir.path()
                    .join("vectors/multilingual-e5-small/segments")
                    .is_dir(),
                "{names:?}"
            );
            assert!(!dir.path().join(VECTORS_MOVING).exists());
            assert!(!dir.path().join(VECTORS_NEW).exists());
            assert_eq!(prepare(dir.path(), &model()).unwrap(), Prepared::Current);
        }
    }

    #[test]
    fn a_newer_format_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(
            dir.path().join(STAMP_FILE),
            format!("{}\n", DATA_FORMAT + 1),
        )
        .unwrap();
        fs_err::write(dir.path().join("catalog.redb"), b"newer").unwrap();
        let err = prepare(dir.path(), &model()).unwrap_err().to_string();
        assert!(err.contains("newer lumbung"), "{err}");
        assert!(dir.path().join("catalog.redb").exists());
        fs_err::write(dir.path().join(STAMP_FILE), "two").unwrap();
        assert!(prepare(dir.path(), &model()).is_err());
    }
}
