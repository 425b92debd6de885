//! Zip files built in tests: ordinary packages through the zip crate, and zip bombs assembled
//! from one compressed block repeated, which takes milliseconds instead of compressing
//! hundreds of megabytes.

use std::io::{Cursor, Write};

use flate2::{Compress, Compression, Crc, FlushCompress};
use zip::write::SimpleFileOptions;

/// A zip with the given members, compressed as Word and Excel do.
pub fn package(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in members {
        writer
            .start_file(*name, SimpleFileOptions::default())
            .unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// The same members stored uncompressed, so that changing a byte of the file changes the XML
/// the parser sees instead of breaking the compressed stream.
pub fn stored_package(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, content) in members {
        writer.start_file(*name, options).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// The members of a zip, in order.
pub fn members(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut member = archive.by_index(i).unwrap();
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut member, &mut content).unwrap();
            (member.name().unwrap().to_string(), content)
        })
        .collect()
}

/// A member whose content is `head`, then `unit` `copies` times, then `tail`, deflated.
pub struct Repeated<'a> {
    pub name: &'a str,
    pub head: &'a [u8],
    pub unit: &'a [u8],
    pub copies: usize,
    pub tail: &'a [u8],
}

/// A zip of small ordinary members and one repeated member, with honest sizes and checksums
/// unless `declared_size` overrides the repeated member's unpacked size (a lying header).
pub fn bomb(
    small: &[(&str, &[u8])],
    repeated: &Repeated<'_>,
    declared_size: Option<u32>,
) -> Vec<u8> {
    let mut entries: Vec<Entry> = small
        .iter()
        .map(|(name, content)| {
            let mut crc = Crc::new();
            crc.update(content);
            Entry {
                name: name.to_string(),
                method: 0,
                data: content.to_vec(),
                crc: crc.sum(),
                size: content.len() as u32,
            }
        })
        .collect();
    entries.push(deflate_repeated(repeated, declared_size));
    assemble(&entries)
}

struct Entry {
    name: String,
    /// 0 stored, 8 deflated.
    method: u16,
    data: Vec<u8>,
    crc: u32,
    size: u32,
}

/// Deflates `head`, `unit` and `tail` once each, flushing fully after each so that no block
/// refers back across the boundary; the unit's blocks can then be repeated as they are.
fn deflate_repeated(repeated: &Repeated<'_>, declared_size: Option<u32>) -> Entry {
    let mut compress = Compress::new(Compression::best(), false);
    let mut data = Vec::new();
    let mut block = |input: &[u8], flush| {
        let mut out = Vec::with_capacity(input.len() + 1024);
        let before = compress.total_in();
        compress.compress_vec(input, &mut out, flush).unwrap();
        assert_eq!(compress.total_in() - before, input.len() as u64);
        out
    };
    data.extend(block(repeated.head, FlushCompress::Full));
    let unit = block(repeated.unit, FlushCompress::Full);
    let tail = block(repeated.tail, FlushCompress::Finish);
    for _ in 0..repeated.copies {
        data.extend_from_slice(&unit);
    }
    data.extend(tail);
    let crc_of = |bytes: &[u8]| {
        let mut crc = Crc::new();
        crc.update(bytes);
        crc
    };
    let mut crc = crc_of(repeated.head);
    let unit_crc = crc_of(repeated.unit);
    for _ in 0..repeated.copies {
        crc.combine(&unit_crc);
    }
    crc.combine(&crc_of(repeated.tail));
    let size = repeated.head.len() + repeated.unit.len() * repeated.copies + repeated.tail.len();
    Entry {
        name: repeated.name.to_string(),
        method: 8,
        data,
        crc: crc.sum(),
        size: declared_size.unwrap_or(u32::try_from(size).unwrap()),
    }
}

/// Local headers, data, central directory and end record, as APPNOTE 4.3 lays them out.
fn assemble(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for entry in entries {
        let offset = out.len() as u32;
        let fixed = |buf: &mut Vec<u8>| {
            buf.extend(entry.method.to_le_bytes());
            buf.extend(0u16.to_le_bytes()); // time
            buf.extend(0x21u16.to_le_bytes()); // date: 1980-01-01
            buf.extend(entry.crc.to_le_bytes());
            buf.extend((entry.data.len() as u32).to_le_bytes());
            buf.extend(entry.size.to_le_bytes());
            buf.extend((entry.name.len() as u16).to_le_bytes());
            buf.extend(0u16.to_le_bytes()); // extra field length
        };
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend(20u16.to_le_bytes()); // version needed
        out.extend(0u16.to_le_bytes()); // flags
        fixed(&mut out);
        out.extend(entry.name.as_bytes());
        out.extend(&entry.data);

        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(20u16.to_le_bytes()); // version made by
        central.extend(20u16.to_le_bytes()); // version needed
        central.extend(0u16.to_le_bytes()); // flags
        fixed(&mut central);
        central.extend(0u16.to_le_bytes()); // comment length
        central.extend(0u16.to_le_bytes()); // disk
        central.extend(0u16.to_le_bytes()); // internal attributes
        central.extend(0u32.to_le_bytes()); // external attributes
        central.extend(offset.to_le_bytes());
        central.extend(entry.name.as_bytes());
    }
    let central_offset = out.len() as u32;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(central_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// The construction must give a real zip, or the bomb tests would pass on a broken file.
#[test]
fn repeated_members_unpack_to_what_they_claim() {
    let repeated = Repeated {
        name: "word/document.xml",
        head: b"<w:document><w:body>",
        unit: &b"<w:p><w:r><w:t>bomb</w:t></w:r></w:p>".repeat(1000),
        copies: 5,
        tail: b"</w:body></w:document>",
    };
    let bytes = bomb(&[("[Content_Types].xml", b"<Types/>")], &repeated, None);
    let members = members(&bytes);
    assert_eq!(
        members[0],
        ("[Content_Types].xml".to_string(), b"<Types/>".to_vec())
    );
    let mut expected = repeated.head.to_vec();
    for _ in 0..repeated.copies {
        expected.extend_from_slice(repeated.unit);
    }
    expected.extend_from_slice(repeated.tail);
    assert_eq!(members[1].0, "word/document.xml");
    assert!(members[1].1 == expected, "unpacked content differs");
}
