//! Zip packages (DOCX, XLSX, ODS): reading members within [`Limits`], and the XML helpers the
//! formats share.
//!
//! A zip member's declared size is checked before a byte is unpacked, so a zip bomb is refused
//! at once; the zip reader refuses to unpack past the declared size, and [`read_bounded`] stops
//! at the limit regardless, should a lying header ever get through.

use std::borrow::Cow;
use std::io::{Cursor, Read};

use encoding_rs::Encoding;
use quick_xml::events::{BytesRef, BytesStart, Event};
use zip::ZipArchive;
use zip::result::ZipError;

use crate::limits::{ReadError, read_bounded};
use crate::{Error, Limits, Result};

/// A zip package, with the error constructor of the format being read so that every failure
/// says which kind of file was broken.
pub(crate) struct Package<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    limits: Limits,
    error: fn(String) -> Error,
}

impl<'a> Package<'a> {
    pub(crate) fn open(
        bytes: &'a [u8],
        limits: &Limits,
        error: fn(String) -> Error,
    ) -> Result<Self> {
        let archive = ZipArchive::new(Cursor::new(bytes))
            .map_err(|err| error(format!("not a readable zip archive: {err}")))?;
        Ok(Package {
            archive,
            limits: *limits,
            error,
        })
    }

    /// Refuses the package if any XML part would unpack beyond the limit. Used before handing
    /// the bytes to a parser (calamine) that reads parts itself; media such as embedded videos
    /// are never read, so they may be large.
    pub(crate) fn check_xml_parts(&self) -> Result<()> {
        for index in 0..self.archive.len() {
            let entry = self
                .archive
                .by_index_data(index)
                .map_err(|err| (self.error)(format!("member {index}: {err}")))?;
            let name = String::from_utf8_lossy(entry.name_raw()).to_ascii_lowercase();
            let parsed = name.ends_with(".xml") || name.ends_with(".rels");
            if parsed && entry.size() > self.limits.max_zip_entry_bytes {
                return Err(self.limits.zip_entry_exceeded());
            }
        }
        Ok(())
    }

    /// Names and declared unpacked sizes of the members whose lower-case name ends with
    /// `suffix`.
    pub(crate) fn members_ending_with(&self, suffix: &str) -> Vec<(String, u64)> {
        (0..self.archive.len())
            .filter_map(|index| self.archive.by_index_data(index).ok())
            .filter_map(|entry| {
                let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
                let matches = name
                    .to_ascii_lowercase()
                    .replace('\\', "/")
                    .ends_with(suffix);
                matches.then(|| (name, entry.size()))
            })
            .collect()
    }

    /// At most the first `max` unpacked bytes of member `name`.
    pub(crate) fn read_prefix(&mut self, name: &str, max: u64) -> Result<Vec<u8>> {
        let member = self
            .archive
            .by_name(name)
            .map_err(|err| (self.error)(format!("{name}: {err}")))?;
        let mut prefix = Vec::new();
        member
            .take(max)
            .read_to_end(&mut prefix)
            .map_err(|err| (self.error)(format!("{name}: {err}")))?;
        Ok(prefix)
    }

    /// The unpacked bytes of member `name`, or `None` when the package has no such member.
    pub(crate) fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>> {
        let member = match self.archive.by_name(name) {
            Ok(member) => member,
            Err(ZipError::FileNotFound) => return Ok(None),
            Err(err) => return Err((self.error)(format!("{name}: {err}"))),
        };
        if member.size() > self.limits.max_zip_entry_bytes {
            return Err(self.limits.zip_entry_exceeded());
        }
        match read_bounded(member, &self.limits) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(ReadError::Limit(err)) => Err(err),
            Err(ReadError::Io(err)) => Err((self.error)(format!("{name}: {err}"))),
        }
    }

    /// Member `name` as XML text, or `None` when the package has no such member.
    pub(crate) fn read_xml(&mut self, name: &str) -> Result<Option<String>> {
        Ok(self.read(name)?.map(|bytes| xml_to_string(&bytes)))
    }

    /// The part the package's relationships name as the main document, such as
    /// `word/document.xml`.
    pub(crate) fn main_part(&mut self) -> Result<Option<String>> {
        let Some(rels) = self.read_xml("_rels/.rels")? else {
            return Ok(None);
        };
        let mut reader = quick_xml::Reader::from_str(&rels);
        loop {
            match reader.read_event() {
                Ok(Event::Start(e) | Event::Empty(e)) if local(&e) == "Relationship" => {
                    let is_main = attr(&e, "Type").is_some_and(|t| t.ends_with("/officeDocument"));
                    if let (true, Some(target)) = (is_main, attr(&e, "Target")) {
                        return Ok(Some(target.trim_start_matches('/').to_string()));
                    }
                }
                Ok(Event::Eof) => return Ok(None),
                Ok(_) => {}
                Err(err) => return Err((self.error)(format!("_rels/.rels: {err}"))),
            }
        }
    }

    /// The title the author set in the document's properties (`dc:title` in
    /// `docProps/core.xml`), if any.
    pub(crate) fn core_title(&mut self) -> Result<Option<String>> {
        let Some(core) = self.read_xml("docProps/core.xml")? else {
            return Ok(None);
        };
        let mut reader = quick_xml::Reader::from_str(&core);
        let mut title: Option<String> = None;
        loop {
            match reader.read_event() {
                Ok(Event::Start(e)) if local(&e) == "title" => title = Some(String::new()),
                Ok(Event::Text(text)) => {
                    if let Some(title) = &mut title {
                        title.push_str(&text.xml10_content());
                    }
                }
                Ok(Event::GeneralRef(entity)) => {
                    if let (Some(title), Some(resolved)) = (&mut title, resolve_entity(&entity)) {
                        title.push_str(&resolved);
                    }
                }
                Ok(Event::End(e)) if e.local_name().as_ref() == "title" => break,
                Ok(Event::Eof) => break,
                Ok(_) => {}
                // Properties are optional metadata: a broken file loses its title, not its text.
                Err(_) => return Ok(None),
            }
        }
        Ok(title
            .map(|t| crate::whitespace::single_line(&t))
            .filter(|t| !t.is_empty()))
    }
}

/// XML bytes as text: UTF-8 in practice, UTF-16 where a byte-order mark says so.
fn xml_to_string(bytes: &[u8]) -> String {
    match Encoding::for_bom(bytes) {
        Some((encoding, bom_len)) => encoding
            .decode_without_bom_handling(&bytes[bom_len..])
            .0
            .into_owned(),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// An element's name without its namespace prefix: packages written by different tools use
/// different prefixes for the same namespace.
pub(crate) fn local<'e>(element: &'e BytesStart<'_>) -> &'e str {
    let name = element.name().0;
    name.rsplit_once(':').map_or(name, |(_, local)| local)
}

/// The value of the attribute whose name without prefix is `name`.
pub(crate) fn attr(element: &BytesStart<'_>, name: &str) -> Option<String> {
    element
        .attributes()
        .with_checks(false)
        .flatten()
        .find_map(|a| {
            let key = a.key.0;
            let key = key.rsplit_once(':').map_or(key, |(_, local)| local);
            (key == name).then(|| {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map(Cow::into_owned)
                    .unwrap_or_else(|_| a.value.into_owned())
            })
        })
}

/// The text an entity reference stands for. Only the predefined entities and character
/// references exist here: packages carry no DTD, and entities a DTD would define are dropped,
/// so an entity-expansion bomb expands to nothing.
pub(crate) fn resolve_entity(entity: &BytesRef<'_>) -> Option<Cow<'static, str>> {
    if let Ok(Some(c)) = entity.resolve_char_ref() {
        return Some(Cow::Owned(c.to_string()));
    }
    let name = entity.xml10_content();
    quick_xml::escape::resolve_predefined_entity(&name).map(Cow::Borrowed)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use zip::write::SimpleFileOptions;

    use super::*;

    fn package(members: &[(&str, &str)]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content) in members {
            writer
                .start_file(*name, SimpleFileOptions::default())
                .unwrap();
            writer.write_all(content.as_bytes()).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    const RELS: &str = r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="/word/main.xml"/></Relationships>"#;

    #[test]
    fn main_part_and_title_come_from_the_package() {
        let core = r#"<cp:coreProperties xmlns:cp="x" xmlns:dc="y"><dc:creator>Ana</dc:creator><dc:title>Prosedur  K3 &amp; APD &#x2013; Las</dc:title></cp:coreProperties>"#;
        let bytes = package(&[("_rels/.rels", RELS), ("docProps/core.xml", core)]);
        let mut package = Package::open(&bytes, &Limits::default(), Error::Docx).unwrap();
        assert_eq!(
            package.main_part().unwrap().as_deref(),
            Some("word/main.xml")
        );
        assert_eq!(
            package.core_title().unwrap().as_deref(),
            Some("Prosedur K3 & APD \u{2013} Las")
        );
        assert_eq!(package.read("word/missing.xml").unwrap(), None);
    }

    #[test]
    fn members_over_the_limit_are_refused_before_unpacking() {
        let bytes = package(&[("_rels/.rels", RELS), ("media/big.bin", &"x".repeat(5000))]);
        let limits = Limits {
            max_zip_entry_bytes: 1000,
            ..Limits::default()
        };
        let mut package = Package::open(&bytes, &limits, Error::Docx).unwrap();
        // Only parsed parts count: the media file is never read.
        package.check_xml_parts().unwrap();
        let err = package.read("media/big.bin").unwrap_err();
        assert_eq!(
            err.to_string(),
            "limit exceeded: max_zip_entry_bytes = 1000"
        );
        assert!(package.read("_rels/.rels").unwrap().is_some());
        let bytes = package_with_big_xml();
        let package = Package::open(&bytes, &limits, Error::Docx).unwrap();
        assert!(matches!(
            package.check_xml_parts(),
            Err(Error::LimitExceeded { .. })
        ));
    }

    fn package_with_big_xml() -> Vec<u8> {
        package(&[("xl/sharedStrings.xml", &"<si/>".repeat(1000))])
    }

    #[test]
    fn not_a_zip_is_an_error_of_the_format() {
        let err = Package::open(b"PK\x03\x04 truncated", &Limits::default(), Error::Docx)
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("docx: not a readable zip archive"),
            "{err}"
        );
    }
}
