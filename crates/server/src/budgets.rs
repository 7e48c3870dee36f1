//! The budgets file (`--budgets-file`, default `DATA_DIR/budgets.toml`):
//! monthly limits in US dollars per user and per team (a team is the value
//! of the batches' team metadata key, `--team-key`).
//!
//! ```toml
//! [budgets.users]
//! alice = 100
//!
//! [budgets.teams]
//! search = 500
//! ```
//!
//! Re-read when its modification time changes, so an edit on disk applies
//! to the next batch. The admin page writes it whole (comments are not
//! kept). A file that cannot be read or is wrong is refused with the place;
//! the budgets last read stay in force meanwhile.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use batchboard_core::spend::Scope;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum BudgetsError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
}

/// Monthly limits, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default)]
    pub users: BTreeMap<String, f64>,
    #[serde(default)]
    pub teams: BTreeMap<String, f64>,
}

impl Limits {
    pub fn get(&self, scope: Scope, name: &str) -> Option<f64> {
        match scope {
            Scope::User => self.users.get(name),
            Scope::Team => self.teams.get(name),
        }
        .copied()
    }

    /// Every budget, users first.
    pub fn all(&self) -> impl Iterator<Item = (Scope, &str, f64)> {
        let users = self
            .users
            .iter()
            .map(|(n, l)| (Scope::User, n.as_str(), *l));
        let teams = self
            .teams
            .iter()
            .map(|(n, l)| (Scope::Team, n.as_str(), *l));
        users.chain(teams)
    }

    fn check(&self) -> Result<(), String> {
        for (scope, name, limit) in self.all() {
            if !is_amount(limit) {
                return Err(format!(
                    "budgets.{}s.{name}: {limit} is not an amount of dollars (0 or more)",
                    scope.as_str()
                ));
            }
        }
        Ok(())
    }
}

/// Whether `v` may be a monthly limit: dollars, 0 or more.
pub fn is_amount(v: f64) -> bool {
    v.is_finite() && v >= 0.0
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    #[serde(default)]
    budgets: Limits,
}

/// The budgets as the server sees them.
pub struct Budgets {
    path: PathBuf,
    cache: RwLock<(Option<SystemTime>, Limits)>,
}

impl Budgets {
    /// Reads the file (none: no budgets); a wrong file is refused.
    pub fn open(path: PathBuf) -> Result<Self, BudgetsError> {
        let b = Self {
            path,
            cache: RwLock::new((None, Limits::default())),
        };
        b.refresh()?;
        Ok(b)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn refresh(&self) -> Result<(), BudgetsError> {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if self.cache.read().map(|c| c.0 == mtime).unwrap_or(false) {
            return Ok(());
        }
        let limits = read(&self.path)?;
        if let Ok(mut c) = self.cache.write() {
            *c = (mtime, limits);
        }
        Ok(())
    }

    /// The budgets now (re-read when the file changed; a bad edit is
    /// logged and the last good budgets kept).
    pub fn current(&self) -> Limits {
        if let Err(e) = self.refresh() {
            tracing::warn!(error = %e, "budgets file not applied");
        }
        self.cache.read().map(|c| c.1.clone()).unwrap_or_default()
    }

    /// Writes `limits` as the whole file (atomically).
    pub fn save(&self, limits: &Limits) -> Result<(), BudgetsError> {
        let path = self.path.display().to_string();
        limits.check().map_err(|message| BudgetsError::Syntax {
            path: path.clone(),
            message,
        })?;
        let text = toml::to_string(&Doc {
            budgets: limits.clone(),
        })
        .map_err(|e| BudgetsError::Syntax {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let io = |source| BudgetsError::Io {
            path: path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        std::fs::write(
            tmp.path(),
            format!("# Monthly budgets in US dollars (Batchboard).\n{text}"),
        )
        .map_err(io)?;
        tmp.persist(&self.path).map_err(|e| io(e.error))?;
        self.refresh()
    }
}

fn read(path: &Path) -> Result<Limits, BudgetsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Limits::default()),
        Err(source) => {
            return Err(BudgetsError::Io {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let syntax = |message: String| BudgetsError::Syntax {
        path: path.display().to_string(),
        message,
    };
    let doc: Doc = toml::from_str(&text).map_err(|e| syntax(e.to_string()))?;
    doc.budgets.check().map_err(syntax)?;
    Ok(doc.budgets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_read_saved_and_refused_with_the_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("budgets.toml");
        let b = Budgets::open(path.clone()).unwrap();
        assert_eq!(b.current(), Limits::default());
        std::fs::write(&path, "[budgets.teams]\nsearch = 500\n").unwrap();
        // A new mtime may fall in the same tick: set one apart.
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(b.current().get(Scope::Team, "search"), Some(500.0));
        let mut l = b.current();
        l.users.insert("alice".into(), 12.5);
        b.save(&l).unwrap();
        assert_eq!(Budgets::open(path.clone()).unwrap().current(), l);
        std::fs::write(&path, "[budgets.users]\nbob = -3\n").unwrap();
        let e = Budgets::open(path.clone()).err().unwrap().to_string();
        assert!(e.contains("budgets.users.bob"), "{e}");
        std::fs::write(&path, "[budget]\n").unwrap();
        assert!(Budgets::open(path).is_err());
    }
}
