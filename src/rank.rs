//! Ranking: every catalog item ordered by cosine similarity to the query.
//!
//! Invariants: vectors arrive L2-normalised (see [`crate::embed::unit_vectors`], the one place that
//! normalises); the order is by score descending, ties broken by item id descending (as trec_eval does),
//! so a ranking is a pure function of the scores and the ids.
//!
//! Float noise: the same model on another machine or thread count moves scores by about 1e-7, which can
//! swap two items whose scores are that close. Scores closer than [`NEAR_TIE`] are therefore a tie for
//! ordering, and [`stabilize`] orders such a tie as a previous ranking (the accepted snapshot) did, so
//! noise can never reorder a ranking while any real change of [`NEAR_TIE`] or more always does. A tie
//! (or near tie) that straddles the cut-off k is reported, because the metrics at k then depend on the
//! tie-break and not on the model.

use std::cmp::Ordering;

/// One ranked item.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// Index into the catalog's items.
    pub item: usize,
    pub score: f32,
}

/// Scores closer than this are tied for ordering: about a hundred times the float noise between machines
/// and thread counts, and far below any difference a model change makes.
pub const NEAR_TIE: f32 = 1e-5;

/// Scales `v` to unit length in place (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Dot product of two equally long vectors.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Ranks items by score descending, ties by id descending. `ids[i]` is the id of item `i`.
pub fn rank_scores(scores: &[f32], ids: &[&str]) -> Vec<Ranked> {
    debug_assert_eq!(scores.len(), ids.len());
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        scores[b].partial_cmp(&scores[a]).unwrap_or(Ordering::Equal).then_with(|| ids[b].cmp(ids[a]))
    });
    order.into_iter().map(|i| Ranked { item: i, score: scores[i] }).collect()
}

/// Ranks normalised `items` against a normalised `query` by cosine similarity.
pub fn rank(query: &[f32], items: &[Vec<f32>], ids: &[&str]) -> Vec<Ranked> {
    let scores: Vec<f32> = items.iter().map(|v| dot(query, v)).collect();
    rank_scores(&scores, ids)
}

/// Reorders near ties (adjacent items whose scores differ by less than [`NEAR_TIE`]) as a previous
/// ranking ordered them. `prior(item)` is the item's position in that ranking, `None` when it was not
/// shown there; items without a prior position keep their place.
pub fn stabilize(ranking: &mut [Ranked], prior: impl Fn(usize) -> Option<usize>) {
    // Near ties are short runs, so a bubble pass until nothing moves is cheap; it swaps only adjacent
    // pairs that are near-tied and out of the prior order, so it terminates (each swap removes an
    // inversion of the prior order).
    let mut moved = true;
    while moved {
        moved = false;
        for i in 0..ranking.len().saturating_sub(1) {
            let (a, b) = (&ranking[i], &ranking[i + 1]);
            if (a.score - b.score).abs() >= NEAR_TIE {
                continue;
            }
            if let (Some(pa), Some(pb)) = (prior(a.item), prior(b.item)) {
                if pb < pa {
                    ranking.swap(i, i + 1);
                    moved = true;
                }
            }
        }
    }
}

/// Whether the items at ranks k and k+1 (1-based) are tied or nearly tied, so the cut-off splits a tie.
pub fn tie_at_cutoff(ranking: &[Ranked], k: usize) -> bool {
    k > 0 && k < ranking.len() && (ranking[k - 1].score - ranking[k].score).abs() < NEAR_TIE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_score_then_id_descending() {
        let ids = ["a", "b", "c", "d"];
        let ranking = rank_scores(&[0.5, 0.9, 0.5, 0.1], &ids);
        let order: Vec<&str> = ranking.iter().map(|r| ids[r.item]).collect();
        // b first; a and c tie at 0.5 and "c" > "a", so c comes before a.
        assert_eq!(order, ["b", "c", "a", "d"]);
        assert!(tie_at_cutoff(&ranking, 2));
        assert!(!tie_at_cutoff(&ranking, 1));
        assert!(!tie_at_cutoff(&ranking, 3));
        assert!(!tie_at_cutoff(&ranking, 4));
    }

    #[test]
    fn near_ties_keep_the_prior_order_and_real_moves_do_not() {
        let ids = ["a", "b", "c"];
        let prior = |order: &'static [usize]| move |item: usize| order.iter().position(|&i| i == item);
        // b above a by 0.000009 (< NEAR_TIE): noise; the prior order (a before b) stays.
        let mut r = rank_scores(&[0.500000, 0.500009, 0.1], &ids);
        assert_eq!(r.iter().map(|x| x.item).collect::<Vec<_>>(), [1, 0, 2]);
        stabilize(&mut r, prior(&[0, 1, 2]));
        assert_eq!(r.iter().map(|x| x.item).collect::<Vec<_>>(), [0, 1, 2]);
        // b above a by 0.000011 (> NEAR_TIE): a real move, shown.
        let mut r = rank_scores(&[0.500000, 0.500011, 0.1], &ids);
        stabilize(&mut r, prior(&[0, 1, 2]));
        assert_eq!(r.iter().map(|x| x.item).collect::<Vec<_>>(), [1, 0, 2]);
        // Without a prior position the score order stands.
        let mut r = rank_scores(&[0.500000, 0.500009, 0.1], &ids);
        stabilize(&mut r, |_| None);
        assert_eq!(r.iter().map(|x| x.item).collect::<Vec<_>>(), [1, 0, 2]);
        // A run of three near-tied items is put back in the prior order entirely.
        let mut r = rank_scores(&[0.300000, 0.300002, 0.300004], &ids);
        assert_eq!(r.iter().map(|x| x.item).collect::<Vec<_>>(), [2, 1, 0]);
        stabilize(&mut r, prior(&[0, 1, 2]));
        assert_eq!(r.iter().map(|x| x.item).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(tie_at_cutoff(&r, 1));
    }

    #[test]
    fn cosine_of_unnormalised_vectors() {
        let mut q = vec![3.0, 4.0];
        normalize(&mut q);
        assert_eq!(q, [0.6, 0.8]);
        let mut items = vec![vec![0.0, 2.0], vec![1.0, 0.0], vec![0.0, 0.0]];
        items.iter_mut().for_each(|v| normalize(v));
        let ranking = rank(&q, &items, &["x", "y", "z"]);
        let got: Vec<(usize, f32)> = ranking.iter().map(|r| (r.item, r.score)).collect();
        assert_eq!(got, [(0, 0.8), (1, 0.6), (2, 0.0)]);
    }
}
