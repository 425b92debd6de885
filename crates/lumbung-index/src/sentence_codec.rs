//! The stored form of a chunk's sentences: their byte ranges and quantized embeddings, in one
//! little-endian blob per chunk.
//!
//! `version u8 = 1`, `count u32`, then per sentence `start u32`, `end u32`, `dimension u16`
//! (0 when the sentence has no embedding) and, when it has one, `scale f32` and `dimension`
//! signed bytes.

use lumbung_core::{QuantizedVector, Sentence};

use crate::{Error, Result};

const VERSION: u8 = 1;

pub fn encode(sentences: &[Sentence]) -> Vec<u8> {
    let dimension = |s: &Sentence| s.embedding.as_ref().map_or(0, QuantizedVector::dimension);
    let size = 5 + sentences
        .iter()
        .map(|s| 10 + dimension(s) + if dimension(s) > 0 { 4 } else { 0 })
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.push(VERSION);
    out.extend_from_slice(&(sentences.len() as u32).to_le_bytes());
    for sentence in sentences {
        out.extend_from_slice(&sentence.range.start.to_le_bytes());
        out.extend_from_slice(&sentence.range.end.to_le_bytes());
        match &sentence.embedding {
            Some(vector) if vector.dimension() > 0 => {
                // Dimensions are model sizes (384, 768, 1024): far below u16::MAX.
                out.extend_from_slice(&(vector.dimension() as u16).to_le_bytes());
                out.extend_from_slice(&vector.scale().to_le_bytes());
                out.extend(vector.values().iter().map(|v| v.to_le_bytes()[0]));
            }
            _ => out.extend_from_slice(&0u16.to_le_bytes()),
        }
    }
    out
}

pub fn decode(bytes: &[u8]) -> Result<Vec<Sentence>> {
    let mut reader = Reader { bytes, at: 0 };
    let version = reader.take(1)?[0];
    if version != VERSION {
        return Err(Error::InvalidStoredData(format!(
            "sentences stored in format {version}, expected {VERSION}"
        )));
    }
    let count = reader.u32()? as usize;
    // Each sentence takes at least 10 bytes: a count beyond that is corrupt, not a reason to
    // reserve memory.
    if count > bytes.len() / 10 {
        return Err(Error::InvalidStoredData(format!(
            "{count} sentences in {} bytes",
            bytes.len()
        )));
    }
    let mut sentences = Vec::with_capacity(count);
    for _ in 0..count {
        let start = reader.u32()?;
        let end = reader.u32()?;
        let dimension = usize::from(u16::from_le_bytes(reader.array()?));
        let embedding = if dimension == 0 {
            None
        } else {
            let scale = f32::from_le_bytes(reader.array()?);
            let values = reader
                .take(dimension)?
                .iter()
                .map(|b| i8::from_le_bytes([*b]))
                .collect();
            Some(QuantizedVector::from_parts(scale, values))
        };
        sentences.push(Sentence {
            range: start..end,
            embedding,
        });
    }
    if reader.at != bytes.len() {
        return Err(Error::InvalidStoredData(format!(
            "{} bytes after the last sentence",
            bytes.len() - reader.at
        )));
    }
    Ok(sentences)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let slice = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or_else(|| Error::InvalidStoredData("sentences cut short".to_string()))?;
        self.at += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let slice = self.take(N)?;
        let mut array = [0u8; N];
        array.copy_from_slice(slice);
        Ok(array)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_round_trip_with_and_without_embeddings() {
        let sentences = vec![
            Sentence {
                range: 0..12,
                embedding: Some(QuantizedVector::quantize(&[0.6, -0.8, 0.0])),
            },
            Sentence {
                range: 13..40,
                embedding: None,
            },
        ];
        let bytes = encode(&sentences);
        assert_eq!(decode(&bytes).unwrap(), sentences);
        assert_eq!(decode(&encode(&[])).unwrap(), Vec::new());
    }

    #[test]
    fn corrupt_blobs_are_errors_not_panics() {
        let bytes = encode(&[Sentence {
            range: 0..5,
            embedding: Some(QuantizedVector::quantize(&[1.0; 8])),
        }]);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        let mut other_version = bytes;
        other_version[0] = 9;
        assert!(decode(&other_version).is_err());
        assert!(decode(&[VERSION, 255, 255, 255, 255]).is_err());
    }
}
