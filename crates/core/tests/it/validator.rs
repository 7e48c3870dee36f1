//! The shared validator over a corpus of bad files, and its properties:
//! chunking never changes the verdict, any bytes give an answer (never a
//! panic) with line numbers inside the file, and a problem planted at line k
//! is reported at line k.
//!
//! The corpus files are named `<what>__<code>[+<code>…].jsonl`; they also
//! seed the fuzz target (`fuzz/`).

use std::collections::BTreeSet;

use batchboard_core::validate::{validate_bytes, Report, Validator};
use proptest::prelude::*;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/validator");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    // Generated rather than committed: a 5 MB line, then a duplicate id.
    let huge = format!(
        "{}\n{}\n",
        serde_json::json!({"custom_id":"a","method":"POST","url":"/v1/chat/completions",
            "body":{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x".repeat(5 << 20)}]}}),
        serde_json::json!({"custom_id":"a","method":"POST","url":"/v1/chat/completions",
            "body":{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}]}})
    );
    files.push(("huge_line__duplicate_custom_id".into(), huge.into_bytes()));
    files.sort();
    files
}

fn chunked(data: &[u8], size: usize) -> Report {
    let mut v = Validator::new(None);
    for c in data.chunks(size.max(1)) {
        v.chunk(c);
    }
    v.finish()
}

#[test]
fn every_corpus_file_gets_the_codes_its_name_promises() {
    let files = corpus();
    assert!(files.len() >= 20, "{} corpus files", files.len());
    for (name, data) in files {
        let (_, expected) = name.split_once("__").unwrap();
        let r = validate_bytes(&data, None);
        let codes: BTreeSet<&str> = r.errors.iter().map(|e| e.code.as_str()).collect();
        if expected == "ok" {
            assert!(r.is_ok(), "{name}: {:?}", r.errors);
            assert!(r.requests >= 2, "{name}");
            continue;
        }
        for code in expected.split('+') {
            assert!(
                codes.contains(code),
                "{name}: expected {code}, got {codes:?}"
            );
        }
        // Every problem that belongs to a line says which, in its message too.
        for e in &r.errors {
            if let Some(l) = e.line {
                assert!(
                    e.message.contains(&format!("Line {l}"))
                        || e.message.contains(&format!("line {l}")),
                    "{name}: {}",
                    e.message
                );
            }
        }
        // The verdict does not depend on how the file arrives.
        assert_eq!(chunked(&data, 7), r, "{name}");
    }
}

/// A valid request line.
fn line(id: &str) -> String {
    format!(
        r#"{{"custom_id":"{id}","method":"POST","url":"/v1/chat/completions","body":{{"model":"m","max_tokens":3,"messages":[{{"role":"user","content":"q {id} é"}}]}}}}"#
    )
}

/// Ways to break one line, and the code each must produce.
fn breakage() -> impl Strategy<Value = (usize, &'static str)> {
    prop_oneof![
        Just((0, "invalid_json_line")),
        Just((1, "duplicate_custom_id")),
        Just((2, "invalid_method")),
        Just((3, "missing_required_parameter")),
        Just((4, "invalid_request")),
        Just((5, "invalid_json_line")),
    ]
}

fn broken(kind: usize, id: &str) -> String {
    match kind {
        0 => line(id)[..20].to_string(),
        1 => line("r0"),
        2 => line(id).replace("POST", "PATCH"),
        3 => line(id).replace(r#""model":"m","#, ""),
        4 => format!(
            r#"{{"custom_id":"{id}","method":"POST","url":"/v1/chat/completions","body":[1]}}"#
        ),
        // A raw control character inside a string.
        _ => format!("{{\"custom_id\":\"{id}\u{1}\"}}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn chunk_boundaries_never_change_the_report(
        n in 1usize..40,
        size in 1usize..300,
        crlf in any::<bool>(),
        bad in proptest::option::of((0usize..40, breakage())),
    ) {
        let end = if crlf { "\r\n" } else { "\n" };
        let mut lines: Vec<String> = (0..n).map(|i| line(&format!("r{i}"))).collect();
        if let Some((at, (kind, _))) = bad {
            let at = at % n;
            if at > 0 || kind != 1 {
                lines[at] = broken(kind, &format!("r{at}"));
            }
        }
        let data = lines.join(end) + end;
        prop_assert_eq!(chunked(data.as_bytes(), size), validate_bytes(data.as_bytes(), None));
    }

    #[test]
    fn a_problem_planted_at_line_k_is_reported_at_line_k(
        n in 2usize..60,
        at in 1usize..60,
        (kind, code) in breakage(),
        blank_every in 0usize..5,
    ) {
        let at = at % n;
        prop_assume!(at > 0);
        let mut out = Vec::new();
        let mut target_line = 0;
        for i in 0..n {
            if blank_every > 0 && i % blank_every == 0 {
                out.push(String::new());
            }
            out.push(if i == at { broken(kind, &format!("r{i}")) } else { line(&format!("r{i}")) });
            if i == at {
                target_line = out.len() as u64;
            }
        }
        let r = validate_bytes((out.join("\n") + "\n").as_bytes(), None);
        prop_assert_eq!(r.error_count, 1, "{:?}", r.errors);
        prop_assert_eq!(r.errors[0].line, Some(target_line));
        prop_assert_eq!(r.errors[0].code.as_str(), code);
        prop_assert_eq!(r.requests, n as u64);
    }

    #[test]
    fn any_bytes_get_an_answer_with_lines_inside_the_file(data in proptest::collection::vec(any::<u8>(), 0..2000), size in 1usize..64) {
        let r = chunked(&data, size);
        let lines = data.split(|b| *b == b'\n').count() as u64;
        prop_assert!(r.errors.len() as u64 <= r.error_count);
        for e in &r.errors {
            if let Some(l) = e.line {
                prop_assert!(l >= 1 && l <= lines, "line {} of {}", l, lines);
            }
        }
        prop_assert_eq!(r.bytes, data.len() as u64);
        prop_assert!(r.is_ok() || r.error_count > 0);
    }

    #[test]
    fn valid_files_pass_whatever_their_text(texts in proptest::collection::vec("\\PC{0,40}", 1..30)) {
        let data: String = texts
            .iter()
            .enumerate()
            .map(|(i, t)| serde_json::json!({"custom_id": format!("t{i}"), "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": t}]}}).to_string() + "\n")
            .collect();
        let r = validate_bytes(data.as_bytes(), None);
        prop_assert!(r.is_ok(), "{:?}", r.errors);
        prop_assert_eq!(r.requests, texts.len() as u64);
        // One separator byte per string, as in the sample.
        prop_assert_eq!(r.tokens.as_ref().map(|t| t.exact), None);
        prop_assert_eq!(r.sample.len() as u64, r.text_bytes);
        prop_assert_eq!(r.text_bytes, texts.iter().map(|t| t.len() as u64 + 1).sum::<u64>());
    }
}
