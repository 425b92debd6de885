use std::collections::HashMap;

use lumbung_core::ChunkId;

/// A retriever's own score for a hit and its 1-based rank in that retriever's list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankedScore {
    pub score: f32,
    pub rank: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FusedHit {
    pub id: ChunkId,
    pub fused_score: f32,
    /// One entry per input list, in the order the lists were given.
    pub scores: Vec<Option<RankedScore>>,
}

/// One retriever's hits, best first, each with the weight fusion gives it: the list's weight,
/// times whatever makes one hit's evidence count less than another's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RankedList {
    pub ids: Vec<ChunkId>,
    pub scores: Vec<f32>,
    pub weights: Vec<f32>,
}

impl RankedList {
    /// A list whose hits all carry `weight`.
    pub fn uniform(ids: Vec<ChunkId>, scores: Vec<f32>, weight: f32) -> RankedList {
        let weights = vec![weight; ids.len()];
        RankedList {
            ids,
            scores,
            weights,
        }
    }
}

/// Weighted reciprocal rank fusion: each list adds `weight / (k + rank)` for every hit in it.
///
/// Ties are broken by the id, so that the same inputs always give the same order.
pub fn reciprocal_rank_fusion(lists: &[RankedList], k: f32, limit: usize) -> Vec<FusedHit> {
    fuse(lists, limit, |_, weight, rank, _| {
        weight / (k + rank as f32)
    })
}

/// Weighted sum of min-max normalised scores: within each list the best hit scores its weight
/// and the `depth`-th hit 0, and a hit absent from a list, or below its `depth`-th, gets nothing
/// from it. Unlike RRF it keeps how far apart the scores are, so a list whose hits are all
/// alike pulls less. Scaling over a fixed depth keeps the fused order of the top hits the same
/// however many hits are fetched.
pub fn normalized_score_fusion(lists: &[RankedList], depth: usize, limit: usize) -> Vec<FusedHit> {
    let ranges: Vec<(f32, f32)> = lists
        .iter()
        .map(|list| {
            list.scores
                .iter()
                .take(depth.max(1))
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| {
                    (lo.min(*s), hi.max(*s))
                })
        })
        .collect();
    fuse(lists, limit, |list, weight, _, score| {
        let (lo, hi) = ranges[list];
        if hi > lo {
            weight * ((score - lo) / (hi - lo)).max(0.0)
        } else {
            weight
        }
    })
}

/// Sums `contribution(list index, hit weight, rank, score)` over the lists for each id; the
/// best ones first.
fn fuse(
    lists: &[RankedList],
    limit: usize,
    contribution: impl Fn(usize, f32, u32, f32) -> f32,
) -> Vec<FusedHit> {
    let mut fused: HashMap<ChunkId, FusedHit> = HashMap::new();
    for (list_index, list) in lists.iter().enumerate() {
        let hits = list.ids.iter().zip(&list.scores).zip(&list.weights);
        for (position, ((id, score), weight)) in hits.enumerate() {
            let rank = position as u32 + 1;
            let hit = fused.entry(*id).or_insert_with(|| FusedHit {
                id: *id,
                fused_score: 0.0,
                scores: vec![None; lists.len()],
            });
            let gain = contribution(list_index, *weight, rank, *score);
            // A list holding the same id twice counts it once, at its best rank.
            if hit.scores[list_index].is_none() {
                hit.fused_score += gain;
                hit.scores[list_index] = Some(RankedScore {
                    score: *score,
                    rank,
                });
            }
        }
    }
    let mut hits: Vec<FusedHit> = fused.into_values().collect();
    // Equal fused scores (the tail of normalised fusion scores 0) keep the lists' own order.
    let best_rank = |hit: &FusedHit| hit.scores.iter().flatten().map(|s| s.rank).min();
    hits.sort_by(|a, b| {
        b.fused_score
            .total_cmp(&a.fused_score)
            .then(best_rank(a).cmp(&best_rank(b)))
            .then(a.id.cmp(&b.id))
    });
    hits.truncate(limit);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(values: &[u128]) -> Vec<ChunkId> {
        values.iter().copied().map(ChunkId::from_u128).collect()
    }

    #[test]
    fn agreement_between_lists_wins() {
        let lexical = ids(&[1, 2, 3]);
        let dense = ids(&[3, 4, 1]);
        let hits = reciprocal_rank_fusion(
            &[
                RankedList::uniform(lexical.clone(), vec![9.0, 8.0, 7.0], 1.0),
                RankedList::uniform(dense.clone(), vec![0.9, 0.8, 0.7], 1.0),
            ],
            60.0,
            10,
        );
        let order: Vec<u128> = hits.iter().map(|hit| hit.id.as_u128()).collect();
        // 1: 1/61 + 1/63, 3: 1/63 + 1/61 tie -> broken by id; 2 and 4 appear in one list only.
        assert_eq!(order, [1, 3, 2, 4]);
        assert_eq!(
            hits[0].scores[0],
            Some(RankedScore {
                score: 9.0,
                rank: 1
            })
        );
        assert_eq!(
            hits[0].scores[1],
            Some(RankedScore {
                score: 0.7,
                rank: 3
            })
        );
        assert_eq!(hits[2].scores[1], None);
        let expected = 1.0 / 61.0 + 1.0 / 63.0;
        assert!((hits[0].fused_score - expected).abs() < 1e-6);
    }

    #[test]
    fn weights_shift_the_order_and_limit_cuts() {
        let lexical = ids(&[1]);
        let dense = ids(&[2]);
        let hits = reciprocal_rank_fusion(
            &[
                RankedList::uniform(lexical.clone(), vec![1.0], 0.5),
                RankedList::uniform(dense.clone(), vec![1.0], 1.0),
            ],
            60.0,
            1,
        );
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].id.as_u128(), 2);
    }

    #[test]
    fn each_hit_carries_its_own_weight() {
        // BM25 ranks 1 first, but its match is weak evidence (weight 0.1): dense decides.
        let lexical = RankedList {
            ids: ids(&[1, 2]),
            scores: vec![10.0, 5.0],
            weights: vec![0.1, 1.0],
        };
        let dense = RankedList::uniform(ids(&[2, 1]), vec![0.9, 0.8], 1.0);
        let hits = normalized_score_fusion(&[lexical, dense], 10, 10);
        let order: Vec<u128> = hits.iter().map(|hit| hit.id.as_u128()).collect();
        assert_eq!(order, [2, 1]);
        assert!((hits[0].fused_score - 1.0).abs() < 1e-6, "{hits:?}");
        assert!((hits[1].fused_score - 0.1).abs() < 1e-6, "{hits:?}");
    }

    #[test]
    fn normalised_fusion_keeps_score_gaps() {
        let lexical = ids(&[1, 2, 3]);
        let dense = ids(&[2, 1]);
        // BM25 barely separates 1 from 2, dense strongly prefers 2.
        let hits = normalized_score_fusion(
            &[
                RankedList::uniform(lexical.clone(), vec![10.0, 9.9, 1.0], 1.0),
                RankedList::uniform(dense.clone(), vec![0.9, 0.1], 1.0),
            ],
            10,
            10,
        );
        let order: Vec<u128> = hits.iter().map(|hit| hit.id.as_u128()).collect();
        assert_eq!(order, [2, 1, 3]);
        // 2: (9.9 - 1) / 9 + 1 from dense; 3: the worst of its only list.
        assert!((hits[0].fused_score - (8.9 / 9.0 + 1.0)).abs() < 1e-5);
        assert_eq!(hits[2].fused_score, 0.0);
        // A list of one hit, or of equal scores, gives each its full weight; an empty list
        // before it changes nothing.
        let single = normalized_score_fusion(
            &[
                RankedList::uniform(Vec::new(), vec![], 1.0),
                RankedList::uniform(ids(&[7]), vec![3.0], 0.5),
            ],
            10,
            10,
        );
        assert_eq!(single[0].fused_score, 0.5);
        // Hits below the depth get nothing from their list, and the top ones keep their
        // scores however long the list is.
        let descending = ids(&[3, 2, 1]);
        let deep = normalized_score_fusion(
            &[RankedList::uniform(
                descending.clone(),
                vec![10.0, 9.0, 1.0],
                1.0,
            )],
            2,
            10,
        );
        let scores: Vec<(u128, f32)> = deep
            .iter()
            .map(|hit| (hit.id.as_u128(), hit.fused_score))
            .collect();
        // The tail ties at 0 and keeps its order in the list.
        assert_eq!(scores, [(3, 1.0), (2, 0.0), (1, 0.0)]);
    }

    #[test]
    fn duplicates_in_one_list_count_once() {
        let lexical = ids(&[1, 1]);
        let hits = reciprocal_rank_fusion(
            &[RankedList::uniform(lexical.clone(), vec![2.0, 1.0], 1.0)],
            0.0,
            10,
        );
        assert_eq!(hits.len(), 1);
        assert!((hits[0].fused_score - 1.0).abs() < 1e-6);
    }
}
