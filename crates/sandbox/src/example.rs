//! Made-up but realistic request files, for tests and benchmarks
//! (`batchboard example-file`): chat requests with varied prose, sized to a
//! target, optionally with requests the upstream will refuse.

use std::io::{self, Write};

const WORDS: &[&str] = &[
    "the",
    "report",
    "customer",
    "ticket",
    "delivery",
    "arrived",
    "late",
    "and",
    "was",
    "damaged",
    "summarise",
    "please",
    "invoice",
    "quarterly",
    "revenue",
    "grew",
    "by",
    "percent",
    "while",
    "costs",
    "fell",
    "support",
    "agent",
    "replied",
    "within",
    "hours",
    "résumé",
    "naïve",
    "über",
    "data",
    "pipeline",
    "failed",
    "because",
    "a",
    "schema",
    "changed",
    "upstream",
    "of",
    "batch",
];

/// What to write.
#[derive(Debug, Clone)]
pub struct ExampleSpec {
    /// Requests to write (at most 50,000 for a valid batch).
    pub requests: u64,
    /// Aim for this many bytes in all (the prompt text is sized to reach it).
    pub target_bytes: u64,
    /// Every n-th request (1-based) has an empty `messages` list, which the
    /// upstream refuses with a 400: a batch with known failures.
    pub fail_every: Option<u64>,
    pub model: String,
}

/// The custom_id of request `i` (0-based).
pub fn custom_id(i: u64) -> String {
    format!("req-{i:06}")
}

/// Writes the file; returns the custom_ids of the requests made to fail.
pub fn write_example(spec: &ExampleSpec, out: &mut impl Write) -> io::Result<Vec<String>> {
    let overhead = 190u64;
    let per_line = (spec.target_bytes / spec.requests.max(1))
        .saturating_sub(overhead)
        .max(8);
    let mut failing = Vec::new();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut text = String::new();
    for i in 0..spec.requests {
        let id = custom_id(i);
        let fail = spec.fail_every.is_some_and(|n| n > 0 && (i + 1) % n == 0);
        let messages = if fail {
            failing.push(id.clone());
            "[]".to_string()
        } else {
            text.clear();
            while (text.len() as u64) < per_line {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(WORDS[(state % WORDS.len() as u64) as usize]);
            }
            format!(
                r#"[{{"role":"system","content":"You are a careful assistant."}},{{"role":"user","content":"{text} ({i})"}}]"#
            )
        };
        writeln!(
            out,
            r#"{{"custom_id":"{id}","method":"POST","url":"/v1/chat/completions","body":{{"model":"{}","max_completion_tokens":64,"messages":{messages}}}}}"#,
            spec.model
        )?;
    }
    Ok(failing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_files_are_valid_and_near_their_size() {
        let spec = ExampleSpec {
            requests: 500,
            target_bytes: 1_000_000,
            fail_every: Some(7),
            model: "gpt-4o-mini".into(),
        };
        let mut buf = Vec::new();
        let failing = write_example(&spec, &mut buf).unwrap();
        assert_eq!(failing.len(), 71);
        let r = batchboard_core::validate::validate_bytes(&buf, None);
        assert!(r.is_ok(), "{:?}", r.errors);
        assert_eq!(r.requests, 500);
        let spec = ExampleSpec {
            fail_every: None,
            ..spec
        };
        let mut buf = Vec::new();
        assert!(write_example(&spec, &mut buf).unwrap().is_empty());
        let ratio = buf.len() as f64 / 1_000_000.0;
        assert!((0.95..1.05).contains(&ratio), "{}", buf.len());
    }
}
