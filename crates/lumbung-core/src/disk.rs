//! What a data directory takes on disk and what its file system has left.

use std::path::Path;

/// Bytes of the blocks allocated to `path` and everything under it, as `du` counts them:
/// qdrant-edge preallocates its files and writes into them, so their lengths say little.
/// Entries that vanish while it walks count as empty.
pub fn allocated_bytes(path: &Path) -> u64 {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let own = allocated(&metadata);
    if !metadata.is_dir() {
        return own;
    }
    own + std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| allocated_bytes(&entry.path()))
        .sum::<u64>()
}

#[cfg(unix)]
fn allocated(metadata: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    metadata.blocks() * 512
}

#[cfg(not(unix))]
fn allocated(metadata: &std::fs::Metadata) -> u64 {
    metadata.len()
}

/// Bytes an unprivileged process may still write on the file system holding `path`.
#[cfg(target_os = "linux")]
pub fn available_bytes(path: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Bytes an unprivileged process may still write on the file system holding `path`
/// (unknown here: reported as unlimited).
#[cfg(not(target_os = "linux"))]
pub fn available_bytes(_path: &Path) -> std::io::Result<u64> {
    Ok(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocated_bytes_count_written_blocks_not_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let sparse = dir.path().join("sparse");
        std::fs::File::create(&sparse)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/data"), vec![1u8; 1 << 20]).unwrap();
        let total = allocated_bytes(dir.path());
        assert!(
            (1 << 20..8 << 20).contains(&total),
            "a 64 MiB hole and 1 MiB of data took {total} bytes"
        );
        assert_eq!(allocated_bytes(&dir.path().join("absent")), 0);
        let available = available_bytes(dir.path()).unwrap();
        assert!(available > 0 && available < u64::MAX);
    }
}
