//! Who is calling, checked in one place: the [`Actor`] extractor. Routes take
//! it as an argument; server functions extract it from the request's parts.
//! Extracting it checks the role the type names, writes a refusal to the
//! audit log (with the matched route, never a path typed again by hand) and
//! answers 401/403; the actor then writes the audit entry of what it did.

use std::marker::PhantomData;

use axum::extract::{FromRef, FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use batchboard_core::access::{CurrentUser, Role};
use batchboard_core::error::ApiError;
use batchboard_core::i18n::{I18n, Key, Msg};

use crate::auth::ClientIp;
use crate::http::HttpError;
use crate::state::AppState;
use crate::store::Audit;

/// A role an [`Actor`] must have, as a type.
pub trait Needs: Send + Sync + 'static {
    const ROLE: Role;
}

/// See batches, results and files.
pub struct Viewer;
/// Also create and cancel batches.
pub struct Operator;
/// Also read the audit log.
pub struct Admin;

impl Needs for Viewer {
    const ROLE: Role = Role::Viewer;
}
impl Needs for Operator {
    const ROLE: Role = Role::Operator;
}
impl Needs for Admin {
    const ROLE: Role = Role::Admin;
}

/// The signed-in caller of a request, whose role allows `R`.
pub struct Actor<R: Needs> {
    pub user: CurrentUser,
    /// The request's session, when signed in with one (not behind a proxy).
    pub session: Option<tower_sessions::session::Id>,
    ip: Option<ClientIp>,
    state: AppState,
    _role: PhantomData<R>,
}

impl<R: Needs, S> FromRequestParts<S> for Actor<R>
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        let state = AppState::from_ref(state);
        let ip = parts.extensions.get::<ClientIp>().copied();
        let user = parts
            .extensions
            .get::<CurrentUser>()
            .ok_or(ApiError::Unauthenticated)?;
        if !user.may(R::ROLE) {
            let route = route_of(parts);
            state
                .audit(Audit {
                    actor: &user.name,
                    action: "denied",
                    target: Some(&route),
                    detail: Some(
                        Msg::new(Key::AuditDetailNeedsRole)
                            .arg_text("role", I18n::role_key(R::ROLE)),
                    ),
                    ip: ip.map(|i| i.0.to_string()).as_deref(),
                })
                .await;
            return Err(ApiError::Forbidden(
                Msg::new(Key::ServerRoleForbidden)
                    .arg_text("role", I18n::role_key(user.role))
                    .arg_text("needs", I18n::role_key(R::ROLE)),
            )
            .into());
        }
        let session = parts
            .extensions
            .get::<tower_sessions::Session>()
            .and_then(|s| s.id());
        Ok(Self {
            user: user.clone(),
            session,
            ip,
            state,
            _role: PhantomData,
        })
    }
}

impl<R: Needs> Actor<R> {
    /// Records what this actor did; a failing audit write is logged, not
    /// shown.
    pub async fn audit(&self, action: &str, target: Option<&str>, detail: Option<Msg>) {
        self.state
            .audit(Audit {
                actor: &self.user.name,
                action,
                target,
                detail,
                ip: self.ip.map(|i| i.0.to_string()).as_deref(),
            })
            .await;
    }
}

/// The route a request matched, as the router names it (`/files/{id}/content`);
/// for a catch-all (server functions), the path itself.
fn route_of(parts: &Parts) -> String {
    match parts.extensions.get::<MatchedPath>() {
        Some(m) if !m.as_str().contains("{*") => m.as_str().to_owned(),
        _ => parts.uri.path().to_owned(),
    }
}
