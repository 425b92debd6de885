//! Creating and deleting knowledge bases.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError};

use lumbung_core::{KbGeneration, KbName};

use crate::{Error, Ingestor, KbSettings, Result, SETTINGS_FILE};

impl Ingestor {
    /// Creates the folder of a new knowledge base with a `kb.toml` holding `settings` and the
    /// other fields commented out, and returns the folder. A knowledge base deleted with its
    /// folder kept is taken back instead (its `kb.toml` is written only if it has none), and
    /// its folder indexed again on a thread of its own. Fails with [`Error::KbExists`] for a
    /// knowledge base that exists.
    pub fn create_kb(self: &Arc<Self>, kb: &KbName, settings: &KbSettings) -> Result<PathBuf> {
        let folder = self.root.join(kb.as_str());
        let lock = self.sync_lock(kb);
        let _sync = lock.lock().unwrap_or_else(PoisonError::into_inner);
        if self.knowledge_bases()?.contains(kb) {
            return Err(Error::KbExists(kb.to_string()));
        }
        fs_err::create_dir_all(&folder).map_err(|err| Error::io(&folder, err))?;
        let file = folder.join(SETTINGS_FILE);
        if !file.exists() {
            fs_err::write(&file, settings_template(settings))
                .map_err(|err| Error::io(&file, err))?;
        }
        self.catalog.update_generations(
            kb,
            |generations| {
                generations.deleted = false;
                Ok(())
            },
            None,
        )?;
        self.refresh_registry(Some(kb))?;
        drop(_sync);
        // No file changes to wake the watcher: the folder's documents are synced from here.
        let (ingestor, name) = (Arc::clone(self), kb.clone());
        std::thread::Builder::new()
            .name("lumbung-create".to_string())
            .spawn(move || {
                lumbung_core::lower_current_thread_priority(ingestor.config.niceness);
                if let Err(err) = ingestor.sync_kb(&name, false, &crate::log_progress) {
                    tracing::error!(kb = %name, error = %err, "could not index a new knowledge base");
                }
            })
            .map_err(|err| Error::io(&folder, err))?;
        Ok(folder)
    }

    /// Deletes a knowledge base: its rebuild is cancelled and every generation's chunks (both
    /// indexes) and rows (the catalog) are deleted. Its folder is removed only with
    /// `remove_folder`; kept, it is no longer indexed until the knowledge base is created again.
    pub fn delete_kb(&self, kb: &KbName, remove_folder: bool) -> Result<()> {
        if !self.knowledge_bases()?.contains(kb) {
            return Err(Error::UnknownKb(kb.to_string()));
        }
        self.stop_job(kb, true);
        let lock = self.sync_lock(kb);
        let _sync = lock.lock().unwrap_or_else(PoisonError::into_inner);
        // Every generation retired at once, and a fresh one active: should the knowledge base
        // be created again, it starts empty, apart from anything left of the old ones.
        self.catalog.update_generations(
            kb,
            |generations| {
                let fresh = generations.last.next();
                generations.retired.push(generations.active);
                generations.retired.extend(generations.building.take());
                generations.active = fresh;
                generations.last = fresh;
                generations.deleted = true;
                Ok(())
            },
            None,
        )?;
        self.collect_retired(kb)?;
        let folder = self.root.join(kb.as_str());
        if remove_folder && folder.exists() {
            fs_err::remove_dir_all(&folder).map_err(|err| Error::io(&folder, err))?;
        }
        if remove_folder {
            self.catalog.forget(kb)?;
        }
        self.live()
            .retain(|generation: &KbGeneration, _| generation.kb() != kb);
        self.refresh_registry(None)?;
        tracing::info!(kb = %kb, remove_folder, "knowledge base deleted");
        Ok(())
    }
}

/// A `kb.toml` with the given fields set and the others commented out, each with what it is for.
fn settings_template(settings: &KbSettings) -> String {
    fn field(out: &mut String, about: &str, name: &str, value: Option<String>, example: &str) {
        out.push_str(&format!("# {about}\n"));
        match value {
            Some(value) => out.push_str(&format!("{name} = {value}\n\n")),
            None => out.push_str(&format!("# {name} = {example}\n\n")),
        }
    }
    let quoted = |value: &Option<String>| {
        value
            .as_ref()
            .map(|text| toml::Value::String(text.clone()).to_string())
    };
    let mut out = String::from(
        "# What this knowledge base is, for the assistants that draw on it. Every field is \
         optional.\n\n",
    );
    field(
        &mut out,
        "A title for assistants' builders choosing a knowledge base.",
        "title",
        quoted(&settings.title),
        "\"IT helpdesk\"",
    );
    field(
        &mut out,
        "What it holds.",
        "description",
        quoted(&settings.description),
        "\"VPN, printers, accounts and laptops\"",
    );
    field(
        &mut out,
        "The main language of the documents (en, id, zh-CN): a hint.",
        "language",
        quoted(&settings.language),
        "\"en\"",
    );
    field(
        &mut out,
        "Who takes the questions it cannot answer.",
        "escalation",
        quoted(&settings.escalation),
        "\"IT service desk, ext. 4400\"",
    );
    let readers = (!settings.readers.is_empty()).then(|| {
        toml::Value::Array(
            settings
                .readers
                .iter()
                .cloned()
                .map(toml::Value::String)
                .collect(),
        )
        .to_string()
    });
    field(
        &mut out,
        "The readers (token names or groups) that may search it; none listed means every reader.",
        "readers",
        readers,
        "[\"helpdesk-bot\"]",
    );
    field(
        &mut out,
        "The embedding model its next rebuild (`lumbung reindex`) embeds with, as the service's \
         configuration names it; unset means the service's default.",
        "embedding_model",
        quoted(&settings.embedding_model),
        "\"multilingual-e5-small\"",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_reads_back_as_the_settings_it_was_given() {
        for settings in [
            KbSettings::default(),
            KbSettings {
                title: Some("Safety \"hazards\"".to_string()),
                description: None,
                language: Some("zh-CN".to_string()),
                escalation: Some("HSE desk\next. 12".to_string()),
                readers: vec!["safety-bot".to_string(), "hse".to_string()],
                embedding_model: Some("e5-small-int8".to_string()),
            },
        ] {
            let dir = tempfile::tempdir().unwrap();
            fs_err::write(dir.path().join(SETTINGS_FILE), settings_template(&settings)).unwrap();
            assert_eq!(KbSettings::load(dir.path()).unwrap(), settings);
        }
    }
}
