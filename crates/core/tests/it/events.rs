//! The `batch` event: the batch's own fields plus what changed, read
//! leniently; and which changes make a view of the table read its rows
//! again.

use batchboard_core::dashboard::{BatchEvent, BatchQuery, Change};

const BATCH: &str = r#""id":"batch_1","object":"batch","endpoint":"/v1/chat/completions","input_file_id":"file-1","completion_window":"24h","status":"in_progress","created_at":1,"request_counts":{"total":3,"completed":1,"failed":0}"#;

#[test]
fn a_batch_event_carries_the_batch_and_what_changed() {
    let ev: BatchEvent =
        serde_json::from_str(&format!(r#"{{{BATCH},"change":"status"}}"#)).unwrap();
    assert_eq!(ev.batch.id, "batch_1");
    assert_eq!(ev.batch.request_counts.completed, 1);
    assert_eq!(ev.change, Change::Status);
    // Written and read back, the same.
    let again: BatchEvent = serde_json::from_str(&serde_json::to_string(&ev).unwrap()).unwrap();
    assert_eq!(again, ev);
    // From a server that does not say, or says something new: unknown.
    let plain: BatchEvent = serde_json::from_str(&format!("{{{BATCH}}}")).unwrap();
    assert_eq!(plain.change, Change::Unknown);
    let newer: BatchEvent =
        serde_json::from_str(&format!(r#"{{{BATCH},"change":"renamed"}}"#)).unwrap();
    assert_eq!(newer.change, Change::Unknown);
    for c in [
        Change::New,
        Change::Status,
        Change::Progress,
        Change::Unknown,
    ] {
        assert_eq!(Change::parse(c.as_str()), c);
    }
}

#[test]
fn only_changes_that_can_move_rows_reshape_a_view() {
    let all = BatchQuery::default();
    let by = |f: fn(&mut BatchQuery)| {
        let mut q = BatchQuery::default();
        f(&mut q);
        q
    };
    let status_filter = by(|q| q.status = Some("in_progress".into()));
    let status_sort = by(|q| q.sort = Some("status".into()));
    let search = by(|q| q.q = Some("file-".into()));
    let model = by(|q| q.model = Some("gpt-4o".into()));
    for q in [&all, &status_filter, &status_sort, &search, &model] {
        // A new batch can land anywhere; an unknown change may be anything.
        assert!(q.reshaped_by(Change::New), "{q:?}");
        assert!(q.reshaped_by(Change::Unknown), "{q:?}");
        // Progress moves nothing.
        assert!(!q.reshaped_by(Change::Progress), "{q:?}");
    }
    // A status change moves rows only where the view depends on status.
    assert!(!all.reshaped_by(Change::Status));
    assert!(!model.reshaped_by(Change::Status));
    assert!(status_filter.reshaped_by(Change::Status));
    assert!(status_sort.reshaped_by(Change::Status));
    assert!(search.reshaped_by(Change::Status));
}

/// Ids of batches at other upstreams carry the upstream's name; both
/// forms pass the id check, and nothing else with a dot does.
#[test]
fn qualified_ids_name_their_upstream_and_pass_the_id_check() {
    use batchboard_core::dashboard::{check_id, qualified, split_qualified};
    assert_eq!(qualified("", "batch_1"), "batch_1");
    let q = qualified("azure-eu", "batch_1");
    assert_eq!(q, "azure-eu.batch_1");
    assert_eq!(split_qualified(&q), ("azure-eu", "batch_1"));
    assert_eq!(split_qualified("batch_1"), ("", "batch_1"));
    for ok in ["batch_1", "azure-eu.batch_1", "claude.msgbatch_01--failed"] {
        check_id("batch", ok).unwrap();
    }
    for bad in [
        "", ".batch_1", "azure.", "a.b.c", "..", "../etc", "a b", "a/b",
    ] {
        assert!(check_id("batch", bad).is_err(), "{bad:?}");
    }
}
