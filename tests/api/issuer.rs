//! A local Cloudflare Access issuer for tests: RSA keys, a certs endpoint in Cloudflare's
//! shape on a loopback port (that can be made to fail and counts its fetches), and token
//! minting with every claim and header field under the test's control.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::EncodePublicKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

pub const TEAM: &str = "testteam";
pub const ISSUER: &str = "https://testteam.cloudflareaccess.com";
pub const AUDIENCE: &str = "test-aud-0123456789abcdef";

/// One RSA signing key, with its public parts as a JWK.
pub struct TestKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub public_pem: String,
    pub jwk: Value,
}

fn generate_key(kid: &str) -> TestKey {
    let mut rng = rsa::rand_core::OsRng;
    let private = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let public = private.to_public_key();
    let pem = private.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    TestKey {
        kid: kid.to_string(),
        encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        public_pem: public
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap(),
        jwk: json!({
            "kid": kid, "kty": "RSA", "alg": "RS256", "use": "sig",
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        }),
    }
}

/// Key generation is slow; every test in the binary shares the same three keys.
pub fn keys() -> &'static [TestKey; 3] {
    static KEYS: OnceLock<[TestKey; 3]> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            generate_key("key-one"),
            generate_key("key-two"),
            generate_key("key-three"),
        ]
    })
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct IssuerState {
    published: Mutex<Vec<usize>>,
    failing: AtomicBool,
    fetches: AtomicUsize,
}

pub struct TestIssuer {
    state: Arc<IssuerState>,
    pub certs_url: String,
}

impl TestIssuer {
    /// Starts serving certs with the given key indexes published.
    pub fn start(published: &[usize]) -> Self {
        let state = Arc::new(IssuerState {
            published: Mutex::new(published.to_vec()),
            failing: AtomicBool::new(false),
            fetches: AtomicUsize::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let certs_url = format!(
            "http://{}/cdn-cgi/access/certs",
            listener.local_addr().unwrap()
        );
        let data = web::Data::from(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/cdn-cgi/access/certs", web::get().to(certs))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(server);
        Self { state, certs_url }
    }

    pub fn publish(&self, published: &[usize]) {
        *self.state.published.lock().unwrap() = published.to_vec();
    }

    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }
}

async fn certs(state: web::Data<IssuerState>) -> HttpResponse {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    if state.failing.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().body("certs are down");
    }
    let published = state.published.lock().unwrap().clone();
    let all = keys();
    let jwks: Vec<Value> = published.iter().map(|&i| all[i].jwk.clone()).collect();
    let certs: Vec<Value> = published
        .iter()
        .map(|&i| json!({"kid": all[i].kid, "cert": all[i].public_pem}))
        .collect();
    HttpResponse::Ok().json(json!({
        "keys": jwks,
        "public_cert": certs.first().cloned().unwrap_or(Value::Null),
        "public_certs": certs,
    }))
}

/// A token under construction: Cloudflare's user-token claims by default, all editable.
pub struct TokenBuilder {
    pub claims: serde_json::Map<String, Value>,
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
        let key = &keys()[self.key];
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.unwrap_or_else(|| key.kid.clone()));
        jsonwebtoken::encode(&header, &Value::Object(self.claims), &key.encoding).unwrap()
    }

    /// The classic confusion attack: HS256 keyed with the RSA public key.
    pub fn build_hs256_with_public_key(self) -> String {
        let key = &keys()[self.key];
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        let secret = EncodingKey::from_secret(key.public_pem.as_bytes());
        jsonwebtoken::encode(&header, &Value::Object(self.claims), &secret).unwrap()
    }

    /// `alg: none`, no signature.
    pub fn build_unsigned(self) -> String {
        let key = &keys()[self.key];
        let header = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&json!({"alg": "none", "typ": "JWT", "kid": key.kid})).unwrap(),
        );
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&Value::Object(self.claims)).unwrap());
        format!("{header}.{payload}.")
    }
}
