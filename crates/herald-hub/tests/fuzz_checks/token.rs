//! Fuzz checks for access tokens.
//!
//! An input whose first byte is below `0x80` is raw: the rest is a token as a client could
//! send it. No such token may verify (none carries a signature made with the hub's secret),
//! and finding a token in the `Authorization` header, a cookie or the legacy query parameter
//! never panics and only ever yields a non-empty token taken from the request.
//!
//! An input from `0x80` is structured: it picks a JOSE header (algorithm, `typ`, `crit`) and
//! claims (`exp`, `nbf`, `iss`, `aud`, `sub`, `authorization_details`, the legacy `mercure`
//! claim) from lists of valid and invalid values, and a signature (right, missing, corrupted,
//! made with another secret). A model written from the rules of
//! [`TokenVerifier::verify_at`] says whether the token must verify, for a draft-08 verifier and
//! for a legacy one, and, when it must, which dialect, expiry, subject and grants it has. The
//! verifier must agree exactly: a token that verifies satisfies every claims rule, and a token
//! that satisfies every rule verifies.

use herald_hub::auth::{
    LEGACY_COOKIE_NAME, MAX_TOKEN_LEN, MERCURE_DETAIL_TYPE, NBF_LEEWAY_SECS, TokenDialect,
    TokenVerifier, VerifierConfig, bearer_token,
};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use super::Choices;

const HUB: &str = "https://hub.example/.well-known/mercure";
const SECRET: &[u8] = b"fuzz-secret-shared-with-the-publisher";
const ISSUER: &str = "https://issuer.example";
/// A fixed "now", so the checks do not depend on the clock.
const NOW: u64 = 1_767_225_300;
/// Topics the grants are probed with.
const PROBES: [&str; 4] = [
    "https://example.com/a",
    "https://example.com/b",
    "https://hub.example/a",
    "https://other.example/a",
];

fn verifier(legacy: bool) -> TokenVerifier {
    TokenVerifier::new(VerifierConfig {
        hmac_secret: Some(SECRET.to_vec()),
        public_key_pem: None,
        issuer: Some(ISSUER.to_owned()),
        audience: HUB.to_owned(),
        legacy,
        hub_url: HUB.parse().expect("valid URL"),
    })
    .expect("valid verifier configuration")
}

/// Checks one input; returns how many of the two verifiers (draft-08, legacy) accepted it.
pub(crate) fn check(input: &[u8]) -> usize {
    match input.split_first() {
        Some((&mode, rest)) if mode >= 0x80 => check_structured(&mut Choices::new(rest)),
        Some((_, rest)) => {
            check_raw(rest);
            0
        }
        None => {
            check_raw(b"");
            0
        }
    }
}

fn check_raw(bytes: &[u8]) {
    let token = String::from_utf8_lossy(bytes);
    for legacy in [false, true] {
        if let Ok(claims) = verifier(legacy).verify_at(&token, NOW) {
            panic!("a token not signed with the secret verified: {claims:?}");
        }
    }
    // Presentation: the header, a cookie, the legacy query parameter.
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_bytes(bytes) {
        headers.insert(http::header::AUTHORIZATION, value.clone());
        if let Ok(Some(found)) = bearer_token(&headers, None, "token", false) {
            assert!(!found.is_empty());
            let text = value
                .to_str()
                .expect("a found token comes from visible ASCII");
            assert!(text.ends_with(&found), "{found:?} is not from {text:?}");
            assert!(
                found
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
            );
        }
        headers.clear();
        let mut cookie = b"a=b; ".to_vec();
        cookie.extend_from_slice(LEGACY_COOKIE_NAME.as_bytes());
        cookie.push(b'=');
        cookie.extend_from_slice(bytes);
        // Without `;`, the bytes stay one cookie's value.
        if !bytes.contains(&b';')
            && let Ok(value) = http::HeaderValue::from_bytes(&cookie)
        {
            headers.insert(http::header::COOKIE, value);
            for legacy in [false, true] {
                match bearer_token(&headers, None, "token", legacy) {
                    Ok(Some(found)) => {
                        assert!(legacy, "the legacy cookie is read in legacy mode only");
                        assert!(!found.is_empty());
                        assert!(String::from_utf8_lossy(&cookie).contains(&found));
                    }
                    Ok(None) => {}
                    Err(error) => panic!("a cookie is never an error: {error}"),
                }
            }
        }
    }
    let query = String::from_utf8_lossy(bytes);
    let empty = http::HeaderMap::new();
    if let Ok(Some(found)) = bearer_token(&empty, Some(&query), "token", true) {
        assert!(!found.is_empty());
    }
    assert_eq!(bearer_token(&empty, Some(&query), "token", false), Ok(None));
}

/// What the model expects of a verified token.
#[derive(Debug, PartialEq)]
struct Expected {
    dialect: TokenDialect,
    expires_at: u64,
    subject: Option<String>,
    issuer: Option<String>,
    publish: Vec<bool>,
    subscribe: Vec<bool>,
    anything: bool,
}

/// A grant in the model: actions on matchers.
struct ModelGrant {
    publish: bool,
    subscribe: bool,
    matchers: Vec<ModelMatcher>,
}

/// The matchers the generator uses, with what they match among [`PROBES`].
#[derive(Clone, Copy)]
enum ModelMatcher {
    ExactA,
    Wildcard,
    PatternAnyPath,
    RelativePatternA,
    TemplateAnyPath,
}

impl ModelMatcher {
    fn matches(self, probe: &str) -> bool {
        match self {
            ModelMatcher::ExactA => probe == PROBES[0],
            ModelMatcher::Wildcard => true,
            ModelMatcher::PatternAnyPath | ModelMatcher::TemplateAnyPath => {
                probe == PROBES[0] || probe == PROBES[1]
            }
            ModelMatcher::RelativePatternA => probe == PROBES[2],
        }
    }
}

fn check_structured(choices: &mut Choices<'_>) -> usize {
    let mut model_ok = true;
    let mut fail = || model_ok = false;

    // Header.
    let mut header = serde_json::Map::new();
    let alg = choices.pick(&[
        Some("HS256"),
        Some("HS384"),
        Some("HS512"),
        Some("none"),
        Some("RS256"),
        Some("ES256"),
        Some("EdDSA"),
        Some("hs256"),
        None,
    ]);
    let signing = match alg {
        Some("HS256") => Algorithm::HS256,
        Some("HS384") => Algorithm::HS384,
        Some("HS512") => Algorithm::HS512,
        _ => {
            fail();
            Algorithm::HS256
        }
    };
    match alg {
        Some(alg) => header.insert("alg".into(), json!(alg)),
        None if choices.one_in(2) => header.insert("alg".into(), json!(256)),
        None => None,
    };
    let typ = choices.pick(&[
        Some("at+jwt"),
        Some("AT+JWT"),
        Some("application/at+jwt"),
        Some("Application/At+Jwt"),
        Some("JWT"),
        Some("at+jwtx"),
        None,
        None,
    ]);
    let typ_ok = typ.is_some_and(|t| !matches!(t, "JWT" | "at+jwtx"));
    match typ {
        Some(typ) => {
            header.insert("typ".into(), json!(typ));
        }
        None if choices.one_in(4) => {
            header.insert("typ".into(), json!(5));
            fail();
        }
        None => {}
    }
    if choices.one_in(8) {
        header.insert("crit".into(), json!(["exp"]));
        fail();
    }
    if choices.one_in(4) {
        header.insert("kid".into(), json!("key-1"));
    }

    // Registered claims.
    let mut claims = serde_json::Map::new();
    let exp = match choices.below(9) {
        0 => None,
        1 => Some((json!(NOW - 10), Some(NOW - 10))),
        2 => Some((json!(NOW), Some(NOW))),
        3 => Some((json!(NOW + 1), Some(NOW + 1))),
        4 => Some((json!(NOW as f64 + 100.5), Some(NOW + 100))),
        5 => Some((json!("soon"), None)),
        6 => Some((json!(-1), None)),
        7 => Some((json!(1e300), Some(u64::MAX))),
        _ => Some((json!(NOW + 3600), Some(NOW + 3600))),
    };
    let mut expires_at = 0;
    match exp {
        None => fail(),
        Some((value, seconds)) => {
            claims.insert("exp".into(), value);
            match seconds {
                Some(seconds) if NOW < seconds => expires_at = seconds,
                _ => fail(),
            }
        }
    }
    match choices.below(6) {
        0 => {
            claims.insert("nbf".into(), json!(NOW + NBF_LEEWAY_SECS));
        }
        1 => {
            claims.insert("nbf".into(), json!(NOW + NBF_LEEWAY_SECS + 1));
            fail();
        }
        2 => {
            claims.insert("nbf".into(), json!("now"));
            fail();
        }
        3 => {
            claims.insert("nbf".into(), json!(0.5));
        }
        _ => {}
    }
    let subject = match choices.below(4) {
        0 => {
            claims.insert("sub".into(), json!(1));
            fail();
            None
        }
        1 => None,
        _ => {
            claims.insert("sub".into(), json!("user-1"));
            Some("user-1".to_owned())
        }
    };
    let issuer = match choices.below(5) {
        0 => None,
        1 => {
            claims.insert("iss".into(), json!("https://other.example"));
            Some(Err(()))
        }
        2 => {
            claims.insert("iss".into(), json!(3));
            fail();
            None
        }
        _ => {
            claims.insert("iss".into(), json!(ISSUER));
            Some(Ok(()))
        }
    };
    // None: absent; Some(true): contains the hub; Some(false): does not, or is malformed.
    let audience = match choices.below(7) {
        0 => None,
        1 => {
            claims.insert("aud".into(), json!([HUB, "https://x.example"]));
            Some(true)
        }
        2 => {
            claims.insert("aud".into(), json!(["https://x.example"]));
            Some(false)
        }
        3 => {
            claims.insert("aud".into(), json!("https://x.example"));
            Some(false)
        }
        4 => {
            claims.insert("aud".into(), json!(4));
            Some(false)
        }
        5 => {
            claims.insert("aud".into(), json!([4, HUB]));
            Some(false)
        }
        _ => {
            claims.insert("aud".into(), json!(HUB));
            Some(true)
        }
    };
    let details = match choices.below(6) {
        0 | 1 => None,
        2 => {
            claims.insert("authorization_details".into(), json!({ "not": "an array" }));
            Some(None)
        }
        3 if choices.one_in(2) => {
            let other = json!({ "type": "https://other.example/detail" });
            claims.insert("authorization_details".into(), json!(vec![other; 65]));
            Some(None)
        }
        _ => {
            let (value, grants) = generate_details(choices);
            claims.insert("authorization_details".into(), value);
            Some(grants)
        }
    };
    let mercure = if choices.one_in(2) {
        let (value, grants) = generate_mercure(choices);
        claims.insert("mercure".into(), value);
        Some(grants)
    } else {
        None
    };

    // Signature.
    let b64 = |bytes: &[u8]| base64url(bytes);
    let header_json = serde_json::to_vec(&Value::Object(header)).expect("serializable");
    let claims_json = serde_json::to_vec(&Value::Object(claims)).expect("serializable");
    let signing_input = format!("{}.{}", b64(&header_json), b64(&claims_json));
    let key = EncodingKey::from_secret(SECRET);
    let signature = match choices.below(8) {
        0 => {
            fail();
            String::new()
        }
        1 => {
            fail();
            let other = EncodingKey::from_secret(b"another secret entirely");
            jsonwebtoken::crypto::sign(signing_input.as_bytes(), &other, signing)
                .expect("signing works")
        }
        2 => {
            fail();
            let good = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, signing)
                .expect("signing works");
            // Change one character of the signature to another base64url character.
            let mut bytes = good.into_bytes();
            let at = choices.below(bytes.len());
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            String::from_utf8(bytes).expect("ASCII")
        }
        _ => jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, signing)
            .expect("signing works"),
    };
    let token = format!("{signing_input}.{signature}");
    if token.len() > MAX_TOKEN_LEN {
        fail();
    }

    let mut accepted = 0;
    for legacy in [false, true] {
        // The verifier's own order of rules, as documented on `verify_at`.
        let expected = if !model_ok {
            None
        } else {
            let draft08 = details.is_some() || typ_ok || !legacy;
            let issuer_ok = issuer != Some(Err(()));
            let audience_ok = audience != Some(false);
            if draft08 {
                match &details {
                    _ if !typ_ok || issuer != Some(Ok(())) || audience != Some(true) => None,
                    Some(None) => None,
                    Some(Some(grants)) => Some((TokenDialect::AccessToken, grants.as_slice())),
                    None => Some((TokenDialect::AccessToken, &[][..])),
                }
            } else if !issuer_ok || !audience_ok {
                None
            } else {
                match &mercure {
                    Some(None) => None,
                    Some(Some(grants)) => Some((TokenDialect::Legacy, grants.as_slice())),
                    None => Some((TokenDialect::Legacy, &[][..])),
                }
            }
        };
        let expected = expected.map(|(dialect, grants)| {
            let probe = |publish: bool| {
                PROBES
                    .iter()
                    .map(|p| {
                        grants.iter().any(|g| {
                            (if publish { g.publish } else { g.subscribe })
                                && g.matchers.iter().any(|m| m.matches(p))
                        })
                    })
                    .collect::<Vec<_>>()
            };
            Expected {
                dialect,
                expires_at,
                subject: subject.clone(),
                issuer: issuer.map(|i| match i {
                    Ok(()) => ISSUER.to_owned(),
                    Err(()) => "https://other.example".to_owned(),
                }),
                publish: probe(true),
                subscribe: probe(false),
                anything: grants
                    .iter()
                    .any(|g| (g.publish || g.subscribe) && !g.matchers.is_empty()),
            }
        });
        let got = verifier(legacy)
            .verify_at(&token, NOW)
            .map(|claims| Expected {
                dialect: claims.dialect,
                expires_at: claims.expires_at,
                subject: claims.subject.clone(),
                issuer: claims.issuer.clone(),
                publish: PROBES.iter().map(|p| claims.can_publish(p)).collect(),
                subscribe: PROBES.iter().map(|p| claims.can_subscribe(p)).collect(),
                anything: claims.grants_anything(),
            });
        match (expected, got) {
            (None, Err(_)) => {}
            (Some(expected), Ok(got)) => {
                assert_eq!(
                    got,
                    expected,
                    "legacy {legacy}: claims differ for header {} claims {}",
                    String::from_utf8_lossy(&header_json),
                    String::from_utf8_lossy(&claims_json)
                );
                accepted += 1;
            }
            (None, Ok(got)) => panic!(
                "legacy {legacy}: verified although a rule is broken: {got:?}\nheader {}\nclaims {}\nsignature {signature:?}",
                String::from_utf8_lossy(&header_json),
                String::from_utf8_lossy(&claims_json)
            ),
            (Some(expected), Err(error)) => panic!(
                "legacy {legacy}: refused ({error}) although every rule holds: {expected:?}\nheader {}\nclaims {}",
                String::from_utf8_lossy(&header_json),
                String::from_utf8_lossy(&claims_json)
            ),
        }
    }
    accepted
}

/// A draft-08 `authorization_details` array, with the grants it must give (`None` when it
/// must be refused).
fn generate_details(choices: &mut Choices<'_>) -> (Value, Option<Vec<ModelGrant>>) {
    let mut entries = Vec::new();
    let mut grants = Some(Vec::new());
    for _ in 0..choices.below(4) {
        let mut entry = serde_json::Map::new();
        let mut valid = true;
        let kind = choices.below(6);
        match kind {
            0 => {}
            1 => {
                entry.insert("type".into(), json!(1));
            }
            2 => {
                entry.insert("type".into(), json!("https://other.example/detail"));
            }
            _ => {
                entry.insert("type".into(), json!(MERCURE_DETAIL_TYPE));
            }
        }
        let (actions, publish, subscribe) = match choices.below(8) {
            0 => (Some(json!(["publish"])), true, false),
            1 => (Some(json!(["subscribe"])), false, true),
            2 => (Some(json!(["read"])), false, false),
            3 => (Some(json!([])), false, false),
            4 => (Some(json!([1])), false, false),
            5 => (None, false, false),
            6 => (Some(json!("publish")), false, false),
            _ => (Some(json!(["subscribe", "publish"])), true, true),
        };
        if !matches!(actions, Some(Value::Array(ref a)) if !a.is_empty() && a.iter().all(Value::is_string))
        {
            valid = false;
        }
        if let Some(actions) = actions {
            entry.insert("actions".into(), actions);
        }
        let mut matchers = Vec::new();
        match choices.below(6) {
            0 => valid = false,
            1 => {
                entry.insert("topics".into(), json!([]));
                valid = false;
            }
            _ => {
                let mut topics = Vec::new();
                for _ in 0..1 + choices.below(3) {
                    let (topic, matcher) = generate_matcher(choices);
                    topics.push(topic);
                    match matcher {
                        Some(matcher) => matchers.push(matcher),
                        None => valid = false,
                    }
                }
                entry.insert("topics".into(), Value::Array(topics));
            }
        }
        match choices.below(4) {
            0 => {
                entry.insert("payload".into(), json!({ "k": 1 }));
            }
            1 => {
                entry.insert("payload".into(), Value::Null);
            }
            2 => {
                entry.insert("payload".into(), json!(3));
                valid = false;
            }
            _ => {}
        }
        entries.push(Value::Object(entry));
        match kind {
            // No `type`, or not a string: the whole token is refused.
            0 | 1 => grants = None,
            // Another type of detail is not Herald's to check.
            2 => {}
            _ if !valid => grants = None,
            _ => {
                if let Some(grants) = grants.as_mut() {
                    grants.push(ModelGrant {
                        publish,
                        subscribe,
                        matchers,
                    });
                }
            }
        }
    }
    (Value::Array(entries), grants)
}

/// One `{ "match": …, "match_type": … }` topic of a detail, with its model (`None`: invalid).
fn generate_matcher(choices: &mut Choices<'_>) -> (Value, Option<ModelMatcher>) {
    match choices.below(11) {
        0 => (json!({ "match": "*" }), Some(ModelMatcher::Wildcard)),
        1 => (
            json!({ "match": "https://example.com/:x", "match_type": "urlpattern" }),
            Some(ModelMatcher::PatternAnyPath),
        ),
        2 => (
            json!({ "match": "/a", "match_type": "urlpattern" }),
            Some(ModelMatcher::RelativePatternA),
        ),
        3 => (
            json!({ "match": PROBES[0], "match_type": "exact" }),
            Some(ModelMatcher::ExactA),
        ),
        4 => (json!({ "match": "a\u{0}" }), None),
        5 => (json!({ "match": "" }), None),
        6 => (json!({ "match": 1 }), None),
        7 => (json!({ "match": "x", "match_type": "regex" }), None),
        8 => (json!({ "match": "x", "match_type": 2 }), None),
        9 => (json!("https://example.com/a"), None),
        _ => (json!({ "match": PROBES[0] }), Some(ModelMatcher::ExactA)),
    }
}

/// A legacy `mercure` claim, with the grants it must give (`None` when it must be refused).
fn generate_mercure(choices: &mut Choices<'_>) -> (Value, Option<Vec<ModelGrant>>) {
    if choices.one_in(8) {
        return (json!("not an object"), None);
    }
    let mut claim = serde_json::Map::new();
    let mut grants = Some(Vec::new());
    for (key, publish) in [("publish", true), ("subscribe", false)] {
        match choices.below(5) {
            0 => {}
            1 => {
                claim.insert(key.into(), Value::Null);
            }
            2 => {
                claim.insert(key.into(), json!("https://example.com/a"));
                grants = None;
            }
            _ => {
                let mut selectors = Vec::new();
                let mut matchers = Vec::new();
                for _ in 0..choices.below(3) {
                    match choices.below(6) {
                        0 => {
                            selectors.push(json!("*"));
                            matchers.push(ModelMatcher::Wildcard);
                        }
                        1 => {
                            selectors.push(json!("https://example.com/{x}"));
                            matchers.push(ModelMatcher::TemplateAnyPath);
                        }
                        2 => {
                            selectors.push(json!(""));
                            grants = None;
                        }
                        3 => {
                            selectors.push(json!("a\u{1}"));
                            grants = None;
                        }
                        4 => {
                            selectors.push(json!(7));
                            grants = None;
                        }
                        _ => {
                            selectors.push(json!(PROBES[0]));
                            matchers.push(ModelMatcher::ExactA);
                        }
                    }
                }
                claim.insert(key.into(), Value::Array(selectors));
                if let Some(grants) = grants.as_mut() {
                    grants.push(ModelGrant {
                        publish,
                        subscribe: !publish,
                        matchers,
                    });
                }
            }
        }
    }
    if choices.one_in(3) {
        claim.insert("payload".into(), json!({ "p": 1 }));
    }
    (Value::Object(claim), grants)
}

/// Unpadded base64url (RFC 7515 §2).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}
