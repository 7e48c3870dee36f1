//! The table's queries against what a plain filter and sort of the same
//! batches gives: whichever plan a query takes (statuses merged from their
//! own indexes, a common metadata pair walked in order, a rare one
//! collected), the page is the same, and so is the count (a metadata
//! filter alone is counted from the pairs' index).

use batchboard_core::dashboard::BatchQuery;
use batchboard_core::{Batch, CREATED_BY};

use super::Db;

const STATUSES: [&str; 5] = [
    "completed",
    "completed",
    "in_progress",
    "cancelled",
    "expired",
];

fn batch(i: usize) -> Batch {
    // Failed is rare (1 in 50); `team=ml` common, `team=rare` rare; some
    // batches share a creation time, so ties are broken by id.
    let status = if i.is_multiple_of(50) {
        "failed"
    } else {
        STATUSES[i % 5]
    };
    let team = if i.is_multiple_of(97) { "rare" } else { "ml" };
    serde_json::from_value(serde_json::json!({
        "id": format!("batch_{i:05}"), "endpoint": "/v1/chat/completions",
        "input_file_id": format!("file-{i}"), "completion_window": "24h",
        "status": status, "created_at": 1_000 + (i / 3) as i64,
        "model": if i.is_multiple_of(2) { "a" } else { "b" },
        "metadata": { CREATED_BY: "op", "team": team },
    }))
    .unwrap()
}

fn expected(all: &[Batch], q: &BatchQuery) -> (Vec<String>, u64) {
    let statuses: Vec<&str> = q
        .status
        .as_deref()
        .map(|s| s.split(',').collect())
        .unwrap_or_default();
    let mut hits: Vec<&Batch> = all
        .iter()
        .filter(|b| statuses.is_empty() || statuses.contains(&b.status.to_string().as_str()))
        .filter(|b| q.model.is_none() || b.model == q.model)
        .filter(|b| match &q.meta_key {
            None => true,
            Some(k) => {
                let held = b.metadata.as_ref().and_then(|m| m.get(k));
                held.is_some() && (q.meta_value.is_none() || held == q.meta_value.as_ref())
            }
        })
        .collect();
    hits.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    if q.dir.as_deref() != Some("asc") {
        hits.reverse();
    }
    let total = hits.len() as u64;
    let page = hits
        .into_iter()
        .skip(q.offset.unwrap_or(0) as usize)
        .take(q.limit.unwrap_or(20) as usize)
        .map(|b| b.id.clone())
        .collect();
    (page, total)
}

#[tokio::test]
async fn every_plan_gives_the_page_a_plain_filter_and_sort_gives() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(None, dir.path()).await.unwrap();
    let all: Vec<Batch> = (0..2500).map(batch).collect();
    let items: Vec<_> = all.iter().map(|b| (b, None)).collect();
    db.upsert_batches(&items, |_, _| 0).await.unwrap();
    for status in [
        None,
        Some("completed"),
        Some("completed,failed"),
        Some("failed,in_progress"),
    ] {
        // A pair (common, rare), a key alone (every batch has it, none
        // has the other).
        for (key, value) in [
            (None, None),
            (Some("team"), Some("ml")),
            (Some("team"), Some("rare")),
            (Some("team"), None),
            (Some("nobody"), None),
        ] {
            for (dir, offset, model) in [
                ("desc", 0, None),
                ("asc", 40, None),
                ("desc", 300, Some("a")),
            ] {
                let q = BatchQuery {
                    status: status.map(str::to_owned),
                    meta_key: key.map(str::to_owned),
                    meta_value: value.map(str::to_owned),
                    model: model.map(str::to_owned),
                    dir: Some(dir.into()),
                    offset: Some(offset),
                    limit: Some(20),
                    ..Default::default()
                };
                let (rows, total, _, _) = db.query_batches(&q, None).await.unwrap();
                let got: Vec<String> = rows.into_iter().map(|b| b.id).collect();
                assert_eq!((got, total), expected(&all, &q), "{q:?}");
            }
        }
    }
}
