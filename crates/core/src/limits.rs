//! What one upstream accepts in a batch, and the one check of a file's
//! report against it. The server refuses with it before anything is
//! created; the New batch page runs the same check in the browser, so a
//! file the chosen upstream would refuse is never sent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::i18n::{Key, Msg};
use crate::validate::Report;
use crate::ENDPOINTS;

/// An upstream's limits, as configured or by default for its kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// Requests in one batch (`None`: the Batch API's, 50,000).
    pub max_requests: Option<u64>,
    /// Bytes of one file (`None`: the Batch API's, 200 MB).
    pub max_bytes: Option<u64>,
    /// Completion windows offered; never empty.
    pub windows: Vec<String>,
    /// Endpoints offered (empty: every one of [`ENDPOINTS`]).
    pub endpoints: Vec<String>,
    /// Azure: the deployments lines may name (empty: any).
    pub deployments: Vec<String>,
    /// Input tokens one model may have enqueued at once.
    pub enqueued_tokens: BTreeMap<String, u64>,
}

/// What a file breaks of an upstream's [`Offer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Breach {
    Window {
        window: String,
        offered: Vec<String>,
    },
    Endpoint {
        endpoint: String,
        offered: Vec<String>,
    },
    TooMany {
        n: u64,
        max: u64,
    },
    TooLarge {
        bytes: u64,
        max: u64,
    },
    NotADeployment {
        model: String,
        deployments: Vec<String>,
    },
    Tokens {
        model: String,
        tokens: u64,
        max: u64,
    },
}

impl Offer {
    /// The endpoints a batch here may target, in [`ENDPOINTS`]'s order
    /// (the kind's own for a message batch).
    pub fn endpoints(&self) -> Vec<String> {
        if self.endpoints.is_empty() {
            ENDPOINTS.iter().map(|e| e.to_string()).collect()
        } else {
            self.endpoints.clone()
        }
    }

    /// Requests one batch may hold here.
    pub fn max_requests(&self) -> u64 {
        self.max_requests.unwrap_or(crate::MAX_REQUESTS as u64)
    }

    /// Bytes one batch's file may hold here.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes.unwrap_or(crate::MAX_FILE_BYTES)
    }

    /// Whether a breach is one a job of several batches resolves.
    pub fn job_resolves(b: &Breach) -> bool {
        matches!(
            b,
            Breach::TooMany { .. } | Breach::TooLarge { .. } | Breach::Tokens { .. }
        )
    }

    /// Checks a file's `report` and the chosen completion `window` (`None`:
    /// none is sent, as for a message batch).
    pub fn check(&self, window: Option<&str>, report: &Report) -> Result<(), Breach> {
        if let Some(w) = window.filter(|w| !self.windows.iter().any(|o| o == w)) {
            return Err(Breach::Window {
                window: w.into(),
                offered: self.windows.clone(),
            });
        }
        if let Some(e) = report.endpoint.as_deref() {
            if !self.endpoints.is_empty() && !self.endpoints.iter().any(|o| o == e) {
                return Err(Breach::Endpoint {
                    endpoint: e.into(),
                    offered: self.endpoints.clone(),
                });
            }
        }
        let max = self.max_requests();
        if report.requests > max {
            return Err(Breach::TooMany {
                n: report.requests,
                max,
            });
        }
        let max = self.max_bytes();
        if report.bytes > max {
            return Err(Breach::TooLarge {
                bytes: report.bytes,
                max,
            });
        }
        let Some(model) = report.model.as_deref() else {
            return Ok(());
        };
        if !self.deployments.is_empty() && !self.deployments.iter().any(|d| d == model) {
            return Err(Breach::NotADeployment {
                model: model.into(),
                deployments: self.deployments.clone(),
            });
        }
        let tokens = report.tokens.as_ref().map_or(0, |t| t.input_tokens);
        match self.enqueued_tokens.get(model) {
            Some(&max) if tokens > max => Err(Breach::Tokens {
                model: model.into(),
                tokens,
                max,
            }),
            _ => Ok(()),
        }
    }
}

impl Breach {
    /// Why the server refused, on the upstream shown as `name` (the text
    /// says that nothing was created).
    pub fn refusal(&self, name: &str) -> ApiError {
        let msg = self.msg(name, true);
        match self {
            Breach::TooLarge { .. } => ApiError::TooLarge(msg),
            _ => ApiError::Invalid(msg),
        }
    }

    /// Why the New batch page will not send the file to `name`.
    pub fn blocked(&self, name: &str) -> Msg {
        self.msg(name, false)
    }

    fn msg(&self, name: &str, refused: bool) -> Msg {
        let key = |server: Key, page: Key| Msg::new(if refused { server } else { page });
        let m = match self {
            Breach::Window { window, offered } => {
                key(Key::ServerWindowNotOffered, Key::NewBlockedWindow)
                    .arg("window", window)
                    .arg("windows", offered.join(", "))
            }
            Breach::Endpoint { endpoint, offered } => key(
                Key::ServerEndpointNotOffered,
                Key::NewBlockedEndpointNotOffered,
            )
            .arg("endpoint", endpoint)
            .arg("endpoints", offered.join(", ")),
            Breach::TooMany { n, max } => key(Key::ServerUpstreamTooMany, Key::NewBlockedTooMany)
                .arg("n", n)
                .arg("max", max),
            Breach::TooLarge { bytes, max } => {
                key(Key::ServerUpstreamTooLarge, Key::NewBlockedTooLarge)
                    .arg("bytes", bytes)
                    .arg("max", max)
            }
            Breach::NotADeployment { model, deployments } => {
                key(Key::ServerNotADeployment, Key::NewBlockedNotADeployment)
                    .arg("model", model)
                    .arg("deployments", deployments.join(", "))
            }
            Breach::Tokens { model, tokens, max } => {
                key(Key::ServerTooManyTokens, Key::NewBlockedTooManyTokens)
                    .arg("model", model)
                    .arg("tokens", tokens)
                    .arg("max", max)
            }
        };
        m.arg("name", name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::TokenEstimate;

    fn report() -> Report {
        Report {
            requests: 10,
            bytes: 1000,
            endpoint: Some("/v1/embeddings".into()),
            model: Some("emb".into()),
            tokens: Some(TokenEstimate {
                input_tokens: 5000,
                ..TokenEstimate::default()
            }),
            ..Report::default()
        }
    }

    fn offer() -> Offer {
        Offer {
            windows: vec!["24h".into()],
            ..Offer::default()
        }
    }

    #[test]
    fn an_offer_without_limits_takes_any_file() {
        assert_eq!(offer().check(Some("24h"), &report()), Ok(()));
        assert_eq!(offer().check(None, &report()), Ok(()));
        assert_eq!(offer().endpoints().len(), ENDPOINTS.len());
    }

    #[test]
    fn each_limit_is_named_with_what_broke_it() {
        let r = report();
        let cases = [
            (
                Offer {
                    windows: vec!["24h".into(), "48h".into()],
                    ..offer()
                },
                Some("7d"),
                "offers the completion windows 24h, 48h, not 7d",
            ),
            (
                Offer {
                    endpoints: vec!["/v1/chat/completions".into()],
                    ..offer()
                },
                None,
                "takes /v1/chat/completions, not /v1/embeddings",
            ),
            (
                Offer {
                    max_requests: Some(9),
                    ..offer()
                },
                None,
                "takes at most 9",
            ),
            (
                Offer {
                    max_bytes: Some(999),
                    ..offer()
                },
                None,
                "takes at most 999",
            ),
            (
                Offer {
                    deployments: vec!["d1".into(), "d2".into()],
                    ..offer()
                },
                None,
                "not a deployment of the upstream u (d1, d2)",
            ),
            (
                Offer {
                    enqueued_tokens: [("emb".to_string(), 4999)].into(),
                    ..offer()
                },
                None,
                "about 5000 input tokens for emb; the upstream u enqueues at most 4999",
            ),
        ];
        for (offer, window, says) in cases {
            let breach = offer.check(window, &r).unwrap_err();
            let text = breach.refusal("u").to_string();
            assert!(text.contains(says), "{text} / {says}");
            assert!(text.contains("othing was created"), "{text}");
            let page = breach.blocked("u").to_string();
            assert!(!page.contains("othing was created"), "{page}");
        }
        let enough = Offer {
            enqueued_tokens: [("emb".to_string(), 5000), ("other".to_string(), 1)].into(),
            ..offer()
        };
        assert_eq!(enough.check(Some("24h"), &r), Ok(()));
    }
}
