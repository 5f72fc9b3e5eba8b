//! Ranking: every catalog item ordered by cosine similarity to the query.
//!
//! Invariants: vectors are L2-normalised here, whatever the backend returned; the order is by score
//! descending, ties broken by item id descending (as trec_eval does), so a ranking is a pure function of
//! the scores and the ids. A tie that straddles the cut-off k is reported, because it means the metric at
//! k depends on that tie-break and not on the model.

use std::cmp::Ordering;

/// One ranked item.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// Index into the catalog's items.
    pub item: usize,
    pub score: f32,
}

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

/// Whether the items at ranks k and k+1 (1-based) share a score, so the cut-off splits a tie.
pub fn tie_at_cutoff(ranking: &[Ranked], k: usize) -> bool {
    k > 0 && k < ranking.len() && ranking[k - 1].score == ranking[k].score
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
