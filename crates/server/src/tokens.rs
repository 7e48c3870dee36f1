//! Token counting with OpenAI's encodings (tiktoken-rs): the encoding is
//! chosen by model family; unknown models are counted as `o200k_base`, the
//! encoding of every current OpenAI model. Encodings load once, lazily.

use std::sync::OnceLock;

use tiktoken_rs::tokenizer::{get_tokenizer, Tokenizer};
use tiktoken_rs::CoreBPE;

use batchboard_core::validate::TokenCounter;

fn encoding(model: &str) -> (&'static str, &'static CoreBPE) {
    static O200K: OnceLock<CoreBPE> = OnceLock::new();
    static CL100K: OnceLock<CoreBPE> = OnceLock::new();
    static P50K: OnceLock<CoreBPE> = OnceLock::new();
    // The tables are compiled in: loading cannot fail at run time.
    #[allow(clippy::expect_used)]
    match get_tokenizer(model) {
        Some(Tokenizer::Cl100kBase) => (
            "cl100k_base",
            CL100K.get_or_init(|| tiktoken_rs::cl100k_base().expect("built-in cl100k_base")),
        ),
        Some(Tokenizer::P50kBase | Tokenizer::P50kEdit | Tokenizer::R50kBase | Tokenizer::Gpt2) => {
            (
                "p50k_base",
                P50K.get_or_init(|| tiktoken_rs::p50k_base().expect("built-in p50k_base")),
            )
        }
        _ => (
            "o200k_base",
            O200K.get_or_init(|| tiktoken_rs::o200k_base().expect("built-in o200k_base")),
        ),
    }
}

/// Token counts for browsers run at most this many at once (each takes a
/// core); more are refused with 503 until one ends.
pub static COUNTING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// The users with a count running: one at a time each, so that no one user
/// holds both of [`COUNTING`]'s permits.
static COUNTING_USERS: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// `user`'s turn to count, held until dropped; `None` while they have a
/// count running already.
pub fn user_turn(user: &str) -> Option<UserTurn> {
    let mut users = COUNTING_USERS.lock().unwrap_or_else(|p| p.into_inner());
    users
        .insert(user.to_owned())
        .then(|| UserTurn(user.to_owned()))
}

/// A user's running count (see [`user_turn`]).
pub struct UserTurn(String);

impl Drop for UserTurn {
    fn drop(&mut self) {
        let mut users = COUNTING_USERS.lock().unwrap_or_else(|p| p.into_inner());
        users.remove(&self.0);
    }
}

/// Runs of non-space characters longer than this are counted in parts.
const MAX_RUN_BYTES: usize = 1024;

/// Counts the tokens of `text` as `model` would; returns the count and the
/// encoding's name.
///
/// A run of letters without spaces is one piece for the encoder, whose
/// merging takes time growing with the square of its length (a 260 KiB run
/// took minutes of CPU): runs longer than 1 KiB are counted 1 KiB at a time,
/// which adds at most one token per KiB (well within 1 %). Ordinary text has
/// no such runs and is counted exactly.
pub fn count(model: &str, text: &str) -> (u64, &'static str) {
    let (name, bpe) = encoding(model);
    let mut total = 0usize;
    let (mut start, mut run) = (0, 0);
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            run = 0;
            continue;
        }
        run += c.len_utf8();
        if run > MAX_RUN_BYTES {
            total += bpe.encode_ordinary(&text[start..i]).len();
            (start, run) = (i, c.len_utf8());
        }
    }
    total += bpe.encode_ordinary(&text[start..]).len();
    (total as u64, name)
}

/// A counter for the validator (embedding inputs).
pub fn counter() -> TokenCounter {
    Box::new(|model, text| count(model, text).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_count_at_a_time_per_user() {
        let first = user_turn("ana").expect("ana's first count");
        assert!(
            user_turn("ana").is_none(),
            "a second count of ana's at once"
        );
        let other = user_turn("ben");
        assert!(other.is_some(), "another user counts meanwhile");
        drop(first);
        assert!(
            user_turn("ana").is_some(),
            "ana's turn again once hers ended"
        );
    }

    #[test]
    fn encodings_follow_the_model_family() {
        assert_eq!(count("gpt-4o-mini", "hello world").1, "o200k_base");
        assert_eq!(
            count("text-embedding-3-small", "hello world").1,
            "cl100k_base"
        );
        assert_eq!(count("gpt-4", "hello world"), (2, "cl100k_base"));
        assert_eq!(count("some-local-model", "").0, 0);
    }

    #[test]
    fn long_runs_are_counted_quickly_and_closely() {
        let (name, bpe) = encoding("gpt-4o-mini");
        assert_eq!(name, "o200k_base");
        // Ordinary text: exact.
        let prose = "The quick brown fox jumps over the lazy dog. ".repeat(400);
        assert_eq!(
            count("gpt-4o-mini", &prose).0,
            bpe.encode_ordinary(&prose).len() as u64
        );
        // A long run: within 1 % of the exact count.
        let run: String = (0..8_000)
            .map(|i| (b'a' + (i * 7 % 26) as u8) as char)
            .collect();
        let exact = bpe.encode_ordinary(&run).len() as f64;
        let split = count("gpt-4o-mini", &run).0 as f64;
        assert!((split - exact).abs() / exact <= 0.01, "{split} vs {exact}");
        // The largest sample the server takes, in one run: quick.
        let started = std::time::Instant::now();
        count(
            "gpt-4o-mini",
            &"a".repeat(batchboard_core::dashboard::MAX_SAMPLE_BYTES),
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
