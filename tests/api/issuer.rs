//! The integration tests' view of the library's dev issuer: this suite's team and audience,
//! a loopback certs endpoint per test app, and a `TokenBuilder` with the defaults the tests
//! assert on. Keys, signing and the certs route all belong to `tunnelgate::DevIssuer`.

use std::net::TcpListener;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tunnelgate::{DevIssuer, JsonObject, SignatureKind, SigningKey};

pub const TEAM: &str = "testteam";
pub const ISSUER: &str = "https://testteam.cloudflareaccess.com";
pub const AUDIENCE: &str = "test-aud-0123456789abcdef";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A dev issuer over the shared keys, its certs served on a loopback port. Derefs to the
/// issuer for its hooks: `publish`, `set_failing`, `fetches`.
pub struct TestIssuer {
    issuer: Arc<DevIssuer>,
    pub certs_url: String,
}

impl TestIssuer {
    /// Starts serving certs with the given key indexes published.
    pub fn start(published: &[usize]) -> Self {
        let issuer = Arc::new(DevIssuer::with_shared_keys(TEAM, AUDIENCE, published).unwrap());
        assert_eq!(issuer.issuer(), ISSUER);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let certs_url = format!(
            "http://{}/cdn-cgi/access/certs",
            listener.local_addr().unwrap()
        );
        actix_web::rt::spawn(Arc::clone(&issuer).serve(listener).unwrap());
        Self { issuer, certs_url }
    }
}

impl TestIssuer {
    /// The issuer itself, for what signs tokens on its own (the dev edge).
    pub fn handle(&self) -> Arc<DevIssuer> {
        Arc::clone(&self.issuer)
    }
}

impl Deref for TestIssuer {
    type Target = DevIssuer;

    fn deref(&self) -> &DevIssuer {
        &self.issuer
    }
}

/// A token under construction: Cloudflare's user-token claims by default, all editable,
/// signed by one of the shared keys (the same ones every `TestIssuer` publishes from).
pub struct TokenBuilder {
    pub claims: JsonObject,
    key: usize,
    kid: Option<String>,
}

impl TokenBuilder {
    pub fn user(email: &str) -> Self {
        let now = now();
        let Value::Object(claims) = json!({
            "aud": [AUDIENCE],
            "email": email,
            "exp": now + 600,
            "iat": now,
            "nbf": now,
            "iss": ISSUER,
            "type": "app",
            "identity_nonce": "nonce-1",
            "sub": format!("sub-{email}"),
            "country": "NL",
        }) else {
            unreachable!()
        };
        Self {
            claims,
            key: 0,
            kid: None,
        }
    }

    pub fn service(client_id: &str) -> Self {
        let mut builder = Self::user("unused");
        builder.claims.remove("email");
        builder.claims.remove("country");
        builder.claims.remove("identity_nonce");
        builder
            .claims
            .insert("common_name".into(), json!(client_id));
        builder.claims.insert("sub".into(), json!(""));
        builder
    }

    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims.insert(name.into(), value);
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    pub fn signed_with(mut self, key: usize) -> Self {
        self.key = key;
        self
    }

    pub fn kid(mut self, kid: &str) -> Self {
        self.kid = Some(kid.to_string());
        self
    }

    pub fn build(self) -> String {
        self.sign("RS256", SignatureKind::Rs256)
    }

    /// The classic confusion attack: HS256 keyed with the RSA public key.
    pub fn build_hs256_with_public_key(self) -> String {
        self.sign("HS256", SignatureKind::Hs256WithPublicKey)
    }

    /// `alg: none`, no signature.
    pub fn build_unsigned(self) -> String {
        self.sign("none", SignatureKind::Unsigned)
    }

    fn sign(self, alg: &str, kind: SignatureKind) -> String {
        let keys = SigningKey::shared().unwrap();
        let key = &keys[self.key];
        let mut header = key.header();
        header.insert("alg".into(), json!(alg));
        if let Some(kid) = self.kid {
            header.insert("kid".into(), json!(kid));
        }
        key.sign(&header, &self.claims, kind).unwrap()
    }
}
