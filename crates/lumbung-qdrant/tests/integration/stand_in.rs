//! What the stand-in answers, through qdrant-client's own calls: the parts of Qdrant's API the
//! backend builds on (sparse vectors with IDF, prefetch and fusion, filters, deletes by filter,
//! pagination), so that a wrong stand-in cannot make the backend's tests pass.

use std::collections::{HashMap, HashSet};

use qdrant_client::Qdrant;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, Distance, FieldType, Filter, Fusion, Modifier, NamedVectors, PointId,
    PointStruct, PrefetchQueryBuilder, Query, QueryPointsBuilder, ScrollPointsBuilder,
    SearchPointsBuilder, SparseVectorParamsBuilder, SparseVectorsConfigBuilder,
    UpsertPointsBuilder, Value, Vector, VectorParamsBuilder, VectorsConfigBuilder,
};
use tonic::Code;

use crate::stand_in;

const DENSE: &str = "dense";
const SPARSE: &str = "bm25";

fn client(url: &str, api_key: Option<&str>) -> Qdrant {
    Qdrant::from_url(url)
        .api_key(api_key)
        .skip_compatibility_check()
        .build()
        .unwrap()
}

async fn create(client: &Qdrant, name: &str) {
    let mut dense = VectorsConfigBuilder::default();
    dense.add_named_vector_params(DENSE, VectorParamsBuilder::new(4, Distance::Cosine));
    let mut sparse = SparseVectorsConfigBuilder::default();
    sparse.add_named_vector_params(
        SPARSE,
        SparseVectorParamsBuilder::default().modifier(Modifier::Idf),
    );
    client
        .create_collection(
            CreateCollectionBuilder::new(name)
                .vectors_config(dense)
                .sparse_vectors_config(sparse),
        )
        .await
        .unwrap();
    client
        .create_field_index(
            CreateFieldIndexCollectionBuilder::new(name, "kb", FieldType::Keyword).wait(true),
        )
        .await
        .unwrap();
}

/// A point with a dense vector, a sparse one (term id, weight) and the payload `kb`, `tags`.
fn point(id: u64, dense: [f32; 4], terms: &[(u32, f32)], kb: &str, tags: &[&str]) -> PointStruct {
    let (indices, values): (Vec<u32>, Vec<f32>) = terms.iter().copied().unzip();
    let vectors = NamedVectors::default()
        .add_vector(DENSE, dense.to_vec())
        .add_vector(SPARSE, Vector::new_sparse(indices, values));
    let payload: HashMap<String, Value> = HashMap::from([
        ("kb".to_string(), Value::from(kb)),
        (
            "tags".to_string(),
            Value::from(tags.iter().map(|t| t.to_string()).collect::<Vec<_>>()),
        ),
    ]);
    PointStruct::new(id, vectors, payload)
}

fn ids(points: &[qdrant_client::qdrant::ScoredPoint]) -> Vec<u64> {
    points.iter().map(|p| num(p.id.as_ref())).collect()
}

fn num(id: Option<&PointId>) -> u64 {
    match id.and_then(|id| id.point_id_options.clone()) {
        Some(qdrant_client::qdrant::point_id::PointIdOptions::Num(n)) => n,
        other => panic!("not a numeric id: {other:?}"),
    }
}

async fn upsert(client: &Qdrant, name: &str, points: Vec<PointStruct>) {
    client
        .upsert_points(UpsertPointsBuilder::new(name, points).wait(true))
        .await
        .unwrap();
}

#[tokio::test]
async fn sparse_vectors_are_scored_with_idf() {
    let (_dir, stand_in) = stand_in(None);
    let client = client(&stand_in.url(), None);
    create(&client, "c").await;
    // Term 1 is in every point, term 2 in one: finding 2 says more.
    upsert(
        &client,
        "c",
        vec![
            point(1, [1.0, 0.0, 0.0, 0.0], &[(1, 1.0), (2, 1.0)], "a", &[]),
            point(2, [0.0, 1.0, 0.0, 0.0], &[(1, 1.0)], "a", &[]),
            point(3, [0.0, 0.0, 1.0, 0.0], &[(1, 1.0), (3, 1.0)], "a", &[]),
        ],
    )
    .await;
    let sparse = |terms: Vec<(u32, f32)>| {
        QueryPointsBuilder::new("c")
            .query(Query::new_nearest(terms.as_slice()))
            .using(SPARSE)
            .limit(10u64)
    };
    let common = client.query(sparse(vec![(1, 1.0)])).await.unwrap().result;
    let rare = client.query(sparse(vec![(2, 1.0)])).await.unwrap().result;
    assert_eq!(common.len(), 3);
    assert_eq!(ids(&rare), [1]);
    assert!(
        rare[0].score > 2.0 * common[0].score,
        "IDF weighs the rare term: {} vs {}",
        rare[0].score,
        common[0].score
    );
    let both = client
        .query(sparse(vec![(1, 1.0), (2, 1.0)]))
        .await
        .unwrap()
        .result;
    assert_eq!(ids(&both)[0], 1);
}

#[tokio::test]
async fn prefetches_are_fused_by_rank() {
    let (_dir, stand_in) = stand_in(None);
    let client = client(&stand_in.url(), None);
    create(&client, "c").await;
    upsert(
        &client,
        "c",
        vec![
            // Second by dense, first by sparse.
            point(1, [0.8, 0.6, 0.0, 0.0], &[(7, 2.0)], "a", &[]),
            // First by dense, absent from sparse.
            point(2, [1.0, 0.0, 0.0, 0.0], &[(8, 1.0)], "a", &[]),
            // Third by dense, second by sparse.
            point(3, [0.0, 1.0, 0.0, 0.0], &[(7, 1.0)], "a", &[]),
            point(4, [0.0, 0.0, 1.0, 0.0], &[(9, 1.0)], "b", &[]),
        ],
    )
    .await;
    let only_a = Filter::must([Condition::matches("kb", "a".to_string())]);
    let fused = client
        .query(
            QueryPointsBuilder::new("c")
                .add_prefetch(
                    PrefetchQueryBuilder::default()
                        .query(Query::new_nearest(vec![1.0, 0.0, 0.0, 0.0]))
                        .using(DENSE)
                        .filter(only_a.clone())
                        .limit(3u64),
                )
                .add_prefetch(
                    PrefetchQueryBuilder::default()
                        .query(Query::new_nearest(&[(7u32, 1.0f32)][..]))
                        .using(SPARSE)
                        .filter(only_a.clone())
                        .limit(3u64),
                )
                .query(Fusion::Rrf)
                .limit(10u64),
        )
        .await
        .unwrap()
        .result;
    // Ranks 2+1 beat 1 alone and 3+2; point 4 is outside the filter.
    assert_eq!(ids(&fused), [1, 3, 2]);
}

#[tokio::test]
async fn filters_and_deletes_by_filter_keep_to_their_points() {
    let (_dir, stand_in) = stand_in(None);
    let client = client(&stand_in.url(), None);
    create(&client, "c").await;
    let points = (0..12)
        .map(|n| {
            let kb = ["a", "b", "c"][n % 3];
            let tags: &[&str] = if n % 2 == 0 { &["even"] } else { &["odd", "x"] };
            point(n as u64, [1.0, n as f32, 0.0, 0.0], &[(1, 1.0)], kb, tags)
        })
        .collect();
    upsert(&client, "c", points).await;
    let count = |filter: Filter| {
        let client = &client;
        async move {
            client
                .count(CountPointsBuilder::new("c").filter(filter).exact(true))
                .await
                .unwrap()
                .result
                .unwrap()
                .count
        }
    };
    let kb = |name: &str| Condition::matches("kb", name.to_string());
    assert_eq!(count(Filter::must([kb("a")])).await, 4);
    assert_eq!(count(Filter::should([kb("a"), kb("b")])).await, 8);
    assert_eq!(count(Filter::must_not([kb("a")])).await, 8);
    assert_eq!(
        count(Filter::must([Condition::matches(
            "kb",
            vec!["a".to_string(), "c".to_string()]
        )]))
        .await,
        8
    );
    assert_eq!(
        count(Filter {
            must: vec![kb("a")],
            must_not: vec![Condition::matches("tags", "even".to_string())],
            ..Filter::default()
        })
        .await,
        2
    );
    assert_eq!(
        count(Filter::must([Condition::has_id([1u64, 2, 40])])).await,
        2
    );
    assert_eq!(
        count(Filter::min_should(
            2,
            [
                kb("b"),
                Condition::matches("tags", "odd".to_string()),
                Condition::matches("tags", "x".to_string())
            ],
        ))
        .await,
        6
    );

    client
        .delete_points(
            DeletePointsBuilder::new("c")
                .points(Filter::must([
                    kb("b"),
                    Condition::matches("tags", "odd".to_string()),
                ]))
                .wait(true),
        )
        .await
        .unwrap();
    assert_eq!(count(Filter::must([kb("b")])).await, 2);
    assert_eq!(count(Filter::default()).await, 10);
}

#[tokio::test]
async fn pages_by_offset_and_by_scroll_visit_every_point_once() {
    let (_dir, stand_in) = stand_in(None);
    let client = client(&stand_in.url(), None);
    create(&client, "c").await;
    let points = (0..25)
        .map(|n| point(n, [1.0, n as f32 / 25.0, 0.0, 0.0], &[(1, 1.0)], "a", &[]))
        .collect();
    upsert(&client, "c", points).await;

    let mut by_offset = Vec::new();
    for page in 0..3u64 {
        let hits = client
            .query(
                QueryPointsBuilder::new("c")
                    .query(Query::new_nearest(vec![1.0, 0.0, 0.0, 0.0]))
                    .using(DENSE)
                    .limit(10u64)
                    .offset(page * 10),
            )
            .await
            .unwrap()
            .result;
        by_offset.extend(ids(&hits));
    }
    // Nearest first: the point with the smallest tilt leads, and the pages continue the order.
    assert_eq!(by_offset, (0..25).collect::<Vec<u64>>());

    let mut scrolled = Vec::new();
    let mut offset: Option<PointId> = None;
    loop {
        let mut request = ScrollPointsBuilder::new("c").limit(7);
        if let Some(offset) = offset.take() {
            request = request.offset(offset);
        }
        let page = client.scroll(request).await.unwrap();
        assert!(page.result.len() <= 7);
        scrolled.extend(page.result.iter().map(|p| num(p.id.as_ref())));
        match page.next_page_offset {
            Some(next) => offset = Some(next),
            None => break,
        }
    }
    assert_eq!(scrolled.len(), 25);
    assert_eq!(scrolled.iter().collect::<HashSet<_>>().len(), 25);
}

#[tokio::test]
async fn a_wrong_api_key_is_refused_and_unknown_calls_are_unimplemented() {
    let (_dir, stand_in) = stand_in(Some("secret"));
    let wrong = client(&stand_in.url(), Some("guess"));
    let err = wrong.list_collections().await.unwrap_err();
    assert!(err.to_string().contains("api-key"), "{err}");
    let right = client(&stand_in.url(), Some("secret"));
    create(&right, "c").await;
    let err = right
        .search_points(SearchPointsBuilder::new("c", vec![1.0, 0.0, 0.0, 0.0], 3))
        .await
        .unwrap_err();
    match err {
        qdrant_client::QdrantError::ResponseError { status } => {
            assert_eq!(status.code(), Code::Unimplemented, "{status}")
        }
        other => panic!("{other}"),
    }
    let err = right.collection_info("missing").await.unwrap_err();
    assert!(err.to_string().contains("doesn't exist"), "{err}");
}
