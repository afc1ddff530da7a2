//! `herald token`: mint an access token from the command line.

use std::time::Duration;

use anyhow::Context;
use herald_hub::mint::TokenRequest;

use crate::duration::HumanDuration;

/// Options of `herald token`.
#[derive(Debug, clap::Args)]
pub(crate) struct TokenOptions {
    /// Selector the token may publish to (repeatable; `*` for all).
    #[arg(long = "publish", value_name = "SELECTOR")]
    publish: Vec<String>,
    /// Selector whose private updates the token may read (repeatable; `*` for all).
    #[arg(long = "subscribe", value_name = "SELECTOR")]
    subscribe: Vec<String>,
    /// How long the token is valid.
    #[arg(long, default_value = "1h")]
    ttl: HumanDuration,
    /// HMAC secret (the hub's --jwt-key).
    #[arg(long, env = "HERALD_JWT_KEY", hide_env_values = true)]
    key: String,
    /// `iss` claim.
    #[arg(long, env = "HERALD_JWT_ISSUER", default_value = "herald-cli")]
    issuer: String,
    /// `aud` claim: the hub URL.
    #[arg(
        long,
        env = "HERALD_JWT_AUDIENCE",
        default_value = "http://127.0.0.1:3000/.well-known/mercure"
    )]
    audience: String,
    /// `sub` claim.
    #[arg(long, default_value = "herald-cli")]
    subject: String,
    /// Mint a pre-standard (-07) token with the `mercure` claim.
    #[arg(long)]
    legacy: bool,
    /// JSON payload attached to the subscribe grant.
    #[arg(long)]
    payload: Option<String>,
}

/// Prints the token.
pub(crate) fn run(options: TokenOptions) -> anyhow::Result<()> {
    if options.publish.is_empty() && options.subscribe.is_empty() {
        anyhow::bail!("a token needs at least one --publish or --subscribe selector");
    }
    let payload = options
        .payload
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .context("--payload must be JSON")?;
    let request = TokenRequest {
        publish: options.publish,
        subscribe: options.subscribe,
        ttl: Duration::max(options.ttl.0, Duration::from_secs(1)),
        issuer: options.issuer,
        audience: options.audience,
        subject: options.subject,
        legacy: options.legacy,
        payload,
    };
    println!("{}", request.sign_hmac(options.key.as_bytes())?);
    Ok(())
}
