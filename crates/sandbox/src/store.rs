//! The sandbox's state: file and batch records in memory, saved as one JSON
//! document in the data directory (written atomically, coalesced), and file
//! contents as files beside it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use batchboard_core::{Batch, FileObject};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Files in upload order.
    pub files: Vec<FileObject>,
    /// Batches in creation order.
    pub batches: Vec<Batch>,
    /// Batches asked to cancel (flag read by the runner).
    #[serde(default)]
    pub cancel_requested: Vec<String>,
    /// `output_expires_after.seconds` of batches that set it.
    #[serde(default)]
    pub output_expires_after: std::collections::BTreeMap<String, i64>,
    /// Batches past validation: their model and estimated input tokens
    /// (what counts against an enqueued-token limit while they run).
    #[serde(default)]
    pub enqueued: std::collections::BTreeMap<String, (String, u64)>,
}

impl State {
    /// Tokens enqueued for `model` by batches not yet finished.
    pub fn enqueued_tokens(&self, model: &str) -> u64 {
        self.enqueued
            .iter()
            .filter(|(id, (m, _))| {
                m == model && self.batch(id).is_some_and(|b| !b.status.is_terminal())
            })
            .map(|(_, (_, n))| n)
            .sum()
    }
}

impl State {
    pub fn file(&self, id: &str) -> Option<&FileObject> {
        self.files.iter().find(|f| f.id == id)
    }

    pub fn batch(&self, id: &str) -> Option<&Batch> {
        self.batches.iter().rev().find(|b| b.id == id)
    }

    pub fn batch_mut(&mut self, id: &str) -> Option<&mut Batch> {
        self.batches.iter_mut().rev().find(|b| b.id == id)
    }
}

pub struct Store {
    dir: PathBuf,
    state: Mutex<State>,
    /// Serialises writers of state.json.
    save_lock: Mutex<()>,
    dirty: Arc<Notify>,
}

impl Store {
    /// Opens (or creates) the store under `dir`.
    pub fn open(dir: &Path) -> std::io::Result<Arc<Self>> {
        std::fs::create_dir_all(dir.join("files"))?;
        let path = dir.join("state.json");
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e),
        };
        let store = Arc::new(Self {
            dir: dir.to_owned(),
            state: Mutex::new(state),
            save_lock: Mutex::new(()),
            dirty: Arc::new(Notify::new()),
        });
        let saver = Arc::downgrade(&store);
        let dirty = store.dirty.clone();
        tokio::spawn(async move {
            loop {
                dirty.notified().await;
                // Coalesce bursts of changes into one write.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let Some(s) = saver.upgrade() else { break };
                if let Err(e) = s.save_now() {
                    tracing::error!(error = %e, "sandbox: cannot save state");
                }
            }
        });
        Ok(store)
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the state changed; it is saved shortly.
    pub fn changed(&self) {
        self.dirty.notify_one();
    }

    /// Writes the state now (atomically: temp file, then rename).
    pub fn save_now(&self) -> std::io::Result<()> {
        let bytes = {
            let state = self.lock();
            serde_json::to_vec(&*state).map_err(std::io::Error::other)?
        };
        let _guard = self.save_lock.lock().unwrap_or_else(|e| e.into_inner());
        let tmp = self.dir.join("state.json.tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(tmp, self.dir.join("state.json"))
    }

    pub fn file_path(&self, id: &str) -> PathBuf {
        self.dir.join("files").join(id)
    }

    pub fn temp_path(&self) -> PathBuf {
        self.dir
            .join("files")
            .join(format!(".upload-{}", uuid::Uuid::new_v4().simple()))
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..24]
    )
}
