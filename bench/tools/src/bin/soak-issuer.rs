//! The soak's stand-in for Cloudflare Access: RSA signing keys that rotate, the certs
//! document in Cloudflare's shape, and application tokens for N identities.
//!
//!   soak-issuer --listen 127.0.0.1:18192 --team soak --audience soak-aud \
//!       [--identities 20] [--rotate-every 120] [--withdraw-after 60] [--lifetime 900]
//!
//! Rotation, as Cloudflare does it: a new key is published and signs every new token at
//! once, the previous key stays published (here for `--withdraw-after` seconds), then it is
//! withdrawn. So tunnelgate first meets the new key as an unknown `kid` (and refetches), and
//! later sees the old one disappear at a periodic refresh.
//!
//! Routes:
//!   GET /cdn-cgi/access/certs   {"keys": [JWK...], "public_cert": {...}, "public_certs": [...]}
//!   GET /__tokens               {"generation", "kid", "tokens": [one per identity]} (the driver polls it)
//!   GET /__stats                certs fetches, rotations, withdrawals, with times
//!
//! It binds only the address it is given and exits after `--lifetime` seconds.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hyper::body::Incoming;
use hyper::{Request, Response};
use rsa::pkcs1v15::SigningKey as Pkcs1SigningKey;
use rsa::pkcs8::EncodePublicKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tunnelgate_bench_tools::{identity_email, json_response, serve, Body, Flags};

struct Key {
    kid: String,
    signer: Pkcs1SigningKey<Sha256>,
    jwk: Value,
    pem: String,
}

impl Key {
    fn generate() -> Key {
        let mut rng = rsa::rand_core::OsRng;
        let private = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA key generation");
        let public = private.to_public_key();
        let n = URL_SAFE_NO_PAD.encode(public.n().to_bytes_be());
        let digest = Sha256::digest(n.as_bytes());
        let kid: String = digest[..16]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let jwk = json!({
            "kid": kid, "kty": "RSA", "alg": "RS256", "use": "sig",
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()), "n": n,
        });
        let pem = public
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .expect("PEM encoding");
        Key {
            kid,
            signer: Pkcs1SigningKey::<Sha256>::new(private),
            jwk,
            pem,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"});
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.signer.sign(message.as_bytes()).to_bytes();
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

struct Issuer {
    issuer: String,
    audience: String,
    identities: usize,
    started: Instant,
    state: Mutex<State>,
}

struct State {
    /// Published keys, newest first; the first one signs.
    published: Vec<Arc<Key>>,
    generation: u64,
    tokens: Vec<String>,
    fetches: u64,
    events: Vec<Value>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl Issuer {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Tokens for every identity, signed by `key`, valid for an hour.
    fn mint(&self, key: &Key) -> Vec<String> {
        let now = unix_now();
        (0..self.identities)
            .map(|index| {
                key.sign(&json!({
                    "aud": [self.audience],
                    "email": identity_email(index),
                    "exp": now + 3600,
                    "iat": now,
                    "nbf": now,
                    "iss": self.issuer,
                    "type": "app",
                    "identity_nonce": format!("soak-nonce-{index:02}"),
                    "sub": format!("00000000-0000-4000-8000-{index:012}"),
                    "country": "XX",
                }))
            })
            .collect()
    }

    /// Publishes `key` in front of the current ones and signs with it from now on.
    fn rotate_to(&self, key: Arc<Key>) {
        let tokens = self.mint(&key);
        let mut state = self.lock();
        state.published.insert(0, Arc::clone(&key));
        state.generation += 1;
        state.tokens = tokens;
        let published: Vec<&str> = state.published.iter().map(|k| k.kid.as_str()).collect();
        let event = json!({"t": self.elapsed(), "event": "rotated", "generation": state.generation,
                           "kid": key.kid, "published": published});
        eprintln!("soak-issuer: {event}");
        state.events.push(event);
    }

    /// Stops publishing every key but the newest.
    fn withdraw_old(&self) {
        let mut state = self.lock();
        let withdrawn: Vec<String> = state.published.drain(1..).map(|k| k.kid.clone()).collect();
        if withdrawn.is_empty() {
            return;
        }
        let event = json!({"t": self.elapsed(), "event": "withdrawn", "kids": withdrawn});
        eprintln!("soak-issuer: {event}");
        state.events.push(event);
    }

    fn certs(&self) -> Value {
        let mut state = self.lock();
        state.fetches += 1;
        let keys: Vec<&Value> = state.published.iter().map(|key| &key.jwk).collect();
        let certs: Vec<Value> = state
            .published
            .iter()
            .map(|key| json!({"kid": key.kid, "cert": key.pem}))
            .collect();
        json!({"keys": keys, "public_cert": certs.first(), "public_certs": certs})
    }
}

async fn handle(request: Request<Incoming>, issuer: Arc<Issuer>) -> Response<Body> {
    match request.uri().path() {
        "/cdn-cgi/access/certs" => json_response(200, &issuer.certs()),
        "/__tokens" => {
            let state = issuer.lock();
            json_response(
                200,
                &json!({
                    "generation": state.generation,
                    "kid": state.published.first().map(|key| key.kid.clone()),
                    "tokens": state.tokens,
                }),
            )
        }
        "/__stats" => {
            let state = issuer.lock();
            let published: Vec<&str> = state.published.iter().map(|k| k.kid.as_str()).collect();
            json_response(
                200,
                &json!({
                    "certs_fetches": state.fetches,
                    "generation": state.generation,
                    "published": published,
                    "events": state.events,
                }),
            )
        }
        _ => json_response(404, &json!({"detail": "Not Found"})),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let flags = Flags::parse(std::env::args().skip(1));
    let listen: SocketAddr = flags
        .required("listen")
        .parse()
        .expect("--listen HOST:PORT");
    let lifetime = Duration::from_secs(flags.number("lifetime", 900));
    let rotate_every = Duration::from_secs_f64(flags.number("rotate-every", 120.0));
    let withdraw_after = Duration::from_secs_f64(flags.number("withdraw-after", 60.0));
    assert!(
        withdraw_after < rotate_every,
        "--withdraw-after must be shorter than --rotate-every"
    );
    let issuer = Arc::new(Issuer {
        issuer: format!("https://{}.cloudflareaccess.com", flags.required("team")),
        audience: flags.required("audience").to_string(),
        identities: flags.number("identities", 20),
        started: Instant::now(),
        state: Mutex::new(State {
            published: Vec::new(),
            generation: 0,
            tokens: Vec::new(),
            fetches: 0,
            events: Vec::new(),
        }),
    });
    let first = tokio::task::spawn_blocking(Key::generate)
        .await
        .expect("key generation");
    issuer.rotate_to(Arc::new(first));

    let rotator = Arc::clone(&issuer);
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        for round in 1u32.. {
            // The next key is ready before its time comes: generation takes a while.
            let Ok(next) = tokio::task::spawn_blocking(Key::generate).await else {
                return; // the runtime is shutting down
            };
            tokio::time::sleep_until(start + rotate_every * round).await;
            rotator.rotate_to(Arc::new(next));
            let withdrawer = Arc::clone(&rotator);
            tokio::spawn(async move {
                tokio::time::sleep(withdraw_after).await;
                withdrawer.withdraw_old();
            });
        }
    });

    serve(listen, lifetime, "soak-issuer", move |request| {
        handle(request, Arc::clone(&issuer))
    })
    .await;
}
