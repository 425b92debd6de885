//! The embedding models ingest writes with, each with the vector store that fits it, and which
//! one a generation uses.

use std::collections::BTreeMap;
use std::sync::Arc;

use lumbung_core::{IngestConfig, ModelName};
use lumbung_embed::{Chunker, Embedder};
use lumbung_index::VectorStore;

use crate::{Error, KbSettings, Result};

/// A model and the store of its vectors.
#[derive(Clone)]
pub struct IngestModel {
    pub name: ModelName,
    pub embedder: Arc<Embedder>,
    pub vectors: Arc<dyn VectorStore>,
}

/// Every model a generation may be embedded with.
pub struct IngestModels {
    /// `[embedding]`'s first: data indexed before models were recorded was embedded with it.
    pub models: Vec<IngestModel>,
    /// What new generations are embedded with unless their `kb.toml` names another.
    pub for_new_generations: ModelName,
}

/// What ingest needs of one model: the embedder, chunks sized in its tokens, its store.
pub(crate) struct ModelParts {
    pub name: ModelName,
    pub embedder: Arc<Embedder>,
    pub chunker: Chunker,
    pub vectors: Arc<dyn VectorStore>,
}

pub(crate) struct Models {
    parts: BTreeMap<ModelName, Arc<ModelParts>>,
    /// `[embedding]`'s.
    legacy: ModelName,
    for_new_generations: ModelName,
}

impl Models {
    pub fn new(models: IngestModels, config: &IngestConfig) -> Result<Models> {
        let legacy = models
            .models
            .first()
            .map(|model| model.name.clone())
            .ok_or_else(|| Error::UnknownModel {
                model: models.for_new_generations.to_string(),
                reason: "no embedding model is loaded".to_string(),
            })?;
        let mut parts = BTreeMap::new();
        for model in models.models {
            let chunker = Chunker::new(
                Arc::clone(model.embedder.tokenizer()),
                config.chunk_max_tokens,
                config.chunk_overlap_tokens,
            )?;
            parts.insert(
                model.name.clone(),
                Arc::new(ModelParts {
                    name: model.name,
                    embedder: model.embedder,
                    chunker,
                    vectors: model.vectors,
                }),
            );
        }
        let models = Models {
            parts,
            legacy,
            for_new_generations: models.for_new_generations,
        };
        models.get(&models.for_new_generations)?;
        Ok(models)
    }

    /// `[embedding]`'s model.
    pub fn legacy(&self) -> &ModelName {
        &self.legacy
    }

    /// What new generations are embedded with unless their `kb.toml` names another.
    pub fn for_new_generations(&self) -> &ModelName {
        &self.for_new_generations
    }

    pub fn get(&self, name: &ModelName) -> Result<&Arc<ModelParts>> {
        self.parts.get(name).ok_or_else(|| Error::UnknownModel {
            model: name.to_string(),
            reason: "the configuration names no such model ([embedding] or \
                     [embedding_models])"
                .to_string(),
        })
    }

    /// The model a new generation of a knowledge base with `settings` is embedded with.
    pub fn for_new_generation(
        &self,
        settings: &std::result::Result<KbSettings, String>,
    ) -> Result<ModelName> {
        match settings {
            Ok(KbSettings {
                embedding_model: Some(name),
                ..
            }) => {
                let name = ModelName::new(name.as_str()).map_err(|err| Error::UnknownModel {
                    model: name.clone(),
                    reason: err.to_string(),
                })?;
                self.get(&name)?;
                Ok(name)
            }
            _ => Ok(self.for_new_generations.clone()),
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ModelParts>> {
        self.parts.values()
    }
}
