//! A local stand-in for Cloudflare Access: fresh RSA keys, a certs document in
//! Cloudflare's shape, and tokens with Cloudflare's claims. Loopback only.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::EncodePublicKey;
use rsa::traits::PublicKeyParts;
use serde::Deserialize;
use serde_json::{Value, json};

/// How long a dev token lives.
pub const DEV_TOKEN_TTL_SECS: u64 = 8 * 3600;

pub struct DevIssuer {
    signing_key: EncodingKey,
    kid: String,
    jwk: Value,
    public_pem: String,
    issuer: String,
    audience: String,
}

impl DevIssuer {
    /// Generates a fresh 2048-bit key pair for `team` (issuer
    /// `https://<team>.cloudflareaccess.com`) and `audience`.
    pub fn generate(team: &str, audience: &str) -> anyhow::Result<Self> {
        let mut rng = rsa::rand_core::OsRng;
        let private = rsa::RsaPrivateKey::new(&mut rng, 2048).context("generating an RSA key")?;
        let public = private.to_public_key();
        let pem = private
            .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
            .context("encoding the RSA key")?;
        let signing_key =
            EncodingKey::from_rsa_pem(pem.as_bytes()).context("loading the RSA key")?;
        let n = URL_SAFE_NO_PAD.encode(public.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(public.e().to_bytes_be());
        let kid = {
            use sha2::{Digest, Sha256};
            let digest = Sha256::digest(n.as_bytes());
            crate::hex::lower_hex(digest.get(..16).unwrap_or_default())
        };
        let public_pem = public
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .context("encoding the public key")?;
        let jwk = json!({"kid": kid, "kty": "RSA", "alg": "RS256", "use": "sig", "e": e, "n": n});
        Ok(Self {
            signing_key,
            kid,
            jwk,
            public_pem,
            issuer: format!("https://{team}.cloudflareaccess.com"),
            audience: audience.to_string(),
        })
    }

    /// The body of `/cdn-cgi/access/certs`, shaped as Cloudflare serves it.
    pub fn certs_document(&self) -> Value {
        let cert = json!({"kid": self.kid, "cert": self.public_pem});
        json!({"keys": [self.jwk], "public_cert": cert, "public_certs": [cert]})
    }

    /// A user token for `email`, with Cloudflare's claims, for `audience` (or the
    /// issuer's own).
    pub fn user_token(&self, email: &str, audience: Option<&str>) -> anyhow::Result<String> {
        let now = unix_now();
        let claims = json!({
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
        });
        self.sign(&claims)
    }

    /// A service-token token for `client_id`.
    pub fn service_token(&self, client_id: &str, audience: Option<&str>) -> anyhow::Result<String> {
        let now = unix_now();
        let claims = json!({
            "aud": [audience.unwrap_or(&self.audience)],
            "common_name": client_id,
            "exp": now + DEV_TOKEN_TTL_SECS,
            "iat": now,
            "nbf": now,
            "iss": self.issuer,
            "type": "app",
            "sub": "",
        });
        self.sign(&claims)
    }

    fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing_key).context("signing a dev token")
    }

    /// Serves `/cdn-cgi/access/certs` and `/dev/token` on `listener` (loopback).
    pub fn serve(self: Arc<Self>, listener: TcpListener) -> anyhow::Result<actix_web::dev::Server> {
        let issuer = web::Data::from(self);
        Ok(HttpServer::new(move || {
            App::new()
                .app_data(issuer.clone())
                .route("/cdn-cgi/access/certs", web::get().to(certs))
                .route("/dev/token", web::get().to(mint))
        })
        .workers(1)
        .listen(listener)?
        .run())
    }
}

async fn certs(issuer: web::Data<DevIssuer>) -> HttpResponse {
    HttpResponse::Ok().json(issuer.certs_document())
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
