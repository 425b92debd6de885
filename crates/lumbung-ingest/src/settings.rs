//! `kb.toml`: what a knowledge base's owner says about it, next to its files.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The file in a knowledge-base folder that describes it; never indexed as a document.
pub const SETTINGS_FILE: &str = "kb.toml";

/// A field of [`KbSettings`] that is not valid, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSetting {
    pub field: &'static str,
    pub reason: String,
}

/// A knowledge base's own description. Every field is optional; a folder without `kb.toml`
/// gets the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KbSettings {
    /// A human title, for assistants' builders choosing a knowledge base.
    pub title: Option<String>,
    pub description: Option<String>,
    /// The main language of the documents as a BCP 47 tag (`en`, `id`, `zh-CN`): a hint.
    pub language: Option<String>,
    /// Who takes the questions this knowledge base cannot answer (a queue, an address, a
    /// phone extension), handed to assistants with a "no answer".
    pub escalation: Option<String>,
    /// The readers (tokens or groups) that may search it; empty means every reader.
    #[serde(default)]
    pub readers: Vec<String>,
    /// The embedding model its next rebuild embeds with (`[embedding]`'s name or a key of
    /// `[embedding_models]`); unset means `ingest.embedding_model`. The active generation
    /// keeps the model it was built with until a rebuild swaps it out.
    pub embedding_model: Option<String>,
}

impl KbSettings {
    /// Reads `folder/kb.toml`; defaults when there is none. The error names the file and the
    /// field at fault.
    pub fn load(folder: &Path) -> Result<KbSettings, String> {
        let path = folder.join(SETTINGS_FILE);
        let text = match fs_err::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(KbSettings::default());
            }
            Err(err) => return Err(err.to_string()),
        };
        let settings: KbSettings =
            toml::from_str(&text).map_err(|err| format!("{}: {err}", path.display()))?;
        settings
            .validate()
            .map_err(|invalid| format!("{}: {}", path.display(), invalid.reason))?;
        Ok(settings)
    }

    /// Checks the fields a TOML parser cannot: what [`KbSettings::load`] refuses.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if let Some(language) = &self.language {
            let well_formed = !language.is_empty()
                && language.split('-').all(|part| {
                    (1..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric())
                });
            if !well_formed {
                return Err(InvalidSetting {
                    field: "language",
                    reason: format!(
                        "language {language:?} is not a language tag such as \"en\" or \"zh-CN\""
                    ),
                });
            }
        }
        if let Some(reader) = self.readers.iter().find(|r| r.trim().is_empty()) {
            return Err(InvalidSetting {
                field: "readers",
                reason: format!("readers holds an empty name {reader:?}"),
            });
        }
        if let Some(model) = &self.embedding_model
            && let Err(err) = lumbung_core::ModelName::new(model.as_str())
        {
            return Err(InvalidSetting {
                field: "embedding_model",
                reason: err.to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: Option<&str>) -> Result<KbSettings, String> {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = text {
            fs_err::write(dir.path().join(SETTINGS_FILE), text).unwrap();
        }
        KbSettings::load(dir.path())
    }

    #[test]
    fn absent_file_gives_defaults() {
        assert_eq!(load(None).unwrap(), KbSettings::default());
    }

    #[test]
    fn every_field_is_read() {
        let settings = load(Some(
            "title = \"IT helpdesk\"\ndescription = \"VPN, printers\"\nlanguage = \"en\"\n\
             escalation = \"servicedesk@example.com\"\nreaders = [\"helpdesk-bot\"]\n\
             embedding_model = \"e5-small-int8\"\n",
        ))
        .unwrap();
        assert_eq!(settings.title.as_deref(), Some("IT helpdesk"));
        assert_eq!(settings.description.as_deref(), Some("VPN, printers"));
        assert_eq!(settings.embedding_model.as_deref(), Some("e5-small-int8"));
        assert_eq!(settings.language.as_deref(), Some("en"));
        assert_eq!(
            settings.escalation.as_deref(),
            Some("servicedesk@example.com")
        );
        assert_eq!(settings.readers, ["helpdesk-bot"]);
    }

    #[test]
    fn mistakes_name_the_field() {
        let err = load(Some("titel = \"x\"\n")).unwrap_err();
        assert!(err.contains("titel") && err.contains("kb.toml"), "{err}");
        let err = load(Some("language = \"english please\"\n")).unwrap_err();
        assert!(err.contains("language"), "{err}");
        let err = load(Some("readers = [\" \"]\n")).unwrap_err();
        assert!(err.contains("readers"), "{err}");
        assert!(load(Some("language = \"zh-CN\"\n")).is_ok());
    }
}
