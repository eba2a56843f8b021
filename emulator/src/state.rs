//! The collections of every emulated account, optionally persisted to a state file.
//!
//! With a state file every mutation is first applied to a copy, the copy is written to disk
//! (temporary file + rename, so a crash leaves either the old or the new file, never half of
//! one), and only then does it replace the in-memory state. A failed write therefore changes
//! nothing and the client sees `InternalServerError`, as it would from the real service.

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::Error;
use crate::protocol::{ApiError, ErrorKind};

// Version 1 held the collections of one account; version 2 adds those of the other accounts.
// Both load.
const STATE_FILE_VERSION: u32 = 2;

/// One face collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Collection {
    pub collection_id: String,
    pub tags: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub face_model_version: String,
    #[serde(default)]
    pub face_count: u64,
    #[serde(default)]
    pub user_count: u64,
}

/// Collections by ID.
pub type Collections = BTreeMap<String, Collection>;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateFile {
    version: u32,
    /// The default account.
    account_id: String,
    region: String,
    /// The default account's collections.
    collections: Vec<Collection>,
    /// Version 2: the collections of every other account.
    #[serde(default)]
    accounts: BTreeMap<String, Vec<Collection>>,
}

/// All collections of every account, keyed and therefore listed by account and ID.
#[derive(Debug)]
pub struct Store {
    accounts: BTreeMap<String, Collections>,
    file: Option<PathBuf>,
    account_id: String,
    region: String,
}

static NO_COLLECTIONS: Collections = BTreeMap::new();

impl Store {
    /// An empty store, or the one saved in the configured state file.
    pub fn open(config: &Config) -> Result<Store, Error> {
        let mut store = Store {
            accounts: BTreeMap::new(),
            file: config.state_file.clone(),
            account_id: config.account_id.clone(),
            region: config.region.clone(),
        };
        if let Some(path) = &config.state_file {
            store.accounts = load(path, &config.account_id, &config.region)?;
        }
        Ok(store)
    }

    /// The collections of `account_id` (none for an account never written to).
    pub fn account(&self, account_id: &str) -> &Collections {
        self.accounts.get(account_id).unwrap_or(&NO_COLLECTIONS)
    }

    pub fn get(&self, account_id: &str, id: &str) -> Option<&Collection> {
        self.account(account_id).get(id)
    }

    /// Up to `limit` collections of the account with IDs after `after`, and whether more follow.
    pub fn page_after(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<&Collection>, bool) {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut rest = self
            .account(account_id)
            .range::<str, _>((lower, Bound::Unbounded))
            .map(|(_, c)| c);
        let page: Vec<&Collection> = rest.by_ref().take(limit).collect();
        (page, rest.next().is_some())
    }

    /// Applies `change` to the account's collections and saves the result; on any error
    /// nothing changes.
    pub fn update<R>(
        &mut self,
        account_id: &str,
        change: impl FnOnce(&mut Collections) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let Some(path) = self.file.clone() else {
            return change(self.accounts.entry(account_id.to_owned()).or_default());
        };
        let mut next = self.accounts.clone();
        let result = change(next.entry(account_id.to_owned()).or_default())?;
        self.save(&path, &next).map_err(|err| {
            tracing::error!(error = %err, "state file not written; change rolled back");
            ApiError::of_kind(ErrorKind::InternalServerError)
        })?;
        self.accounts = next;
        Ok(result)
    }

    /// Removes every collection of every account (admin reset).
    pub fn clear(&mut self) -> Result<(), Error> {
        if let Some(path) = self.file.clone() {
            self.save(&path, &BTreeMap::new())?;
        }
        self.accounts.clear();
        Ok(())
    }

    fn save(&self, path: &Path, accounts: &BTreeMap<String, Collections>) -> Result<(), Error> {
        let file = StateFile {
            version: STATE_FILE_VERSION,
            account_id: self.account_id.clone(),
            region: self.region.clone(),
            collections: accounts
                .get(&self.account_id)
                .map(|c| c.values().cloned().collect())
                .unwrap_or_default(),
            accounts: accounts
                .iter()
                .filter(|(id, collections)| **id != self.account_id && !collections.is_empty())
                .map(|(id, collections)| (id.clone(), collections.values().cloned().collect()))
                .collect(),
        };
        let write_error = |source| Error::StateWrite {
            path: path.to_owned(),
            source,
        };
        let bytes =
            serde_json::to_vec_pretty(&file).map_err(|e| write_error(std::io::Error::other(e)))?;
        write_atomically(path, &bytes).map_err(write_error)
    }
}

fn load(
    path: &Path,
    account_id: &str,
    region: &str,
) -> Result<BTreeMap<String, Collections>, Error> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        // A state file that does not exist yet is an empty account; it appears on first change.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => {
            return Err(Error::StateRead {
                path: path.to_owned(),
                source,
            });
        }
    };
    let file: StateFile = serde_json::from_slice(&bytes).map_err(|source| Error::StateParse {
        path: path.to_owned(),
        source,
    })?;
    if !(1..=STATE_FILE_VERSION).contains(&file.version) {
        return Err(Error::StateMismatch {
            path: path.to_owned(),
            found: format!("format version {}", file.version),
            expected: format!("format version {STATE_FILE_VERSION}"),
        });
    }
    if file.account_id != account_id || file.region != region {
        return Err(Error::StateMismatch {
            path: path.to_owned(),
            found: format!("account {} in {}", file.account_id, file.region),
            expected: format!("account {account_id} in {region}"),
        });
    }
    let by_id = |collections: Vec<Collection>| -> Collections {
        collections
            .into_iter()
            .map(|c| (c.collection_id.clone(), c))
            .collect()
    };
    let mut accounts: BTreeMap<String, Collections> = file
        .accounts
        .into_iter()
        .map(|(id, collections)| (id, by_id(collections)))
        .collect();
    accounts.insert(account_id.to_owned(), by_id(file.collections));
    Ok(accounts)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Same directory as the target, so the rename stays on one filesystem and is atomic.
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collection(id: &str) -> Collection {
        Collection {
            collection_id: id.to_owned(),
            tags: BTreeMap::from([("team".to_owned(), "vision".to_owned())]),
            created_at: Utc::now(),
            face_model_version: "7.0".to_owned(),
            face_count: 0,
            user_count: 0,
        }
    }

    const ACCOUNT: &str = crate::config::DEFAULT_ACCOUNT_ID;

    fn insert(store: &mut Store, id: &str) {
        store
            .update(ACCOUNT, |c| {
                c.insert(id.to_owned(), collection(id));
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn pages_follow_id_order_and_report_whether_more_follow() {
        let mut store = Store::open(&Config::default()).unwrap();
        for id in ["c", "a", "b", "d"] {
            insert(&mut store, id);
        }
        let (page, more) = store.page_after(ACCOUNT, None, 2);
        assert_eq!(
            page.iter()
                .map(|c| c.collection_id.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(more);
        let (page, more) = store.page_after(ACCOUNT, Some("b"), 2);
        assert_eq!(
            page.iter()
                .map(|c| c.collection_id.as_str())
                .collect::<Vec<_>>(),
            ["c", "d"]
        );
        assert!(!more);
    }

    #[test]
    fn a_saved_store_reopens_with_the_same_collections() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            state_file: Some(dir.path().join("state.json")),
            ..Config::default()
        };
        let mut store = Store::open(&config).unwrap();
        insert(&mut store, "kept");
        let saved = store.get(ACCOUNT, "kept").cloned();

        let reopened = Store::open(&config).unwrap();
        assert_eq!(reopened.get(ACCOUNT, "kept").cloned(), saved);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(
            leftovers.len(),
            1,
            "temporary files must not be left behind"
        );
    }

    #[test]
    fn a_failed_change_leaves_the_store_as_it_was() {
        let mut store = Store::open(&Config::default()).unwrap();
        insert(&mut store, "a");
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be makes the rename fail.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("x"), b"x").unwrap();
        store.file = Some(blocked);
        let err = store
            .update(ACCOUNT, |c| {
                c.insert("b".to_owned(), collection("b"));
                Ok(())
            })
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InternalServerError);
        assert!(store.get(ACCOUNT, "b").is_none());
    }

    #[test]
    fn refuses_a_state_file_of_another_account() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut store = Store::open(&Config {
            state_file: Some(path.clone()),
            ..Config::default()
        })
        .unwrap();
        insert(&mut store, "a");
        let other = Config {
            account_id: "999999999999".to_owned(),
            state_file: Some(path),
            ..Config::default()
        };
        assert!(matches!(
            Store::open(&other),
            Err(Error::StateMismatch { .. })
        ));
    }

    #[test]
    fn keeps_each_accounts_collections_apart_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            state_file: Some(dir.path().join("state.json")),
            ..Config::default()
        };
        let mut store = Store::open(&config).unwrap();
        insert(&mut store, "a");
        store
            .update("210987654321", |c| {
                c.insert("b".to_owned(), collection("b"));
                Ok(())
            })
            .unwrap();
        let reopened = Store::open(&config).unwrap();
        assert!(reopened.get(ACCOUNT, "a").is_some());
        assert!(reopened.get(ACCOUNT, "b").is_none());
        assert!(reopened.get("210987654321", "b").is_some());
    }

    #[test]
    fn loads_a_single_account_state_file_of_version_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let v1 = serde_json::json!({
            "version": 1, "accountId": ACCOUNT, "region": "us-east-1",
            "collections": [collection("old")],
        });
        std::fs::write(&path, v1.to_string()).unwrap();
        let store = Store::open(&Config {
            state_file: Some(path),
            ..Config::default()
        })
        .unwrap();
        assert!(store.get(ACCOUNT, "old").is_some());
    }

    #[test]
    fn refuses_a_corrupt_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"{not json").unwrap();
        let config = Config {
            state_file: Some(path),
            ..Config::default()
        };
        assert!(matches!(
            Store::open(&config),
            Err(Error::StateParse { .. })
        ));
    }
}
