//! Finding the knowledge bases and their files under the watched root.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use lumbung_core::{DocumentPath, KbName};

use crate::{Error, Result, SETTINGS_FILE};

/// A file found in a knowledge-base folder, before it is read.
#[derive(Debug, Clone)]
pub struct FoundFile {
    pub path: DocumentPath,
    pub absolute: PathBuf,
    pub size_bytes: u64,
    pub mtime_ms: i64,
}

/// Files that editors, office suites and downloads leave behind while they work, and hidden
/// files: never documents.
pub fn is_ignored(file_name: &str) -> bool {
    let lower = file_name.to_ascii_lowercase();
    file_name.starts_with('.')
        || file_name.starts_with("~$")
        || file_name.ends_with('~')
        || [".tmp", ".part", ".crdownload", ".swp"]
            .iter()
            .any(|ext| lower.ends_with(ext))
}

/// Sub-folders of `root` whose names are valid knowledge-base names, sorted. Other folders are
/// logged and left alone.
pub fn knowledge_base_folders(root: &Path) -> Result<Vec<KbName>> {
    let mut kbs = Vec::new();
    let entries = fs_err::read_dir(root).map_err(|err| Error::io(root, err))?;
    for entry in entries {
        let entry = entry.map_err(|err| Error::io(root, err))?;
        if !entry
            .file_type()
            .map_err(|err| Error::io(&entry.path(), err))?
            .is_dir()
        {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_ignored(&name) {
            continue;
        }
        match KbName::new(name.clone()) {
            Ok(kb) => kbs.push(kb),
            Err(err) => {
                tracing::warn!(folder = %name, error = %err, "folder is not a knowledge base")
            }
        }
    }
    kbs.sort();
    Ok(kbs)
}

/// Every non-ignored file under `kb_root`, recursively, sorted by path.
pub fn files_of(kb_root: &Path) -> Result<Vec<FoundFile>> {
    let mut found = Vec::new();
    let mut pending = vec![kb_root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs_err::read_dir(&dir).map_err(|err| Error::io(&dir, err))? {
            let entry = entry.map_err(|err| Error::io(&dir, err))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_ignored(&name) {
                continue;
            }
            let absolute = entry.path();
            let metadata = fs_err::metadata(&absolute).map_err(|err| Error::io(&absolute, err))?;
            if metadata.is_dir() {
                pending.push(absolute);
                continue;
            }
            if !metadata.is_file() {
                continue;
            }
            let relative = absolute.strip_prefix(kb_root).unwrap_or(&absolute);
            if relative == Path::new(SETTINGS_FILE) {
                continue;
            }
            let relative: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let path = match DocumentPath::new(relative.join("/")) {
                Ok(path) => path,
                Err(err) => {
                    tracing::warn!(file = %absolute.display(), error = %err, "file name not usable");
                    continue;
                }
            };
            let mtime_ms = metadata
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64);
            found.push(FoundFile {
                path,
                absolute,
                size_bytes: metadata.len(),
                mtime_ms,
            });
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_and_hidden_files_are_ignored() {
        for name in [
            "~$report.docx",
            ".~lock.a.xlsx#",
            "x.tmp",
            "y.PART",
            ".DS_Store",
            "z.md~",
        ] {
            assert!(is_ignored(name), "{name}");
        }
        for name in ["report.docx", "vpn.md", "tmp-notes.txt"] {
            assert!(!is_ignored(name), "{name}");
        }
    }

    #[test]
    fn finds_files_recursively_with_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let kb = dir.path().join("kb");
        fs_err::create_dir_all(kb.join("sub")).unwrap();
        fs_err::write(kb.join("a.md"), "a").unwrap();
        fs_err::write(kb.join("sub/b.txt"), "b").unwrap();
        fs_err::write(kb.join("sub/~$c.docx"), "c").unwrap();
        fs_err::write(kb.join(SETTINGS_FILE), "title = \"A\"").unwrap();
        fs_err::write(kb.join("sub").join(SETTINGS_FILE), "a document after all").unwrap();
        fs_err::create_dir_all(dir.path().join("Not A Kb")).unwrap();
        let paths: Vec<String> = files_of(&kb)
            .unwrap()
            .into_iter()
            .map(|f| f.path.to_string())
            .collect();
        assert_eq!(paths, ["a.md", "sub/b.txt", "sub/kb.toml"]);
        let kbs: Vec<String> = knowledge_base_folders(dir.path())
            .unwrap()
            .iter()
            .map(|k| k.to_string())
            .collect();
        assert_eq!(kbs, ["kb"]);
    }
}
