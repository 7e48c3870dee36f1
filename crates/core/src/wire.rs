//! Request shapes and result lines of the Batch and Files APIs, defined once
//! for the client that sends them and the sandbox that answers them.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::i18n::{Key, Msg};
use crate::{null_default, Metadata};

/// How long after creation output files (`output_expires_after`) and
/// uploaded files (`expires_after`) may be kept: 1 hour to 30 days.
pub const EXPIRY_SECONDS: RangeInclusive<i64> = 3600..=2_592_000;

/// The anchor every expiry counts from.
pub const EXPIRY_ANCHOR: &str = "created_at";

/// `{"anchor": "created_at", "seconds": N}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiresAfter {
    #[serde(default, deserialize_with = "null_default")]
    pub anchor: String,
    #[serde(default, deserialize_with = "null_default")]
    pub seconds: i64,
}

impl ExpiresAfter {
    pub fn created_at(seconds: i64) -> Self {
        Self {
            anchor: EXPIRY_ANCHOR.into(),
            seconds,
        }
    }

    /// The seconds, if the anchor is `created_at` and they are in
    /// [`EXPIRY_SECONDS`]; otherwise what is wrong, naming `field`.
    pub fn check(&self, field: &str) -> Result<i64, Msg> {
        if self.anchor != EXPIRY_ANCHOR {
            return Err(Msg::new(Key::ProblemExpiryAnchor)
                .arg("field", field)
                .arg("anchor", EXPIRY_ANCHOR));
        }
        check_expiry_seconds(field, self.seconds)
    }
}

/// `seconds` if they are in [`EXPIRY_SECONDS`]; otherwise what is wrong.
pub fn check_expiry_seconds(field: &str, seconds: i64) -> Result<i64, Msg> {
    if EXPIRY_SECONDS.contains(&seconds) {
        Ok(seconds)
    } else {
        Err(Msg::new(Key::ProblemExpiryRange)
            .arg("field", field)
            .arg("min", EXPIRY_SECONDS.start())
            .arg("max", EXPIRY_SECONDS.end()))
    }
}

/// The body of `POST /batches`. Missing fields read as empty, for the
/// sandbox to name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateBatch {
    #[serde(default, deserialize_with = "null_default")]
    pub input_file_id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub endpoint: String,
    #[serde(default, deserialize_with = "null_default")]
    pub completion_window: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_expires_after: Option<ExpiresAfter>,
}

/// One line of a batch's output or error file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultLine {
    pub id: String,
    pub custom_id: String,
    pub response: Option<LineResponse>,
    pub error: Option<LineError>,
}

/// The answer a request got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineResponse {
    pub status_code: u16,
    pub request_id: String,
    pub body: Value,
}

/// Why a request got no answer (`batch_expired`, `batch_cancelled`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineError {
    pub code: String,
    pub message: String,
}

/// The answer to `DELETE /files/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDeleted {
    pub id: String,
    pub object: String,
    pub deleted: bool,
}
