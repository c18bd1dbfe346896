//! Verified tokens remembered by their SHA-256 digest, so a token reused for many
//! requests pays for the RSA check once. Bounded, and never serves a token past `exp`
//! or one verified against a key set that has since changed.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

use super::identity::Identity;

pub type TokenDigest = [u8; 32];

pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

struct Entry {
    identity: Arc<Identity>,
    expires_at: u64,
    key_generation: u64,
}

/// The key is already a cryptographic digest, so its first eight bytes are as good a
/// hash as any; this saves running SipHash over it on every request.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for (index, byte) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*byte) << (index * 8);
        }
    }
}

pub struct TokenCache {
    entries: RwLock<HashMap<TokenDigest, Entry, BuildHasherDefault<DigestHasher>>>,
    capacity: usize,
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::default()),
            capacity: capacity.max(1),
        }
    }

    pub fn get(
        &self,
        digest: &TokenDigest,
        now: u64,
        key_generation: u64,
    ) -> Option<Arc<Identity>> {
        let entries = self.entries.read().ok()?;
        let entry = entries.get(digest)?;
        (entry.expires_at > now && entry.key_generation == key_generation)
            .then(|| Arc::clone(&entry.identity))
    }

    /// Remembers `identity` until `cache_until` (never past the token's own expiry).
    pub fn insert(
        &self,
        digest: TokenDigest,
        identity: Arc<Identity>,
        now: u64,
        key_generation: u64,
        cache_until: u64,
    ) {
        let expires_at = cache_until.min(identity.expires_at);
        if expires_at <= now {
            return;
        }
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if entries.len() >= self.capacity && !entries.contains_key(&digest) {
            entries.retain(|_, entry| {
                entry.expires_at > now && entry.key_generation == key_generation
            });
            if entries.len() >= self.capacity {
                // Still full of live tokens: drop a quarter. Which ones matters little;
                // an evicted token is simply verified again.
                let evict: Vec<TokenDigest> = entries
                    .keys()
                    .take(self.capacity / 4 + 1)
                    .copied()
                    .collect();
                for key in evict {
                    entries.remove(&key);
                }
            }
        }
        entries.insert(
            digest,
            Entry {
                expires_at,
                identity,
                key_generation,
            },
        );
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries
            .read()
            .map(|entries| entries.len())
            .unwrap_or(0)
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::identity::IdentityKind;

    fn identity(expires_at: u64) -> Arc<Identity> {
        Arc::new(Identity {
            kind: IdentityKind::User,
            email: Some("ada@example.com".into()),
            sub: "sub-1".into(),
            country: None,
            common_name: None,
            identity_nonce: None,
            expires_at,
            audience: "aud".into(),
            groups: Vec::new(),
        })
    }

    #[test]
    fn serves_a_cached_token_until_it_expires() {
        let cache = TokenCache::new(10);
        let key = digest("token");
        cache.insert(key, identity(100), 50, 1, u64::MAX);

        assert!(cache.get(&key, 99, 1).is_some());
        assert!(cache.get(&key, 100, 1).is_none());
    }

    #[test]
    fn honours_a_shorter_cache_lifetime_than_the_token() {
        let cache = TokenCache::new(10);
        let key = digest("token");
        cache.insert(key, identity(100), 50, 1, 60);

        assert!(cache.get(&key, 59, 1).is_some());
        assert!(cache.get(&key, 60, 1).is_none());
    }

    #[test]
    fn forgets_tokens_verified_against_an_older_key_set() {
        let cache = TokenCache::new(10);
        let key = digest("token");
        cache.insert(key, identity(100), 50, 1, u64::MAX);

        assert!(cache.get(&key, 60, 2).is_none());
    }

    #[test]
    fn never_grows_past_its_capacity() {
        let cache = TokenCache::new(8);
        for n in 0..100 {
            cache.insert(
                digest(&format!("token-{n}")),
                identity(1_000),
                10,
                1,
                u64::MAX,
            );
        }
        assert!(cache.len() <= 8);
    }

    #[test]
    fn does_not_store_an_already_expired_token() {
        let cache = TokenCache::new(8);
        cache.insert(digest("old"), identity(10), 10, 1, u64::MAX);
        assert!(cache.is_empty());
    }
}
