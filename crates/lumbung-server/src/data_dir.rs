//! The data directory's format stamp: when chunks start being stored or embedded differently,
//! an older data directory is rebuilt from the watched folders instead of being read wrongly.

use std::path::Path;

use crate::{Error, Result};

/// What the data directory holds, and how it was made. Bump it whenever a change needs every
/// document indexed again, or one an older lumbung would misread. 2: chunks indexed and
/// embedded with their title and headings, with their language and their sentences'
/// embeddings. 3: generations (`name@N` keys, the catalog's generation and job tables), which
/// format 2 data already is as generation 1, so it is taken as it is.
pub const DATA_FORMAT: u32 = 3;

/// Formats this one reads as they are: only the stamp changes.
const COMPATIBLE_FORMATS: [u32; 1] = [2];

const STAMP_FILE: &str = "FORMAT";

/// The parts of the data directory that depend on the format.
const PARTS: [&str; 3] = ["catalog.redb", "lexical", "vectors"];

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
pub fn prepare(dir: &Path) -> Result<Prepared> {
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

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "tests set up files and wait")]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_is_stamped_and_then_current() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        assert_eq!(prepare(&data).unwrap(), Prepared::Current);
        assert_eq!(
            fs_err::read_to_string(data.join(STAMP_FILE)).unwrap(),
            format!("{DATA_FORMAT}\n")
        );
        fs_err::create_dir_all(data.join("lexical")).unwrap();
        assert_eq!(prepare(&data).unwrap(), Prepared::Current);
        assert!(data.join("lexical").exists(), "current data is kept");
    }

    #[test]
    fn an_unstamped_directory_with_data_is_format_one_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(dir.path().join("lexical/segment")).unwrap();
        fs_err::create_dir_all(dir.path().join("vectors")).unwrap();
        fs_err::write(dir.path().join("catalog.redb"), b"old").unwrap();
        fs_err::write(dir.path().join("notes.txt"), b"not ours").unwrap();
        assert_eq!(prepare(dir.path()).unwrap(), Prepared::Rebuilt { from: 1 });
        for part in PARTS {
            assert!(!dir.path().join(part).exists(), "{part} left behind");
        }
        assert!(dir.path().join("notes.txt").exists());
        assert_eq!(prepare(dir.path()).unwrap(), Prepared::Current);
    }

    #[test]
    fn format_two_is_read_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join(STAMP_FILE), "2\n").unwrap();
        fs_err::write(dir.path().join("catalog.redb"), b"kept").unwrap();
        assert_eq!(prepare(dir.path()).unwrap(), Prepared::Upgraded { from: 2 });
        assert!(dir.path().join("catalog.redb").exists());
        assert_eq!(prepare(dir.path()).unwrap(), Prepared::Current);
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
        let err = prepare(dir.path()).unwrap_err().to_string();
        assert!(err.contains("newer lumbung"), "{err}");
        assert!(dir.path().join("catalog.redb").exists());
        fs_err::write(dir.path().join(STAMP_FILE), "two").unwrap();
        assert!(prepare(dir.path()).is_err());
    }
}
