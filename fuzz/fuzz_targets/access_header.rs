//! The `Cf-Access-Jwt-Assertion` value → verification, with a fixed key set: the library's `AccessVerifier` over
//! a `KeyCache` fed in memory by the dev issuer, which publishes one key (`key-one`, the fixed key) and holds two
//! it does not publish.
//!
//! Properties: no panic; a token is accepted only if its signature verifies, checked independently here (RSA
//! PKCS#1 v1.5 with SHA-256 from the `rsa` crate, not jsonwebtoken), under the fixed key; and an accepted token
//! says what Access tokens must (RS256, `kid` of the fixed key, `type: app`, our audience, not expired, not before
//! its `nbf`, someone named).
//!
//! Input: UTF-8 text (lossy). A first line starting with `R` makes the rest of the input the token as is
//! (garbage, truncated, oversized). Otherwise the lines are
//!
//! ```text
//! <signature kind><mutation>
//! <header JSON>                 base64url-encoded as given; `!` + text: the part as is
//! <claims JSON>                 the same; every `NOW` becomes the current Unix time (`NOW9`: far ahead)
//! <extra>                       the raw signature for `x`, the other signed message for `t`
//! ```
//!
//! Signature kinds: `k` RS256 by the fixed key, `u` RS256 by an unpublished key, `h` HS256 keyed with the fixed
//! key's public PEM (algorithm confusion), `n` none (empty), `x` the extra line, `t` RS256 by the fixed key over
//! the extra line (a transplanted signature). Mutations: `-` none, `c` last byte cut, `e` a fourth part, `p`
//! `=` padding, `o` oversized, `w` surrounding whitespace, `d` doubled signature.

#![no_main]

use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use sha2::Sha256;
use tunnelgate::{
    AccessVerifier, DevIssuer, KeyCache, KeySource, Metrics, SHARED_KIDS, SignatureKind,
};

const AUDIENCE: &str = "fuzz-audience";
const LEEWAY_SECS: u64 = 60;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    issuer: Arc<DevIssuer>,
    verifier: AccessVerifier,
    fixed_key: VerifyingKey<Sha256>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    // Keys 0, 1 and 2 exist; only key 0 (`key-one`) is published.
    let issuer =
        Arc::new(DevIssuer::with_shared_keys("fuzzteam", AUDIENCE, &[0]).expect("the shared keys"));
    let keys = Arc::new(KeyCache::new(
        Arc::clone(&issuer) as Arc<dyn KeySource>,
        // An unknown `kid` refetches at most once an hour: the published set never changes here.
        Duration::from_secs(3600),
        Arc::new(Metrics::new()),
    ));
    runtime
        .block_on(keys.refresh())
        .expect("the issuer's keys load");
    let verifier = AccessVerifier::new(
        keys,
        issuer.issuer(),
        vec![AUDIENCE.to_owned()],
        Duration::from_secs(LEEWAY_SECS),
        1_000,
    )
    .with_groups_claim(Some("custom.groups"));
    let public_pem = issuer.key(0).expect("key 0").public_pem().to_owned();
    let fixed_key = VerifyingKey::<Sha256>::new(
        rsa::RsaPublicKey::from_public_key_pem(&public_pem).expect("the fixed key's PEM"),
    );
    Fixture {
        runtime,
        issuer,
        verifier,
        fixed_key,
    }
});

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn part(line: &str) -> String {
    match line.strip_prefix('!') {
        Some(raw) => raw.to_owned(),
        None => URL_SAFE_NO_PAD.encode(line.as_bytes()),
    }
}

/// The token an input describes.
fn token_from(text: &str) -> String {
    let (recipe, rest) = text.split_once('\n').unwrap_or((text, ""));
    if recipe.starts_with('R') {
        return rest.to_owned();
    }
    let mut lines = rest.splitn(3, '\n');
    let header = lines.next().unwrap_or_default();
    let claims = lines
        .next()
        .unwrap_or_default()
        .replace("NOW", &unix_now().to_string());
    let extra = lines.next().unwrap_or_default();
    let message = format!("{}.{}", part(header), part(&claims));

    let mut recipe = recipe.chars();
    let fixture = &*FIXTURE;
    let sign = |index: usize, message: &str, kind: SignatureKind| {
        fixture
            .issuer
            .key(index)
            .and_then(|key| key.signature(message, kind))
            .expect("signing")
    };
    let signature = match recipe.next().unwrap_or('k') {
        'u' => sign(1, &message, SignatureKind::Rs256),
        'h' => sign(0, &message, SignatureKind::Hs256WithPublicKey),
        'n' => String::new(),
        'x' => extra.to_owned(),
        't' => sign(0, extra, SignatureKind::Rs256),
        _ => sign(0, &message, SignatureKind::Rs256),
    };
    let token = format!("{message}.{signature}");
    match recipe.next().unwrap_or('-') {
        'c' => {
            let mut token = token;
            token.pop();
            token
        }
        'e' => format!("{token}.{}", part(extra)),
        'p' => format!("{token}=="),
        'o' => format!("{token}{}", "A".repeat(16 * 1024)),
        'w' => format!(" {token}\t"),
        'd' => format!("{token}{signature}"),
        _ => token,
    }
}

/// The independent check: `header.claims` signed RS256 by the fixed key, signature in unpadded base64url.
fn signed_by_fixed_key(token: &str) -> bool {
    let Some((message, signature)) = token.rsplit_once('.') else {
        return false;
    };
    let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    let Ok(signature) = Signature::try_from(signature.as_slice()) else {
        return false;
    };
    FIXTURE
        .fixed_key
        .verify(message.as_bytes(), &signature)
        .is_ok()
}

/// True when a JSON object has a member name twice (parsers disagree on which one wins).
fn has_duplicate_keys(bytes: &[u8]) -> bool {
    struct Check(bool);
    impl<'de> Deserialize<'de> for Check {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Keys;
            impl<'de> Visitor<'de> for Keys {
                type Value = Check;
                fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                    formatter.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Check, A::Error> {
                    let mut seen = std::collections::HashSet::new();
                    let mut duplicate = false;
                    while let Some(key) = map.next_key::<String>()? {
                        duplicate |= !seen.insert(key);
                        map.next_value::<IgnoredAny>()?;
                    }
                    Ok(Check(duplicate))
                }
            }
            deserializer.deserialize_map(Keys)
        }
    }
    serde_json::from_slice::<Check>(bytes).map_or(true, |check| check.0)
}

fn decoded_object(part: &str) -> Option<(Vec<u8>, serde_json::Map<String, Value>)> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    let object = serde_json::from_slice(&bytes).ok()?;
    Some((bytes, object))
}

fn non_empty_string(value: Option<&Value>) -> bool {
    value
        .and_then(Value::as_str)
        .is_some_and(|text| !text.is_empty())
}

/// What an accepted token must say, checked on its decoded parts.
fn check_accepted(token: &str, before: u64, after: u64) {
    assert!(
        signed_by_fixed_key(token),
        "accepted a token the fixed key did not sign: {token:?}"
    );
    let mut parts = token.split('.');
    let (Some(header), Some(claims)) = (parts.next(), parts.next()) else {
        panic!("accepted a token without header and claims: {token:?}");
    };
    let (_, header) = decoded_object(header).expect("an accepted token's header is a JSON object");
    assert_eq!(header.get("alg"), Some(&Value::from("RS256")), "{token:?}");
    assert_eq!(
        header.get("kid"),
        Some(&Value::from(SHARED_KIDS[0])),
        "{token:?}"
    );
    let (claims_bytes, claims) =
        decoded_object(claims).expect("an accepted token's claims are a JSON object");
    if has_duplicate_keys(&claims_bytes) {
        // Which duplicate counts is the JSON parser's choice; the signature is what matters then.
        return;
    }
    assert_eq!(claims.get("type"), Some(&Value::from("app")), "{token:?}");
    let audience_matches = match claims.get("aud") {
        Some(Value::String(one)) => one == AUDIENCE,
        Some(Value::Array(many)) => many.iter().any(|aud| aud == AUDIENCE),
        _ => false,
    };
    assert!(audience_matches, "accepted another audience: {token:?}");
    let exp = claims
        .get("exp")
        .and_then(Value::as_u64)
        .expect("an integer exp");
    assert!(
        exp.saturating_add(LEEWAY_SECS) >= before,
        "accepted an expired token: {token:?}"
    );
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_f64) {
        assert!(
            nbf.round() <= (after + LEEWAY_SECS) as f64,
            "accepted a token before its nbf: {token:?}"
        );
    }
    if let Some(Value::String(iss)) = claims.get("iss") {
        assert_eq!(iss, FIXTURE.issuer.issuer(), "{token:?}");
    }
    assert!(
        non_empty_string(claims.get("email")) || non_empty_string(claims.get("common_name")),
        "accepted a token naming nobody: {token:?}"
    );
}

fuzz_target!(
    // Key generation takes seconds: before the first input, so it never counts as a timeout.
    init: {
        LazyLock::force(&FIXTURE);
    },
    |data: &[u8]| run(data)
);

fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let token = token_from(&text);
    let fixture = &*FIXTURE;
    let before = unix_now();
    let verified = fixture.runtime.block_on(fixture.verifier.verify(&token));
    let after = unix_now();
    if verified.is_ok() {
        check_accepted(&token, before, after);
        // The token cache must give the same answer the second time.
        let again = fixture.runtime.block_on(fixture.verifier.verify(&token));
        assert!(again.is_ok(), "accepted once, then refused: {token:?}");
    }
}
