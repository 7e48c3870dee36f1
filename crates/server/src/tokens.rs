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

/// Counts the tokens of `text` as `model` would; returns the count and the
/// encoding's name.
pub fn count(model: &str, text: &str) -> (u64, &'static str) {
    let (name, bpe) = encoding(model);
    (bpe.encode_ordinary(text).len() as u64, name)
}

/// A counter for the validator (embedding inputs).
pub fn counter() -> TokenCounter {
    Box::new(|model, text| count(model, text).0)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
