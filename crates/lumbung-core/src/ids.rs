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

/// The name an embedding model is configured under (`[embedding]`'s `name`, or a key of
/// `[embedding_models]`): what a generation records it was embedded with, and what names the
/// model's vector store (a folder of the embedded store, a collection on Qdrant).
///
/// ASCII letters, digits, `-`, `_` and `.`, 1 to 64 characters, starting with a letter or a
/// digit, so that it is safe as a folder and collection name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModelName(String);

impl ModelName {
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let valid_chars = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        let valid_start = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
        if name.is_empty() || name.len() > 64 || !valid_chars || !valid_start {
            return Err(Error::invalid(
                "embedding_model",
                format!(
                    "{name:?} must be 1 to 64 characters of letters, digits, '-', '_' or '.', \
                     starting with a letter or digit"
                ),
            ));
        }
        Ok(ModelName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ModelName {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        ModelName::new(value)
    }
}

impl From<ModelName> for String {
    fn from(value: ModelName) -> Self {
        value.0
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One build of a knowledge base's indexes, numbered from 1. A rebuild (a reindex, a model
/// change) writes the next generation beside the active one, so searches go on reading the
/// active one until the new one is complete and is made active in one catalog transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Generation(u32);

impl Generation {
    /// The generation every knowledge base starts with.
    pub const FIRST: Generation = Generation(1);

    pub fn new(number: u32) -> Result<Self> {
        if number == 0 {
            return Err(Error::invalid(
                "generation",
                "generations are numbered from 1",
            ));
        }
        Ok(Generation(number))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    pub fn next(self) -> Generation {
        Generation(self.0.saturating_add(1))
    }
}

impl Default for Generation {
    fn default() -> Self {
        Generation::FIRST
    }
}

impl TryFrom<u32> for Generation {
    type Error = Error;
    fn try_from(value: u32) -> Result<Self> {
        Generation::new(value)
    }
}

impl From<Generation> for u32 {
    fn from(value: Generation) -> Self {
        value.0
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A knowledge base at one generation: what both indexes and the catalog are partitioned by,
/// and part of every chunk's id, so that two generations of one document never share a chunk.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KbGeneration {
    kb: KbName,
    generation: Generation,
    key: String,
}

/// Separates a knowledge base's name from its generation in [`KbGeneration::key`]; a name
/// cannot contain it.
const GENERATION_SEPARATOR: char = '@';

impl KbGeneration {
    pub fn new(kb: KbName, generation: Generation) -> Self {
        // The first generation keeps the key that data indexed before generations existed
        // has, so that such data is the first generation without being built again.
        let key = if generation == Generation::FIRST {
            kb.as_str().to_string()
        } else {
            format!("{kb}{GENERATION_SEPARATOR}{generation}")
        };
        KbGeneration {
            kb,
            generation,
            key,
        }
    }

    /// The first generation of `kb`.
    pub fn first(kb: KbName) -> Self {
        KbGeneration::new(kb, Generation::FIRST)
    }

    pub fn kb(&self) -> &KbName {
        &self.kb
    }

    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// What the indexes file this generation's chunks under: `name` for the first
    /// generation, `name@N` for the others.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The generation of an index key made by [`KbGeneration::key`].
    pub fn from_key(key: &str) -> Result<Self> {
        let (name, generation) = match key.split_once(GENERATION_SEPARATOR) {
            None => (key, Generation::FIRST),
            Some((name, number)) => {
                let number: u32 = number.parse().map_err(|_| {
                    Error::invalid("generation", format!("{key:?} has no generation number"))
                })?;
                let generation = Generation::new(number)?;
                if generation == Generation::FIRST {
                    return Err(Error::invalid(
                        "generation",
                        format!("{key:?}: the first generation has no number in its key"),
                    ));
                }
                (name, generation)
            }
        };
        Ok(KbGeneration::new(KbName::new(name)?, generation))
    }
}

impl fmt::Display for KbGeneration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
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

/// A chunk's id, derived from (knowledge base and generation, document path, content hash,
/// ordinal), so that re-running any ingest step after a crash writes the same ids instead of
/// duplicates, and two generations of a document never share one.
///
/// 128 bits: it is used as a UUID in the vector store and as a hex term in the lexical index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChunkId(u128);

impl ChunkId {
    pub fn derive(
        kb: &KbGeneration,
        path: &DocumentPath,
        hash: &ContentHash,
        ordinal: u32,
    ) -> Self {
        let mut hasher = blake3::Hasher::new();
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        for part in [kb.key(), path.as_str(), hash.as_str()] {
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
    fn generation_keys_round_trip_and_keep_the_first_generation_unmarked() {
        let kb = KbName::new("it-helpdesk").unwrap();
        let first = KbGeneration::first(kb.clone());
        assert_eq!(first.key(), "it-helpdesk");
        let third = KbGeneration::new(kb, Generation::new(3).unwrap());
        assert_eq!(third.key(), "it-helpdesk@3");
        for generation in [&first, &third] {
            assert_eq!(
                &KbGeneration::from_key(generation.key()).unwrap(),
                generation
            );
        }
        for bad in ["it@1", "it@", "it@x", "it@0", "IT", "@2"] {
            assert!(KbGeneration::from_key(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Generation::new(0).is_err());
    }

    #[test]
    fn chunk_ids_are_deterministic_and_distinct() {
        let kb = KbGeneration::first(KbName::new("kb").unwrap());
        let path = DocumentPath::new("a.md").unwrap();
        let hash = ContentHash::of_bytes(b"hello");
        let a = ChunkId::derive(&kb, &path, &hash, 0);
        assert_eq!(a, ChunkId::derive(&kb, &path, &hash, 0));
        assert_ne!(a, ChunkId::derive(&kb, &path, &hash, 1));
        let other = DocumentPath::new("b.md").unwrap();
        assert_ne!(a, ChunkId::derive(&kb, &other, &hash, 0));
        let next = KbGeneration::new(kb.kb().clone(), Generation::FIRST.next());
        assert_ne!(a, ChunkId::derive(&next, &path, &hash, 0));
        assert_eq!(ChunkId::from_hex(&a.to_hex()).unwrap(), a);
        assert_eq!(ChunkId::from_hex(&a.to_uuid_string()).unwrap(), a);
    }
}
