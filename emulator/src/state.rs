//! The collections of every emulated account in every served region, optionally persisted to a
//! state file.
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

// Version 1 held the collections of one account; version 2 adds those of the other accounts;
// version 3 those of the other regions. All load.
const STATE_FILE_VERSION: u32 = 3;

/// Where collections live, and what quotas and call logs are kept for: an account in a region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    pub account_id: String,
    pub region: String,
}

impl Scope {
    pub fn new(account_id: impl Into<String>, region: impl Into<String>) -> Self {
        Scope {
            account_id: account_id.into(),
            region: region.into(),
        }
    }
}

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
    /// The default region.
    region: String,
    /// The default account's collections in the default region.
    collections: Vec<Collection>,
    /// Version 2: the collections of every other account in the default region.
    #[serde(default)]
    accounts: BTreeMap<String, Vec<Collection>>,
    /// Version 3: the collections in every other region, by region and account.
    #[serde(default)]
    regions: BTreeMap<String, BTreeMap<String, Vec<Collection>>>,
}

type Scopes = BTreeMap<Scope, Collections>;

/// All collections of every account in every region, keyed and therefore listed by scope and ID.
#[derive(Debug)]
pub struct Store {
    scopes: Scopes,
    file: Option<PathBuf>,
    account_id: String,
    region: String,
}

static NO_COLLECTIONS: Collections = BTreeMap::new();

impl Store {
    /// An empty store, or the one saved in the configured state file.
    pub fn open(config: &Config) -> Result<Store, Error> {
        let mut store = Store {
            scopes: BTreeMap::new(),
            file: config.state_file.clone(),
            account_id: config.account_id.clone(),
            region: config.region.clone(),
        };
        if let Some(path) = &config.state_file {
            store.scopes = load(path, &config.account_id, &config.region)?;
        }
        Ok(store)
    }

    /// The collections of `scope` (none for one never written to).
    pub fn scope(&self, scope: &Scope) -> &Collections {
        self.scopes.get(scope).unwrap_or(&NO_COLLECTIONS)
    }

    pub fn get(&self, scope: &Scope, id: &str) -> Option<&Collection> {
        self.scope(scope).get(id)
    }

    /// Up to `limit` collections of the scope with IDs after `after`, and whether more follow.
    pub fn page_after(
        &self,
        scope: &Scope,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<&Collection>, bool) {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut rest = self
            .scope(scope)
            .range::<str, _>((lower, Bound::Unbounded))
            .map(|(_, c)| c);
        let page: Vec<&Collection> = rest.by_ref().take(limit).collect();
        (page, rest.next().is_some())
    }

    /// Applies `change` to the scope's collections and saves the result; on any error
    /// nothing changes.
    pub fn update<R>(
        &mut self,
        scope: &Scope,
        change: impl FnOnce(&mut Collections) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let Some(path) = self.file.clone() else {
            return change(self.scopes.entry(scope.clone()).or_default());
        };
        let mut next = self.scopes.clone();
        let result = change(next.entry(scope.clone()).or_default())?;
        self.save(&path, &next).map_err(|err| {
            tracing::error!(error = %err, "state file not written; change rolled back");
            ApiError::of_kind(ErrorKind::InternalServerError)
        })?;
        self.scopes = next;
        Ok(result)
    }

    /// Removes every collection of every scope (admin reset).
    pub fn clear(&mut self) -> Result<(), Error> {
        if let Some(path) = self.file.clone() {
            self.save(&path, &BTreeMap::new())?;
        }
        self.scopes.clear();
        Ok(())
    }

    fn save(&self, path: &Path, scopes: &Scopes) -> Result<(), Error> {
        let listed = |c: &Collections| -> Vec<Collection> { c.values().cloned().collect() };
        let mut file = StateFile {
            version: STATE_FILE_VERSION,
            account_id: self.account_id.clone(),
            region: self.region.clone(),
            collections: Vec::new(),
            accounts: BTreeMap::new(),
            regions: BTreeMap::new(),
        };
        for (scope, collections) in scopes.iter().filter(|(_, c)| !c.is_empty()) {
            if scope.region != self.region {
                file.regions
                    .entry(scope.region.clone())
                    .or_default()
                    .insert(scope.account_id.clone(), listed(collections));
            } else if scope.account_id == self.account_id {
                file.collections = listed(collections);
            } else {
                file.accounts
                    .insert(scope.account_id.clone(), listed(collections));
            }
        }
        let write_error = |source| Error::StateWrite {
            path: path.to_owned(),
            source,
        };
        let bytes =
            serde_json::to_vec_pretty(&file).map_err(|e| write_error(std::io::Error::other(e)))?;
        write_atomically(path, &bytes).map_err(write_error)
    }
}

fn load(path: &Path, account_id: &str, region: &str) -> Result<Scopes, Error> {
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
    let mut scopes: Scopes = file
        .accounts
        .into_iter()
        .map(|(id, collections)| (Scope::new(id, region), by_id(collections)))
        .collect();
    scopes.insert(Scope::new(account_id, region), by_id(file.collections));
    for (other_region, accounts) in file.regions {
        for (id, collections) in accounts {
            scopes.insert(Scope::new(id, other_region.clone()), by_id(collections));
        }
    }
    Ok(scopes)
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

    fn home() -> Scope {
        Scope::new(ACCOUNT, crate::config::DEFAULT_REGION)
    }

    fn insert(store: &mut Store, id: &str) {
        insert_in(store, &home(), id);
    }

    fn insert_in(store: &mut Store, scope: &Scope, id: &str) {
        store
            .update(scope, |c| {
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
        let (page, more) = store.page_after(&home(), None, 2);
        assert_eq!(
            page.iter()
                .map(|c| c.collection_id.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(more);
        let (page, more) = store.page_after(&home(), Some("b"), 2);
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
        let saved = store.get(&home(), "kept").cloned();

        let reopened = Store::open(&config).unwrap();
        assert_eq!(reopened.get(&home(), "kept").cloned(), saved);
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
            .update(&home(), |c| {
                c.insert("b".to_owned(), collection("b"));
                Ok(())
            })
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InternalServerError);
        assert!(store.get(&home(), "b").is_none());
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
        let other = Scope::new("210987654321", crate::config::DEFAULT_REGION);
        insert_in(&mut store, &other, "b");
        let reopened = Store::open(&config).unwrap();
        assert!(reopened.get(&home(), "a").is_some());
        assert!(reopened.get(&home(), "b").is_none());
        assert!(reopened.get(&other, "b").is_some());
    }

    #[test]
    fn keeps_each_regions_collections_apart_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            state_file: Some(dir.path().join("state.json")),
            extra_regions: vec!["eu-west-1".to_owned()],
            ..Config::default()
        };
        let mut store = Store::open(&config).unwrap();
        let europe = Scope::new(ACCOUNT, "eu-west-1");
        let europe_other = Scope::new("210987654321", "eu-west-1");
        insert(&mut store, "a");
        insert_in(&mut store, &europe, "a");
        insert_in(&mut store, &europe, "eu-only");
        insert_in(&mut store, &europe_other, "c");
        let reopened = Store::open(&config).unwrap();
        assert_eq!(reopened.scope(&home()).len(), 1);
        assert!(reopened.get(&home(), "eu-only").is_none());
        assert_eq!(reopened.scope(&europe).len(), 2);
        assert!(reopened.get(&europe_other, "c").is_some());
        assert!(
            reopened
                .get(&Scope::new("210987654321", "us-east-1"), "c")
                .is_none()
        );
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
        assert!(store.get(&home(), "old").is_some());
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
