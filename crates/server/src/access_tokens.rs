//! Personal access tokens: `bb_<id>_<secret>`. The id is looked up, the
//! secret compared by its SHA-256 in constant time. A token acts with the
//! lower of its own role and its user's current one, and stops at once when
//! revoked, expired, or its user is gone from the users file (every replica
//! reads the same database and users file on each request).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::tokens::TokenRow;
use crate::store::{now, Db};
use batchboard_core::access::{CurrentUser, NewToken, Role, TokenInfo};
use batchboard_core::error::ApiError;
use batchboard_core::i18n::{Key, Msg};

pub const PREFIX: &str = "bb_";
/// Longest life a token may be given.
pub const MAX_DAYS: u32 = 3650;

fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

pub fn info(t: &TokenRow) -> TokenInfo {
    TokenInfo {
        id: t.id.clone(),
        user: t.user_name.clone(),
        name: t.name.clone(),
        role: Role::parse(&t.role).unwrap_or(Role::Viewer),
        created_at: t.created_at,
        expires_at: t.expires_at,
        revoked_at: t.revoked_at,
        last_used_at: t.last_used_at,
        last_used_ip: t.last_used_ip.clone(),
        upstream: t.upstream.clone(),
    }
}

/// What a new token is: its name, role (no higher than its user's), life
/// in days (none: no expiry) and default upstream (none: the first).
pub struct Wanted<'a> {
    pub name: &'a str,
    pub role: Role,
    pub days: Option<u32>,
    pub upstream: Option<&'a str>,
}

/// Makes a token for `user` (whose role is `user_role`).
pub async fn issue(
    db: &Db,
    user: &str,
    user_role: Role,
    want: Wanted<'_>,
) -> Result<NewToken, ApiError> {
    let Wanted {
        name,
        role,
        days,
        upstream,
    } = want;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiError::Invalid(Msg::new(Key::ServerTokenName)));
    }
    if role > user_role {
        return Err(ApiError::Forbidden(
            Msg::new(Key::ServerTokenRole)
                .arg("role", role.as_str())
                .arg("own", user_role.as_str()),
        ));
    }
    if days.is_some_and(|d| d == 0 || d > MAX_DAYS) {
        return Err(ApiError::Invalid(
            Msg::new(Key::ServerTokenDays).arg("max", MAX_DAYS),
        ));
    }
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let created_at = now();
    let row = TokenRow {
        id: id.clone(),
        user_name: user.to_owned(),
        name: name.to_owned(),
        role: role.as_str().to_owned(),
        secret_hash: hash(&secret),
        created_at,
        expires_at: days.map(|d| created_at + i64::from(d) * 86_400),
        revoked_at: None,
        last_used_at: None,
        last_used_ip: None,
        upstream: upstream
            .map(str::trim)
            .filter(|u| !u.is_empty() && *u != "default")
            .map(str::to_owned),
    };
    db.insert_token(&row).await.map_err(internal)?;
    Ok(NewToken {
        token: format!("{PREFIX}{id}_{secret}"),
        info: info(&row),
    })
}

/// The user a bearer token acts as, with its token; `Unauthenticated` for
/// anything that is not a live token (the same answer whatever is wrong).
pub async fn verify(
    db: &Db,
    users: &crate::users::Users,
    bearer: &str,
) -> Result<(TokenRow, CurrentUser), ApiError> {
    let refused = || ApiError::Unauthenticated;
    let rest = bearer.strip_prefix(PREFIX).ok_or_else(refused)?;
    let (id, secret) = rest.split_once('_').ok_or_else(refused)?;
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refused());
    }
    let t = db.token(id).await.map_err(internal)?.ok_or_else(refused)?;
    let same: bool = hash(secret)
        .as_bytes()
        .ct_eq(t.secret_hash.as_bytes())
        .into();
    let live = t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > now());
    if !same || !live {
        return Err(refused());
    }
    let own = users.role(&t.user_name).ok_or_else(refused)?;
    let role = Role::parse(&t.role).ok_or_else(refused)?.min(own);
    let user = CurrentUser {
        name: t.user_name.clone(),
        role,
        via_proxy: false,
    };
    Ok((t, user))
}

/// `batchboard token create|list|revoke`: prints the token, the list (JSON
/// lines) or nothing.
pub async fn run(cmd: crate::config::TokenCommand) -> Result<(), crate::StartError> {
    use crate::config::TokenCommand;
    let fail = |e: ApiError| crate::StartError::Config(e.to_string());
    let open = |store: &crate::config::TokenStoreArgs| {
        let store = store.clone();
        async move {
            crate::check_data_dir(&store.users.data_dir)?;
            let db = Db::open(store.database_url.as_deref(), &store.users.data_dir).await?;
            let users = crate::users::Users::open(store.users.path())?;
            Ok::<_, crate::StartError>((db, users))
        }
    };
    match cmd {
        TokenCommand::Create {
            user,
            name,
            role,
            expires_days,
            upstream,
            store,
        } => {
            let (db, users) = open(&store).await?;
            let own = users.role(&user).ok_or_else(|| {
                crate::StartError::Config(format!(
                    "--user {user}: no such account in the users file"
                ))
            })?;
            let want = Wanted {
                name: &name,
                role: role.unwrap_or(own),
                days: expires_days,
                upstream: upstream.as_deref(),
            };
            let made = issue(&db, &user, own, want).await.map_err(fail)?;
            println!("{}", made.token);
        }
        TokenCommand::List { user, store } => {
            let (db, _) = open(&store).await?;
            for t in db.tokens(user.as_deref()).await? {
                println!("{}", serde_json::to_string(&info(&t)).unwrap_or_default());
            }
        }
        TokenCommand::Revoke { id, store } => {
            let (db, _) = open(&store).await?;
            if !db.revoke_token(&id, None).await? {
                return Err(crate::StartError::Config(format!("no token {id}")));
            }
        }
    }
    Ok(())
}
