//! The IdP metadata in force, per federation: application state, not config. A config says
//! where a federation's metadata comes from (and brings the copy it read at load: the file, or
//! the copy kept on disk); the refresher installs fresh copies here; logins read from here.
//! The registry outlives config reloads, as the stores do: a reload that keeps a federation's
//! URL source keeps its copy in force, its refusal and its fetch schedule; one that changes the
//! source (or names a file) starts from what the new config read. A reload never makes
//! metadata older.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use url::Url;

use super::idp_metadata::IdpDescriptor;
use super::settings::MetadataSource;

/// Why a federation has no usable IdP metadata right now (logins fail closed).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum MetadataUnavailable {
    #[error("no IdP metadata of federation {0} has been fetched yet")]
    NotYet(String),
    #[error("no IdP metadata of federation {0} is in force: the last fetch was refused: {1}")]
    Refused(String, String),
    #[error("the IdP metadata of federation {0} expired at {1} (validUntil) and no fresh copy is in")]
    Expired(String, String),
}

/// `copy` if it may be trusted now: present and within its validUntil. Without one, the
/// error names the refusal of the last fetch when there was one.
pub fn usable(
    federation: &str,
    copy: Option<Arc<IdpDescriptor>>,
    refusal: impl FnOnce() -> Option<String>,
) -> Result<Arc<IdpDescriptor>, MetadataUnavailable> {
    let idp = copy.ok_or_else(|| match refusal() {
        Some(reason) => MetadataUnavailable::Refused(federation.to_string(), reason),
        None => MetadataUnavailable::NotYet(federation.to_string()),
    })?;
    match idp.valid_until {
        Some(until) if until <= chrono::Utc::now() => {
            Err(MetadataUnavailable::Expired(federation.to_string(), until.to_rfc3339()))
        }
        _ => Ok(idp),
    }
}

/// What makes two configs' metadata the same: the URL, the certificates its signature must
/// verify with and the IdP picked out of it. A file is the admin's copy: it is read anew at
/// every load and never carried over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKey {
    File(PathBuf),
    Url {
        url: Url,
        signing_certs: Vec<samael::crypto::CertificateDer>,
        idp_entity_id: Option<String>,
    },
}

impl SourceKey {
    pub fn of(source: &MetadataSource, idp_entity_id: Option<&str>) -> Self {
        match source {
            MetadataSource::File(path) => SourceKey::File(path.clone()),
            MetadataSource::Url { url, signing_certs, .. } => SourceKey::Url {
                url: url.clone(),
                signing_certs: signing_certs.clone(),
                idp_entity_id: idp_entity_id.map(str::to_string),
            },
        }
    }
}

/// One federation's metadata as a config being put in force brings it.
#[derive(Debug, Clone)]
pub struct LoadedMetadata<'a> {
    pub federation: &'a str,
    pub source: SourceKey,
    /// What the load read: the file, or the copy kept on disk for a URL (none yet: `None`).
    pub copy: Option<Arc<IdpDescriptor>>,
    /// `require_valid_until` of the new config: a copy without validUntil is not carried.
    pub require_valid_until: bool,
}

/// One federation's metadata in force: the copy, why the last fetch was refused, and when
/// the refresher fetches next.
#[derive(Debug)]
pub struct LiveMetadata {
    federation: String,
    source: SourceKey,
    idp: ArcSwapOption<IdpDescriptor>,
    /// When the refresher should fetch a URL source next (unix seconds; 0: at once).
    next_fetch: AtomicI64,
    /// Why the last fetch of a URL source was refused (cleared by a good one), so that
    /// `/readyz` can say more than "not fetched yet" while no copy is in force.
    last_refusal: Mutex<Option<String>>,
    /// `require_valid_until` of the config in force now (a reload updates it): a refresh
    /// checked under the config before the reload may finish after it.
    require_valid_until: AtomicBool,
}

impl LiveMetadata {
    fn new(loaded: &LoadedMetadata<'_>) -> Self {
        LiveMetadata {
            federation: loaded.federation.to_string(),
            source: loaded.source.clone(),
            idp: ArcSwapOption::from(loaded.copy.clone()),
            next_fetch: AtomicI64::new(0),
            last_refusal: Mutex::new(None),
            require_valid_until: AtomicBool::new(loaded.require_valid_until),
        }
    }

    /// The IdP metadata to trust now: present and within its validUntil, or an error that
    /// makes the login fail closed.
    pub fn idp(&self) -> Result<Arc<IdpDescriptor>, MetadataUnavailable> {
        let refusal = || self.last_refusal.lock().ok().and_then(|r| r.clone());
        usable(&self.federation, self.idp.load_full(), refusal)
    }

    /// The last copy, valid or not (for metrics and the refresher).
    pub fn last_known(&self) -> Option<Arc<IdpDescriptor>> {
        self.idp.load_full()
    }

    /// Puts a freshly fetched, verified copy in force, unless the config in force now refuses
    /// it: a copy without validUntil that a refresh begun before a reload accepted under the
    /// old config's `require_valid_until = false`.
    pub fn install(&self, idp: IdpDescriptor) -> Result<(), String> {
        if idp.valid_until.is_none() && self.require_valid_until.load(Ordering::Acquire) {
            return Err(format!(
                "the metadata has no validUntil (federations.{}.require_valid_until = true)",
                self.federation
            ));
        }
        self.idp.store(Some(Arc::new(idp)));
        Ok(())
    }

    /// Records why a fetch was refused (`None`: the last one was good).
    pub fn note_refusal(&self, reason: Option<String>) {
        if let Ok(mut last) = self.last_refusal.lock() {
            *last = reason;
        }
    }

    /// When the next fetch is due (unix seconds).
    pub fn next_fetch(&self) -> i64 {
        self.next_fetch.load(Ordering::Relaxed)
    }

    pub fn schedule_fetch(&self, at_unix: i64) {
        self.next_fetch.store(at_unix, Ordering::Relaxed);
    }

    /// Starts over from what a load read, as a slot made for it would.
    fn start_from(&self, copy: Option<Arc<IdpDescriptor>>) {
        self.idp.store(copy);
        self.next_fetch.store(0, Ordering::Relaxed);
        self.note_refusal(None);
    }

    /// Whether the copy in force stays over the one `loaded` read: the source is the same URL,
    /// the copy is acceptable to the new config, and it ends later (or the load read none).
    fn keeps_over(&self, loaded: &LoadedMetadata<'_>) -> bool {
        if !matches!(loaded.source, SourceKey::Url { .. }) || self.source != loaded.source {
            return false;
        }
        let Some(kept) = self.last_known() else {
            return false;
        };
        if kept.valid_until.is_none() && loaded.require_valid_until {
            return false;
        }
        match (kept.valid_until, loaded.copy.as_ref().and_then(|c| c.valid_until)) {
            (Some(k), Some(f)) => k > f,
            (_, None) => true,
            (None, Some(_)) => false,
        }
    }
}

/// Every federation's metadata slot, across reloads.
#[derive(Debug, Default)]
pub struct MetadataRegistry {
    slots: Mutex<HashMap<String, Arc<LiveMetadata>>>,
}

impl MetadataRegistry {
    /// The slots for the federations of a config being put in force. A federation whose URL
    /// source is unchanged keeps its slot (and so its copy, refusal and schedule, unless the
    /// load read a copy that ends later); any other gets a slot of what its load read. Slots of
    /// federations the config no longer names are dropped (requests under way keep theirs).
    pub fn put_in_force<'a>(&self, federations: impl IntoIterator<Item = LoadedMetadata<'a>>) -> MetadataInForce {
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut in_force = HashMap::new();
        for loaded in federations {
            let slot = match slots.get(loaded.federation) {
                Some(slot) if slot.source == loaded.source && matches!(loaded.source, SourceKey::Url { .. }) => {
                    slot.require_valid_until
                        .store(loaded.require_valid_until, Ordering::Release);
                    if !slot.keeps_over(&loaded) {
                        slot.start_from(loaded.copy.clone());
                    }
                    slot.clone()
                }
                _ => Arc::new(LiveMetadata::new(&loaded)),
            };
            in_force.insert(loaded.federation.to_string(), slot);
        }
        *slots = in_force.clone();
        MetadataInForce {
            by_federation: in_force,
        }
    }
}

/// The metadata slots of one config in force, by federation name.
#[derive(Debug, Default)]
pub struct MetadataInForce {
    by_federation: HashMap<String, Arc<LiveMetadata>>,
}

impl MetadataInForce {
    pub fn get(&self, federation: &str) -> Option<&Arc<LiveMetadata>> {
        self.by_federation.get(federation)
    }

    /// The IdP metadata to trust now for `federation` (see [`LiveMetadata::idp`]).
    pub fn idp(&self, federation: &str) -> Result<Arc<IdpDescriptor>, MetadataUnavailable> {
        match self.get(federation) {
            Some(slot) => slot.idp(),
            None => Err(MetadataUnavailable::NotYet(federation.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(entity_id: &str, valid_for_hours: Option<i64>) -> Arc<IdpDescriptor> {
        Arc::new(IdpDescriptor {
            entity_id: entity_id.into(),
            sso_redirect_url: "https://idp.example/sso".into(),
            signing_certs: Vec::new(),
            signing_keys: Vec::new(),
            want_authn_requests_signed: false,
            valid_until: valid_for_hours.map(|h| chrono::Utc::now() + chrono::Duration::hours(h)),
            slo_redirect: None,
        })
    }

    fn url_source(url: &str) -> SourceKey {
        SourceKey::Url {
            url: Url::parse(url).expect("url"),
            signing_certs: Vec::new(),
            idp_entity_id: None,
        }
    }

    fn loaded(source: SourceKey, copy: Option<Arc<IdpDescriptor>>) -> LoadedMetadata<'static> {
        LoadedMetadata {
            federation: "kennisnet",
            source,
            copy,
            require_valid_until: true,
        }
    }

    #[test]
    fn a_reload_that_keeps_the_url_keeps_the_later_copy_and_its_schedule() {
        let registry = MetadataRegistry::default();
        let first = registry.put_in_force([loaded(url_source("https://a.example/md"), Some(copy("disk", Some(1))))]);
        let slot = first.get("kennisnet").expect("slot").clone();
        slot.install(copy("fetched", Some(48)).as_ref().clone())
            .expect("installed");
        slot.schedule_fetch(12345);

        let again = registry.put_in_force([loaded(url_source("https://a.example/md"), Some(copy("disk", Some(1))))]);
        assert_eq!(again.idp("kennisnet").expect("idp").entity_id, "fetched");
        assert_eq!(again.get("kennisnet").expect("slot").next_fetch(), 12345);

        // A disk copy that ends later than the one in force wins, and is fetched again at once.
        let later = registry.put_in_force([loaded(
            url_source("https://a.example/md"),
            Some(copy("newer", Some(96))),
        )]);
        assert_eq!(later.idp("kennisnet").expect("idp").entity_id, "newer");
        assert_eq!(later.get("kennisnet").expect("slot").next_fetch(), 0);
    }

    #[test]
    fn a_changed_source_or_a_file_starts_from_what_the_load_read() {
        let registry = MetadataRegistry::default();
        let first = registry.put_in_force([loaded(url_source("https://a.example/md"), None)]);
        first
            .get("kennisnet")
            .expect("slot")
            .install(copy("fetched", Some(48)).as_ref().clone())
            .expect("installed");
        first.get("kennisnet").expect("slot").note_refusal(Some("bad".into()));

        let moved = registry.put_in_force([loaded(url_source("https://b.example/md"), None)]);
        assert_eq!(
            moved.idp("kennisnet").err(),
            Some(MetadataUnavailable::NotYet("kennisnet".into()))
        );

        let file = SourceKey::File(PathBuf::from("idp.xml"));
        let one = registry.put_in_force([loaded(file.clone(), Some(copy("file one", None)))]);
        assert_eq!(one.idp("kennisnet").expect("idp").entity_id, "file one");
        let two = registry.put_in_force([loaded(file, Some(copy("file two", None)))]);
        assert_eq!(two.idp("kennisnet").expect("idp").entity_id, "file two");
        assert!(registry.put_in_force([]).get("kennisnet").is_none());
    }

    #[test]
    fn a_kept_copy_without_valid_until_is_not_carried_once_it_is_required() {
        let registry = MetadataRegistry::default();
        let mut lenient = loaded(url_source("https://a.example/md"), None);
        lenient.require_valid_until = false;
        let first = registry.put_in_force([lenient]);
        first
            .get("kennisnet")
            .expect("slot")
            .install(copy("endless", None).as_ref().clone())
            .expect("installed");
        let strict = registry.put_in_force([loaded(url_source("https://a.example/md"), None)]);
        assert!(strict.idp("kennisnet").is_err());
    }

    #[test]
    fn a_refresh_finishing_after_a_reload_cannot_install_what_the_new_config_refuses() {
        let registry = MetadataRegistry::default();
        let mut lenient = loaded(url_source("https://a.example/md"), None);
        lenient.require_valid_until = false;
        let before = registry.put_in_force([lenient]);
        // The refresh took its slot under the lenient config ...
        let slot = before.get("kennisnet").expect("slot").clone();
        // ... a reload to `require_valid_until = true` keeps the slot (same source) ...
        let after = registry.put_in_force([loaded(url_source("https://a.example/md"), None)]);
        // ... and the copy without validUntil it then brings is refused, not put in force.
        let refused = slot.install(copy("endless", None).as_ref().clone());
        assert!(refused.is_err_and(|e| e.contains("require_valid_until")));
        assert!(after.idp("kennisnet").is_err());
        slot.install(copy("ends", Some(48)).as_ref().clone())
            .expect("a copy with validUntil goes in");
        assert_eq!(after.idp("kennisnet").expect("idp").entity_id, "ends");
    }
}
