use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The name of a knowledge base: the name of its folder under the watched root.
///
/// Lower-case ASCII letters, digits, `-` and `_`, 1 to 64 characters, starting with a letter or a
/// digit, so that it is safe as a folder name, an index term and a filter value everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KbName(String);

impl KbName {
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let valid_chars = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        let valid_start = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
        if name.is_empty() || name.len() > 64 || !valid_chars || !valid_start {
            return Err(Error::invalid(
                "knowledge_base",
                format!(
                    "{name:?} must be 1 to 64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit"
                ),
            ));
        }
        Ok(KbName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KbName {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        KbName::new(value)
    }
}

impl From<KbName> for String {
    fn from(value: KbName) -> Self {
        value.0
    }
}

impl fmt::Display for KbName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A document's path relative to its knowledge-base folder, with `/` separators.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DocumentPath(String);

impl DocumentPath {
    pub fn new(path: impl Into<String>) -> Result<Self> {
        let path = path.into();
        let bad_component = path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
        if path.is_empty() || path.contains('\\') || path.contains('\0') || bad_component {
            return Err(Error::invalid(
                "document_path",
                format!("{path:?} must be a relative path with '/' separators and no '.' or '..'"),
            ));
        }
        Ok(DocumentPath(path))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lower-cased file extension, if any.
    pub fn extension(&self) -> Option<String> {
        let file_name = self.0.rsplit('/').next().unwrap_or(&self.0);
        let (stem, ext) = file_name.rsplit_once('.')?;
        (!stem.is_empty()).then(|| ext.to_ascii_lowercase())
    }

    /// The file name without its extension (`guides/vpn-access.md` -> `vpn-access`); a name
    /// that starts with its only dot (`.profile`) is its own stem.
    pub fn file_stem(&self) -> &str {
        let name = self.0.rsplit('/').next().unwrap_or(&self.0);
        match name.rsplit_once('.') {
            Some((stem, _)) if !stem.is_empty() => stem,
            _ => name,
        }
    }
}

impl TryFrom<String> for DocumentPath {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        DocumentPath::new(value)
    }
}

impl From<DocumentPath> for String {
    fn from(value: DocumentPath) -> Self {
        value.0
    }
}

impl fmt::Display for DocumentPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The blake3 hash of a file's bytes, as lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContentHash(String);

impl ContentHash {
    pub fn of_bytes(bytes: &[u8]) -> Self {
        ContentHash(blake3::hash(bytes).to_hex().to_string())
    }

    pub fn from_hex(hex: impl Into<String>) -> Self {
        ContentHash(hex.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A chunk's id, derived from (knowledge base, document path, content hash, ordinal), so that
/// re-running any ingest step after a crash writes the same ids instead of duplicates.
///
/// 128 bits: it is used as a UUID in the vector store and as a hex term in the lexical index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChunkId(u128);

impl ChunkId {
    pub fn derive(kb: &KbName, path: &DocumentPath, hash: &ContentHash, ordinal: u32) -> Self {
        let mut hasher = blake3::Hasher::new();
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        for part in [kb.as_str(), path.as_str(), hash.as_str()] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.update(&ordinal.to_le_bytes());
        let digest = hasher.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest.as_bytes()[..16]);
        ChunkId(u128::from_be_bytes(bytes))
    }

    pub fn from_u128(value: u128) -> Self {
        ChunkId(value)
    }

    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// The id as 32 lower-case hex digits.
    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }

    pub fn from_hex(hex: &str) -> Result<Self> {
        let hex = hex.replace('-', "");
        if hex.len() != 32 {
            return Err(Error::invalid(
                "chunk_id",
                format!("{hex:?} is not 32 hex digits"),
            ));
        }
        u128::from_str_radix(&hex, 16)
            .map(ChunkId)
            .map_err(|err| Error::invalid("chunk_id", format!("{hex:?}: {err}")))
    }

    /// The id in UUID text form (8-4-4-4-12), as the vector store expects.
    pub fn to_uuid_string(self) -> String {
        let h = self.to_hex();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kb_names_are_validated() {
        assert!(KbName::new("it-helpdesk").is_ok());
        assert!(KbName::new("safety_zh2").is_ok());
        for bad in ["", "IT", "-x", "a b", "a/b", &"x".repeat(65)] {
            assert!(KbName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn document_paths_reject_escapes() {
        assert!(DocumentPath::new("faq/vpn.md").is_ok());
        for bad in ["", "../x", "a//b", "/abs", "a\\b", "./a"] {
            assert!(DocumentPath::new(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            DocumentPath::new("a/B.PDF").unwrap().extension().as_deref(),
            Some("pdf")
        );
        assert_eq!(DocumentPath::new("a/.hidden").unwrap().extension(), None);
    }

    #[test]
    fn file_stem_is_the_last_component_without_extension() {
        let stem = |p: &str| DocumentPath::new(p).unwrap().file_stem().to_string();
        assert_eq!(stem("dir/sub/printer-setup.md"), "printer-setup");
        assert_eq!(stem("archive.tar.txt"), "archive.tar");
        assert_eq!(stem(".hidden"), ".hidden");
        assert_eq!(stem("README"), "README");
    }

    #[test]
    fn chunk_ids_are_deterministic_and_distinct() {
        let kb = KbName::new("kb").unwrap();
        let path = DocumentPath::new("a.md").unwrap();
        let hash = ContentHash::of_bytes(b"hello");
        let a = ChunkId::derive(&kb, &path, &hash, 0);
        assert_eq!(a, ChunkId::derive(&kb, &path, &hash, 0));
        assert_ne!(a, ChunkId::derive(&kb, &path, &hash, 1));
        let other = DocumentPath::new("b.md").unwrap();
        assert_ne!(a, ChunkId::derive(&kb, &other, &hash, 0));
        assert_eq!(ChunkId::from_hex(&a.to_hex()).unwrap(), a);
        assert_eq!(ChunkId::from_hex(&a.to_uuid_string()).unwrap(), a);
    }
}
