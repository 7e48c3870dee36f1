//! Made-up batches for seeding the dashboard's index in tests and benchmarks
//! (`batchboard index-seed`): test data lives with the emulator, not in the
//! server's store.

use batchboard_core::{Batch, BatchStatus, CREATED_BY};

/// `count` made-up batches (and input file names), the same for the same
/// `seed`: varied statuses, endpoints, models, creators, metadata and dates.
pub fn batches(count: usize, seed: u64) -> Vec<(Batch, String)> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as usize) % n
    };
    const STATUSES: &[&str] = &[
        "validating",
        "in_progress",
        "finalizing",
        "completed",
        "completed",
        "completed",
        "failed",
        "expired",
        "cancelling",
        "cancelled",
    ];
    const ENDPOINTS: &[&str] = &["/v1/chat/completions", "/v1/embeddings", "/v1/responses"];
    const MODELS: &[&str] = &[
        "gpt-4o-mini",
        "gpt-4.1",
        "text-embedding-3-small",
        "o4-mini",
    ];
    const CREATORS: &[&str] = &["ana", "ben", "chen", "dara", "eli"];
    const TEAMS: &[&str] = &["search", "support", "research"];
    let start = 1_767_225_600; // 2026-01-01T00:00:00Z
    (0..count)
        .map(|i| {
            let mut meta = batchboard_core::Metadata::new();
            if next(6) > 0 {
                meta.insert(CREATED_BY.into(), CREATORS[next(CREATORS.len())].into());
            }
            meta.insert("team".into(), TEAMS[next(TEAMS.len())].into());
            if next(4) == 0 {
                meta.insert("priority".into(), "high".into());
            }
            let total = 1 + next(1000) as u64;
            let b = Batch {
                id: format!("batch_seed{i:06}"),
                object: "batch".into(),
                endpoint: ENDPOINTS[next(ENDPOINTS.len())].into(),
                model: Some(MODELS[next(MODELS.len())].into()),
                input_file_id: format!("file-in{i:06}"),
                completion_window: "24h".into(),
                status: BatchStatus::from(STATUSES[next(STATUSES.len())]),
                created_at: start + (i as i64) * 97,
                request_counts: batchboard_core::RequestCounts {
                    total,
                    completed: total / 2,
                    failed: 0,
                },
                metadata: Some(meta),
                ..Default::default()
            };
            let name = format!("input-{}-{i}.jsonl", TEAMS[next(TEAMS.len())]);
            (b, name)
        })
        .collect()
}
