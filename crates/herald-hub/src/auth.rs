//! Access tokens: finding them in a request, verifying them, and what they grant.
//!
//! - [`bearer_token`] finds the token of a request (`Authorization: Bearer`, then the cookie;
//!   in legacy mode also the `authorization` query parameter and the `mercureAuthorization`
//!   cookie).
//! - [`TokenVerifier`] checks a token's signature and claims and turns it into [`Claims`]:
//!   draft-08 JWT access tokens (`typ: at+jwt`, `iss`, `aud`, grants in
//!   `authorization_details`) and, when legacy mode is on, -07 tokens (grants in the `mercure`
//!   claim).
//! - [`Claims`] answers the hub's questions: may this token publish to a topic, read a private
//!   update, and which payload goes with a subscription.
//!
//! Every [`TokenError`] becomes a 401 `invalid_token` at the hub; the variants only keep the
//! reason for logs. No error message ever contains the token.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::selector::{MatcherType, Selector, SelectorError};

/// Largest token accepted, in bytes. Checked before any decoding, so an oversized token costs
/// nothing; real access tokens are well under 2 KiB.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Clock skew tolerated on `nbf`, in seconds: a token minted by an issuer whose clock runs a
/// little ahead is usable at once. `exp` gets no leeway: the hub must close a subscriber's
/// connection no later than `exp`, so a token is never accepted at or after it.
pub const NBF_LEEWAY_SECS: u64 = 5;

/// Most entries accepted in `authorization_details` (Mercure or not).
pub const MAX_AUTHORIZATION_DETAILS: usize = 64;

/// Most topic matchers accepted in one detail's `topics` (and in each legacy `mercure.publish`
/// / `mercure.subscribe` array).
pub const MAX_TOPICS_PER_DETAIL: usize = 256;

/// The `type` of a Mercure authorization detail (draft-08), compared byte for byte.
pub const MERCURE_DETAIL_TYPE: &str = "https://mercure.rocks/authorization-detail";

/// The cookie name legacy (-07) clients use; accepted besides the configured one in legacy mode.
pub const LEGACY_COOKIE_NAME: &str = "mercureAuthorization";

// ---------------------------------------------------------------------------------------------
// Presentation
// ---------------------------------------------------------------------------------------------

/// Why the way a request presents its token is malformed (the hub answers 400
/// `invalid_request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresentationError {
    /// More than one `Authorization` header.
    #[error("more than one Authorization header")]
    MultipleAuthorizationHeaders,
    /// The `Authorization` header is not visible ASCII.
    #[error("the Authorization header is not visible ASCII")]
    InvalidHeader,
    /// The `Authorization` header uses another scheme than `Bearer`.
    #[error("the Authorization header must use the Bearer scheme")]
    NotBearer,
    /// `Bearer` with no token, or an empty `authorization` query parameter.
    #[error("the bearer token is empty")]
    EmptyToken,
    /// The token has characters outside RFC 6750's `b64token`.
    #[error("the bearer token has characters a token cannot contain")]
    InvalidToken,
    /// More than one `authorization` query parameter (legacy mode).
    #[error("more than one authorization query parameter")]
    MultipleQueryTokens,
    /// The `authorization` query parameter does not percent-decode to UTF-8.
    #[error("the authorization query parameter is not valid percent-encoded UTF-8")]
    InvalidQueryEncoding,
}

/// Finds the access token of a request.
///
/// Order: the `Authorization: Bearer <token>` header (scheme case-insensitive) wins; any cookie
/// is then ignored, as draft-08 requires (cookies are ambient, so their presence beside a header
/// is not an error). In legacy mode the `authorization` query parameter comes next, as -07
/// requires; draft-08 never reads it (RFC 9700 forbids tokens in URLs). Last, the cookie named
/// `cookie_name`, then (legacy mode) the `mercureAuthorization` cookie. An empty cookie counts
/// as absent: clearing a cookie usually leaves it empty.
///
/// `query` is the raw query string, without `?`.
///
/// # Errors
/// [`PresentationError`] when the header or the query parameter is malformed.
///
/// ```
/// # use herald_hub::auth::bearer_token;
/// let mut headers = http::HeaderMap::new();
/// headers.insert(http::header::COOKIE, "theme=dark; mercure=abc.def.ghi".parse().unwrap());
/// assert_eq!(bearer_token(&headers, None, "mercure", false), Ok(Some("abc.def.ghi".into())));
/// headers.insert(http::header::AUTHORIZATION, "bearer xyz".parse().unwrap());
/// assert_eq!(bearer_token(&headers, None, "mercure", false), Ok(Some("xyz".into())));
/// ```
pub fn bearer_token(
    headers: &http::HeaderMap,
    query: Option<&str>,
    cookie_name: &str,
    legacy: bool,
) -> Result<Option<String>, PresentationError> {
    let mut authorization = headers.get_all(http::header::AUTHORIZATION).iter();
    if let Some(value) = authorization.next() {
        if authorization.next().is_some() {
            return Err(PresentationError::MultipleAuthorizationHeaders);
        }
        return bearer_from_header(value).map(Some);
    }
    if legacy && let Some(token) = query.map(token_from_query).transpose()?.flatten() {
        return Ok(Some(token));
    }
    if let Some(token) = cookie(headers, cookie_name) {
        return Ok(Some(token.to_owned()));
    }
    if legacy && let Some(token) = cookie(headers, LEGACY_COOKIE_NAME) {
        return Ok(Some(token.to_owned()));
    }
    Ok(None)
}

fn bearer_from_header(value: &http::HeaderValue) -> Result<String, PresentationError> {
    let value = value
        .to_str()
        .map_err(|_| PresentationError::InvalidHeader)?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(PresentationError::NotBearer);
    }
    // RFC 6750: `Bearer 1*SP b64token`.
    let token = token.trim_start_matches(' ');
    if token.is_empty() {
        return Err(PresentationError::EmptyToken);
    }
    if !is_b64token(token) {
        return Err(PresentationError::InvalidToken);
    }
    Ok(token.to_owned())
}

/// RFC 6750 `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// The legacy `authorization` query parameter, if present.
fn token_from_query(query: &str) -> Result<Option<String>, PresentationError> {
    let mut found = None;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if form_decode(name).as_deref() != Some("authorization") {
            continue;
        }
        if found.is_some() {
            return Err(PresentationError::MultipleQueryTokens);
        }
        let value = form_decode(value).ok_or(PresentationError::InvalidQueryEncoding)?;
        if value.is_empty() {
            return Err(PresentationError::EmptyToken);
        }
        found = Some(value);
    }
    Ok(found)
}

/// `application/x-www-form-urlencoded` decoding of one name or value.
fn form_decode(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The first non-empty cookie called `name`, across every `Cookie` header (HTTP/2 may split
/// cookies into several).
fn cookie<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim_matches(' ').split_once('='))
        .filter(|(cookie_name, _)| *cookie_name == name)
        .map(|(_, value)| {
            // RFC 6265: a cookie value may be wrapped in double quotes.
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
        })
        .find(|value| !value.is_empty())
}

// ---------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------

/// How the hub verifies tokens.
#[derive(Clone)]
pub struct VerifierConfig {
    /// Shared secret for HS256 / HS384 / HS512 tokens.
    pub hmac_secret: Option<Vec<u8>>,
    /// PEM public key (`PUBLIC KEY` SPKI, or `RSA PUBLIC KEY`): RSA (RS256/384/512, at least
    /// 2048 bits), EC P-256 (ES256), EC P-384 (ES384) or Ed25519 (EdDSA).
    pub public_key_pem: Option<Vec<u8>>,
    /// The trusted issuer. When set, draft-08 tokens must carry exactly this `iss`, and legacy
    /// tokens that carry an `iss` must too.
    pub issuer: Option<String>,
    /// The hub's resource identifier, which draft-08 tokens must list in `aud` (by default the
    /// hub URL).
    pub audience: String,
    /// Accept legacy (-07) tokens, whose grants are in the `mercure` claim.
    pub legacy: bool,
    /// The hub URL: the base of relative URL patterns in grants.
    pub hub_url: url::Url,
}

impl fmt::Debug for VerifierConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        f.debug_struct("VerifierConfig")
            .field(
                "hmac_secret",
                &self.hmac_secret.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "public_key_pem",
                &self.public_key_pem.as_ref().map(|_| "<pem>"),
            )
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("legacy", &self.legacy)
            .field("hub_url", &self.hub_url.as_str())
            .finish()
    }
}

/// Why a [`VerifierConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    /// Neither a secret nor a public key.
    #[error("no key: configure an HMAC secret, a public key, or both")]
    NoKey,
    /// An empty HMAC secret would let anyone mint tokens.
    #[error("the HMAC secret is empty")]
    EmptySecret,
    /// The configured audience is empty.
    #[error("the audience (the hub's resource identifier) is empty")]
    EmptyAudience,
    /// A private key was given where the public key belongs.
    #[error("the public key file holds a private key: give the hub only the public key")]
    PrivateKey,
    /// Not a PEM `PUBLIC KEY` / `RSA PUBLIC KEY`.
    #[error("the public key is not a PEM \"PUBLIC KEY\" or \"RSA PUBLIC KEY\"")]
    NotPublicKeyPem,
    /// A public key of a kind the hub does not verify with.
    #[error("unsupported public key: {reason}")]
    UnsupportedKey {
        /// What kind it is, or what is wrong.
        reason: &'static str,
    },
    /// An RSA key under 2048 bits (RFC 7518 §3.3).
    #[error("the RSA key has {bits} bits; at least 2048 are required")]
    WeakRsaKey {
        /// Modulus size.
        bits: usize,
    },
}

/// Why a token was refused. All become 401 `invalid_token`; messages are for logs and never
/// contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("token is {len} bytes long; the limit is {max}")]
    TooLarge {
        /// Token length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a well-formed JWS.
    #[error("malformed token: {reason}")]
    Malformed {
        /// What is wrong.
        reason: &'static str,
    },
    /// The header's `alg` is `none`, unknown, or not one the configured keys verify.
    #[error("algorithm {alg:?} is not allowed by this hub's keys")]
    AlgNotAllowed {
        /// The header's `alg` (sanitized, at most 16 characters).
        alg: String,
    },
    /// The signature does not verify with the configured key.
    #[error("signature does not verify")]
    BadSignature,
    /// `exp` is in the past.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond [`NBF_LEEWAY_SECS`]).
    #[error("token not valid yet (nbf)")]
    NotYetValid,
    /// A required claim is missing.
    #[error("claim `{claim}` is missing")]
    MissingClaim {
        /// The claim.
        claim: &'static str,
    },
    /// A registered claim has the wrong JSON type.
    #[error("claim `{claim}` has the wrong type")]
    InvalidClaim {
        /// The claim.
        claim: &'static str,
    },
    /// Draft-08 tokens must have header `typ` `at+jwt`.
    #[error("token type (typ) must be at+jwt")]
    BadType,
    /// `iss` is not the configured issuer.
    #[error("issuer is not trusted")]
    WrongIssuer,
    /// `aud` does not contain the hub's resource identifier.
    #[error("audience does not include this hub")]
    WrongAudience,
    /// A legacy (`mercure` claim) token while legacy mode is off.
    #[error("legacy token (mercure claim) but the hub is not in legacy mode")]
    LegacyDisabled,
    /// The header lists critical extensions (`crit`), none of which the hub implements.
    #[error("token requires unsupported critical header parameters")]
    UnsupportedCritical,
    /// `authorization_details` does not parse or validate; the whole token is refused.
    #[error("bad authorization_details: {reason}")]
    BadAuthorizationDetails {
        /// What is wrong, and where.
        reason: String,
    },
    /// The legacy `mercure` claim does not parse or validate.
    #[error("bad mercure claim: {reason}")]
    BadMercureClaim {
        /// What is wrong, and where.
        reason: String,
    },
}

/// The key that verifies one family of algorithms, with the algorithms it allows.
struct VerifyingKey {
    key: DecodingKey,
    algorithms: &'static [Algorithm],
}

/// Verifies access tokens against configured keys and turns them into [`Claims`].
///
/// Security: the accepted algorithms are fixed by the configured keys, never by the token (an
/// HMAC secret allows HS256/384/512; a public key allows only the algorithms of its kind), and
/// the key is chosen by the family of the token's `alg` among the configured ones. `alg: none`,
/// unknown algorithms and key material in the token (`jwk`, `jku`, `x5u`, ...) are never used,
/// which rules out algorithm confusion (an RS256 public key used as an HS256 secret).
///
/// ```
/// # use herald_hub::auth::{TokenVerifier, VerifierConfig};
/// let hub_url = url::Url::parse("https://hub.example/.well-known/mercure").unwrap();
/// let verifier = TokenVerifier::new(VerifierConfig {
///     hmac_secret: Some(b"a-long-random-secret-shared-with-the-publisher".to_vec()),
///     public_key_pem: None,
///     issuer: None,
///     audience: hub_url.to_string(),
///     legacy: false,
///     hub_url,
/// })
/// .unwrap();
/// assert!(verifier.verify("not.a.token").is_err());
/// ```
pub struct TokenVerifier {
    hmac: Option<VerifyingKey>,
    public: Option<VerifyingKey>,
    issuer: Option<String>,
    audience: String,
    legacy: bool,
    hub_url: url::Url,
    /// Tokens this verifier accepted recently, for [`TokenVerifier::verify_cached`]. It lives
    /// here, beside the keys and rules that accepted them, so it never outlives them.
    verified: VerifiedTokens,
}

/// Recently accepted tokens, keyed by the whole token string (signature included), so a hit
/// is the very bytes that were verified. A publisher sends the same token with every request,
/// and verifying it again (base64, JSON, HMAC or public-key signature, `authorization_details`)
/// measured ~12 % of the hub's CPU under 64 concurrent publishers.
///
/// Only successes are kept; `exp` and `nbf` are checked again on every hit, so a remembered
/// token is refused from the second it expires, exactly as an unremembered one. Bounded by
/// [`VERIFIED_TOKENS`] entries of at most [`MAX_CACHED_TOKEN_LEN`] bytes: when full, expired
/// entries are dropped, and if none are, the whole map starts over (cheaper than tracking
/// recency, and only tokens signed with the hub's own keys can fill it).
#[derive(Default)]
struct VerifiedTokens(Mutex<HashMap<Box<str>, VerifiedToken>>);

/// One remembered token.
struct VerifiedToken {
    /// Shared by every request presenting the token (its subscribe verdict memo included).
    claims: Arc<Claims>,
    /// The token's `nbf`, checked again on each hit (the wall clock may step back).
    not_before: Option<u64>,
}

/// Tokens remembered per verifier before the memo starts over.
const VERIFIED_TOKENS: usize = 1024;

/// Longer tokens are verified every time rather than remembered, which bounds the memo to
/// about 2 MiB; real access tokens are well under this.
const MAX_CACHED_TOKEN_LEN: usize = 2 * 1024;

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("algorithms", &self.algorithms().collect::<Vec<_>>())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("legacy", &self.legacy)
            .finish_non_exhaustive()
    }
}

const HMAC_ALGORITHMS: &[Algorithm] = &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
const RSA_ALGORITHMS: &[Algorithm] = &[Algorithm::RS256, Algorithm::RS384, Algorithm::RS512];
const P256_ALGORITHMS: &[Algorithm] = &[Algorithm::ES256];
const P384_ALGORITHMS: &[Algorithm] = &[Algorithm::ES384];
const ED25519_ALGORITHMS: &[Algorithm] = &[Algorithm::EdDSA];

impl TokenVerifier {
    /// Checks the configuration and loads the keys.
    ///
    /// # Errors
    /// [`AuthConfigError`] for a missing or empty secret, an unusable public key, or an empty
    /// audience.
    pub fn new(config: VerifierConfig) -> Result<TokenVerifier, AuthConfigError> {
        if config.audience.is_empty() {
            return Err(AuthConfigError::EmptyAudience);
        }
        let hmac = match &config.hmac_secret {
            None => None,
            Some(secret) if secret.is_empty() => return Err(AuthConfigError::EmptySecret),
            Some(secret) => Some(VerifyingKey {
                key: DecodingKey::from_secret(secret),
                algorithms: HMAC_ALGORITHMS,
            }),
        };
        let public = config
            .public_key_pem
            .as_deref()
            .map(load_public_key)
            .transpose()?;
        if hmac.is_none() && public.is_none() {
            return Err(AuthConfigError::NoKey);
        }
        Ok(TokenVerifier {
            hmac,
            public,
            issuer: config.issuer,
            audience: config.audience,
            legacy: config.legacy,
            hub_url: config.hub_url,
            verified: VerifiedTokens::default(),
        })
    }

    /// The signature algorithms this verifier accepts (for logs and protected resource
    /// metadata).
    pub fn algorithms(&self) -> impl Iterator<Item = Algorithm> + '_ {
        self.hmac
            .iter()
            .chain(&self.public)
            .flat_map(|k| k.algorithms.iter().copied())
    }

    /// Verifies `token` now (wall clock: JWT times are Unix times).
    ///
    /// # Errors
    /// [`TokenError`] saying why the token is refused.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.verify_at(token, now)
    }

    /// Verifies `token` now, like [`TokenVerifier::verify`], but answers a token accepted
    /// recently from memory: the signature and claims of the same token string are not
    /// checked again, its `exp` and `nbf` are (see [`TokenVerifier::verify_cached_at`]).
    ///
    /// # Errors
    /// [`TokenError`] saying why the token is refused.
    pub fn verify_cached(&self, token: &str) -> Result<Arc<Claims>, TokenError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.verify_cached_at(token, now)
    }

    /// [`TokenVerifier::verify_cached`] as of `now` (Unix seconds).
    ///
    /// Security: the memo is keyed by the entire token, signature included, and only holds
    /// tokens that passed [`TokenVerifier::verify_at`] with this verifier's keys and rules; a
    /// hit still refuses an expired or not-yet-valid token with the same error as a full
    /// verification. Refused tokens are never remembered.
    ///
    /// ```
    /// # use herald_hub::auth::{TokenVerifier, VerifierConfig};
    /// # let hub_url = url::Url::parse("https://hub.example/.well-known/mercure").unwrap();
    /// # let verifier = TokenVerifier::new(VerifierConfig {
    /// #     hmac_secret: Some(b"a-long-random-secret-shared-with-the-publisher".to_vec()),
    /// #     public_key_pem: None, issuer: None, audience: hub_url.to_string(), legacy: false, hub_url,
    /// # }).unwrap();
    /// assert!(verifier.verify_cached_at("not.a.token", 1_767_225_300).is_err());
    /// ```
    ///
    /// # Errors
    /// [`TokenError`] saying why the token is refused.
    pub fn verify_cached_at(&self, token: &str, now: u64) -> Result<Arc<Claims>, TokenError> {
        let mut verified = self
            .verified
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(known) = verified.get(token) {
            if now >= known.claims.expires_at {
                verified.remove(token);
                return Err(TokenError::Expired);
            }
            if known
                .not_before
                .is_some_and(|nbf| now.saturating_add(NBF_LEEWAY_SECS) < nbf)
            {
                return Err(TokenError::NotYetValid);
            }
            return Ok(Arc::clone(&known.claims));
        }
        // Verifying takes microseconds (RSA: more): not while holding the memo's lock.
        drop(verified);
        let (claims, not_before) = self.verify_claims(token, now)?;
        let claims = Arc::new(claims);
        if token.len() <= MAX_CACHED_TOKEN_LEN {
            let mut verified = self
                .verified
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if verified.len() >= VERIFIED_TOKENS {
                verified.retain(|_, known| now < known.claims.expires_at);
                if verified.len() >= VERIFIED_TOKENS {
                    verified.clear();
                }
            }
            verified.insert(
                token.into(),
                VerifiedToken {
                    claims: Arc::clone(&claims),
                    not_before,
                },
            );
        }
        Ok(claims)
    }

    /// Verifies `token` as of `now` (Unix seconds).
    ///
    /// Steps: size; header (`alg` allowed by a configured key, no `crit`); signature; `exp`
    /// (required, no leeway) and `nbf` ([`NBF_LEEWAY_SECS`]); then by kind of token:
    ///
    /// - **draft-08** — a token with `authorization_details`, or whose `typ` is `at+jwt`:
    ///   `typ` must be `at+jwt` / `application/at+jwt` (case-insensitive), `iss` is required
    ///   (and must equal the configured issuer when one is set), `aud` must contain the
    ///   audience, and `authorization_details` must parse strictly (any bad Mercure detail
    ///   refuses the whole token).
    /// - **legacy** (legacy mode only) — any other token: grants come from the `mercure`
    ///   claim (legacy topic selectors); `typ`, `iss` and `aud` are optional, but an `iss` or
    ///   `aud` that is present is checked as above, so a token meant for another hub or issuer
    ///   is never accepted.
    ///
    /// Outside legacy mode every token is checked as draft-08; one carrying only a `mercure`
    /// claim is refused with [`TokenError::LegacyDisabled`]. A valid token without grants
    /// grants nothing.
    ///
    /// # Errors
    /// [`TokenError`] saying why the token is refused.
    pub fn verify_at(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        self.verify_claims(token, now).map(|(claims, _)| claims)
    }

    /// [`TokenVerifier::verify_at`], also returning the token's `nbf` (for the memo).
    fn verify_claims(&self, token: &str, now: u64) -> Result<(Claims, Option<u64>), TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge {
                len: token.len(),
                max: MAX_TOKEN_LEN,
            });
        }
        let header = peek_header(token)?;
        if header.crit.is_some() {
            return Err(TokenError::UnsupportedCritical);
        }
        let alg_name = match &header.alg {
            Some(Value::String(alg)) => alg.as_str(),
            Some(_) => {
                return Err(TokenError::Malformed {
                    reason: "header alg is not a string",
                });
            }
            None => {
                return Err(TokenError::Malformed {
                    reason: "header has no alg",
                });
            }
        };
        let not_allowed = || TokenError::AlgNotAllowed {
            alg: sanitize(alg_name),
        };
        // `none` and unknown names fail here: `Algorithm` has no such variant.
        let alg: Algorithm = alg_name.parse().map_err(|_| not_allowed())?;
        let key = self
            .hmac
            .iter()
            .chain(&self.public)
            .find(|k| k.algorithms.contains(&alg))
            .ok_or_else(not_allowed)?;

        let mut validation = Validation::new(alg);
        // Registered claims are checked below, with Herald's own rules and errors.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<RawClaims>(token, &key.key, &validation)
            .map_err(|e| map_jwt_error(e.kind(), not_allowed))?;
        let raw = data.claims;

        let expires_at = numeric_date(raw.exp.as_ref(), "exp")?
            .ok_or(TokenError::MissingClaim { claim: "exp" })?;
        if now >= expires_at {
            return Err(TokenError::Expired);
        }
        let not_before = numeric_date(raw.nbf.as_ref(), "nbf")?;
        if let Some(nbf) = not_before
            && now.saturating_add(NBF_LEEWAY_SECS) < nbf
        {
            return Err(TokenError::NotYetValid);
        }
        let subject = optional_string(raw.sub.as_ref(), "sub")?;
        let issuer = optional_string(raw.iss.as_ref(), "iss")?;
        let typ_ok = header.typ.as_deref().is_some_and(is_access_token_type);

        let draft08 = raw.authorization_details.is_some() || typ_ok || !self.legacy;
        if draft08 {
            if !typ_ok {
                if raw.mercure.is_some() && raw.authorization_details.is_none() {
                    return Err(TokenError::LegacyDisabled);
                }
                return Err(TokenError::BadType);
            }
            let Some(iss) = &issuer else {
                return Err(TokenError::MissingClaim { claim: "iss" });
            };
            self.check_issuer(iss)?;
            let Some(aud) = &raw.aud else {
                return Err(TokenError::MissingClaim { claim: "aud" });
            };
            self.check_audience(aud)?;
            let grants = match &raw.authorization_details {
                Some(details) => parse_authorization_details(details, &self.hub_url)
                    .map_err(|reason| TokenError::BadAuthorizationDetails { reason })?,
                None => Vec::new(),
            };
            let claims = Claims {
                subject,
                issuer,
                expires_at,
                dialect: TokenDialect::AccessToken,
                grants,
                legacy_payload: None,
                read_verdicts: ReadVerdicts::default(),
            };
            Ok((claims, not_before))
        } else {
            if let Some(iss) = &issuer {
                self.check_issuer(iss)?;
            }
            if let Some(aud) = &raw.aud {
                self.check_audience(aud)?;
            }
            let (grants, legacy_payload) = match &raw.mercure {
                Some(mercure) => parse_mercure_claim(mercure)
                    .map_err(|reason| TokenError::BadMercureClaim { reason })?,
                None => (Vec::new(), None),
            };
            let claims = Claims {
                subject,
                issuer,
                expires_at,
                dialect: TokenDialect::Legacy,
                grants,
                legacy_payload,
                read_verdicts: ReadVerdicts::default(),
            };
            Ok((claims, not_before))
        }
    }

    fn check_issuer(&self, iss: &str) -> Result<(), TokenError> {
        match &self.issuer {
            Some(expected) if expected != iss => Err(TokenError::WrongIssuer),
            _ => Ok(()),
        }
    }

    fn check_audience(&self, aud: &Value) -> Result<(), TokenError> {
        let found = match aud {
            Value::String(aud) => *aud == self.audience,
            Value::Array(items) => {
                let mut found = false;
                for item in items {
                    let Value::String(item) = item else {
                        return Err(TokenError::InvalidClaim { claim: "aud" });
                    };
                    found |= *item == self.audience;
                }
                found
            }
            _ => return Err(TokenError::InvalidClaim { claim: "aud" }),
        };
        if found {
            Ok(())
        } else {
            Err(TokenError::WrongAudience)
        }
    }
}

/// Loads a PEM public key and the algorithms its kind allows.
fn load_public_key(pem: &[u8]) -> Result<VerifyingKey, AuthConfigError> {
    let text = std::str::from_utf8(pem).map_err(|_| AuthConfigError::NotPublicKeyPem)?;
    if text.contains("PRIVATE KEY-----") {
        return Err(AuthConfigError::PrivateKey);
    }
    // Certificates are refused too: the key must be configured as such, not dug out of one.
    if !text.contains("-----BEGIN PUBLIC KEY-----")
        && !text.contains("-----BEGIN RSA PUBLIC KEY-----")
    {
        return Err(AuthConfigError::NotPublicKeyPem);
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        let bits = key
            .try_get_as_bytes()
            .ok()
            .and_then(rsa_modulus_bits)
            .ok_or(AuthConfigError::UnsupportedKey {
                reason: "the RSA key does not parse",
            })?;
        if bits < 2048 {
            return Err(AuthConfigError::WeakRsaKey { bits });
        }
        return Ok(VerifyingKey {
            key,
            algorithms: RSA_ALGORITHMS,
        });
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        // The key is the SEC 1 point: 0x04 || X || Y (or compressed 0x02/0x03 || X), whose size
        // gives the curve.
        let algorithms = match key.try_get_as_bytes().map(<[u8]>::len) {
            Ok(65 | 33) => P256_ALGORITHMS,
            Ok(97 | 49) => P384_ALGORITHMS,
            _ => {
                return Err(AuthConfigError::UnsupportedKey {
                    reason: "EC keys must be on P-256 or P-384",
                });
            }
        };
        return Ok(VerifyingKey { key, algorithms });
    }
    if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        if key.try_get_as_bytes().map(<[u8]>::len) != Ok(32) {
            return Err(AuthConfigError::UnsupportedKey {
                reason: "only Ed25519 is supported",
            });
        }
        return Ok(VerifyingKey {
            key,
            algorithms: ED25519_ALGORITHMS,
        });
    }
    Err(AuthConfigError::UnsupportedKey {
        reason: "not an RSA, EC or Ed25519 public key",
    })
}

/// Bit length of the modulus of a DER PKCS#1 `RSAPublicKey ::= SEQUENCE { n INTEGER, e INTEGER }`.
fn rsa_modulus_bits(der: &[u8]) -> Option<usize> {
    /// Reads a DER tag and length; returns the content and what follows it.
    fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (&t, rest) = input.split_first()?;
        if t != tag {
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7F);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let (len_bytes, after) = rest.split_at(count);
            rest = after;
            len_bytes
                .iter()
                .fold(0usize, |acc, &b| acc << 8 | usize::from(b))
        };
        (rest.len() >= len).then(|| rest.split_at(len))
    }
    let (sequence, _) = tlv(der, 0x30)?;
    let (modulus, _) = tlv(sequence, 0x02)?;
    let start = modulus.iter().position(|&b| b != 0)?;
    let modulus = &modulus[start..];
    Some(modulus.len() * 8 - modulus[0].leading_zeros() as usize)
}

/// The header fields read before the signature is checked.
#[derive(Deserialize)]
struct PeekHeader {
    alg: Option<Value>,
    typ: Option<String>,
    crit: Option<Value>,
}

/// Decodes the JOSE header without trusting it: only to pick the key and refuse early.
fn peek_header(token: &str) -> Result<PeekHeader, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed {
            reason: "not a JWS in compact serialization",
        });
    };
    let json = base64url_decode(header).ok_or(TokenError::Malformed {
        reason: "header is not base64url",
    })?;
    serde_json::from_slice(&json).map_err(|_| TokenError::Malformed {
        reason: "header is not a JSON object",
    })
}

/// Unpadded base64url (RFC 7515 §2), the encoding of JWS parts.
fn base64url_decode(input: &str) -> Option<Vec<u8>> {
    if input.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in input.bytes() {
        let sextet = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6 | u32::from(sextet)) & 0xFFFF;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// RFC 9068 §4 / RFC 7515 §4.1.9: `at+jwt`, with or without `application/`, any case.
fn is_access_token_type(typ: &str) -> bool {
    let media = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    media.eq_ignore_ascii_case("at+jwt")
}

/// A header value safe to put in a log line: at most 16 printable ASCII characters.
fn sanitize(value: &str) -> String {
    value
        .chars()
        .take(16)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

fn map_jwt_error(
    kind: &jsonwebtoken::errors::ErrorKind,
    not_allowed: impl Fn() -> TokenError,
) -> TokenError {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm => not_allowed(),
        ErrorKind::Base64(_) => TokenError::Malformed {
            reason: "a part is not base64url",
        },
        ErrorKind::Json(_) => TokenError::Malformed {
            reason: "claims are not a valid JSON object",
        },
        ErrorKind::Utf8(_) => TokenError::Malformed {
            reason: "claims are not UTF-8",
        },
        ErrorKind::InvalidClaimFormat(_) => TokenError::Malformed {
            reason: "a registered claim has the wrong type",
        },
        _ => TokenError::Malformed {
            reason: "not a valid JWS",
        },
    }
}

/// The claims Herald reads. Unknown claims are ignored; duplicate ones make the JSON invalid.
#[derive(Deserialize)]
struct RawClaims {
    exp: Option<Value>,
    nbf: Option<Value>,
    iss: Option<Value>,
    sub: Option<Value>,
    aud: Option<Value>,
    authorization_details: Option<Value>,
    mercure: Option<Value>,
}

/// A NumericDate (RFC 7519 §2): seconds since the epoch, possibly fractional (floored).
fn numeric_date(value: Option<&Value>, claim: &'static str) -> Result<Option<u64>, TokenError> {
    let Some(value) = value else { return Ok(None) };
    let invalid = TokenError::InvalidClaim { claim };
    if let Some(n) = value.as_u64() {
        return Ok(Some(n));
    }
    match value.as_f64() {
        // `as` saturates, so absurdly large dates stay absurdly large.
        Some(f) if f.is_finite() && f >= 0.0 => Ok(Some(f.floor() as u64)),
        _ => Err(invalid),
    }
}

fn optional_string(
    value: Option<&Value>,
    claim: &'static str,
) -> Result<Option<String>, TokenError> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(TokenError::InvalidClaim { claim }),
    }
}

/// Parses `authorization_details` strictly; the error is the reason, for logs.
fn parse_authorization_details(details: &Value, hub_url: &url::Url) -> Result<Vec<Grant>, String> {
    let Value::Array(entries) = details else {
        return Err("not an array".to_owned());
    };
    if entries.len() > MAX_AUTHORIZATION_DETAILS {
        return Err(format!(
            "{} entries; the limit is {MAX_AUTHORIZATION_DETAILS}",
            entries.len()
        ));
    }
    let mut grants = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Value::Object(entry) = entry else {
            return Err(format!("entry {i} is not an object"));
        };
        // RFC 9396 requires `type` on every detail; details of other types are not ours.
        match entry.get("type") {
            Some(Value::String(t)) if t == MERCURE_DETAIL_TYPE => {}
            Some(Value::String(_)) => continue,
            _ => return Err(format!("entry {i} has no string `type`")),
        }
        let actions = match entry.get("actions") {
            Some(Value::Array(actions)) if !actions.is_empty() => actions,
            _ => {
                return Err(format!(
                    "entry {i}: `actions` must be a non-empty array of strings"
                ));
            }
        };
        let (mut publish, mut subscribe) = (false, false);
        for action in actions {
            match action {
                Value::String(a) if a == "publish" => publish = true,
                Value::String(a) if a == "subscribe" => subscribe = true,
                // Actions from future specifications grant nothing but are not errors.
                Value::String(_) => {}
                _ => return Err(format!("entry {i}: `actions` must contain only strings")),
            }
        }
        let topics = match entry.get("topics") {
            Some(Value::Array(topics)) if !topics.is_empty() => topics,
            _ => return Err(format!("entry {i}: `topics` must be a non-empty array")),
        };
        if topics.len() > MAX_TOPICS_PER_DETAIL {
            return Err(format!(
                "entry {i}: {} topics; the limit is {MAX_TOPICS_PER_DETAIL}",
                topics.len()
            ));
        }
        let mut selectors = Vec::with_capacity(topics.len());
        for (j, topic) in topics.iter().enumerate() {
            let selector = parse_topic_matcher(topic, hub_url)
                .map_err(|reason| format!("entry {i}, topic {j}: {reason}"))?;
            selectors.push(selector);
        }
        let payload = match entry.get("payload") {
            None | Some(Value::Null) => None,
            Some(payload @ Value::Object(_)) => Some(payload.clone()),
            Some(_) => return Err(format!("entry {i}: `payload` must be an object")),
        };
        grants.push(Grant {
            publish,
            subscribe,
            topics: selectors,
            payload,
        });
    }
    Ok(grants)
}

/// One `{ "match": ..., "match_type": ... }` object.
fn parse_topic_matcher(topic: &Value, hub_url: &url::Url) -> Result<Selector, String> {
    let Value::Object(topic) = topic else {
        return Err("not an object".to_owned());
    };
    let Some(Value::String(value)) = topic.get("match") else {
        return Err("`match` must be a string".to_owned());
    };
    let matcher_type = match topic.get("match_type") {
        None => MatcherType::Exact,
        Some(Value::String(name)) => MatcherType::from_match_type(name)
            .ok_or_else(|| format!("unsupported match_type {:?}", sanitize(name)))?,
        Some(_) => return Err("`match_type` must be a string".to_owned()),
    };
    Selector::parse(matcher_type, value, hub_url).map_err(|e: SelectorError| e.to_string())
}

/// Parses the legacy `mercure` claim: `publish` and `subscribe` arrays of topic selectors, and
/// an optional `payload`.
fn parse_mercure_claim(mercure: &Value) -> Result<(Vec<Grant>, Option<Value>), String> {
    let Value::Object(mercure) = mercure else {
        return Err("not an object".to_owned());
    };
    let mut grants = Vec::new();
    for (key, publish) in [("publish", true), ("subscribe", false)] {
        let selectors = match mercure.get(key) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(items)) => items,
            Some(_) => return Err(format!("`{key}` must be an array of strings")),
        };
        if selectors.len() > MAX_TOPICS_PER_DETAIL {
            return Err(format!(
                "`{key}` has {} selectors; the limit is {MAX_TOPICS_PER_DETAIL}",
                selectors.len()
            ));
        }
        let mut topics = Vec::with_capacity(selectors.len());
        for (j, selector) in selectors.iter().enumerate() {
            let Value::String(selector) = selector else {
                return Err(format!("`{key}` must be an array of strings"));
            };
            let selector = Selector::legacy_topic(selector)
                .map_err(|e| format!("`{key}` selector {j}: {e}"))?;
            topics.push(selector);
        }
        grants.push(Grant {
            publish,
            subscribe: !publish,
            topics,
            payload: None,
        });
    }
    let payload = mercure.get("payload").filter(|p| !p.is_null()).cloned();
    Ok((grants, payload))
}

// ---------------------------------------------------------------------------------------------
// Grants
// ---------------------------------------------------------------------------------------------

/// Which protocol a token was verified under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenDialect {
    /// A draft-08 JWT access token (grants from `authorization_details`).
    AccessToken,
    /// A legacy (-07) token (grants from the `mercure` claim).
    Legacy,
}

/// One grant: actions on the topics some selectors match.
#[derive(Debug, Clone)]
struct Grant {
    publish: bool,
    subscribe: bool,
    topics: Vec<Selector>,
    /// Draft-08 `payload` of a subscribe detail.
    payload: Option<Value>,
}

/// What a verified token says and grants.
#[derive(Debug, Clone)]
pub struct Claims {
    /// `sub`: who the token was issued for.
    pub subject: Option<String>,
    /// `iss`: who issued it.
    pub issuer: Option<String>,
    /// `exp`, in Unix seconds: the hub closes a subscriber's connection by then.
    pub expires_at: u64,
    /// Which protocol the token was verified under.
    pub dialect: TokenDialect,
    /// In document order: payload selection depends on it.
    grants: Vec<Grant>,
    /// Legacy `mercure.payload`, attached to every subscription.
    legacy_payload: Option<Value>,
    /// Recent `subscribe` verdicts per topic, so a stream of private updates on the same
    /// topics costs a hash lookup per subscriber instead of matching every grant again (URL
    /// patterns run a regex: measured ~2.5 µs per subscriber per private update).
    read_verdicts: ReadVerdicts,
}

/// Bounded memo of [`Claims::can_subscribe`]: the claims never change, so a verdict never
/// goes stale; the map is cleared when full rather than tracking recency.
#[derive(Default)]
struct ReadVerdicts(Mutex<HashMap<Box<str>, bool>>);

/// Topics remembered per token before the memo starts over.
const READ_VERDICTS: usize = 256;

impl Clone for ReadVerdicts {
    fn clone(&self) -> Self {
        ReadVerdicts::default()
    }
}

impl fmt::Debug for ReadVerdicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReadVerdicts")
    }
}

impl Claims {
    /// Whether the token grants `publish` on `topic`. The hub checks every topic of an update
    /// (canonical and alternate) and refuses the whole update unless all are granted.
    pub fn can_publish(&self, topic: &str) -> bool {
        self.grants
            .iter()
            .any(|g| g.publish && g.topics.iter().any(|s| s.matches(topic)))
    }

    /// Whether the token grants `subscribe` on `topic`.
    pub fn can_subscribe(&self, topic: &str) -> bool {
        let mut verdicts = self
            .read_verdicts
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(verdict) = verdicts.get(topic) {
            return *verdict;
        }
        let verdict = self
            .grants
            .iter()
            .any(|g| g.subscribe && g.topics.iter().any(|s| s.matches(topic)));
        if verdicts.len() == READ_VERDICTS {
            verdicts.clear();
        }
        verdicts.insert(topic.into(), verdict);
        verdict
    }

    /// Whether the holder may receive a private update with these topics (canonical first,
    /// then alternates): a `subscribe` grant on any one of them suffices.
    ///
    /// Security: this is the only gate on private updates; the subscriber's own matchers never
    /// widen it.
    pub fn can_read(&self, topics: &[String]) -> bool {
        topics.iter().any(|topic| self.can_subscribe(topic))
    }

    /// The payload to attach to a subscription whose matcher string is `matcher`.
    ///
    /// Draft-08: the `payload` of the first `subscribe` detail, among those carrying one, whose
    /// topics match `matcher` treated as a topic (a `*` detail matches every subscription, so
    /// it serves as a default when placed last). Legacy: `mercure.payload`, for every
    /// subscription.
    pub fn payload_for(&self, matcher: &str) -> Option<&Value> {
        if self.dialect == TokenDialect::Legacy {
            return self.legacy_payload.as_ref();
        }
        self.grants
            .iter()
            .filter(|g| g.subscribe)
            .filter_map(|g| g.payload.as_ref().map(|p| (g, p)))
            .find(|(g, _)| g.topics.iter().any(|s| s.matches(matcher)))
            .map(|(_, payload)| payload)
    }

    /// Whether the token grants anything at all: an action on at least one topic matcher.
    /// (A legacy `mercure.publish: []` is a grant with no matcher: it grants nothing.)
    pub fn grants_anything(&self) -> bool {
        self.grants
            .iter()
            .any(|g| (g.publish || g.subscribe) && !g.topics.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const NOW: u64 = 1_767_225_300;
    const HUB: &str = "https://hub.example.com/.well-known/mercure";
    const SECRET: &[u8] = b"!ChangeThisMercureHubJWTSecretKey!";

    const RSA_PRIVATE: &[u8] = include_bytes!("../tests/keys/rsa_private.pem");
    const RSA_PUBLIC: &[u8] = include_bytes!("../tests/keys/rsa_public.pem");
    const P256_PRIVATE: &[u8] = include_bytes!("../tests/keys/ec_p256_private.pem");
    const P256_PUBLIC: &[u8] = include_bytes!("../tests/keys/ec_p256_public.pem");
    const P384_PRIVATE: &[u8] = include_bytes!("../tests/keys/ec_p384_private.pem");
    const P384_PUBLIC: &[u8] = include_bytes!("../tests/keys/ec_p384_public.pem");
    const ED_PRIVATE: &[u8] = include_bytes!("../tests/keys/ed25519_private.pem");
    const ED_PUBLIC: &[u8] = include_bytes!("../tests/keys/ed25519_public.pem");

    fn hub_url() -> url::Url {
        url::Url::parse(HUB).unwrap()
    }

    fn config(hmac: Option<&[u8]>, pem: Option<&[u8]>) -> VerifierConfig {
        VerifierConfig {
            hmac_secret: hmac.map(<[u8]>::to_vec),
            public_key_pem: pem.map(<[u8]>::to_vec),
            issuer: None,
            audience: HUB.to_owned(),
            legacy: false,
            hub_url: hub_url(),
        }
    }

    fn verifier(hmac: Option<&[u8]>, pem: Option<&[u8]>) -> TokenVerifier {
        TokenVerifier::new(config(hmac, pem)).unwrap()
    }

    fn legacy_verifier() -> TokenVerifier {
        TokenVerifier::new(VerifierConfig {
            legacy: true,
            ..config(Some(SECRET), None)
        })
        .unwrap()
    }

    fn detail(actions: &[&str], topics: Value) -> Value {
        json!({"type": MERCURE_DETAIL_TYPE, "actions": actions, "topics": topics})
    }

    /// Draft-08 claims granting `details`.
    fn claims(details: Value) -> Value {
        json!({
            "iss": "https://example.com",
            "aud": HUB,
            "sub": "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6",
            "client_id": "https://example.com",
            "iat": NOW - 10,
            "exp": NOW + 300,
            "jti": "urn:uuid:e70ff8d7-59d5-4a92-b0b7-505e8f6d09fa",
            "authorization_details": details,
        })
    }

    fn subscribe_all() -> Value {
        claims(json!([detail(&["subscribe"], json!([{"match": "*"}]))]))
    }

    fn at_header(alg: Algorithm) -> Header {
        Header {
            typ: Some("at+jwt".to_owned()),
            ..Header::new(alg)
        }
    }

    fn mint_with(header: &Header, claims: &Value, key: &EncodingKey) -> String {
        encode(header, claims, key).unwrap()
    }

    fn mint_hs(claims: &Value) -> String {
        mint_with(
            &at_header(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(SECRET),
        )
    }

    fn b64url(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }

    /// A token with any header and claims and a given signature part.
    fn forge(header: &Value, claims: &Value, signature: &str) -> String {
        format!(
            "{}.{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes()),
            signature
        )
    }

    // --- keys and algorithms ---------------------------------------------------------------

    #[test]
    fn every_algorithm_is_accepted_with_its_key() {
        let claims = subscribe_all();
        // (algorithm, HMAC secret, public key, signing key)
        type Case = (
            Algorithm,
            Option<&'static [u8]>,
            Option<&'static [u8]>,
            EncodingKey,
        );
        let cases: &[Case] = &[
            (
                Algorithm::HS256,
                Some(SECRET),
                None,
                EncodingKey::from_secret(SECRET),
            ),
            (
                Algorithm::HS384,
                Some(SECRET),
                None,
                EncodingKey::from_secret(SECRET),
            ),
            (
                Algorithm::HS512,
                Some(SECRET),
                None,
                EncodingKey::from_secret(SECRET),
            ),
            (
                Algorithm::RS256,
                None,
                Some(RSA_PUBLIC),
                EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
            ),
            (
                Algorithm::RS384,
                None,
                Some(RSA_PUBLIC),
                EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
            ),
            (
                Algorithm::RS512,
                None,
                Some(RSA_PUBLIC),
                EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
            ),
            (
                Algorithm::ES256,
                None,
                Some(P256_PUBLIC),
                EncodingKey::from_ec_pem(P256_PRIVATE).unwrap(),
            ),
            (
                Algorithm::ES384,
                None,
                Some(P384_PUBLIC),
                EncodingKey::from_ec_pem(P384_PRIVATE).unwrap(),
            ),
            (
                Algorithm::EdDSA,
                None,
                Some(ED_PUBLIC),
                EncodingKey::from_ed_pem(ED_PRIVATE).unwrap(),
            ),
            // Both keys configured: each family finds its own.
            (
                Algorithm::HS256,
                Some(SECRET),
                Some(P256_PUBLIC),
                EncodingKey::from_secret(SECRET),
            ),
            (
                Algorithm::ES256,
                Some(SECRET),
                Some(P256_PUBLIC),
                EncodingKey::from_ec_pem(P256_PRIVATE).unwrap(),
            ),
        ];
        for (alg, hmac, pem, key) in cases {
            let token = mint_with(&at_header(*alg), &claims, key);
            let verified = verifier(*hmac, *pem).verify_at(&token, NOW);
            let claims = verified.unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            assert!(claims.can_subscribe("https://example.com/x"), "{alg:?}");
        }
    }

    #[test]
    fn public_key_kinds_allow_only_their_algorithms() {
        let names = |v: &TokenVerifier| v.algorithms().collect::<Vec<_>>();
        assert_eq!(names(&verifier(None, Some(RSA_PUBLIC))), RSA_ALGORITHMS);
        assert_eq!(names(&verifier(None, Some(P256_PUBLIC))), P256_ALGORITHMS);
        assert_eq!(names(&verifier(None, Some(P384_PUBLIC))), P384_ALGORITHMS);
        assert_eq!(names(&verifier(None, Some(ED_PUBLIC))), ED25519_ALGORITHMS);
        assert_eq!(names(&verifier(Some(SECRET), None)), HMAC_ALGORITHMS);

        // ES384 token against a P-256 key, RS256 against EC, PS256 (not allowed) against RSA.
        let claims = subscribe_all();
        let es384 = mint_with(
            &at_header(Algorithm::ES384),
            &claims,
            &EncodingKey::from_ec_pem(P384_PRIVATE).unwrap(),
        );
        assert_eq!(
            verifier(None, Some(P256_PUBLIC))
                .verify_at(&es384, NOW)
                .unwrap_err(),
            TokenError::AlgNotAllowed {
                alg: "ES384".into()
            }
        );
        let rs256 = mint_with(
            &at_header(Algorithm::RS256),
            &claims,
            &EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
        );
        assert!(matches!(
            verifier(None, Some(ED_PUBLIC)).verify_at(&rs256, NOW),
            Err(TokenError::AlgNotAllowed { .. })
        ));
        let ps256 = mint_with(
            &at_header(Algorithm::PS256),
            &claims,
            &EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
        );
        assert_eq!(
            verifier(None, Some(RSA_PUBLIC))
                .verify_at(&ps256, NOW)
                .unwrap_err(),
            TokenError::AlgNotAllowed {
                alg: "PS256".into()
            }
        );
    }

    #[test]
    fn alg_none_is_refused() {
        let token = forge(
            &json!({"alg": "none", "typ": "at+jwt"}),
            &subscribe_all(),
            "",
        );
        for v in [
            verifier(Some(SECRET), None),
            verifier(Some(SECRET), Some(RSA_PUBLIC)),
            legacy_verifier(),
        ] {
            assert_eq!(
                v.verify_at(&token, NOW).unwrap_err(),
                TokenError::AlgNotAllowed { alg: "none".into() }
            );
        }
        let token = forge(
            &json!({"alg": "None", "typ": "at+jwt"}),
            &subscribe_all(),
            "",
        );
        assert!(matches!(
            verifier(Some(SECRET), None).verify_at(&token, NOW),
            Err(TokenError::AlgNotAllowed { .. })
        ));
    }

    #[test]
    fn hmac_token_against_rsa_only_config_is_refused() {
        let token = mint_hs(&subscribe_all());
        assert_eq!(
            verifier(None, Some(RSA_PUBLIC))
                .verify_at(&token, NOW)
                .unwrap_err(),
            TokenError::AlgNotAllowed {
                alg: "HS256".into()
            }
        );
    }

    #[test]
    fn algorithm_confusion_is_refused() {
        // The classic attack: sign HS256 with the server's *public* key as the HMAC secret.
        let token = mint_with(
            &at_header(Algorithm::HS256),
            &subscribe_all(),
            &EncodingKey::from_secret(RSA_PUBLIC),
        );
        assert_eq!(
            verifier(None, Some(RSA_PUBLIC))
                .verify_at(&token, NOW)
                .unwrap_err(),
            TokenError::AlgNotAllowed {
                alg: "HS256".into()
            }
        );
        // With an HMAC secret configured too, the HMAC key is the configured secret, not the PEM.
        assert_eq!(
            verifier(Some(SECRET), Some(RSA_PUBLIC))
                .verify_at(&token, NOW)
                .unwrap_err(),
            TokenError::BadSignature
        );
    }

    #[test]
    fn bad_signature_and_embedded_keys() {
        let token = mint_with(
            &at_header(Algorithm::HS256),
            &subscribe_all(),
            &EncodingKey::from_secret(b"another secret"),
        );
        assert_eq!(
            verifier(Some(SECRET), None)
                .verify_at(&token, NOW)
                .unwrap_err(),
            TokenError::BadSignature
        );

        // A tampered payload under a valid signature.
        let good = mint_hs(&subscribe_all());
        let parts: Vec<&str> = good.split('.').collect();
        let mut tampered_claims = subscribe_all();
        tampered_claims["sub"] = json!("admin");
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            b64url(tampered_claims.to_string().as_bytes()),
            parts[2]
        );
        assert_eq!(
            verifier(Some(SECRET), None)
                .verify_at(&tampered, NOW)
                .unwrap_err(),
            TokenError::BadSignature
        );

        // Key references in the header (`jku`, `kid`) are never followed: the configured key
        // decides, so a token signed by a key the hub does not hold fails.
        let attacker = EncodingKey::from_ec_pem(P384_PRIVATE).unwrap();
        let mut header = at_header(Algorithm::ES384);
        header.jku = Some("https://attacker.example/jwks".into());
        header.kid = Some("attacker".into());
        let token = mint_with(&header, &subscribe_all(), &attacker);
        assert!(matches!(
            verifier(Some(SECRET), Some(P256_PUBLIC)).verify_at(&token, NOW),
            Err(TokenError::AlgNotAllowed { .. })
        ));
        let ours = EncodingKey::from_ec_pem(P256_PRIVATE).unwrap();
        let mut header = at_header(Algorithm::ES256);
        header.jku = Some("https://attacker.example/jwks".into());
        let token = mint_with(&header, &subscribe_all(), &ours);
        assert!(
            verifier(None, Some(P256_PUBLIC))
                .verify_at(&token, NOW)
                .is_ok(),
            "jku ignored"
        );
    }

    #[test]
    fn crit_header_is_refused() {
        let mut header = at_header(Algorithm::HS256);
        header.crit = Some(vec!["exp".into()]);
        let token = mint_with(&header, &subscribe_all(), &EncodingKey::from_secret(SECRET));
        assert_eq!(
            verifier(Some(SECRET), None)
                .verify_at(&token, NOW)
                .unwrap_err(),
            TokenError::UnsupportedCritical
        );
    }

    #[test]
    fn config_errors() {
        let err = |c: VerifierConfig| TokenVerifier::new(c).unwrap_err();
        assert_eq!(err(config(None, None)), AuthConfigError::NoKey);
        assert_eq!(err(config(Some(b""), None)), AuthConfigError::EmptySecret);
        assert_eq!(
            err(VerifierConfig {
                audience: String::new(),
                ..config(Some(SECRET), None)
            }),
            AuthConfigError::EmptyAudience
        );
        assert_eq!(
            err(config(None, Some(RSA_PRIVATE))),
            AuthConfigError::PrivateKey
        );
        assert_eq!(
            err(config(None, Some(ED_PRIVATE))),
            AuthConfigError::PrivateKey
        );
        assert_eq!(
            err(config(None, Some(b"not a pem"))),
            AuthConfigError::NotPublicKeyPem
        );
        assert!(matches!(
            err(config(
                None,
                Some(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
            )),
            AuthConfigError::UnsupportedKey { .. }
        ));
        // A 1024-bit RSA key (SPKI), made with `openssl genpkey -algorithm RSA -pkeyopt
        // rsa_keygen_bits:1024 | openssl pkey -pubout`.
        let weak = b"-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCoktRKVhJOOo7+eiNx/le74XEb
vP6ewZm9MSDagq5fGBXWMJl1UjR/nGTuixnJKlZWjDcfvl64zyFkO+HXAFzQn1yM
fh9JjnfYIThkuzG6os/HmsgMKAB+fT/vqMIPcFFK9HmbW4X/9Tw4wLNURYKXwYen
VqHi60qJ0hsVkLkykQIDAQAB
-----END PUBLIC KEY-----
";
        assert_eq!(
            err(config(None, Some(weak))),
            AuthConfigError::WeakRsaKey { bits: 1024 }
        );
        // Debug never shows the secret.
        let debug = format!("{:?}", config(Some(SECRET), None));
        assert!(!debug.contains("ChangeThis"), "{debug}");
        let debug = format!("{:?}", verifier(Some(SECRET), None));
        assert!(!debug.contains("ChangeThis"), "{debug}");
    }

    // --- registered claims ------------------------------------------------------------------

    #[test]
    fn expiry_and_not_before() {
        let v = verifier(Some(SECRET), None);
        let mut c = subscribe_all();
        c["exp"] = json!(NOW);
        assert_eq!(
            v.verify_at(&mint_hs(&c), NOW).unwrap_err(),
            TokenError::Expired
        );
        assert!(v.verify_at(&mint_hs(&c), NOW - 1).is_ok());
        c["exp"] = json!(NOW - 3600);
        assert_eq!(
            v.verify_at(&mint_hs(&c), NOW).unwrap_err(),
            TokenError::Expired
        );

        let mut c = subscribe_all();
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            v.verify_at(&mint_hs(&c), NOW).unwrap_err(),
            TokenError::MissingClaim { claim: "exp" }
        );
        c["exp"] = json!("tomorrow");
        assert!(v.verify_at(&mint_hs(&c), NOW).is_err());
        c["exp"] = json!((NOW + 10) as f64 + 0.5);
        assert_eq!(v.verify_at(&mint_hs(&c), NOW).unwrap().expires_at, NOW + 10);

        let mut c = subscribe_all();
        c["nbf"] = json!(NOW + 60);
        assert_eq!(
            v.verify_at(&mint_hs(&c), NOW).unwrap_err(),
            TokenError::NotYetValid
        );
        c["nbf"] = json!(NOW + NBF_LEEWAY_SECS);
        assert!(v.verify_at(&mint_hs(&c), NOW).is_ok(), "within the leeway");
        c["nbf"] = json!(NOW + NBF_LEEWAY_SECS + 1);
        assert_eq!(
            v.verify_at(&mint_hs(&c), NOW).unwrap_err(),
            TokenError::NotYetValid
        );
    }

    #[test]
    fn remembered_tokens_still_expire_and_wait_for_nbf() {
        let v = verifier(Some(SECRET), None);
        let mut c = subscribe_all();
        c["exp"] = json!(NOW + 10);
        c["nbf"] = json!(NOW + 20);
        let token = mint_hs(&c);
        // Refused before nbf, and a refusal is not remembered.
        assert_eq!(
            v.verify_cached_at(&token, NOW).unwrap_err(),
            TokenError::NotYetValid
        );
        c["nbf"] = json!(NOW - 5);
        let token = mint_hs(&c);
        let first = v.verify_cached_at(&token, NOW).unwrap();
        let again = v.verify_cached_at(&token, NOW + 9).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second answer comes from memory"
        );
        assert_eq!(
            again.expires_at,
            v.verify_at(&token, NOW).unwrap().expires_at
        );
        assert_eq!(
            v.verify_cached_at(&token, NOW + 10).unwrap_err(),
            v.verify_at(&token, NOW + 10).unwrap_err(),
            "expired from memory exactly when a full check says so"
        );
        // A clock stepping back before nbf refuses the remembered token too.
        let token_later = {
            c["nbf"] = json!(NOW);
            mint_hs(&c)
        };
        v.verify_cached_at(&token_later, NOW).unwrap();
        assert_eq!(
            v.verify_cached_at(&token_later, NOW - NBF_LEEWAY_SECS - 1)
                .unwrap_err(),
            TokenError::NotYetValid
        );
    }

    #[test]
    fn a_tampered_token_is_not_answered_from_memory() {
        let v = verifier(Some(SECRET), None);
        let token = mint_hs(&subscribe_all());
        v.verify_cached_at(&token, NOW).unwrap();
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(v.verify_cached_at(&tampered, NOW).is_err());
        // Another verifier (other keys) has its own memory.
        let other =
            TokenVerifier::new(config(Some(b"another-secret-of-enough-length!"), None)).unwrap();
        assert_eq!(
            other.verify_cached_at(&token, NOW).unwrap_err(),
            TokenError::BadSignature
        );
    }

    #[test]
    fn the_token_memory_is_bounded() {
        let v = verifier(Some(SECRET), None);
        for n in 0..VERIFIED_TOKENS + 10 {
            let mut c = subscribe_all();
            c["jti"] = json!(format!("token-{n}"));
            v.verify_cached_at(&mint_hs(&c), NOW).unwrap();
            assert!(v.verified.0.lock().unwrap().len() <= VERIFIED_TOKENS);
        }
    }

    #[test]
    fn audience() {
        let v = verifier(Some(SECRET), None);
        let mut c = subscribe_all();
        c["aud"] = json!("https://other-hub.example/.well-known/mercure");
        assert_eq!(
            v.verify_at(&mint_hs(&c), NOW).unwrap_err(),
            TokenError::WrongAudience
        );
        c["aud"] = json!(["https://api.example", HUB]);
        assert!(v.verify_at(&mint_hs(&c), NOW).is_ok());
        c["aud"] = json!(["https://api.example"]);
        assert_eq!(
            v.verify_at(&mint_hs(&c), NOW).unwrap_err(),
            TokenError::WrongAudience
        );
        c["aud"] = json!([HUB, 7]);
        assert_eq!(
            v.verify_at(&mint_hs(&c), NOW).unwrap_err(),
            TokenError::InvalidClaim { claim: "aud" }
        );
        c.as_object_mut().unwrap().remove("aud");
        assert_eq!(
            v.verify_at(&mint_hs(&c), NOW).unwrap_err(),
            TokenError::MissingClaim { claim: "aud" }
        );
    }

    #[test]
    fn issuer() {
        let v = TokenVerifier::new(VerifierConfig {
            issuer: Some("https://example.com".into()),
            ..config(Some(SECRET), None)
        })
        .unwrap();
        let ok = v.verify_at(&mint_hs(&subscribe_all()), NOW).unwrap();
        assert_eq!(ok.issuer.as_deref(), Some("https://example.com"));
        assert_eq!(
            ok.subject.as_deref(),
            Some("urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6")
        );
        let mut c = subscribe_all();
        c["iss"] = json!("https://evil.example");
        assert_eq!(
            v.verify_at(&mint_hs(&c), NOW).unwrap_err(),
            TokenError::WrongIssuer
        );
        c["iss"] = json!(["https://example.com"]);
        assert_eq!(
            v.verify_at(&mint_hs(&c), NOW).unwrap_err(),
            TokenError::InvalidClaim { claim: "iss" }
        );
        c.as_object_mut().unwrap().remove("iss");
        assert_eq!(
            v.verify_at(&mint_hs(&c), NOW).unwrap_err(),
            TokenError::MissingClaim { claim: "iss" }
        );
        // Without a configured issuer, any `iss` is accepted but one is still required.
        let open = verifier(Some(SECRET), None);
        assert_eq!(
            open.verify_at(&mint_hs(&c), NOW).unwrap_err(),
            TokenError::MissingClaim { claim: "iss" }
        );
    }

    #[test]
    fn access_token_type() {
        let v = verifier(Some(SECRET), None);
        let key = EncodingKey::from_secret(SECRET);
        for typ in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/At+Jwt",
        ] {
            let header = Header {
                typ: Some(typ.into()),
                ..Header::new(Algorithm::HS256)
            };
            assert!(
                v.verify_at(&mint_with(&header, &subscribe_all(), &key), NOW)
                    .is_ok(),
                "{typ}"
            );
        }
        for typ in [
            Some("JWT"),
            Some("jwt"),
            Some("application/jwt"),
            Some("at+jwt+x"),
            Some("application/"),
            None,
        ] {
            let header = Header {
                typ: typ.map(Into::into),
                ..Header::new(Algorithm::HS256)
            };
            assert_eq!(
                v.verify_at(&mint_with(&header, &subscribe_all(), &key), NOW)
                    .unwrap_err(),
                TokenError::BadType,
                "{typ:?}"
            );
            // Legacy mode does not relax it for tokens with authorization_details.
            assert_eq!(
                legacy_verifier()
                    .verify_at(&mint_with(&header, &subscribe_all(), &key), NOW)
                    .unwrap_err(),
                TokenError::BadType,
                "{typ:?}"
            );
        }
    }

    #[test]
    fn malformed_and_oversized() {
        let v = verifier(Some(SECRET), None);
        for token in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "a.b.c",
            "!!!.e30.x",
            "e30.e30.x",
            "eyJhbGciOjF9.e30.x",
        ] {
            let err = v.verify_at(token, NOW).unwrap_err();
            assert!(
                matches!(err, TokenError::Malformed { .. }),
                "{token:?}: {err:?}"
            );
        }
        let mut c = subscribe_all();
        c["padding"] = json!("x".repeat(MAX_TOKEN_LEN));
        let big = mint_hs(&c);
        assert_eq!(
            v.verify_at(&big, NOW).unwrap_err(),
            TokenError::TooLarge {
                len: big.len(),
                max: MAX_TOKEN_LEN
            }
        );
        // Error messages never contain the token.
        let token = mint_hs(&json!({"exp": NOW - 1, "iss": "x", "aud": HUB}));
        let message = v.verify_at(&token, NOW).unwrap_err().to_string();
        assert!(!message.contains(&token[..20]), "{message}");
    }

    // --- grants -----------------------------------------------------------------------------

    #[test]
    fn draft08_grants() {
        let v = verifier(Some(SECRET), None);
        let c = claims(json!([
            detail(&["publish"], json!([{"match": "https://example.com/books/:id", "match_type": "urlpattern"}])),
            detail(&["subscribe", "future-action"], json!([
                {"match": "https://example.com/books/1", "match_type": "exact"},
                {"match": "https://example.com/books/7"},
            ])),
            {"type": "https://other.example/detail", "actions": [1, 2], "whatever": true},
        ]));
        let claims = v.verify_at(&mint_hs(&c), NOW).unwrap();
        assert_eq!(claims.dialect, TokenDialect::AccessToken);
        assert!(claims.can_publish("https://example.com/books/99"));
        assert!(!claims.can_publish("https://example.com/authors/1"));
        assert!(claims.can_subscribe("https://example.com/books/1"));
        assert!(
            !claims.can_subscribe("https://example.com/books/2"),
            "routing never widens reads"
        );
        assert!(
            !claims.can_subscribe("https://example.com/books/99"),
            "publish grants don't read"
        );
        assert!(claims.grants_anything());
        assert_eq!(claims.expires_at, NOW + 300);
    }

    /// The verdict memo must never change an answer: asked again, after other topics, and
    /// after it filled up and started over.
    #[test]
    fn remembered_subscribe_verdicts_are_the_computed_ones() {
        let v = verifier(Some(SECRET), None);
        let c = claims(json!([detail(
            &["subscribe"],
            json!([
                {"match": "https://example.com/users/:id/inbox", "match_type": "urlpattern"},
            ])
        )]));
        let claims = v.verify_at(&mint_hs(&c), NOW).unwrap();
        let granted = "https://example.com/users/7/inbox";
        let refused = "https://example.com/users/7/outbox";
        for round in 0..3 {
            assert!(claims.can_subscribe(granted), "round {round}");
            assert!(!claims.can_subscribe(refused), "round {round}");
            for n in 0..(READ_VERDICTS + 10) {
                let other = format!("https://example.com/users/{n}/inbox");
                assert!(claims.can_subscribe(&other));
                assert!(!claims.can_subscribe(&format!("{other}/x")));
            }
        }
        // A clone (one per connection) starts with its own, empty memo, and agrees.
        let copy = claims.clone();
        assert!(copy.can_subscribe(granted) && !copy.can_subscribe(refused));
    }

    #[test]
    fn private_read_with_alternate_topics() {
        let v = verifier(Some(SECRET), None);
        let c = claims(json!([detail(
            &["subscribe"],
            json!([
                {"match": "https://example.com/users/42/*", "match_type": "urlpattern"}
            ])
        )]));
        let claims = v.verify_at(&mint_hs(&c), NOW).unwrap();
        let topics = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(!claims.can_read(&topics(&["https://example.com/books/1"])));
        assert!(claims.can_read(&topics(&[
            "https://example.com/books/1",
            "https://example.com/users/42/books/1"
        ])));
        assert!(!claims.can_read(&topics(&[
            "https://example.com/books/1",
            "https://example.com/users/43/books/1"
        ])));
        assert!(!claims.can_read(&[]));
    }

    #[test]
    fn relative_url_pattern_grants_resolve_against_hub() {
        let v = verifier(Some(SECRET), None);
        let c = claims(json!([detail(
            &["subscribe"],
            json!([
                {"match": "/.well-known/mercure/subscriptions{/:topic}?{/:subscriber}?", "match_type": "urlpattern"}
            ])
        )]));
        let claims = v.verify_at(&mint_hs(&c), NOW).unwrap();
        assert!(claims.can_subscribe("/.well-known/mercure/subscriptions/a/b"));
        assert!(
            claims.can_subscribe("https://hub.example.com/.well-known/mercure/subscriptions/a/b")
        );
        assert!(!claims.can_subscribe("https://example.com/.well-known/mercure/subscriptions/a/b"));
    }

    #[test]
    fn no_grants_is_a_valid_token() {
        let v = verifier(Some(SECRET), None);
        let mut c = subscribe_all();
        c.as_object_mut().unwrap().remove("authorization_details");
        let claims = v.verify_at(&mint_hs(&c), NOW).unwrap();
        assert!(!claims.grants_anything());
        assert!(!claims.can_subscribe("https://example.com/x"));
        assert!(!claims.can_publish("https://example.com/x"));
        assert_eq!(claims.payload_for("*"), None);
        // Only non-Mercure details: valid, grants nothing.
        let c = claims_with_other_detail();
        assert!(!v.verify_at(&mint_hs(&c), NOW).unwrap().grants_anything());
    }

    fn claims_with_other_detail() -> Value {
        claims(
            json!([{"type": "payment_initiation", "actions": ["initiate"], "locations": ["https://bank"]}]),
        )
    }

    #[test]
    fn bad_authorization_details() {
        let v = verifier(Some(SECRET), None);
        let exact = json!([{"match": "https://example.com/x"}]);
        let cases: Vec<(Value, &str)> = vec![
            (json!({"type": MERCURE_DETAIL_TYPE}), "not an array"),
            (json!(["string"]), "entry 0 is not an object"),
            (
                json!([{"actions": ["publish"], "topics": exact}]),
                "entry 0 has no string `type`",
            ),
            (
                json!([{"type": MERCURE_DETAIL_TYPE, "topics": exact}]),
                "entry 0: `actions`",
            ),
            (
                json!([detail(&[], exact.clone())]),
                "entry 0: `actions` must be a non-empty",
            ),
            (
                json!([{"type": MERCURE_DETAIL_TYPE, "actions": ["publish", 1], "topics": exact}]),
                "contain only strings",
            ),
            (
                json!([{"type": MERCURE_DETAIL_TYPE, "actions": "publish", "topics": exact}]),
                "entry 0: `actions`",
            ),
            (
                json!([detail(&["publish"], json!([]))]),
                "entry 0: `topics` must be a non-empty array",
            ),
            (
                json!([detail(&["publish"], json!("https://example.com/x"))]),
                "entry 0: `topics`",
            ),
            (
                json!([detail(&["publish"], json!(["https://example.com/x"]))]),
                "entry 0, topic 0: not an object",
            ),
            (
                json!([detail(&["publish"], json!([{"match_type": "exact"}]))]),
                "`match` must be a string",
            ),
            (
                json!([detail(&["publish"], json!([{"match": 3}]))]),
                "`match` must be a string",
            ),
            (
                json!([detail(
                    &["publish"],
                    json!([{"match": "x", "match_type": "regex"}])
                )]),
                "unsupported match_type \"regex\"",
            ),
            (
                json!([detail(
                    &["publish"],
                    json!([{"match": "x", "match_type": "URLPattern"}])
                )]),
                "unsupported match_type",
            ),
            (
                json!([detail(
                    &["publish"],
                    json!([{"match": "x", "match_type": "uritemplate"}])
                )]),
                "unsupported match_type",
            ),
            (
                json!([detail(
                    &["publish"],
                    json!([{"match": "*", "match_type": "regex"}])
                )]),
                "unsupported match_type",
            ),
            (
                json!([detail(
                    &["publish"],
                    json!([{"match": "x", "match_type": null}])
                )]),
                "`match_type` must be a string",
            ),
            (
                json!([detail(
                    &["publish"],
                    json!([{"match": "https://example.com/(", "match_type": "urlpattern"}])
                )]),
                "entry 0, topic 0: invalid matcher",
            ),
            (
                json!([detail(&["publish"], json!([{"match": ""}]))]),
                "matcher is empty",
            ),
            (
                json!([detail(&["publish"], json!([{"match": "a\u{202E}b"}]))]),
                "Unicode format character",
            ),
            (
                json!([detail(&["publish"], json!([{"match": "x".repeat(3000)}]))]),
                "matcher is 3000 bytes long",
            ),
            (
                json!([{"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": exact, "payload": "str"}]),
                "`payload` must be an object",
            ),
            (
                json!([
                    detail(&["publish"], exact.clone()),
                    detail(&["publish"], json!([{}]))
                ]),
                "entry 1, topic 0",
            ),
        ];
        for (details, expected) in cases {
            let err = v
                .verify_at(&mint_hs(&claims(details.clone())), NOW)
                .unwrap_err();
            let TokenError::BadAuthorizationDetails { reason } = &err else {
                panic!("{details}: {err:?}");
            };
            assert!(
                reason.contains(expected),
                "{details}: {reason:?} lacks {expected:?}"
            );
        }
    }

    #[test]
    fn authorization_details_limits() {
        let v = verifier(Some(SECRET), None);
        // Every entry counts, Mercure or not (short foreign entries keep the token small).
        let mut details = vec![json!({"type": "x"}); MAX_AUTHORIZATION_DETAILS];
        details[0] = detail(&["subscribe"], json!([{"match": "a"}]));
        assert!(
            v.verify_at(&mint_hs(&claims(Value::Array(details.clone()))), NOW)
                .is_ok()
        );
        details.push(json!({"type": "x"}));
        let err = v
            .verify_at(&mint_hs(&claims(Value::Array(details))), NOW)
            .unwrap_err();
        assert!(
            err.to_string().contains("65 entries; the limit is 64"),
            "{err}"
        );

        let topics = Value::Array(vec![json!({"match": "a"}); MAX_TOPICS_PER_DETAIL + 1]);
        let err = v
            .verify_at(
                &mint_hs(&claims(json!([detail(&["publish"], topics)]))),
                NOW,
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("257 topics; the limit is 256"),
            "{err}"
        );
    }

    #[test]
    fn payload_selection_order() {
        let v = verifier(Some(SECRET), None);
        let c = claims(json!([
            {"type": MERCURE_DETAIL_TYPE, "actions": ["publish"], "topics": [{"match": "*"}], "payload": {"never": "publish details carry no payload"}},
            {"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "https://example.com/none"}]},
            {"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "https://example.com/foo"}], "payload": {"custom1": "foo"}},
            {"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "https://example.com/bar/:id", "match_type": "urlpattern"}], "payload": {"custom2": "bar"}},
            {"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "*"}], "payload": {"custom3": "default"}},
            {"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "https://example.com/late"}], "payload": {"masked": true}},
        ]));
        let claims = v.verify_at(&mint_hs(&c), NOW).unwrap();
        assert_eq!(
            claims.payload_for("https://example.com/foo"),
            Some(&json!({"custom1": "foo"}))
        );
        // The subscription's own urlpattern matcher string, treated as a topic.
        assert_eq!(
            claims.payload_for("https://example.com/bar/:id"),
            Some(&json!({"custom2": "bar"}))
        );
        assert_eq!(
            claims.payload_for("https://example.com/bar/1"),
            Some(&json!({"custom2": "bar"}))
        );
        assert_eq!(
            claims.payload_for("https://example.com/none"),
            Some(&json!({"custom3": "default"})),
            "a detail without payload does not stop the search"
        );
        assert_eq!(
            claims.payload_for("https://example.com/late"),
            Some(&json!({"custom3": "default"})),
            "the broad default masks later entries"
        );
        assert_eq!(
            claims.payload_for("*"),
            Some(&json!({"custom3": "default"}))
        );
    }

    // --- legacy -----------------------------------------------------------------------------

    fn legacy_claims() -> Value {
        json!({
            "exp": NOW + 300,
            "mercure": {
                "publish": ["https://example.com/books/{id}", "https://example.com/news"],
                "subscribe": ["https://example.com/users/foo/{?topic}"],
                "payload": {"user": "https://example.com/users/foo", "groups": ["a"]},
            }
        })
    }

    fn mint_legacy(claims: &Value) -> String {
        mint_with(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(SECRET),
        )
    }

    #[test]
    fn legacy_tokens_need_legacy_mode() {
        let token = mint_legacy(&legacy_claims());
        assert_eq!(
            verifier(Some(SECRET), None)
                .verify_at(&token, NOW)
                .unwrap_err(),
            TokenError::LegacyDisabled
        );
        let claims = legacy_verifier().verify_at(&token, NOW).unwrap();
        assert_eq!(claims.dialect, TokenDialect::Legacy);
        assert!(claims.can_publish("https://example.com/books/1"));
        assert!(
            claims.can_publish("https://example.com/books/{id}"),
            "-07: identical strings match"
        );
        assert!(claims.can_publish("https://example.com/news"));
        assert!(!claims.can_publish("https://example.com/books/1/2"));
        assert!(!claims.can_subscribe("https://example.com/books/1"));
        // The -07 alternate-topic example.
        let topics = vec![
            "https://example.com/books/1".to_string(),
            "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1"
                .to_string(),
        ];
        assert!(claims.can_read(&topics));
        assert!(!claims.can_read(&topics[..1]));
        // mercure.payload goes with every subscription.
        let payload = json!({"user": "https://example.com/users/foo", "groups": ["a"]});
        assert_eq!(
            claims.payload_for("https://example.com/anything/{x}"),
            Some(&payload)
        );
    }

    #[test]
    fn legacy_wildcard_and_typ_jwt() {
        let c = json!({"exp": NOW + 60, "mercure": {"publish": ["*"], "subscribe": ["*"]}});
        let header = Header {
            typ: Some("JWT".into()),
            ..Header::new(Algorithm::HS256)
        };
        let token = mint_with(&header, &c, &EncodingKey::from_secret(SECRET));
        let claims = legacy_verifier().verify_at(&token, NOW).unwrap();
        assert!(claims.can_publish("anything"));
        assert!(claims.can_read(&["x".to_string()]));
        assert_eq!(claims.payload_for("x"), None);
    }

    #[test]
    fn legacy_checks_iss_and_aud_when_present() {
        let v = TokenVerifier::new(VerifierConfig {
            issuer: Some("https://example.com".into()),
            legacy: true,
            ..config(Some(SECRET), None)
        })
        .unwrap();
        let mut c = legacy_claims();
        assert!(
            v.verify_at(&mint_legacy(&c), NOW).is_ok(),
            "no iss, no aud: accepted"
        );
        c["iss"] = json!("https://evil.example");
        assert_eq!(
            v.verify_at(&mint_legacy(&c), NOW).unwrap_err(),
            TokenError::WrongIssuer
        );
        c["iss"] = json!("https://example.com");
        c["aud"] = json!("https://other-hub.example");
        assert_eq!(
            v.verify_at(&mint_legacy(&c), NOW).unwrap_err(),
            TokenError::WrongAudience
        );
        c["aud"] = json!([HUB]);
        assert!(v.verify_at(&mint_legacy(&c), NOW).is_ok());
        // exp is required for legacy tokens too.
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            v.verify_at(&mint_legacy(&c), NOW).unwrap_err(),
            TokenError::MissingClaim { claim: "exp" }
        );
    }

    #[test]
    fn legacy_mode_still_checks_access_tokens_fully() {
        // `typ: at+jwt` makes it a draft-08 token even without authorization_details.
        let mut c = subscribe_all();
        c.as_object_mut().unwrap().remove("authorization_details");
        c["aud"] = json!("https://other-hub.example");
        assert_eq!(
            legacy_verifier().verify_at(&mint_hs(&c), NOW).unwrap_err(),
            TokenError::WrongAudience
        );
        // A draft-08 token with a stray mercure claim: the claim grants nothing.
        let mut c = subscribe_all();
        c["mercure"] = json!({"publish": ["*"]});
        let claims = legacy_verifier().verify_at(&mint_hs(&c), NOW).unwrap();
        assert!(!claims.can_publish("x"));
        assert!(claims.can_subscribe("x"));
    }

    #[test]
    fn bad_mercure_claim() {
        for mercure in [
            json!("publish"),
            json!({"publish": "*"}),
            json!({"subscribe": [1]}),
            json!({"publish": [""]}),
            json!({"publish": ["a\nb"]}),
            json!({"subscribe": vec!["a"; MAX_TOPICS_PER_DETAIL + 1]}),
        ] {
            let token = mint_legacy(&json!({"exp": NOW + 60, "mercure": mercure}));
            let err = legacy_verifier().verify_at(&token, NOW).unwrap_err();
            assert!(
                matches!(err, TokenError::BadMercureClaim { .. }),
                "{mercure}: {err:?}"
            );
        }
        // No mercure claim at all: valid, grants nothing.
        let token = mint_legacy(&json!({"exp": NOW + 60}));
        assert!(
            !legacy_verifier()
                .verify_at(&token, NOW)
                .unwrap()
                .grants_anything()
        );
    }

    /// Found by the `token` fuzz target: a legacy claim with empty selector lists made
    /// `grants_anything` say yes although no topic could ever be matched.
    #[test]
    fn legacy_empty_selector_lists_grant_nothing() {
        let token =
            mint_legacy(&json!({"exp": NOW + 60, "mercure": {"publish": [], "subscribe": []}}));
        let claims = legacy_verifier().verify_at(&token, NOW).unwrap();
        assert!(!claims.grants_anything());
        assert!(!claims.can_publish("x") && !claims.can_subscribe("x"));
    }

    // --- presentation -----------------------------------------------------------------------

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn authorization_header() {
        let t = |h: &[(&str, &str)]| bearer_token(&headers(h), None, "mercure", false);
        assert_eq!(
            t(&[("authorization", "Bearer a.b.c")]),
            Ok(Some("a.b.c".into()))
        );
        assert_eq!(
            t(&[("authorization", "BEARER a.b.c")]),
            Ok(Some("a.b.c".into()))
        );
        assert_eq!(
            t(&[("authorization", "bearer   a.b.c")]),
            Ok(Some("a.b.c".into()))
        );
        assert_eq!(
            t(&[("authorization", "Bearer abc+/==")]),
            Ok(Some("abc+/==".into()))
        );
        assert_eq!(
            t(&[("authorization", "Basic dXNlcjpwYXNz")]),
            Err(PresentationError::NotBearer)
        );
        assert_eq!(
            t(&[("authorization", "Bearertoken")]),
            Err(PresentationError::NotBearer)
        );
        assert_eq!(
            t(&[("authorization", "Bearer")]),
            Err(PresentationError::EmptyToken)
        );
        assert_eq!(
            t(&[("authorization", "Bearer ")]),
            Err(PresentationError::EmptyToken)
        );
        assert_eq!(
            t(&[("authorization", "")]),
            Err(PresentationError::NotBearer)
        );
        assert_eq!(
            t(&[("authorization", "Bearer a b")]),
            Err(PresentationError::InvalidToken)
        );
        assert_eq!(
            t(&[("authorization", "Bearer a,b")]),
            Err(PresentationError::InvalidToken)
        );
        assert_eq!(
            t(&[("authorization", "Bearer ==")]),
            Err(PresentationError::InvalidToken)
        );
        assert_eq!(
            t(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]),
            Err(PresentationError::MultipleAuthorizationHeaders)
        );
        let mut map = http::HeaderMap::new();
        map.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_bytes(b"Bearer \xE9").unwrap(),
        );
        assert_eq!(
            bearer_token(&map, None, "mercure", false),
            Err(PresentationError::InvalidHeader)
        );
        assert_eq!(t(&[]), Ok(None));
    }

    #[test]
    fn header_wins_over_cookie_and_query() {
        let h = headers(&[
            ("authorization", "Bearer header"),
            ("cookie", "mercure=cookie"),
        ]);
        assert_eq!(
            bearer_token(&h, Some("authorization=query"), "mercure", true),
            Ok(Some("header".into()))
        );
        assert_eq!(
            bearer_token(&h, None, "mercure", false),
            Ok(Some("header".into()))
        );
        // A malformed header is an error even when a cookie would do.
        let h = headers(&[("authorization", "Basic x"), ("cookie", "mercure=cookie")]);
        assert_eq!(
            bearer_token(&h, None, "mercure", false),
            Err(PresentationError::NotBearer)
        );
    }

    #[test]
    fn cookies() {
        let t = |cookie: &str, name: &str, legacy: bool| {
            bearer_token(&headers(&[("cookie", cookie)]), None, name, legacy)
        };
        let name = "__Secure-mercure_access_token";
        assert_eq!(
            t("a=1; __Secure-mercure_access_token=tok; b=2", name, false),
            Ok(Some("tok".into()))
        );
        assert_eq!(
            t("__Secure-mercure_access_token=\"tok\"", name, false),
            Ok(Some("tok".into()))
        );
        assert_eq!(
            t("x__Secure-mercure_access_token=tok", name, false),
            Ok(None)
        );
        assert_eq!(t("__Secure-mercure_access_token=", name, false), Ok(None));
        assert_eq!(t("mercureAuthorization=legacy", name, false), Ok(None));
        assert_eq!(
            t("mercureAuthorization=legacy", name, true),
            Ok(Some("legacy".into()))
        );
        assert_eq!(
            t(
                "mercureAuthorization=legacy; __Secure-mercure_access_token=new",
                name,
                true
            ),
            Ok(Some("new".into())),
            "the configured cookie comes first"
        );
        // Cookies split over several headers (HTTP/2).
        let h = headers(&[("cookie", "a=1"), ("cookie", "mercure=split")]);
        assert_eq!(
            bearer_token(&h, None, "mercure", false),
            Ok(Some("split".into()))
        );
    }

    #[test]
    fn legacy_query_parameter() {
        let h = headers(&[("cookie", "mercureAuthorization=cookie")]);
        let q = |query: &str, legacy: bool| bearer_token(&h, Some(query), "mercure", legacy);
        assert_eq!(
            q("topic=x&authorization=a.b.c", true),
            Ok(Some("a.b.c".into())),
            "query beats cookie"
        );
        assert_eq!(
            q("topic=x&authorization=a.b.c", false),
            Ok(None),
            "draft-08 ignores the query"
        );
        assert_eq!(q("authorization=a%2Eb", true), Ok(Some("a.b".into())));
        assert_eq!(q("topic=x", true), Ok(Some("cookie".into())));
        assert_eq!(
            q("authorization=", true),
            Err(PresentationError::EmptyToken)
        );
        assert_eq!(
            q("authorization=a&authorization=b", true),
            Err(PresentationError::MultipleQueryTokens)
        );
        assert_eq!(
            q("authorization=%FF", true),
            Err(PresentationError::InvalidQueryEncoding)
        );
        assert_eq!(
            q("Authorization=a", true),
            Ok(Some("cookie".into())),
            "names are case-sensitive"
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(base64url_decode("e30"), Some(b"{}".to_vec()));
        assert_eq!(
            base64url_decode("e30="),
            None,
            "padding is not base64url in JWS"
        );
        assert_eq!(base64url_decode("a"), None);
        assert_eq!(
            base64url_decode(&b64url(b"hello world!?")),
            Some(b"hello world!?".to_vec())
        );
        assert_eq!(
            sanitize("none\n\u{E9}xxxxxxxxxxxxxxxxxxxxxxx"),
            "none??xxxxxxxxxx"
        );
        assert_eq!(rsa_modulus_bits(&[0x30, 0x03, 0x02, 0x01, 0x00]), None);
    }
}
