//! Local accounts: a TOML users file with argon2id password hashes, read by
//! the server (and re-read when it changes) and edited by `batchboard user`.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

use super::config::UserCommand;
use batchboard_core::access::Role;

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// One account as the file holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub role: Role,
    /// argon2id PHC string. Absent for people who only sign in through the proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// Raised by `batchboard user revoke`: part of the credential sessions
    /// remember, so raising it ends them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct UsersDoc {
    #[serde(default)]
    users: BTreeMap<String, Account>,
}

const HEADER: &str =
    "# Batchboard accounts. Edit with `batchboard user add|passwd|set-role|list|remove`.\n\
# Roles: viewer (see, download), operator (also create, cancel), admin (also the audit log).\n\n";

/// A user name: an email or a short login, nothing that needs escaping.
pub fn check_name(name: &str) -> Result<(), UsersError> {
    let ok = (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@+-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(UsersError::Invalid(format!(
            "'{name}' is not a valid user name (1-128 of a-z, 0-9, . _ @ + -)"
        )))
    }
}

impl UsersDoc {
    fn account(&mut self, name: &str) -> Result<&mut Account, UsersError> {
        self.users
            .get_mut(name)
            .ok_or_else(|| UsersError::Invalid(format!("no user '{name}'")))
    }
}

fn read_doc(path: &Path) -> Result<UsersDoc, UsersError> {
    let fail = |reason: String| UsersError::File {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| fail(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(UsersDoc::default()),
        Err(e) => Err(fail(e.to_string())),
    }
}

/// Writes atomically (temporary file + rename), readable by the owner only.
fn write_doc(path: &Path, doc: &UsersDoc) -> Result<(), UsersError> {
    let fail = |reason: String| UsersError::File {
        path: path.display().to_string(),
        reason,
    };
    let text = toml::to_string(doc).map_err(|e| fail(e.to_string()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_dir(dir).map_err(|e| fail(e.to_string()))?;
    }
    let tmp = path.with_extension("toml.tmp");
    // Owner-only from the start: no moment with the umask's mode.
    let _ = std::fs::remove_file(&tmp);
    write_private(&tmp, &format!("{HEADER}{text}")).map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| fail(e.to_string()))
}

/// An argon2id hash (default parameters: 19 MiB, 2 passes) with a random salt.
pub fn hash_password(password: &str) -> Result<String, UsersError> {
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .map_err(|e| UsersError::Invalid(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UsersError::Invalid(e.to_string()))
}

fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A password made for the user: 128 random bits, in letters and digits.
fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::new();
    for b in uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .chain(uuid::Uuid::new_v4().as_bytes())
        .take(22)
    {
        out.push(ALPHABET[usize::from(*b) % ALPHABET.len()] as char);
    }
    out
}

pub const MIN_PASSWORD: usize = 12;

/// The users file as the server sees it: cached, re-read when its
/// modification time changes, so `batchboard user …` takes effect at once.
pub struct Users {
    path: PathBuf,
    cache: RwLock<(Option<SystemTime>, BTreeMap<String, Account>)>,
    /// Verified against when the name is unknown, so that timing does not
    /// tell which names exist.
    dummy_hash: String,
}

impl Users {
    pub fn open(path: PathBuf) -> Result<Self, UsersError> {
        let users = Self {
            path,
            cache: RwLock::new((None, BTreeMap::new())),
            dummy_hash: hash_password("not a password of anyone")?,
        };
        users.refresh()?;
        Ok(users)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn refresh(&self) -> Result<(), UsersError> {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let fresh = self.cache.read().map(|c| c.0 == mtime).unwrap_or(false);
        if fresh && mtime.is_some() {
            return Ok(());
        }
        let doc = read_doc(&self.path)?;
        if let Ok(mut c) = self.cache.write() {
            *c = (mtime, doc.users);
        }
        Ok(())
    }

    /// The account's current role, if it still exists.
    pub fn role(&self, name: &str) -> Option<Role> {
        if let Err(e) = self.refresh() {
            tracing::error!(error = %e, "cannot read the users file; keeping the last good copy");
        }
        self.cache.read().ok()?.1.get(name).map(|a| a.role)
    }

    /// What changes whenever the account's password is set (the salt of
    /// its hash, made anew each time) or its sessions are revoked (its
    /// generation): sessions remember it, so a new password, a revocation,
    /// or the account removed and added again, ends the sessions signed in
    /// before. `None` for an account without a password.
    pub fn credential(&self, name: &str) -> Option<String> {
        self.signed_in(name)?.1
    }

    /// The account's role and [`Self::credential`], read in one lookup
    /// (every request of a signed-in user asks for both).
    pub fn signed_in(&self, name: &str) -> Option<(Role, Option<String>)> {
        if let Err(e) = self.refresh() {
            tracing::error!(error = %e, "cannot read the users file; keeping the last good copy");
        }
        let cache = self.cache.read().ok()?;
        let account = cache.1.get(name)?;
        let credential = account.password_hash.as_deref().and_then(|hash| {
            let salt = PasswordHash::new(hash).ok()?.salt?;
            Some(format!("{salt}.{}", account.generation))
        });
        Some((account.role, credential))
    }

    pub fn is_empty(&self) -> bool {
        let _ = self.refresh();
        self.cache.read().map(|c| c.1.is_empty()).unwrap_or(true)
    }

    /// Checks a password; slow on purpose (argon2id), so call it off the
    /// async threads.
    pub fn check_password(&self, name: &str, password: &str) -> Option<Role> {
        let _ = self.refresh();
        let account = self.cache.read().ok()?.1.get(name).cloned();
        match account {
            Some(Account {
                role,
                password_hash: Some(hash),
                ..
            }) => verify(&hash, password).then_some(role),
            _ => {
                verify(&self.dummy_hash, password);
                None
            }
        }
    }
}

/// Where the first start leaves the generated admin password.
pub fn initial_password_path(users_file: &Path) -> PathBuf {
    users_file.with_file_name("initial-admin-password")
}

/// On the first start with local sign-in and no accounts, makes `admin` with
/// a generated password, written to a file only this user can read (never
/// to the log), so that the dashboard can be used at once and nobody else
/// can. `batchboard user passwd admin` removes the file.
pub fn ensure_first_admin(path: &Path) -> Result<(), UsersError> {
    let mut doc = read_doc(path)?;
    if !doc.users.is_empty() {
        return Ok(());
    }
    let password = generate_password();
    doc.users.insert(
        "admin".into(),
        Account {
            role: Role::Admin,
            password_hash: Some(hash_password(&password)?),
            generation: 0,
        },
    );
    let pw_file = initial_password_path(path);
    write_private(&pw_file, &format!("{password}\n")).map_err(|e| UsersError::File {
        path: pw_file.display().to_string(),
        reason: e.to_string(),
    })?;
    write_doc(path, &doc)?;
    tracing::warn!(
        users_file = %path.display(),
        password_file = %pw_file.display(),
        "no accounts yet: created user 'admin' (role admin); sign in with the password in {}, \
         then change it with `batchboard user passwd admin`",
        pw_file.display()
    );
    Ok(())
}

/// Creates `dir` (and its parents) if missing; what this creates is for its
/// owner only (mode 0700): the data directory holds the sessions, the users
/// and the sandbox's key.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(text.as_bytes())
}

fn read_password(from_stdin: bool) -> Result<(String, bool), UsersError> {
    if !from_stdin {
        return Ok((generate_password(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| UsersError::Invalid(format!("reading the password: {e}")))?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    if pw.chars().count() < MIN_PASSWORD {
        return Err(UsersError::Invalid(format!(
            "the password must have at least {MIN_PASSWORD} characters"
        )));
    }
    Ok((pw, false))
}

/// `batchboard user …`: returns what to print.
pub fn run(cmd: UserCommand) -> Result<String, UsersError> {
    match cmd {
        UserCommand::Add {
            name,
            role,
            password_stdin,
            file,
        } => {
            check_name(&name)?;
            let path = file.path();
            let mut doc = read_doc(&path)?;
            if doc.users.contains_key(&name) {
                return Err(UsersError::Invalid(format!(
                    "user '{name}' already exists (use `batchboard user passwd` or `set-role`)"
                )));
            }
            let (pw, generated) = read_password(password_stdin)?;
            doc.users.insert(
                name.clone(),
                Account {
                    role,
                    password_hash: Some(hash_password(&pw)?),
                    generation: 0,
                },
            );
            write_doc(&path, &doc)?;
            let mut out = format!("added {name} ({role}) to {}", path.display());
            if generated {
                out.push_str(&format!("\npassword: {pw}"));
            }
            Ok(out)
        }
        UserCommand::Passwd {
            name,
            password_stdin,
            file,
        } => {
            let path = file.path();
            let mut doc = read_doc(&path)?;
            let account = doc.account(&name)?;
            let (pw, generated) = read_password(password_stdin)?;
            account.password_hash = Some(hash_password(&pw)?);
            write_doc(&path, &doc)?;
            if name == "admin" {
                let _ = std::fs::remove_file(initial_password_path(&path));
            }
            let mut out = format!("new password set for {name}");
            if generated {
                out.push_str(&format!("\npassword: {pw}"));
            }
            Ok(out)
        }
        UserCommand::Revoke { name, file } => {
            let path = file.path();
            let mut doc = read_doc(&path)?;
            let account = doc.account(&name)?;
            account.generation += 1;
            write_doc(&path, &doc)?;
            Ok(format!("{name}: every session ends at its next request"))
        }
        UserCommand::SetRole { name, role, file } => {
            let path = file.path();
            let mut doc = read_doc(&path)?;
            let account = doc.account(&name)?;
            account.role = role;
            write_doc(&path, &doc)?;
            Ok(format!("{name} is now {role}"))
        }
        UserCommand::List { file } => {
            let doc = read_doc(&file.path())?;
            let mut out = String::new();
            for (name, a) in &doc.users {
                let how = if a.password_hash.is_some() {
                    "password"
                } else {
                    "proxy only"
                };
                out.push_str(&format!("{name}\t{}\t{how}\n", a.role));
            }
            Ok(out.trim_end().to_string())
        }
        // Needs the database: `main` answers it.
        UserCommand::Sessions { .. } => Err(UsersError::Invalid(
            "`user sessions` reads the database; run it through `batchboard`".into(),
        )),
        UserCommand::Remove { name, file } => {
            let path = file.path();
            let mut doc = read_doc(&path)?;
            if doc.users.remove(&name).is_none() {
                return Err(UsersError::Invalid(format!("no user '{name}'")));
            }
            write_doc(&path, &doc)?;
            Ok(format!("removed {name}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify(&h, "correct horse battery"));
        assert!(!verify(&h, "wrong horse battery"));
        assert!(!verify("garbage", "x"));
    }

    #[test]
    fn generated_passwords_differ_and_are_long() {
        let (a, b) = (generate_password(), generate_password());
        assert_ne!(a, b);
        assert!(a.len() >= 20);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("alice@example.com").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("x\"y").is_err());
    }
}
