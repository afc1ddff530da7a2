//! Minting access tokens: for `herald token`, `--dev`, the examples and the tests.
//!
//! Draft-08 tokens are JWT access tokens (`typ: at+jwt`) with every claim RFC 9068 asks
//! issuers to set and the grants in `authorization_details`; legacy tokens carry the
//! pre-standard `mercure` claim instead.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The authorization detail type the protocol defines.
pub const DETAIL_TYPE: &str = "https://mercure.rocks/authorization-detail";

/// What a token should grant, and to whom.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// Selectors the token may publish to (`*` for all). URL patterns contain `:` or `*`
    /// segments and are sent as `urlpattern` matchers; others as `exact`.
    pub publish: Vec<String>,
    /// Selectors the token may read private updates of.
    pub subscribe: Vec<String>,
    /// How long the token is valid.
    pub ttl: Duration,
    /// The `iss` claim.
    pub issuer: String,
    /// The `aud` claim: the hub's resource identifier (its URL).
    pub audience: String,
    /// The `sub` claim.
    pub subject: String,
    /// Mint a pre-standard token (`mercure` claim, no `typ: at+jwt`).
    pub legacy: bool,
    /// Optional `payload` attached to the subscribe grant.
    pub payload: Option<Value>,
}

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the token: {0}")]
pub struct MintError(#[from] jsonwebtoken::errors::Error);

fn matcher(selector: &str) -> Value {
    let is_pattern = selector != "*"
        && (selector.contains("/:") || selector.contains("/*") || selector.contains('{'));
    if is_pattern {
        json!({ "match": selector, "match_type": "urlpattern" })
    } else {
        json!({ "match": selector })
    }
}

impl TokenRequest {
    /// The JSON claims this request describes, issued now.
    ///
    /// ```
    /// use std::time::Duration;
    /// use herald_hub::mint::TokenRequest;
    /// let request = TokenRequest {
    ///     publish: vec!["*".into()],
    ///     subscribe: vec![],
    ///     ttl: Duration::from_secs(60),
    ///     issuer: "https://app.example".into(),
    ///     audience: "https://hub.example/.well-known/mercure".into(),
    ///     subject: "backend".into(),
    ///     legacy: false,
    ///     payload: None,
    /// };
    /// let claims = request.claims();
    /// assert_eq!(claims["authorization_details"][0]["actions"][0], "publish");
    /// ```
    pub fn claims(&self) -> Value {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let exp = now + self.ttl.as_secs().max(1);
        if self.legacy {
            let mut mercure = json!({ "publish": self.publish, "subscribe": self.subscribe });
            if let Some(payload) = &self.payload {
                mercure["payload"] = payload.clone();
            }
            return json!({ "mercure": mercure, "exp": exp, "iat": now, "sub": self.subject });
        }
        let mut details = Vec::new();
        if !self.publish.is_empty() {
            details.push(json!({
                "type": DETAIL_TYPE,
                "actions": ["publish"],
                "topics": self.publish.iter().map(|s| matcher(s)).collect::<Vec<_>>(),
            }));
        }
        if !self.subscribe.is_empty() {
            let mut detail = json!({
                "type": DETAIL_TYPE,
                "actions": ["subscribe"],
                "topics": self.subscribe.iter().map(|s| matcher(s)).collect::<Vec<_>>(),
            });
            if let Some(payload) = &self.payload {
                detail["payload"] = payload.clone();
            }
            details.push(detail);
        }
        json!({
            "iss": self.issuer,
            "aud": self.audience,
            "sub": self.subject,
            "client_id": self.issuer,
            "iat": now,
            "exp": exp,
            "jti": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            "authorization_details": details,
        })
    }

    /// Signs the claims with an HMAC secret (HS256).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use herald_hub::mint::TokenRequest;
    /// # let request = TokenRequest { publish: vec!["*".into()], subscribe: vec![],
    /// #     ttl: Duration::from_secs(60), issuer: "i".into(), audience: "a".into(),
    /// #     subject: "s".into(), legacy: false, payload: None };
    /// let token = request.sign_hmac(b"secret")?;
    /// assert_eq!(token.split('.').count(), 3);
    /// # Ok::<(), herald_hub::mint::MintError>(())
    /// ```
    pub fn sign_hmac(&self, secret: &[u8]) -> Result<String, MintError> {
        self.sign(&EncodingKey::from_secret(secret), Algorithm::HS256)
    }

    /// Signs the claims with `key` and `algorithm`.
    pub fn sign(&self, key: &EncodingKey, algorithm: Algorithm) -> Result<String, MintError> {
        let mut header = Header::new(algorithm);
        if !self.legacy {
            header.typ = Some("at+jwt".to_owned());
        }
        Ok(jsonwebtoken::encode(&header, &self.claims(), key)?)
    }
}
