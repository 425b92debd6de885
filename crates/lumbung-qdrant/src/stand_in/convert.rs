//! Qdrant's gRPC messages to and from qdrant-edge's types, for the stand-in.
//!
//! Filters, search parameters, payload selectors and payload index schemas go through the JSON
//! form of Qdrant's REST API, which qdrant-edge's types deserialize: one spelling of each
//! condition instead of a hand-written copy of Qdrant's internal conversions. What lumbung's
//! backend does not send is answered UNIMPLEMENTED, never approximated.

use std::collections::HashMap;

use qdrant_client::qdrant::{self, r#match::MatchValue, value::Kind};
use qdrant_edge::external::ordered_float::OrderedFloat;
use qdrant_edge::external::serde_json::{self, Map, Value as Json, json};
use qdrant_edge::external::uuid::Uuid;
use qdrant_edge::{
    FacetValue, Filter, Fusion, NamedQuery, Payload, PayloadFieldSchema, PointId, Prefetch,
    QueryEnum, Sample, ScoringQuery, SearchParams, SparseVector, VectorInternal, VectorPersisted,
    VectorStructInternal, VectorStructPersisted, WithPayloadInterface, WithVector,
};
use tonic::Status;

/// Qdrant's `k` for RRF when a query asks for `Fusion::Rrf` without one
/// (`DEFAULT_RRF_K`, not exported by qdrant-edge).
const DEFAULT_RRF_K: usize = 2;

pub(super) fn unimplemented(what: impl std::fmt::Display) -> Status {
    Status::unimplemented(format!("the stand-in Qdrant does not implement {what}"))
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, value: Json) -> Result<T, Status> {
    serde_json::from_value(value).map_err(|err| Status::invalid_argument(format!("{what}: {err}")))
}

pub(super) fn point_id(id: Option<qdrant::PointId>) -> Result<PointId, Status> {
    match id.and_then(|id| id.point_id_options) {
        Some(qdrant::point_id::PointIdOptions::Num(n)) => Ok(PointId::NumId(n)),
        Some(qdrant::point_id::PointIdOptions::Uuid(text)) => Uuid::parse_str(&text)
            .map(PointId::Uuid)
            .map_err(|err| Status::invalid_argument(format!("point id {text:?}: {err}"))),
        None => Err(Status::invalid_argument("point id missing")),
    }
}

pub(super) fn grpc_point_id(id: PointId) -> qdrant::PointId {
    match id {
        PointId::NumId(n) => qdrant::PointId::from(n),
        PointId::Uuid(uuid) => qdrant::PointId::from(uuid.to_string()),
    }
}

fn point_id_json(id: &qdrant::PointId) -> Result<Json, Status> {
    match &id.point_id_options {
        Some(qdrant::point_id::PointIdOptions::Num(n)) => Ok(json!(n)),
        Some(qdrant::point_id::PointIdOptions::Uuid(text)) => Ok(json!(text)),
        None => Err(Status::invalid_argument("point id missing")),
    }
}

pub(super) fn filter(filter: Option<qdrant::Filter>) -> Result<Option<Filter>, Status> {
    filter
        .map(|filter| from_json("filter", filter_json(&filter)?))
        .transpose()
}

fn filter_json(filter: &qdrant::Filter) -> Result<Json, Status> {
    let mut out = Map::new();
    for (name, conditions) in [
        ("must", &filter.must),
        ("should", &filter.should),
        ("must_not", &filter.must_not),
    ] {
        if !conditions.is_empty() {
            let conditions = conditions
                .iter()
                .map(condition_json)
                .collect::<Result<Vec<_>, _>>()?;
            out.insert(name.to_string(), Json::Array(conditions));
        }
    }
    if let Some(min_should) = &filter.min_should {
        let conditions = min_should
            .conditions
            .iter()
            .map(condition_json)
            .collect::<Result<Vec<_>, _>>()?;
        out.insert(
            "min_should".to_string(),
            json!({"conditions": conditions, "min_count": min_should.min_count}),
        );
    }
    Ok(Json::Object(out))
}

fn condition_json(condition: &qdrant::Condition) -> Result<Json, Status> {
    use qdrant::condition::ConditionOneOf;
    match &condition.condition_one_of {
        Some(ConditionOneOf::Field(field)) => field_condition_json(field),
        Some(ConditionOneOf::HasId(has_id)) => {
            let ids = has_id
                .has_id
                .iter()
                .map(point_id_json)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(json!({ "has_id": ids }))
        }
        Some(ConditionOneOf::Filter(filter)) => filter_json(filter),
        Some(ConditionOneOf::IsEmpty(is_empty)) => Ok(json!({"is_empty": {"key": is_empty.key}})),
        Some(ConditionOneOf::IsNull(is_null)) => Ok(json!({"is_null": {"key": is_null.key}})),
        Some(other) => Err(unimplemented(format!("the condition {other:?}"))),
        None => Err(Status::invalid_argument("condition without a kind")),
    }
}

fn field_condition_json(field: &qdrant::FieldCondition) -> Result<Json, Status> {
    if let Some(range) = &field.range {
        let mut bounds = Map::new();
        for (name, bound) in [
            ("lt", range.lt),
            ("gt", range.gt),
            ("gte", range.gte),
            ("lte", range.lte),
        ] {
            if let Some(bound) = bound {
                bounds.insert(name.to_string(), json!(bound));
            }
        }
        return Ok(json!({"key": field.key, "range": bounds}));
    }
    let Some(match_value) = field.r#match.as_ref().and_then(|m| m.match_value.as_ref()) else {
        return Err(unimplemented(format!(
            "conditions on {:?} other than match and range",
            field.key
        )));
    };
    let matched = match match_value {
        MatchValue::Keyword(keyword) => json!({ "value": keyword }),
        MatchValue::Integer(integer) => json!({ "value": integer }),
        MatchValue::Boolean(boolean) => json!({ "value": boolean }),
        MatchValue::Text(text) => json!({ "text": text }),
        MatchValue::Keywords(keywords) => json!({ "any": keywords.strings }),
        MatchValue::Integers(integers) => json!({ "any": integers.integers }),
        MatchValue::ExceptKeywords(keywords) => json!({ "except": keywords.strings }),
        MatchValue::ExceptIntegers(integers) => json!({ "except": integers.integers }),
        other => return Err(unimplemented(format!("the match {other:?}"))),
    };
    Ok(json!({"key": field.key, "match": matched}))
}

pub(super) fn json_value(value: qdrant::Value) -> Json {
    match value.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::DoubleValue(x)) => json!(x),
        Some(Kind::IntegerValue(n)) => json!(n),
        Some(Kind::StringValue(text)) => Json::String(text),
        Some(Kind::BoolValue(b)) => Json::Bool(b),
        Some(Kind::StructValue(object)) => Json::Object(
            object
                .fields
                .into_iter()
                .map(|(key, value)| (key, json_value(value)))
                .collect(),
        ),
        Some(Kind::ListValue(list)) => {
            Json::Array(list.values.into_iter().map(json_value).collect())
        }
    }
}

fn grpc_value(value: Json) -> qdrant::Value {
    let kind = match value {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(b),
        Json::Number(n) => match n.as_i64() {
            Some(n) => Kind::IntegerValue(n),
            None => Kind::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(text) => Kind::StringValue(text),
        Json::Array(values) => Kind::ListValue(qdrant::ListValue {
            values: values.into_iter().map(grpc_value).collect(),
        }),
        Json::Object(fields) => Kind::StructValue(qdrant::Struct {
            fields: fields
                .into_iter()
                .map(|(key, value)| (key, grpc_value(value)))
                .collect(),
        }),
    };
    qdrant::Value { kind: Some(kind) }
}

pub(super) fn payload(payload: HashMap<String, qdrant::Value>) -> Payload {
    Payload(
        payload
            .into_iter()
            .map(|(key, value)| (key, json_value(value)))
            .collect(),
    )
}

pub(super) fn grpc_payload(payload: Option<Payload>) -> HashMap<String, qdrant::Value> {
    payload
        .map(|payload| {
            payload
                .0
                .into_iter()
                .map(|(key, value)| (key, grpc_value(value)))
                .collect()
        })
        .unwrap_or_default()
}

fn sparse(indices: Vec<u32>, values: Vec<f32>) -> Result<SparseVector, Status> {
    SparseVector::new(indices, values)
        .map_err(|err| Status::invalid_argument(format!("sparse vector: {err}")))
}

#[allow(
    deprecated,
    reason = "older clients send vectors in the deprecated fields"
)]
fn vector(vector: qdrant::Vector) -> Result<VectorPersisted, Status> {
    use qdrant::vector::Vector;
    match vector.vector {
        Some(Vector::Dense(dense)) => Ok(VectorPersisted::Dense(dense.data)),
        Some(Vector::Sparse(s)) => Ok(VectorPersisted::Sparse(sparse(s.indices, s.values)?)),
        Some(other) => Err(unimplemented(format!("the vector kind {other:?}"))),
        None => match vector.indices {
            Some(indices) => Ok(VectorPersisted::Sparse(sparse(indices.data, vector.data)?)),
            None => Ok(VectorPersisted::Dense(vector.data)),
        },
    }
}

pub(super) fn vectors(vectors: Option<qdrant::Vectors>) -> Result<VectorStructPersisted, Status> {
    use qdrant::vectors::VectorsOptions;
    match vectors.and_then(|vectors| vectors.vectors_options) {
        Some(VectorsOptions::Vector(single)) => match vector(single)? {
            VectorPersisted::Dense(dense) => Ok(VectorStructPersisted::Single(dense)),
            _ => Err(Status::invalid_argument("an unnamed vector must be dense")),
        },
        Some(VectorsOptions::Vectors(named)) => Ok(VectorStructPersisted::Named(
            named
                .vectors
                .into_iter()
                .map(|(name, v)| Ok((name, vector(v)?)))
                .collect::<Result<_, Status>>()?,
        )),
        None => Err(Status::invalid_argument("point without vectors")),
    }
}

fn grpc_vector(vector: VectorInternal) -> Option<qdrant::VectorOutput> {
    use qdrant::vector_output::Vector;
    let vector = match vector {
        VectorInternal::Dense(data) => Vector::Dense(qdrant::DenseVector { data }),
        VectorInternal::Sparse(s) => Vector::Sparse(qdrant::SparseVector {
            values: s.values,
            indices: s.indices,
        }),
        VectorInternal::MultiDense(_) => return None,
    };
    #[allow(deprecated, reason = "the deprecated fields stay empty")]
    Some(qdrant::VectorOutput {
        vector: Some(vector),
        ..qdrant::VectorOutput::default()
    })
}

pub(super) fn grpc_vectors(vectors: Option<VectorStructInternal>) -> Option<qdrant::VectorsOutput> {
    use qdrant::vectors_output::VectorsOptions;
    let options = match vectors? {
        VectorStructInternal::Single(data) => {
            VectorsOptions::Vector(grpc_vector(VectorInternal::Dense(data))?)
        }
        VectorStructInternal::Named(named) => VectorsOptions::Vectors(qdrant::NamedVectorsOutput {
            vectors: named
                .into_iter()
                .filter_map(|(name, vector)| Some((name, grpc_vector(vector)?)))
                .collect(),
        }),
        VectorStructInternal::MultiDense(_) => return None,
    };
    Some(qdrant::VectorsOutput {
        vectors_options: Some(options),
    })
}

pub(super) fn search_params(
    params: Option<qdrant::SearchParams>,
) -> Result<Option<SearchParams>, Status> {
    let Some(params) = params else {
        return Ok(None);
    };
    let mut out = Map::new();
    if let Some(ef) = params.hnsw_ef {
        out.insert("hnsw_ef".to_string(), json!(ef));
    }
    if let Some(exact) = params.exact {
        out.insert("exact".to_string(), json!(exact));
    }
    if let Some(indexed_only) = params.indexed_only {
        out.insert("indexed_only".to_string(), json!(indexed_only));
    }
    if let Some(q) = params.quantization {
        let mut quantization = Map::new();
        for (name, value) in [
            ("ignore", q.ignore.map(Json::from)),
            ("rescore", q.rescore.map(Json::from)),
            ("oversampling", q.oversampling.map(Json::from)),
        ] {
            if let Some(value) = value {
                quantization.insert(name.to_string(), value);
            }
        }
        out.insert("quantization".to_string(), Json::Object(quantization));
    }
    if let Some(acorn) = params.acorn {
        let mut settings = Map::new();
        settings.insert("enable".to_string(), json!(acorn.enable.unwrap_or(false)));
        if let Some(max) = acorn.max_selectivity {
            settings.insert("max_selectivity".to_string(), json!(max));
        }
        out.insert("acorn".to_string(), Json::Object(settings));
    }
    from_json("search params", Json::Object(out)).map(Some)
}

pub(super) fn with_payload(
    selector: Option<qdrant::WithPayloadSelector>,
) -> Result<WithPayloadInterface, Status> {
    use qdrant::with_payload_selector::SelectorOptions;
    let json = match selector.and_then(|selector| selector.selector_options) {
        None => json!(false),
        Some(SelectorOptions::Enable(enable)) => json!(enable),
        Some(SelectorOptions::Include(include)) => json!({"include": include.fields}),
        Some(SelectorOptions::Exclude(exclude)) => json!({"exclude": exclude.fields}),
    };
    from_json("with_payload", json)
}

pub(super) fn with_vectors(selector: Option<qdrant::WithVectorsSelector>) -> WithVector {
    use qdrant::with_vectors_selector::SelectorOptions;
    match selector.and_then(|selector| selector.selector_options) {
        None => WithVector::Bool(false),
        Some(SelectorOptions::Enable(enable)) => WithVector::Bool(enable),
        Some(SelectorOptions::Include(include)) => WithVector::Selector(include.names),
    }
}

fn nearest(input: qdrant::VectorInput, using: Option<String>) -> Result<ScoringQuery, Status> {
    use qdrant::vector_input::Variant;
    let query = match input.variant {
        Some(Variant::Dense(dense)) => VectorInternal::Dense(dense.data),
        Some(Variant::Sparse(s)) => VectorInternal::Sparse(sparse(s.indices, s.values)?),
        Some(other) => return Err(unimplemented(format!("the query vector {other:?}"))),
        None => return Err(Status::invalid_argument("nearest query without a vector")),
    };
    Ok(ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
        query,
        using,
    })))
}

pub(super) fn query(
    query: Option<qdrant::Query>,
    using: Option<String>,
) -> Result<Option<ScoringQuery>, Status> {
    use qdrant::query::Variant;
    let Some(variant) = query.and_then(|query| query.variant) else {
        return Ok(None);
    };
    let scoring = match variant {
        Variant::Nearest(input) => nearest(input, using)?,
        Variant::Fusion(fusion) => match qdrant::Fusion::try_from(fusion) {
            Ok(qdrant::Fusion::Rrf) => ScoringQuery::Fusion(Fusion::Rrf {
                k: DEFAULT_RRF_K,
                weights: None,
            }),
            Ok(qdrant::Fusion::Dbsf) => ScoringQuery::Fusion(Fusion::Dbsf),
            Err(_) => return Err(Status::invalid_argument(format!("fusion {fusion}"))),
        },
        Variant::Rrf(rrf) => ScoringQuery::Fusion(Fusion::Rrf {
            k: rrf.k.map_or(DEFAULT_RRF_K, |k| k as usize),
            weights: (!rrf.weights.is_empty())
                .then(|| rrf.weights.into_iter().map(OrderedFloat).collect()),
        }),
        Variant::Sample(sample) => match qdrant::Sample::try_from(sample) {
            Ok(qdrant::Sample::Random) => ScoringQuery::Sample(Sample::Random),
            Err(_) => return Err(Status::invalid_argument(format!("sample {sample}"))),
        },
        other => return Err(unimplemented(format!("the query {other:?}"))),
    };
    Ok(Some(scoring))
}

pub(super) fn prefetch(prefetch: qdrant::PrefetchQuery) -> Result<Prefetch, Status> {
    if prefetch.lookup_from.is_some() {
        return Err(unimplemented("lookup_from"));
    }
    Ok(Prefetch {
        prefetches: prefetch
            .prefetch
            .into_iter()
            .map(self::prefetch)
            .collect::<Result<_, _>>()?,
        query: query(prefetch.query, prefetch.using)?,
        limit: prefetch.limit.map_or(10, |limit| limit as usize),
        params: search_params(prefetch.params)?,
        filter: filter(prefetch.filter)?,
        score_threshold: prefetch.score_threshold.map(OrderedFloat),
    })
}

pub(super) fn scored_point(point: qdrant_edge::ScoredPoint) -> qdrant::ScoredPoint {
    qdrant::ScoredPoint {
        id: Some(grpc_point_id(point.id)),
        payload: grpc_payload(point.payload),
        score: point.score,
        version: point.version,
        vectors: grpc_vectors(point.vector),
        ..qdrant::ScoredPoint::default()
    }
}

pub(super) fn retrieved_point(record: qdrant_edge::Record) -> qdrant::RetrievedPoint {
    qdrant::RetrievedPoint {
        id: Some(grpc_point_id(record.id)),
        payload: grpc_payload(record.payload),
        vectors: grpc_vectors(record.vector),
        ..qdrant::RetrievedPoint::default()
    }
}

pub(super) fn facet_value(value: FacetValue) -> qdrant::FacetValue {
    use qdrant::facet_value::Variant;
    let variant = match value {
        FacetValue::Keyword(keyword) => Variant::StringValue(keyword),
        FacetValue::Int(n) => Variant::IntegerValue(n),
        FacetValue::Uuid(uuid) => Variant::StringValue(Uuid::from_u128(uuid).to_string()),
        FacetValue::Bool(b) => Variant::BoolValue(b),
    };
    qdrant::FacetValue {
        variant: Some(variant),
    }
}

/// The schema of a payload index from its field type and parameters (keyword parameters only:
/// the ones lumbung sets).
pub(super) fn payload_schema(
    field_type: Option<i32>,
    params: Option<qdrant::PayloadIndexParams>,
) -> Result<PayloadFieldSchema, Status> {
    use qdrant::payload_index_params::IndexParams;
    let field_type = field_type
        .map(|t| {
            qdrant::FieldType::try_from(t)
                .map_err(|_| Status::invalid_argument(format!("field type {t}")))
        })
        .transpose()?
        .ok_or_else(|| Status::invalid_argument("field type missing"))?;
    let name = match field_type {
        qdrant::FieldType::Keyword => "keyword",
        qdrant::FieldType::Integer => "integer",
        qdrant::FieldType::Float => "float",
        qdrant::FieldType::Bool => "bool",
        qdrant::FieldType::Uuid => "uuid",
        other => return Err(unimplemented(format!("{other:?} payload indexes"))),
    };
    let schema = match params.and_then(|params| params.index_params) {
        None => json!(name),
        Some(IndexParams::KeywordIndexParams(keyword)) if name == "keyword" => {
            let mut out = Map::new();
            out.insert("type".to_string(), json!("keyword"));
            for (key, value) in [
                ("is_tenant", keyword.is_tenant),
                ("enable_hnsw", keyword.enable_hnsw),
            ] {
                if let Some(value) = value {
                    out.insert(key.to_string(), json!(value));
                }
            }
            Json::Object(out)
        }
        Some(other) => return Err(unimplemented(format!("the index parameters {other:?}"))),
    };
    from_json("payload index", schema)
}
