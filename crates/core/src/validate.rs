//! The JSONL batch input validator: one implementation for the server, the
//! sandbox and (compiled to WASM) the browser. It is fed chunks of the file
//! (or single lines), so a 200 MB file never needs to be in memory, and it
//! does no I/O.
//!
//! Each line is parsed once, into borrowed typed fields: only the fields the
//! rules need are looked at, everything else is skipped without allocation.
//! Error codes follow those the Batch API reports in `errors.data[].code`.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::i18n::{Key, Msg};
use super::{BatchError, ENDPOINTS, MAX_FILE_BYTES, MAX_REQUESTS};

/// How many problems (and warnings) are kept in detail; the rest are counted.
pub const DEFAULT_ERROR_CAP: usize = 100;
/// How much request text is kept as a sample for the token estimate.
pub const SAMPLE_BYTES: usize = 256 * 1024;
/// Embeddings: tokens per input, and inputs per request.
pub const EMBEDDING_MAX_INPUT_TOKENS: u64 = 8192;
pub const EMBEDDING_MAX_INPUTS: u64 = 2048;
/// Where the browser, without the tokenizer, calls an embedding input long:
/// about four bytes of English per token.
const BYTES_PER_TOKEN_GUESS: u64 = 4;

/// Counts the tokens of a text (the server's tokenizer). The validator uses
/// it only for embedding inputs long enough to possibly exceed their limit.
/// It is given the model (as far as known) and the text.
pub type TokenCounter = Box<dyn FnMut(&str, &str) -> u64 + Send>;

/// The token estimate for a file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEstimate {
    /// Estimated input tokens of all requests' text.
    pub input_tokens: u64,
    /// The tokenizer encoding used (`o200k_base`, `cl100k_base`), or
    /// `approximate` when none was available.
    pub encoding: String,
    /// True when every byte of text was counted, not extrapolated.
    pub exact: bool,
}

/// What the validator found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The first problems, in line order (at most the cap).
    pub errors: Vec<BatchError>,
    /// All problems, including those past the cap.
    pub error_count: u64,
    /// Things that will not fail the batch but may cost or surprise.
    pub warnings: Vec<BatchError>,
    pub warning_count: u64,
    /// Requests (non-blank lines).
    pub requests: u64,
    /// Lines, blank ones included.
    pub lines: u64,
    pub bytes: u64,
    /// The `url` of the first request, if any.
    pub endpoint: Option<String>,
    /// The `body.model` of the first request that has one.
    pub model: Option<String>,
    /// Bytes of prompt text (messages, input, prompt, instructions).
    pub text_bytes: u64,
    /// Requests that set an output token limit, and the sum of those limits.
    pub limited_requests: u64,
    pub max_output_tokens: u64,
    /// The first [`SAMPLE_BYTES`] of prompt text, for the token estimate.
    #[serde(skip)]
    pub sample: String,
    /// Filled in by whoever has a tokenizer (see [`Report::estimate_tokens`]).
    pub tokens: Option<TokenEstimate>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.error_count == 0
    }

    /// Extrapolates the sample's token count to all the file's text.
    pub fn estimate_tokens(&mut self, sample_tokens: u64, encoding: &str) {
        let sample = self.sample.len() as u64;
        let (input_tokens, exact) = if sample == 0 {
            (0, true)
        } else if sample >= self.text_bytes {
            (sample_tokens, true)
        } else {
            let scaled = sample_tokens as u128 * self.text_bytes as u128 / sample as u128;
            (scaled as u64, false)
        };
        self.tokens = Some(TokenEstimate {
            input_tokens,
            encoding: encoding.into(),
            exact,
        });
    }

    /// Without a tokenizer: about four bytes a token.
    pub fn approximate_tokens(&mut self) {
        let guess = self.sample.len() as u64 / BYTES_PER_TOKEN_GUESS;
        self.estimate_tokens(guess, "approximate");
    }
}

/// Which endpoint family the output-limit warning and the embeddings rules
/// apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Chat,
    Responses,
    Completions,
    Embeddings,
    Moderations,
    /// Images and videos: a `prompt` is required; no tokens to estimate.
    Media,
    Unknown,
}

impl Family {
    fn of(url: &str) -> Self {
        match url {
            "/v1/chat/completions" => Self::Chat,
            "/v1/responses" => Self::Responses,
            "/v1/completions" => Self::Completions,
            "/v1/embeddings" => Self::Embeddings,
            "/v1/moderations" => Self::Moderations,
            "/v1/images/generations" | "/v1/images/edits" | "/v1/videos" => Self::Media,
            _ => Self::Unknown,
        }
    }
}

pub struct Validator {
    expected_endpoint: Option<String>,
    cap: usize,
    seen_ids: HashSet<String>,
    report: Report,
    model_line: u64,
    counter: Option<TokenCounter>,
    /// Chat/responses requests without an output limit: count, first line.
    unlimited: (u64, u64),
    /// Bytes of a line that continues in the next chunk.
    pending: Vec<u8>,
    /// Requests and bytes one file may hold (one batch's, unless a job's).
    max_requests: u64,
    max_bytes: u64,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator")
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// `expected_endpoint`: the batch's endpoint when known (every line's
    /// `url` must equal it); otherwise the first line's `url` sets it.
    pub fn new(expected_endpoint: Option<&str>) -> Self {
        Self {
            expected_endpoint: expected_endpoint.map(str::to_owned),
            cap: DEFAULT_ERROR_CAP,
            seen_ids: HashSet::new(),
            report: Report::default(),
            model_line: 0,
            counter: None,
            unlimited: (0, 0),
            pending: Vec::new(),
            max_requests: MAX_REQUESTS as u64,
            max_bytes: MAX_FILE_BYTES,
        }
    }

    /// Other limits of the file than one batch's (a job's, which is split).
    pub fn with_limits(mut self, max_requests: u64, max_bytes: u64) -> Self {
        self.max_requests = max_requests;
        self.max_bytes = max_bytes;
        self
    }

    pub fn with_error_cap(mut self, cap: usize) -> Self {
        self.cap = cap;
        self
    }

    /// With a tokenizer, long embedding inputs are counted exactly; without
    /// one they are judged at about four bytes a token (a warning, not an
    /// error).
    pub fn with_token_counter(mut self, counter: TokenCounter) -> Self {
        self.counter = Some(counter);
        self
    }

    /// The report so far (for progress displays).
    pub fn report(&self) -> &Report {
        &self.report
    }

    fn push(
        list: &mut Vec<BatchError>,
        cap: usize,
        code: &str,
        line: Option<u64>,
        param: Option<&str>,
        msg: Msg,
    ) {
        if list.len() < cap {
            list.push(BatchError {
                code: code.into(),
                message: msg.to_string(),
                param: param.map(str::to_owned),
                line,
                msg: Some(msg),
            });
        }
    }

    fn error(&mut self, code: &str, line: Option<u64>, param: Option<&str>, msg: Msg) {
        self.report.error_count += 1;
        Self::push(&mut self.report.errors, self.cap, code, line, param, msg);
    }

    fn warn(&mut self, code: &str, line: Option<u64>, param: Option<&str>, msg: Msg) {
        self.report.warning_count += 1;
        Self::push(&mut self.report.warnings, self.cap, code, line, param, msg);
    }

    /// Feeds the next chunk of the file, of any size: lines are split here,
    /// across chunk borders, and bytes are counted.
    pub fn chunk(&mut self, chunk: &[u8]) {
        self.report.bytes += chunk.len() as u64;
        let mut rest = chunk;
        if !self.pending.is_empty() {
            match memchr::memchr(b'\n', rest) {
                None => {
                    self.pending.extend_from_slice(rest);
                    return;
                }
                Some(pos) => {
                    let mut line = std::mem::take(&mut self.pending);
                    line.extend_from_slice(&rest[..pos]);
                    self.next_line(&line);
                    line.clear();
                    self.pending = line;
                    rest = &rest[pos + 1..];
                }
            }
        }
        let mut start = 0;
        for pos in memchr::memchr_iter(b'\n', rest) {
            self.next_line(&rest[start..pos]);
            start = pos + 1;
        }
        self.pending.extend_from_slice(&rest[start..]);
    }

    fn next_line(&mut self, raw: &[u8]) {
        self.report.lines += 1;
        let n = self.report.lines;
        self.line(n, raw);
    }

    /// Feeds one line (without its line ending) with its 1-based number.
    /// Bytes are not counted here: use [`Validator::add_bytes`], or feed
    /// [`Validator::chunk`]s instead.
    pub fn line(&mut self, line_no: u64, raw: &[u8]) {
        self.report.lines = self.report.lines.max(line_no);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.report.requests += 1;
        if self.report.requests == self.max_requests + 1 {
            let max = self.max_requests;
            self.error(
                "too_many_tasks",
                Some(line_no),
                None,
                Msg::new(Key::ProblemTooManyRequests).arg("max", max),
            );
        }
        if line_no == 1 && raw.starts_with(b"\xEF\xBB\xBF") {
            self.error(
                "invalid_json_line",
                Some(line_no),
                None,
                Msg::new(Key::ProblemBom),
            );
            return;
        }
        // serde would read a struct from an array too: only objects are
        // requests.
        if raw.trim_ascii_start().first() != Some(&b'{')
            && serde_json::from_slice::<IgnoredAny>(raw).is_ok()
        {
            self.error(
                "invalid_json_line",
                Some(line_no),
                None,
                Msg::new(Key::ProblemNotObject).arg("line", line_no),
            );
            return;
        }
        // UTF-8 checked once for the whole line, with SIMD where there is
        // some: parsing from `&str` then skips serde_json's own check of
        // every string, which took a fifth of an upload's CPU.
        let Ok(text) = simdutf8::basic::from_utf8(raw) else {
            self.error(
                "invalid_json_line",
                Some(line_no),
                None,
                Msg::new(Key::ProblemNotUtf8).arg("line", line_no),
            );
            return;
        };
        let room = SAMPLE_BYTES.saturating_sub(self.report.sample.len());
        SAMPLE_ROOM.with(|r| r.set(room));
        let parsed: Result<RequestLine, _> = serde_json::from_str(text);
        let req = match parsed {
            Ok(r) => r,
            Err(e) => {
                let msg = if e.is_data() {
                    Msg::new(Key::ProblemNotRequest).arg("detail", &e)
                } else {
                    Msg::new(Key::ProblemNotJson).arg("detail", &e)
                };
                self.error(
                    "invalid_json_line",
                    Some(line_no),
                    None,
                    msg.arg("line", line_no),
                );
                return;
            }
        };
        self.check(line_no, req);
    }

    fn check(&mut self, line_no: u64, req: RequestLine<'_>) {
        match req.custom_id {
            Field::Str(s) if s.is_empty() => self.error(
                "missing_required_parameter",
                Some(line_no),
                Some("custom_id"),
                Msg::new(Key::ProblemCustomIdEmpty).arg("line", line_no),
            ),
            Field::Str(id) => {
                if !self.seen_ids.contains(id.as_str()) {
                    self.seen_ids.insert(id.into_owned());
                } else {
                    self.error(
                        "duplicate_custom_id",
                        Some(line_no),
                        Some("custom_id"),
                        Msg::new(Key::ProblemDuplicateCustomId)
                            .arg("line", line_no)
                            .arg("id", id.as_str()),
                    );
                }
            }
            other => self.error(
                "missing_required_parameter",
                Some(line_no),
                Some("custom_id"),
                other.not_a_string(FIELD, line_no).arg("field", "custom_id"),
            ),
        }

        match &req.method {
            Field::Str(m) if m.as_str() == "POST" => {}
            Field::Str(m) => {
                let m = m.as_str().to_owned();
                self.error(
                    "invalid_method",
                    Some(line_no),
                    Some("method"),
                    Msg::new(Key::ProblemMethodNotPost)
                        .arg("line", line_no)
                        .arg("method", m),
                )
            }
            other => {
                let msg = other.not_a_string(METHOD, line_no);
                self.error("invalid_method", Some(line_no), Some("method"), msg)
            }
        }

        match &req.url {
            Field::Str(url) => {
                let url = url.as_str();
                if !ENDPOINTS.contains(&url) {
                    self.error(
                        "invalid_url",
                        Some(line_no),
                        Some("url"),
                        Msg::new(Key::ProblemUrlNotEndpoint)
                            .arg("line", line_no)
                            .arg("url", url)
                            .arg("endpoints", ENDPOINTS.join(", ")),
                    );
                }
                if self.report.endpoint.is_none() {
                    self.report.endpoint = Some(url.to_owned());
                }
                let expected = self
                    .expected_endpoint
                    .as_deref()
                    .or(self.report.endpoint.as_deref());
                if let Some(expected) = expected {
                    if url != expected {
                        let expected = expected.to_owned();
                        self.error(
                            "url_mismatch",
                            Some(line_no),
                            Some("url"),
                            Msg::new(Key::ProblemUrlMismatch)
                                .arg("line", line_no)
                                .arg("url", url)
                                .arg("expected", expected),
                        );
                    }
                }
            }
            other => {
                let msg = other.not_a_string(FIELD, line_no).arg("field", "url");
                self.error(
                    "missing_required_parameter",
                    Some(line_no),
                    Some("url"),
                    msg,
                )
            }
        }

        let BodyField::Object(body) = req.body else {
            self.error(
                "invalid_request",
                Some(line_no),
                Some("body"),
                Msg::new(Key::ProblemBodyNotObject).arg("line", line_no),
            );
            return;
        };
        match body.model {
            Field::Str(model) => match &self.report.model {
                None => {
                    self.report.model = Some(model.into_owned());
                    self.model_line = line_no;
                }
                Some(first) if first.as_str() != model.as_str() => {
                    let (first, first_line) = (first.clone(), self.model_line);
                    self.error(
                        "model_mismatch",
                        Some(line_no),
                        Some("body.model"),
                        Msg::new(Key::ProblemModelMismatch)
                            .arg("line", line_no)
                            .arg("model", model.as_str())
                            .arg("first", first)
                            .arg("first_line", first_line),
                    );
                }
                Some(_) => {}
            },
            other => {
                let msg = other
                    .not_a_string(FIELD, line_no)
                    .arg("field", "body.model");
                self.error(
                    "missing_required_parameter",
                    Some(line_no),
                    Some("body.model"),
                    msg,
                )
            }
        }

        // Text for the token estimate.
        self.report.text_bytes += body.text.bytes;
        let room = SAMPLE_BYTES.saturating_sub(self.report.sample.len());
        if room > 0 {
            let mut end = body.text.sample.len().min(room);
            while !body.text.sample.is_char_boundary(end) {
                end -= 1;
            }
            self.report.sample.push_str(&body.text.sample[..end]);
        }

        let url = match &req.url {
            Field::Str(u) => u.as_str(),
            _ => "",
        };
        match Family::of(url) {
            Family::Chat | Family::Responses => match body.output_limit {
                Some(n) => {
                    self.report.limited_requests += 1;
                    self.report.max_output_tokens +=
                        n.saturating_mul(body.choices.unwrap_or(1).max(1));
                }
                None => {
                    if self.unlimited.0 == 0 {
                        self.unlimited.1 = line_no;
                    }
                    self.unlimited.0 += 1;
                }
            },
            Family::Completions => {
                // The completions endpoint defaults to 16 output tokens.
                self.report.limited_requests += 1;
                self.report.max_output_tokens += body.output_limit.unwrap_or(16);
            }
            Family::Embeddings => {
                // No output tokens to pay for.
                self.report.limited_requests += 1;
                self.check_embeddings(line_no, &body.text);
            }
            Family::Moderations => self.report.limited_requests += 1,
            Family::Media => {
                self.report.limited_requests += 1;
                if !body.has_prompt {
                    self.error(
                        "missing_required_parameter",
                        Some(line_no),
                        Some("body.prompt"),
                        Msg::new(Key::ProblemFieldMissing)
                            .arg("line", line_no)
                            .arg("field", "body.prompt"),
                    );
                }
            }
            Family::Unknown => {}
        }
    }

    fn check_embeddings(&mut self, line_no: u64, text: &Text) {
        if text.inputs > EMBEDDING_MAX_INPUTS {
            self.error(
                "invalid_request",
                Some(line_no),
                Some("body.input"),
                Msg::new(Key::ProblemTooManyInputs)
                    .arg("line", line_no)
                    .arg("n", text.inputs)
                    .arg("max", EMBEDDING_MAX_INPUTS),
            );
        }
        let model = self.report.model.as_deref().unwrap_or_default();
        let mut found = Vec::new();
        for (index, long) in &text.long_inputs {
            let (tokens, exact) = match (long, self.counter.as_mut()) {
                (LongInput::Tokens(n), _) => (*n, true),
                (LongInput::Text(s), Some(count)) => (count(model, s), true),
                (LongInput::Text(s), None) => (s.len() as u64 / BYTES_PER_TOKEN_GUESS, false),
            };
            if tokens > EMBEDDING_MAX_INPUT_TOKENS {
                found.push((*index, tokens, exact));
            }
        }
        for (index, tokens, exact) in found {
            let param = format!("body.input[{index}]");
            if exact {
                self.error(
                    "invalid_request",
                    Some(line_no),
                    Some(&param),
                    Msg::new(Key::ProblemInputTooLong)
                        .arg("line", line_no)
                        .arg("param", &param)
                        .arg("tokens", tokens)
                        .arg("max", EMBEDDING_MAX_INPUT_TOKENS),
                );
            } else {
                self.warn(
                    "embedding_input_too_long",
                    Some(line_no),
                    Some(&param),
                    Msg::new(Key::ProblemInputMaybeTooLong)
                        .arg("line", line_no)
                        .arg("param", &param)
                        .arg("tokens", tokens)
                        .arg("max", EMBEDDING_MAX_INPUT_TOKENS),
                );
            }
        }
    }

    /// Counts bytes of the file (line endings included) when lines are fed
    /// one by one.
    pub fn add_bytes(&mut self, n: u64) {
        self.report.bytes += n;
    }

    pub fn finish(mut self) -> Report {
        if !self.pending.is_empty() {
            let last = std::mem::take(&mut self.pending);
            self.next_line(&last);
        }
        if self.report.bytes > self.max_bytes {
            let (bytes, max) = (self.report.bytes, self.max_bytes);
            self.error(
                "file_too_large",
                None,
                None,
                Msg::new(Key::ProblemFileTooLarge)
                    .arg("bytes", bytes)
                    .arg("max", max),
            );
        }
        if self.report.requests == 0 && self.report.error_count == 0 {
            self.error("empty_file", None, None, Msg::new(Key::ProblemEmptyFile));
        }
        let (unlimited, first) = self.unlimited;
        if unlimited > 0 {
            self.warn(
                "no_output_limit",
                Some(first),
                None,
                Msg::counted(
                    Key::ProblemNoOutputLimitOne,
                    Key::ProblemNoOutputLimitOther,
                    unlimited,
                )
                .arg("line", first),
            );
        }
        self.report
    }
}

/// Validates a file held in memory.
pub fn validate_bytes(data: &[u8], expected_endpoint: Option<&str>) -> Report {
    let mut v = Validator::new(expected_endpoint);
    v.chunk(data);
    v.finish()
}

// ---- the typed, borrowing view of one request line ----

/// A string as found in the JSON: borrowed when it has no escapes.
#[derive(Debug)]
enum Str<'a> {
    Borrowed(&'a str),
    Owned(String),
}

impl Str<'_> {
    fn as_str(&self) -> &str {
        match self {
            Str::Borrowed(s) => s,
            Str::Owned(s) => s,
        }
    }
    fn is_empty(&self) -> bool {
        self.as_str().is_empty()
    }
    fn into_owned(self) -> String {
        match self {
            Str::Borrowed(s) => s.to_owned(),
            Str::Owned(s) => s,
        }
    }
}

/// A field the rules want as a string; anything else is remembered by kind.
#[derive(Debug, Default)]
enum Field<'a> {
    #[default]
    Missing,
    Str(Str<'a>),
    Other(Kind),
}

/// The texts for a field that is not a string: missing, null, a boolean,
/// a number, an array, an object (`{field}` names it).
const FIELD: [Key; 6] = [
    Key::ProblemFieldMissing,
    Key::ProblemFieldNull,
    Key::ProblemFieldBoolean,
    Key::ProblemFieldNumber,
    Key::ProblemFieldArray,
    Key::ProblemFieldObject,
];

/// The same for `method`, which must be "POST".
const METHOD: [Key; 6] = [
    Key::ProblemMethodMissing,
    Key::ProblemMethodNull,
    Key::ProblemMethodBoolean,
    Key::ProblemMethodNumber,
    Key::ProblemMethodArray,
    Key::ProblemMethodObject,
];

/// What a field holds when it is not a string.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Null = 1,
    Boolean,
    Number,
    Array,
    Object,
}

impl Field<'_> {
    /// The problem of a field that should be a string and is not (missing,
    /// or another kind of value), from `texts` (see [`FIELD`]).
    fn not_a_string(&self, texts: [Key; 6], line_no: u64) -> Msg {
        let key = match self {
            Field::Other(kind) => texts[*kind as usize],
            Field::Missing | Field::Str(_) => texts[0],
        };
        Msg::new(key).arg("line", line_no)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Field<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Field::Str(Str::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Field::Str(Str::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Field::Str(Str::Owned(v)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Field::Other(Kind::Null))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Field::Other(Kind::Boolean))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Field::Other(Kind::Number))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Field::Other(Kind::Number))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Field::Other(Kind::Number))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Field::Other(Kind::Array))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Field::Other(Kind::Object))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
struct RequestLine<'a> {
    #[serde(default, borrow)]
    custom_id: Field<'a>,
    #[serde(default, borrow)]
    method: Field<'a>,
    #[serde(default, borrow)]
    url: Field<'a>,
    #[serde(default, borrow)]
    body: BodyField<'a>,
}

/// `body`: the fields the rules need if it is an object.
#[derive(Debug, Default)]
enum BodyField<'a> {
    #[default]
    Missing,
    Object(BodyFields<'a>),
    Other,
}

#[derive(Debug, Default)]
struct BodyFields<'a> {
    model: Field<'a>,
    output_limit: Option<u64>,
    /// `n`: answers per request (chat), which multiplies the output.
    choices: Option<u64>,
    /// A `prompt` field is there (images and videos need one).
    has_prompt: bool,
    text: Text,
}

/// Prompt text seen in a body: its size, the first bytes of it, and for
/// embeddings the inputs that need a token count.
#[derive(Debug, Default)]
struct Text {
    bytes: u64,
    sample: String,
    inputs: u64,
    long_inputs: Vec<(u64, LongInput)>,
}

#[derive(Debug)]
enum LongInput {
    Text(String),
    Tokens(u64),
}

thread_local! {
    /// How much more sample text the running validator wants: lines after
    /// the sample is full skip copying their text.
    static SAMPLE_ROOM: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Text {
    /// Each string counts with one separator byte, in the size and in the
    /// sample alike: the sample is the whole text exactly when it is as
    /// long as the text.
    fn add(&mut self, s: &str) {
        self.bytes += s.len() as u64 + 1;
        let room = SAMPLE_ROOM.with(|r| r.get());
        if self.sample.len() < room {
            let mut end = s.len().min(room - self.sample.len());
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.sample.push_str(&s[..end]);
            if end == s.len() && self.sample.len() < room {
                self.sample.push('\n');
            }
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for BodyField<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BodyField<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(BodyField::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(BodyField::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(BodyField::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(BodyField::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(BodyField::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(BodyField::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(BodyField::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut b = BodyFields::default();
                while let Some(key) = a.next_key::<Field<'de>>()? {
                    let key = match &key {
                        Field::Str(s) => s.as_str(),
                        _ => "",
                    };
                    match key {
                        "model" => b.model = a.next_value()?,
                        "max_tokens" | "max_completion_tokens" | "max_output_tokens" => {
                            if let Some(n) = a.next_value::<Option<LimitValue>>()?.and_then(|l| l.0)
                            {
                                b.output_limit = Some(n);
                            }
                        }
                        "n" => b.choices = a.next_value::<Option<LimitValue>>()?.and_then(|l| l.0),
                        "input" => a.next_value_seed(TextSeed {
                            text: &mut b.text,
                            depth: 0,
                            top_input: true,
                        })?,
                        "messages" | "prompt" | "instructions" => {
                            b.has_prompt |= key == "prompt";
                            a.next_value_seed(TextSeed {
                                text: &mut b.text,
                                depth: 0,
                                top_input: false,
                            })?
                        }
                        _ => {
                            a.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(BodyField::Object(b))
            }
        }
        d.deserialize_any(V)
    }
}

/// An output limit: a non-negative integer, otherwise ignored here (the
/// upstream checks the body's types).
struct LimitValue(Option<u64>);

impl<'de> Deserialize<'de> for LimitValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LimitValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_u64<E>(self, v: u64) -> Result<LimitValue, E> {
                Ok(LimitValue(Some(v)))
            }
            fn visit_i64<E>(self, _: i64) -> Result<LimitValue, E> {
                Ok(LimitValue(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<LimitValue, E> {
                Ok(LimitValue(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<LimitValue, E> {
                Ok(LimitValue(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<LimitValue, E> {
                Ok(LimitValue(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<LimitValue, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LimitValue(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<LimitValue, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LimitValue(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Walks a prompt-carrying value (any shape) and adds its strings to the
/// text, skipping object keys that name rather than say something (`role`,
/// `type`, …). For `input` at the top level it also counts embedding inputs
/// and keeps those that may be over the per-input token limit.
struct TextSeed<'t> {
    text: &'t mut Text,
    depth: u32,
    top_input: bool,
}

const NOT_TEXT_KEYS: &[&str] = &[
    "role",
    "input_audio",
    "input_image",
    "file",
    "type",
    "name",
    "id",
    "call_id",
    "image_url",
    "url",
    "file_id",
    "detail",
    "format",
    "status",
    "tool_call_id",
    "audio",
    "file_data",
];

impl<'de> DeserializeSeed<'de> for TextSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TextSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.text.add(v);
        if self.top_input && self.depth <= 1 {
            self.text.inputs += 1;
            // A token is at least one byte: shorter inputs are within limit.
            if v.len() as u64 > EMBEDDING_MAX_INPUT_TOKENS {
                let index = self.text.inputs - 1;
                self.text
                    .long_inputs
                    .push((index, LongInput::Text(v.to_owned())));
            }
        }
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        let depth = self.depth + 1;
        let top = self.top_input && depth == 1;
        let mut all_ints = 0u64;
        while let Some(kind) = a.next_element_seed(ItemSeed {
            text: &mut *self.text,
            depth,
            top_input: self.top_input,
        })? {
            // An array of token ids is one input (at the top level), an
            // array of arrays of ids several.
            match kind {
                Item::Int => all_ints += 1,
                Item::Ints(n) if top => {
                    self.text.inputs += 1;
                    if n > EMBEDDING_MAX_INPUT_TOKENS {
                        let index = self.text.inputs - 1;
                        self.text.long_inputs.push((index, LongInput::Tokens(n)));
                    }
                }
                _ => {}
            }
        }
        if self.top_input && self.depth == 0 && all_ints > 0 {
            self.text.inputs += 1;
            if all_ints > EMBEDDING_MAX_INPUT_TOKENS {
                self.text.long_inputs.push((0, LongInput::Tokens(all_ints)));
            }
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        let depth = self.depth + 1;
        while let Some(key) = a.next_key::<Field<'de>>()? {
            let skip = match &key {
                Field::Str(k) => NOT_TEXT_KEYS.contains(&k.as_str()),
                _ => true,
            };
            if skip {
                a.next_value::<IgnoredAny>()?;
            } else {
                a.next_value_seed(TextSeed {
                    text: &mut *self.text,
                    depth,
                    top_input: false,
                })?;
            }
        }
        Ok(())
    }
}

/// What an array element was, for counting embedding inputs.
enum Item {
    Int,
    Ints(u64),
    Other,
}

struct ItemSeed<'t> {
    text: &'t mut Text,
    depth: u32,
    top_input: bool,
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'_> {
    type Value = Item;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Item, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemSeed<'_> {
    type Value = Item;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_u64<E>(self, _: u64) -> Result<Item, E> {
        Ok(Item::Int)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Item, E> {
        Ok(Item::Int)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Item, E> {
        Ok(Item::Other)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Item, E> {
        Ok(Item::Other)
    }
    fn visit_unit<E>(self) -> Result<Item, E> {
        Ok(Item::Other)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
        TextSeed {
            text: self.text,
            depth: self.depth,
            top_input: self.top_input,
        }
        .visit_str(v)?;
        Ok(Item::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Item, A::Error> {
        if self.top_input && self.depth == 1 {
            // An inner array at the top of `input`: token ids.
            let mut n = 0u64;
            while a.next_element::<IgnoredAny>()?.is_some() {
                n += 1;
            }
            return Ok(Item::Ints(n));
        }
        TextSeed {
            text: self.text,
            depth: self.depth,
            top_input: self.top_input,
        }
        .visit_seq(a)?;
        Ok(Item::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Item, A::Error> {
        TextSeed {
            text: self.text,
            depth: self.depth,
            top_input: false,
        }
        .visit_map(a)?;
        Ok(Item::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, model: &str) -> String {
        format!(
            r#"{{"custom_id":"{id}","method":"POST","url":"/v1/chat/completions","body":{{"model":"{model}","messages":[{{"role":"user","content":"hello"}}],"max_tokens":10}}}}"#
        )
    }

    fn codes(r: &Report) -> Vec<(String, Option<u64>)> {
        r.errors.iter().map(|e| (e.code.clone(), e.line)).collect()
    }

    fn warnings(r: &Report) -> Vec<(String, Option<u64>)> {
        r.warnings
            .iter()
            .map(|e| (e.code.clone(), e.line))
            .collect()
    }

    #[test]
    fn a_good_file_passes_with_statistics() {
        let data = format!("{}\n{}\n", line("a", "m"), line("b", "m"));
        let r = validate_bytes(data.as_bytes(), Some("/v1/chat/completions"));
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(r.requests, 2);
        assert_eq!(r.lines, 2);
        assert_eq!(r.model.as_deref(), Some("m"));
        assert_eq!(r.endpoint.as_deref(), Some("/v1/chat/completions"));
        assert_eq!(r.bytes, data.len() as u64);
        assert_eq!(r.text_bytes, 12);
        assert_eq!(r.sample, "hello\nhello\n");
        assert_eq!((r.limited_requests, r.max_output_tokens), (2, 20));
        assert!(r.warnings.is_empty(), "{r:?}");
    }

    #[test]
    fn each_problem_is_reported_with_its_line() {
        let data = [
            line("a", "m"),
            "{not json".into(),
            line("a", "m"),
            line("c", "other"),
            r#"{"custom_id":"d","method":"GET","url":"/v1/chat/completions","body":{"model":"m"}}"#
                .into(),
            r#"{"custom_id":"e","method":"POST","url":"/v1/embeddings","body":{"model":"m"}}"#
                .into(),
            r#"{"method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}"#.into(),
            "[1,2]".into(),
            r#"{"custom_id":"h","method":"POST","url":"/v1/chat/completions","body":"text"}"#
                .into(),
            r#"{"custom_id":"i","method":"POST","url":"/v1/chat/completions","body":{"model":7}}"#
                .into(),
            r#"{"custom_id":5,"method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}"#
                .into(),
            r#"{"custom_id":"k","method":"POST","url":"/v1/images","body":{"model":"m"}}"#.into(),
        ]
        .join("\n");
        let r = validate_bytes(data.as_bytes(), None);
        assert_eq!(
            codes(&r),
            vec![
                ("invalid_json_line".into(), Some(2)),
                ("duplicate_custom_id".into(), Some(3)),
                ("model_mismatch".into(), Some(4)),
                ("invalid_method".into(), Some(5)),
                ("url_mismatch".into(), Some(6)),
                ("missing_required_parameter".into(), Some(7)),
                ("invalid_json_line".into(), Some(8)),
                ("invalid_request".into(), Some(9)),
                ("missing_required_parameter".into(), Some(10)),
                ("missing_required_parameter".into(), Some(11)),
                ("invalid_url".into(), Some(12)),
                ("url_mismatch".into(), Some(12)),
            ]
        );
        assert!(r.errors[2].message.contains("line 1"));
        assert_eq!(r.errors[7].param.as_deref(), Some("body"));
        assert!(
            r.errors[8].message.contains("is a number, not a string"),
            "{}",
            r.errors[8].message
        );
        assert!(r.errors[9].message.contains("`custom_id` is a number"));
        assert_eq!(r.error_count, 12);
    }

    #[test]
    fn endpoint_given_by_the_batch_wins() {
        let r = validate_bytes(line("a", "m").as_bytes(), Some("/v1/embeddings"));
        assert_eq!(codes(&r), vec![("url_mismatch".into(), Some(1))]);
    }

    #[test]
    fn empty_and_blank_files_are_empty() {
        assert_eq!(
            codes(&validate_bytes(b"", None)),
            vec![("empty_file".into(), None)]
        );
        assert_eq!(
            codes(&validate_bytes(b"\n \n\r\n", None)),
            vec![("empty_file".into(), None)]
        );
    }

    #[test]
    fn blank_lines_keep_line_numbers_true() {
        let data = format!("\n{}\n\n{{bad\n", line("a", "m"));
        let r = validate_bytes(data.as_bytes(), None);
        assert_eq!(codes(&r), vec![("invalid_json_line".into(), Some(4))]);
        assert_eq!(r.requests, 2);
    }

    #[test]
    fn too_many_requests_and_the_error_cap() {
        let mut v = Validator::new(None).with_error_cap(3);
        for i in 0..=MAX_REQUESTS as u64 {
            v.line(i + 1, line(&format!("r{i}"), "m").as_bytes());
        }
        for i in 0..5 {
            v.line(MAX_REQUESTS as u64 + 2 + i, b"oops");
        }
        let r = v.finish();
        assert_eq!(r.errors[0].code, "too_many_tasks");
        assert_eq!(r.errors[0].line, Some(MAX_REQUESTS as u64 + 1));
        assert_eq!(r.errors.len(), 3);
        assert_eq!(r.error_count, 6);
    }

    #[test]
    fn crlf_line_endings_are_accepted() {
        let data = format!("{}\r\n{}\r\n", line("a", "m"), line("b", "m"));
        let r = validate_bytes(data.as_bytes(), None);
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(r.requests, 2);
    }

    #[test]
    fn a_byte_order_mark_is_named() {
        let data = format!("\u{feff}{}\n{}\n", line("a", "m"), line("b", "m"));
        let r = validate_bytes(data.as_bytes(), None);
        assert_eq!(codes(&r), vec![("invalid_json_line".into(), Some(1))]);
        assert!(r.errors[0].message.contains("byte order mark"));
    }

    #[test]
    fn non_utf8_and_binary_lines_are_named() {
        let mut data = line("a", "m").into_bytes();
        data.extend_from_slice(b"\n{\"custom_id\":\"\xff\xfe\"}\n\x00\x01\x02\x89PNG\n\x00\x01\n");
        let r = validate_bytes(&data, None);
        assert_eq!(
            codes(&r),
            vec![
                ("invalid_json_line".into(), Some(2)),
                ("invalid_json_line".into(), Some(3)),
                ("invalid_json_line".into(), Some(4))
            ]
        );
        assert!(
            r.errors[0].message.contains("UTF-8"),
            "{}",
            r.errors[0].message
        );
        assert!(r.errors[1].message.contains("binary"));
        assert!(r.errors[2].message.contains("not valid JSON"));
    }

    #[test]
    fn a_huge_line_is_validated_whole_across_chunks() {
        let big = "x".repeat(3 * 1024 * 1024);
        let data = format!(
            r#"{{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{{"model":"m","max_tokens":5,"messages":[{{"role":"user","content":"{big}"}}]}}}}"#
        );
        let mut v = Validator::new(None);
        for c in data.as_bytes().chunks(64 * 1024) {
            v.chunk(c);
        }
        let r = v.finish();
        assert!(r.is_ok(), "{:?}", r.errors);
        assert_eq!(r.text_bytes, big.len() as u64 + 1);
        assert_eq!(r.sample.len(), SAMPLE_BYTES);
    }

    #[test]
    fn a_file_over_200_mb_is_refused() {
        let mut v = Validator::new(None);
        v.line(1, line("a", "m").as_bytes());
        v.add_bytes(MAX_FILE_BYTES + 1);
        assert_eq!(codes(&v.finish()), vec![("file_too_large".into(), None)]);
    }

    #[test]
    fn output_bounds_count_every_answer_and_audio_is_not_text() {
        let data = [
            r#"{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","n":3,"max_completion_tokens":10,"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"QUJDREVGRw==","format":"wav"}},{"type":"text","text":"hey"}]}]}}"#,
        ]
        .join("\n");
        let r = validate_bytes(data.as_bytes(), None);
        assert!(r.is_ok(), "{r:?}");
        assert_eq!((r.limited_requests, r.max_output_tokens), (1, 30));
        assert_eq!(r.sample, "hey\n");
        let emb = r#"{"custom_id":"e","method":"POST","url":"/v1/embeddings","body":{"model":"m","input":"x"}}"#;
        let r = validate_bytes(emb.as_bytes(), None);
        assert_eq!(
            (r.requests, r.limited_requests, r.max_output_tokens),
            (1, 1, 0)
        );
    }

    #[test]
    fn missing_output_limits_are_a_warning_not_an_error() {
        let l = |id: &str, limit: &str| {
            format!(
                r#"{{"custom_id":"{id}","method":"POST","url":"/v1/responses","body":{{"model":"m","input":"hi"{limit}}}}}"#
            )
        };
        let data = [l("a", r#","max_output_tokens":50"#), l("b", ""), l("c", "")].join("\n");
        let r = validate_bytes(data.as_bytes(), None);
        assert!(r.is_ok());
        assert_eq!(warnings(&r), vec![("no_output_limit".into(), Some(2))]);
        assert!(r.warnings[0].message.starts_with("2 requests"));
        assert_eq!((r.limited_requests, r.max_output_tokens), (1, 50));
    }

    #[test]
    fn embeddings_inputs_are_checked_against_their_limits() {
        let e = |id: &str, input: &str| {
            format!(
                r#"{{"custom_id":"{id}","method":"POST","url":"/v1/embeddings","body":{{"model":"text-embedding-3-small","input":{input}}}}}"#
            )
        };
        let long = format!("\"{}\"", "word ".repeat(9000));
        let many = format!("[{}]", vec!["\"x\""; 2049].join(","));
        let ids = format!("[{}]", vec!["1"; 8193].join(","));
        let ok_ids = format!("[[{}],[1,2]]", vec!["1"; 100].join(","));
        let data = [
            e("a", "\"short\""),
            e("b", &format!("[\"ok\", {long}]")),
            e("c", &many),
            e("d", &ids),
            e("e", &ok_ids),
        ]
        .join("\n");
        // Without a tokenizer a long text is only a warning ...
        let r = validate_bytes(data.as_bytes(), None);
        assert_eq!(
            codes(&r),
            vec![
                ("invalid_request".into(), Some(3)),
                ("invalid_request".into(), Some(4))
            ]
        );
        assert_eq!(r.errors[0].param.as_deref(), Some("body.input"));
        assert_eq!(r.errors[1].param.as_deref(), Some("body.input[0]"));
        assert_eq!(
            warnings(&r),
            vec![("embedding_input_too_long".into(), Some(2))]
        );
        assert_eq!(r.warnings[0].param.as_deref(), Some("body.input[1]"));
        // ... with one it is counted, and an error when over.
        let mut v = Validator::new(None)
            .with_token_counter(Box::new(|_: &str, s: &str| s.split(' ').count() as u64));
        v.chunk(data.as_bytes());
        let r = v.finish();
        assert_eq!(
            codes(&r),
            vec![
                ("invalid_request".into(), Some(2)),
                ("invalid_request".into(), Some(3)),
                ("invalid_request".into(), Some(4))
            ]
        );
        assert!(
            r.errors[0].message.contains("9001 tokens"),
            "{}",
            r.errors[0].message
        );
    }

    #[test]
    fn token_estimates_extrapolate_from_the_sample() {
        let mut r = Report {
            sample: "abcd".repeat(10),
            text_bytes: 400,
            ..Report::default()
        };
        r.estimate_tokens(10, "o200k_base");
        assert_eq!(
            r.tokens,
            Some(TokenEstimate {
                input_tokens: 100,
                encoding: "o200k_base".into(),
                exact: false
            })
        );
        r.text_bytes = 40;
        r.approximate_tokens();
        assert_eq!(
            r.tokens.as_ref().map(|t| (t.input_tokens, t.exact)),
            Some((10, true))
        );
    }

    #[test]
    fn text_is_gathered_from_every_prompt_shape_but_not_from_names() {
        let data = [
            r#"{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","max_tokens":1,"messages":[{"role":"system","content":"AB"},{"role":"user","content":[{"type":"text","text":"CD"},{"type":"image_url","image_url":{"url":"http://x"}}]}]}}"#,
            r#"{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"E\u0046"}]}}"#,
        ]
        .join("\n");
        let r = validate_bytes(data.as_bytes(), None);
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(r.text_bytes, 9);
        assert_eq!(r.sample, "AB\nCD\nEF\n");
    }

    #[test]
    fn problems_carry_their_text_untranslated() {
        let data = [
            line("a", "m"),
            line("a", "m"),
            r#"{"custom_id":"b","method":7,"url":"/v1/chat/completions","body":{"model":"m"}}"#
                .into(),
            r#"{"custom_id":"c","method":"POST","body":{"model":"m"}}"#.into(),
        ]
        .join("\n");
        let r = validate_bytes(data.as_bytes(), None);
        let texts: Vec<&str> = r.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "Line 2: the custom_id `a` is used more than once; each must be unique.",
                "Line 3: `method` must be \"POST\"; it is a number, not a string.",
                "Line 4: `url` is missing.",
            ]
        );
        assert_eq!(
            r.warnings[0].message,
            "1 request set no output token limit (first at line 3): answers may be long and \
             their cost has no upper bound. Set `max_completion_tokens` (chat) or \
             `max_output_tokens` (responses)."
        );
        let ko = crate::i18n::I18n::get("ko");
        for e in r.errors.iter().chain(&r.warnings) {
            let msg = e.msg.as_ref().expect("a problem of our own has its text");
            assert_eq!(msg.to_string(), e.message);
            assert_ne!(ko.msg(msg), e.message);
        }
        let dup = r.errors[0].msg.as_ref().unwrap();
        assert_eq!(
            ko.msg(dup),
            "2번째 줄: custom_id `a`가 두 번 이상 쓰였습니다. custom_id는 모두 달라야 합니다."
        );
    }
}
