//! A local stand-in for Cloudflare Access: RSA keys, a certs document in Cloudflare's shape
//! (served on loopback or handed out in memory as a [`KeySource`]), and tokens with
//! Cloudflare's claims.
//!
//! `tunnelgate dev` uses one fresh key. Tests, the unit tests of the key cache and the
//! verification benchmark use the same issuer with its test hooks: several keys generated
//! once per process ([`SigningKey::shared`]), a choice of which ones are published
//! (rotation), a switch that makes the certs endpoint fail, a fetch counter, a simulated
//! latency, and signing of any header and claims, valid or not.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, EncodingKey};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::EncodePublicKey;
use rsa::traits::PublicKeyParts;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::access::{FetchError, KeySource, SigningKeys, parse_certs};

/// How long a dev token lives.
pub const DEV_TOKEN_TTL_SECS: u64 = 8 * 3600;

/// The key ids of [`SigningKey::shared`], in order.
pub const SHARED_KIDS: [&str; 3] = ["key-one", "key-two", "key-three"];

/// A JSON object: a token's header or its claims.
pub type JsonObject = Map<String, Value>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuerError {
    #[error("generating an RSA key failed: {0}")]
    KeyGeneration(String),
    #[error("encoding an RSA key failed: {0}")]
    KeyEncoding(String),
    #[error("signing a dev token failed: {0}")]
    Signing(String),
    #[error("the dev issuer has no key number {0}")]
    NoSuchKey(usize),
    #[error("the dev issuer publishes no key to sign with")]
    NothingPublished,
}

/// How [`SigningKey::sign`] produces the third part of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureKind {
    /// What Cloudflare does.
    Rs256,
    /// The classic algorithm-confusion forgery: HS256 keyed with the RSA public key (PEM).
    Hs256WithPublicKey,
    /// `alg: none`: an empty signature.
    Unsigned,
}

/// One RSA signing key with its public half as a JWK and as PEM.
pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    public_pem: String,
    jwk: Value,
}

impl SigningKey {
    /// A fresh 2048-bit key whose `kid` is derived from its modulus, as Cloudflare's are
    /// opaque hex strings.
    pub fn generate() -> Result<Self, IssuerError> {
        let private = new_private_key()?;
        let n = URL_SAFE_NO_PAD.encode(private.n().to_bytes_be());
        let kid = {
            use sha2::{Digest, Sha256};
            let digest = Sha256::digest(n.as_bytes());
            crate::hex::lower_hex(digest.get(..16).unwrap_or_default())
        };
        Self::from_private(kid, &private)
    }

    /// A fresh 2048-bit key with a chosen `kid` (readable names in tests and benches).
    pub fn generate_with_kid(kid: &str) -> Result<Self, IssuerError> {
        Self::from_private(kid.to_string(), &new_private_key()?)
    }

    /// Three keys ([`SHARED_KIDS`]) generated on first use and shared by every caller in
    /// the process: RSA generation takes long enough that each test making its own would
    /// dominate the suite's run time.
    pub fn shared() -> Result<Arc<[SigningKey]>, IssuerError> {
        static SHARED: OnceLock<Result<Arc<[SigningKey]>, IssuerError>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                SHARED_KIDS
                    .iter()
                    .map(|kid| SigningKey::generate_with_kid(kid))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Arc::from)
            })
            .clone()
    }

    fn from_private(kid: String, private: &rsa::RsaPrivateKey) -> Result<Self, IssuerError> {
        let encoding_failed =
            |error: &dyn std::fmt::Display| IssuerError::KeyEncoding(error.to_string());
        let public = private.to_public_key();
        let pem = private
            .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
            .map_err(|error| encoding_failed(&error))?;
        let encoding =
            EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|error| encoding_failed(&error))?;
        let public_pem = public
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .map_err(|error| encoding_failed(&error))?;
        let jwk = json!({
            "kid": kid, "kty": "RSA", "alg": "RS256", "use": "sig",
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        });
        Ok(Self {
            kid,
            encoding,
            public_pem,
            jwk,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as Cloudflare lists it under `keys`.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// The public key as PEM (`public_cert`/`public_certs` carry the same).
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// The header Cloudflare puts on a token this key signs.
    pub fn header(&self) -> JsonObject {
        object(json!({"typ": "JWT", "alg": "RS256", "kid": self.kid}))
    }

    /// `header.claims.signature`, with `header` and `claims` exactly as given: nothing is
    /// added, checked or made consistent, so tests can build every kind of bad token.
    pub fn sign(
        &self,
        header: &JsonObject,
        claims: &JsonObject,
        kind: SignatureKind,
    ) -> Result<String, IssuerError> {
        let message = format!("{}.{}", encode_part(header)?, encode_part(claims)?);
        let signature = self.signature(&message, kind)?;
        Ok(format!("{message}.{signature}"))
    }

    /// The third part of a token whose first two parts are `message` (`header.claims`, taken as given, so any
    /// bytes can be signed: parts that are not base64url or not JSON objects).
    pub fn signature(&self, message: &str, kind: SignatureKind) -> Result<String, IssuerError> {
        let signed = |key: &EncodingKey, algorithm| {
            jsonwebtoken::crypto::sign(message.as_bytes(), key, algorithm)
                .map_err(|error| IssuerError::Signing(error.to_string()))
        };
        Ok(match kind {
            SignatureKind::Rs256 => signed(&self.encoding, Algorithm::RS256)?,
            SignatureKind::Hs256WithPublicKey => signed(
                &EncodingKey::from_secret(self.public_pem.as_bytes()),
                Algorithm::HS256,
            )?,
            SignatureKind::Unsigned => String::new(),
        })
    }
}

fn new_private_key() -> Result<rsa::RsaPrivateKey, IssuerError> {
    let mut rng = rsa::rand_core::OsRng;
    rsa::RsaPrivateKey::new(&mut rng, 2048)
        .map_err(|error| IssuerError::KeyGeneration(error.to_string()))
}

fn encode_part(part: &JsonObject) -> Result<String, IssuerError> {
    let bytes =
        serde_json::to_vec(part).map_err(|error| IssuerError::Signing(error.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The map inside a `json!({...})` literal; anything else (never produced here) is empty.
fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

pub struct DevIssuer {
    keys: Arc<[SigningKey]>,
    /// Indexes into `keys` that the certs document lists, in order.
    published: Mutex<Vec<usize>>,
    failing: AtomicBool,
    fetches: AtomicUsize,
    latency_ms: AtomicU64,
    issuer: String,
    audience: String,
}

impl DevIssuer {
    /// One fresh key, published, for `team` (issuer `https://<team>.cloudflareaccess.com`)
    /// and `audience`: what `tunnelgate dev` runs.
    pub fn generate(team: &str, audience: &str) -> Result<Self, IssuerError> {
        let keys: Arc<[SigningKey]> = Arc::from(vec![SigningKey::generate()?]);
        Ok(Self::with_keys(team, audience, keys, &[0]))
    }

    /// An issuer over the process-wide [`SigningKey::shared`] keys, publishing the keys at
    /// `published` (indexes into [`SHARED_KIDS`]).
    pub fn with_shared_keys(
        team: &str,
        audience: &str,
        published: &[usize],
    ) -> Result<Self, IssuerError> {
        Ok(Self::with_keys(
            team,
            audience,
            SigningKey::shared()?,
            published,
        ))
    }

    /// An issuer over `keys`, publishing those at `published`.
    pub fn with_keys(
        team: &str,
        audience: &str,
        keys: Arc<[SigningKey]>,
        published: &[usize],
    ) -> Self {
        Self {
            keys,
            published: Mutex::new(published.to_vec()),
            failing: AtomicBool::new(false),
            fetches: AtomicUsize::new(0),
            latency_ms: AtomicU64::new(0),
            issuer: format!("https://{team}.cloudflareaccess.com"),
            audience: audience.to_string(),
        }
    }

    /// The `iss` of this issuer's tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience tokens get unless told otherwise.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Key number `index`, published or not.
    pub fn key(&self, index: usize) -> Result<&SigningKey, IssuerError> {
        self.keys.get(index).ok_or(IssuerError::NoSuchKey(index))
    }

    /// Lists exactly the keys at `published` from now on (a rotation when it changes);
    /// indexes without a key are left out.
    pub fn publish(&self, published: &[usize]) {
        *self.published() = published.to_vec();
    }

    /// While set, every certs request fails: HTTP 503 over the network, the same status
    /// as a [`FetchError`] in memory.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Delays every certs answer, so concurrent fetches overlap as they do against the
    /// real endpoint.
    pub fn set_latency(&self, latency: Duration) {
        let millis = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.latency_ms.store(millis, Ordering::SeqCst);
    }

    /// Certs requests answered so far (failed ones included), over HTTP and in memory.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn published(&self) -> MutexGuard<'_, Vec<usize>> {
        // A panic elsewhere while holding the lock leaves a plain Vec behind; still usable.
        self.published
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn published_keys(&self) -> Vec<&SigningKey> {
        self.published()
            .iter()
            .filter_map(|&index| self.keys.get(index))
            .collect()
    }

    /// The body of `/cdn-cgi/access/certs`, shaped as Cloudflare serves it.
    pub fn certs_document(&self) -> Value {
        let published = self.published_keys();
        let jwks: Vec<&Value> = published.iter().map(|key| key.jwk()).collect();
        let certs: Vec<Value> = published
            .iter()
            .map(|key| json!({"kid": key.kid(), "cert": key.public_pem()}))
            .collect();
        json!({
            "keys": jwks,
            "public_cert": certs.first().cloned().unwrap_or(Value::Null),
            "public_certs": certs,
        })
    }

    /// One certs request, as both the HTTP route and the in-memory source see it: counted,
    /// delayed by the latency, refused while failing.
    async fn answer_certs_request(&self) -> Result<Value, FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let latency = Duration::from_millis(self.latency_ms.load(Ordering::SeqCst));
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(FetchError::Status(503));
        }
        Ok(self.certs_document())
    }

    /// Cloudflare's claims for a user token for `email`, for `audience` (or the issuer's
    /// own), valid for [`DEV_TOKEN_TTL_SECS`].
    pub fn user_claims(&self, email: &str, audience: Option<&str>) -> JsonObject {
        let now = unix_now();
        object(json!({
            "aud": [audience.unwrap_or(&self.audience)],
            "email": email,
            "exp": now + DEV_TOKEN_TTL_SECS,
            "iat": now,
            "nbf": now,
            "iss": self.issuer,
            "type": "app",
            "identity_nonce": format!("dev-nonce-{}", email),
            "sub": format!("dev-{}", email.replace('@', "-at-")),
            "country": "XX",
        }))
    }

    /// Cloudflare's claims for a service-token token for `client_id`.
    pub fn service_claims(&self, client_id: &str, audience: Option<&str>) -> JsonObject {
        let now = unix_now();
        object(json!({
            "aud": [audience.unwrap_or(&self.audience)],
            "common_name": client_id,
            "exp": now + DEV_TOKEN_TTL_SECS,
            "iat": now,
            "nbf": now,
            "iss": self.issuer,
            "type": "app",
            "sub": "",
        }))
    }

    /// `claims` signed RS256 by the first published key, under that key's header.
    pub fn token(&self, claims: &JsonObject) -> Result<String, IssuerError> {
        let published = self.published_keys();
        let key = published.first().ok_or(IssuerError::NothingPublished)?;
        key.sign(&key.header(), claims, SignatureKind::Rs256)
    }

    /// `header` and `claims` as given, signed by key number `index` as `kind` says.
    pub fn sign(
        &self,
        index: usize,
        header: &JsonObject,
        claims: &JsonObject,
        kind: SignatureKind,
    ) -> Result<String, IssuerError> {
        self.key(index)?.sign(header, claims, kind)
    }

    /// A user token for `email`, for `audience` (or the issuer's own).
    pub fn user_token(&self, email: &str, audience: Option<&str>) -> Result<String, IssuerError> {
        self.token(&self.user_claims(email, audience))
    }

    /// A service-token token for `client_id`.
    pub fn service_token(
        &self,
        client_id: &str,
        audience: Option<&str>,
    ) -> Result<String, IssuerError> {
        self.token(&self.service_claims(client_id, audience))
    }

    /// Serves `/cdn-cgi/access/certs` and `/dev/token` on `listener` (loopback).
    pub fn serve(
        self: Arc<Self>,
        listener: TcpListener,
    ) -> std::io::Result<actix_web::dev::Server> {
        let issuer = web::Data::from(self);
        Ok(HttpServer::new(move || {
            App::new()
                .app_data(issuer.clone())
                .route("/cdn-cgi/access/certs", web::get().to(certs))
                .route("/dev/token", web::get().to(mint))
        })
        .workers(1)
        // The process stops when the server does (run_until_stopped handles the signals).
        .disable_signals()
        .listen(listener)?
        .run())
    }
}

/// The published keys without a network: the same document the HTTP route serves, run
/// through the same parser the production fetcher uses.
impl KeySource for DevIssuer {
    fn fetch(&self) -> BoxFuture<'_, Result<SigningKeys, FetchError>> {
        Box::pin(async move {
            let document = self.answer_certs_request().await?;
            let body = serde_json::to_vec(&document)
                .map_err(|error| FetchError::Json(error.to_string()))?;
            parse_certs(&body)
        })
    }

    fn describe(&self) -> String {
        format!("in-memory certs of the dev issuer {}", self.issuer)
    }
}

async fn certs(issuer: web::Data<DevIssuer>) -> HttpResponse {
    match issuer.answer_certs_request().await {
        Ok(document) => HttpResponse::Ok().json(document),
        Err(_) => HttpResponse::ServiceUnavailable().body("certs are down"),
    }
}

#[derive(Deserialize)]
struct MintQuery {
    email: Option<String>,
    service: Option<String>,
    aud: Option<String>,
}

/// `GET /dev/token?email=…|service=…&aud=…` mints a token; `aud` lets scripts obtain one
/// for another audience to see it refused.
async fn mint(issuer: web::Data<DevIssuer>, query: web::Query<MintQuery>) -> HttpResponse {
    let audience = query.aud.as_deref();
    let token = match &query.service {
        Some(client_id) => issuer.service_token(client_id, audience),
        None => issuer.user_token(query.email.as_deref().unwrap_or("dev@localhost"), audience),
    };
    match token {
        Ok(token) => HttpResponse::Ok().content_type("text/plain").body(token),
        Err(error) => HttpResponse::InternalServerError().body(error.to_string()),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}
