//! `herald serve`: options (flags, `HERALD_*` variables, TOML file) and running the hub.
//!
//! Every option has one name used everywhere: `--history-size` on the command line,
//! `HERALD_HISTORY_SIZE` in the environment, `history-size` in the TOML file. A flag wins
//! over the environment, which wins over the file, which wins over the default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use herald_hub::auth::{TokenVerifier, VerifierConfig};
use herald_hub::http::ServerOptions;
use herald_hub::http::tls::TlsSettings;
use herald_hub::mint::TokenRequest;
use herald_hub::store::HistoryStore;
use herald_hub::store::memory::MemoryStore;
use herald_hub::store::redb::RedbStore;
use herald_hub::store::redis::RedisStore;
use herald_hub::{Hub, HubConfig};
use tokio::net::TcpListener;
use url::Url;

use crate::duration::HumanDuration;

/// How often the TLS certificate files are checked for changes.
const TLS_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Options of `herald serve`. All are optional here so that the file can fill the gaps;
/// defaults are applied in [`ServeOptions::resolve`].
#[derive(Debug, Default, Clone, clap::Args, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct ServeOptions {
    /// TOML file with any of these options (names without the leading dashes).
    #[arg(long, env = "HERALD_CONFIG")]
    #[serde(skip)]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:3000].
    #[arg(long, env = "HERALD_LISTEN")]
    pub(crate) listen: Option<SocketAddr>,
    /// Directory of the redb history [default: ./herald-data].
    #[arg(long, env = "HERALD_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Keep history in memory instead of redb (lost on restart).
    #[arg(long, env = "HERALD_MEMORY")]
    #[serde(default)]
    pub(crate) memory: bool,
    /// Share history with other nodes through Redis (`redis://host:6379[/db]`, or
    /// `redis-cluster://host:port[,host:port…]`): every node appends to and tails one Redis
    /// Stream [default: none, history is local].
    #[arg(long, env = "HERALD_TRANSPORT")]
    pub(crate) transport: Option<String>,
    /// Name shared by the nodes of one cluster; their Redis keys start with `{name}`
    /// [default: herald].
    #[arg(long, env = "HERALD_CLUSTER_NAME")]
    pub(crate) cluster_name: Option<String>,
    /// Public URL of the hub (scheme and host) [default: http://<listen>].
    #[arg(long, env = "HERALD_PUBLIC_URL")]
    pub(crate) public_url: Option<Url>,
    /// HMAC secret for HS256/384/512 tokens.
    #[arg(long, env = "HERALD_JWT_KEY", hide_env_values = true)]
    pub(crate) jwt_key: Option<String>,
    /// PEM public key (file path or inline PEM) for RS256, ES256 or EdDSA tokens.
    #[arg(long, env = "HERALD_JWT_PUBLIC_KEY")]
    pub(crate) jwt_public_key: Option<String>,
    /// Required `iss` of tokens.
    #[arg(long, env = "HERALD_JWT_ISSUER")]
    pub(crate) jwt_issuer: Option<String>,
    /// Required `aud` of tokens [default: <public-url>/.well-known/mercure].
    #[arg(long, env = "HERALD_JWT_AUDIENCE")]
    pub(crate) jwt_audience: Option<String>,
    /// Cookie that may carry the token [default: __Secure-mercure_access_token].
    #[arg(long, env = "HERALD_COOKIE_NAME")]
    pub(crate) cookie_name: Option<String>,
    /// Allow subscribers without a token (public updates only).
    #[arg(long, env = "HERALD_ANONYMOUS")]
    #[serde(default)]
    pub(crate) anonymous: bool,
    /// Origin allowed to subscribe with credentials (repeatable; `*` = any, no credentials).
    #[arg(
        long = "cors-origin",
        env = "HERALD_CORS_ORIGIN",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub(crate) cors_origin: Vec<String>,
    /// Interval of heartbeat comments on idle streams [default: 15s].
    #[arg(long, env = "HERALD_HEARTBEAT")]
    pub(crate) heartbeat: Option<HumanDuration>,
    /// Reconnection delay sent to clients as `retry:` [default: 2s].
    #[arg(long, env = "HERALD_RETRY")]
    pub(crate) retry: Option<HumanDuration>,
    /// Updates kept in history for resume [default: 10000].
    #[arg(long, env = "HERALD_HISTORY_SIZE")]
    pub(crate) history_size: Option<usize>,
    /// Close streams after this long so tokens are re-checked [default: none].
    #[arg(long, env = "HERALD_MAX_CONNECTION_AGE")]
    pub(crate) max_connection_age: Option<HumanDuration>,
    /// How long an ended topic answers 204 [default: 1h].
    #[arg(long, env = "HERALD_ENDED_TTL")]
    pub(crate) ended_ttl: Option<HumanDuration>,
    /// Largest publish body in bytes [default: 1048576].
    #[arg(long, env = "HERALD_MAX_BODY")]
    pub(crate) max_body: Option<usize>,
    /// Publish subscription events and serve the subscriptions API's events.
    #[arg(long, env = "HERALD_SUBSCRIPTION_EVENTS")]
    #[serde(default)]
    pub(crate) subscription_events: bool,
    /// Also accept the pre-standard (-07) Mercure dialect.
    #[arg(long, env = "HERALD_LEGACY")]
    #[serde(default)]
    pub(crate) legacy: bool,
    /// Development mode: anonymous subscribers, a generated secret, a ready-made token.
    #[arg(long, env = "HERALD_DEV")]
    #[serde(default)]
    pub(crate) dev: bool,
    /// How long shutdown waits for in-flight requests [default: 10s].
    #[arg(long, env = "HERALD_SHUTDOWN_GRACE")]
    pub(crate) shutdown_grace: Option<HumanDuration>,
    /// PEM certificate chain: serve HTTPS (HTTP/2 or HTTP/1.1 by ALPN). Reloaded on SIGHUP
    /// and when the file changes.
    #[arg(long, env = "HERALD_TLS_CERT")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "HERALD_TLS_KEY")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Accept HTTP/2 with prior knowledge (h2c) on a plain port; `false`: HTTP/1.1 only
    /// [default: true].
    #[arg(long, env = "HERALD_H2C")]
    pub(crate) h2c: Option<bool>,
    /// Most connections open at once; further ones get 503 with Retry-After; 0 = no limit
    /// [default: the open-file limit minus 256].
    #[arg(long, env = "HERALD_MAX_CONNECTIONS")]
    pub(crate) max_connections: Option<usize>,
    /// Most connections open at once from one IP address; further ones get 429 with
    /// Retry-After; 0 = no limit [default: 0, as behind a proxy every client shares its address].
    #[arg(long, env = "HERALD_MAX_CONNECTIONS_PER_IP")]
    pub(crate) max_connections_per_ip: Option<usize>,
    /// How long a client may take to send a request head, or its first bytes on a new
    /// connection [default: 10s].
    #[arg(long, env = "HERALD_HEADER_TIMEOUT")]
    pub(crate) header_timeout: Option<HumanDuration>,
    /// How long a publisher may take to send its body [default: 30s].
    #[arg(long, env = "HERALD_BODY_TIMEOUT")]
    pub(crate) body_timeout: Option<HumanDuration>,
    /// Do not serve the home page, dashboard, playground and `/herald/stats`.
    #[arg(long, env = "HERALD_NO_PAGES")]
    #[serde(default)]
    pub(crate) no_pages: bool,
}

impl ServeOptions {
    /// Fills every option not given on the command line or in the environment from the
    /// config file named by `--config`, if any.
    pub(crate) fn with_file(self) -> anyhow::Result<ServeOptions> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let file: ServeOptions = toml::from_str(&text)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        Ok(self.or(file))
    }

    fn or(self, file: ServeOptions) -> ServeOptions {
        macro_rules! pick {
            ($($option:ident),*) => { ServeOptions {
                config: self.config,
                memory: self.memory || file.memory,
                anonymous: self.anonymous || file.anonymous,
                subscription_events: self.subscription_events || file.subscription_events,
                legacy: self.legacy || file.legacy,
                dev: self.dev || file.dev,
                no_pages: self.no_pages || file.no_pages,
                cors_origin: if self.cors_origin.is_empty() { file.cors_origin } else { self.cors_origin },
                $($option: self.$option.or(file.$option),)*
            } };
        }
        pick!(
            listen,
            data_dir,
            transport,
            cluster_name,
            public_url,
            jwt_key,
            jwt_public_key,
            jwt_issuer,
            jwt_audience,
            cookie_name,
            heartbeat,
            retry,
            history_size,
            max_connection_age,
            ended_ttl,
            max_body,
            shutdown_grace,
            tls_cert,
            tls_key,
            h2c,
            max_connections,
            max_connections_per_ip,
            header_timeout,
            body_timeout
        )
    }
}

/// Everything `serve` needs, with defaults applied.
struct Resolved {
    listen: SocketAddr,
    store: StoreChoice,
    config: HubConfig,
    verifier: Option<VerifierConfig>,
    dev_token: Option<String>,
    grace: Duration,
    /// Certificate and key files when serving TLS.
    tls: Option<(PathBuf, PathBuf)>,
    h2c: bool,
    header_timeout: Duration,
}

enum StoreChoice {
    Memory(usize),
    Redb(PathBuf, usize),
    /// URL, cluster name, history size.
    Redis(String, String, usize),
}

fn read_pem(value: &str) -> anyhow::Result<Vec<u8>> {
    if value.trim_start().starts_with("-----BEGIN") {
        return Ok(value.as_bytes().to_vec());
    }
    std::fs::read(value).with_context(|| format!("cannot read the public key file {value}"))
}

impl ServeOptions {
    fn resolve(self) -> anyhow::Result<Resolved> {
        let listen = self
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000)));
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => bail!("--tls-cert and --tls-key go together"),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let public_url = match self.public_url {
            Some(url) => url,
            None => format!("{scheme}://{listen}").parse()?,
        };
        let mut config = HubConfig::new(public_url);
        config.anonymous = self.anonymous || self.dev;
        config.legacy = self.legacy;
        config.cors_origins = self.cors_origin;
        if let Some(name) = self.cookie_name {
            config.cookie_name = name;
        }
        if let Some(heartbeat) = self.heartbeat {
            if heartbeat.0.is_zero() {
                bail!("--heartbeat must be greater than zero");
            }
            config.heartbeat = heartbeat.0;
        }
        if let Some(retry) = self.retry {
            config.retry = retry.0;
        }
        config.max_connection_age = self.max_connection_age.map(|age| age.0);
        if let Some(ttl) = self.ended_ttl {
            config.ended_ttl = ttl.0;
        }
        if let Some(max_body) = self.max_body {
            config.max_body = max_body;
        }
        config.subscription_events = self.subscription_events;
        config.pages = !self.no_pages;
        config.max_connections = match self.max_connections {
            Some(0) => None,
            Some(limit) => Some(limit),
            None => default_max_connections(),
        };
        config.max_connections_per_ip = self.max_connections_per_ip.filter(|limit| *limit > 0);
        if let Some(timeout) = self.body_timeout {
            config.body_read_timeout = timeout.0;
        }
        let header_timeout = self
            .header_timeout
            .map_or(herald_hub::http::DEFAULT_HEADER_READ_TIMEOUT, |t| t.0);
        if header_timeout.is_zero() || config.body_read_timeout.is_zero() {
            bail!("--header-timeout and --body-timeout must be greater than zero");
        }
        let history_size = self.history_size.unwrap_or(10_000);
        let store = if let Some(url) = self.transport {
            if self.memory {
                bail!(
                    "--memory and --transport exclude each other: history is either local or in Redis"
                );
            }
            if !["redis://", "redis+unix://", "redis-cluster://"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
            {
                bail!(
                    "--transport must be redis://host:port[/db] (one Redis) or \
                     redis-cluster://host:port[,host:port…] (a Redis Cluster)"
                );
            }
            let name = self.cluster_name.unwrap_or_else(|| "herald".to_owned());
            if name.is_empty() || name.contains(['{', '}']) {
                bail!("--cluster-name must be non-empty and without braces");
            }
            StoreChoice::Redis(url, name, history_size)
        } else if self.memory {
            StoreChoice::Memory(history_size)
        } else {
            let dir = self
                .data_dir
                .unwrap_or_else(|| PathBuf::from("herald-data"));
            StoreChoice::Redb(dir, history_size)
        };
        let mut hmac_secret = self.jwt_key.map(String::into_bytes);
        let mut dev_token = None;
        if self.dev && hmac_secret.is_none() {
            hmac_secret = Some(random_secret().into_bytes());
        }
        let audience = self
            .jwt_audience
            .unwrap_or_else(|| config.hub_url.to_string());
        let public_key_pem = self.jwt_public_key.as_deref().map(read_pem).transpose()?;
        let verifier =
            (hmac_secret.is_some() || public_key_pem.is_some()).then(|| VerifierConfig {
                hmac_secret: hmac_secret.clone(),
                public_key_pem,
                issuer: self.jwt_issuer.clone(),
                audience: audience.clone(),
                legacy: self.legacy,
                hub_url: config.hub_url.clone(),
            });
        if self.dev
            && let Some(secret) = &hmac_secret
        {
            let request = TokenRequest {
                publish: vec!["*".into()],
                subscribe: vec!["*".into()],
                ttl: Duration::from_secs(24 * 3600),
                issuer: self.jwt_issuer.unwrap_or_else(|| "herald-dev".to_owned()),
                audience,
                subject: "herald-dev".into(),
                legacy: false,
                payload: None,
            };
            dev_token = Some(request.sign_hmac(secret)?);
        }
        Ok(Resolved {
            listen,
            store,
            config,
            verifier,
            dev_token,
            grace: self.shutdown_grace.map_or(Duration::from_secs(10), |g| g.0),
            tls,
            h2c: self.h2c.unwrap_or(true),
            header_timeout,
        })
    }
}

/// Descriptors kept free below the open-file limit: for the history files, outgoing
/// connections, and for accepting connections over the limit in order to refuse them.
const FD_RESERVE: u64 = 256;

/// The default connection limit: the open-file limit (raised to its hard limit first) minus
/// [`FD_RESERVE`], so the hub answers 503 before `accept` starts failing; `None` when the
/// limit is unknown or too small to leave a reserve.
fn default_max_connections() -> Option<usize> {
    let limit = rlimit::increase_nofile_limit(u64::MAX)
        .or_else(|_| rlimit::Resource::NOFILE.get().map(|(soft, _)| soft))
        .ok()?;
    let usable = limit.checked_sub(FD_RESERVE).filter(|usable| *usable > 0)?;
    Some(usize::try_from(usable).unwrap_or(usize::MAX))
}

fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn open_store(choice: &StoreChoice) -> anyhow::Result<(Arc<dyn HistoryStore>, String)> {
    Ok(match choice {
        StoreChoice::Memory(size) => (
            Arc::new(MemoryStore::new(*size)),
            format!("in memory, last {size} updates"),
        ),
        StoreChoice::Redb(dir, size) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
            let file = dir.join("history.redb");
            let store = RedbStore::open(&file, *size)
                .with_context(|| format!("cannot open the history file {}", file.display()))?;
            (
                Arc::new(store),
                format!("redb at {}, last {size} updates", file.display()),
            )
        }
        StoreChoice::Redis(url, name, size) => {
            let store = RedisStore::open(url, name, *size)?;
            (
                Arc::new(store),
                format!("Redis Stream {{{name}}}:log, last {size} updates (cluster transport)"),
            )
        }
    })
}

/// Runs the hub until SIGINT or SIGTERM.
pub(crate) async fn run(options: ServeOptions) -> anyhow::Result<()> {
    let resolved = options.with_file()?.resolve()?;
    let (store, store_description) = open_store(&resolved.store)?;
    let verifier = resolved
        .verifier
        .map(TokenVerifier::new)
        .transpose()
        .context("invalid JWT key configuration")?;
    let has_verifier = verifier.is_some();
    let tls = resolved
        .tls
        .as_ref()
        .map(|(cert, key)| {
            TlsSettings::from_pem_files(cert, key).with_context(|| {
                format!(
                    "cannot load the TLS certificate {} and key {}",
                    cert.display(),
                    key.display()
                )
            })
        })
        .transpose()?;
    let listener = TcpListener::bind(resolved.listen)
        .await
        .with_context(|| format!("cannot listen on {}", resolved.listen))?;
    let local = listener.local_addr()?;
    let config = resolved.config;
    tracing::info!(
        max_connections = ?config.max_connections,
        max_connections_per_ip = ?config.max_connections_per_ip,
        "connection limits"
    );
    let hub_url = config.hub_url.clone();
    let anonymous = config.anonymous;
    let hub = Hub::start(config, store, verifier)
        .await
        .with_context(|| format!("cannot read the history store ({store_description})"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    print_banner(
        scheme,
        local,
        &hub_url,
        &store_description,
        anonymous,
        has_verifier,
        resolved.dev_token.as_deref(),
    );
    // Certificates are re-read on SIGHUP and when the files change (renewals by certbot or
    // cert-manager need no restart); open streams keep their connection.
    let reloader = tls
        .as_ref()
        .map(|tls| tls.spawn_reloader(TLS_POLL_INTERVAL));
    let options = ServerOptions {
        tls,
        h2c: resolved.h2c,
        header_read_timeout: resolved.header_timeout,
        ..ServerOptions::default()
    };
    herald_hub::http::serve_with(listener, hub, options, shutdown_signal(), resolved.grace).await?;
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

fn print_banner(
    scheme: &str,
    local: SocketAddr,
    hub_url: &Url,
    store: &str,
    anonymous: bool,
    has_verifier: bool,
    dev_token: Option<&str>,
) {
    // Whoever started the hub may stop reading its output (a script that only wants the
    // token): a closed stdout must not take the hub down, so write errors are ignored
    // rather than panicking as `println!` would.
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    macro_rules! say {
        ($($arg:tt)*) => {
            let _ = writeln!(out, $($arg)*);
        };
    }
    let topic = "https://example.com/my-topic";
    say!("Herald listening on {scheme}://{local}");
    say!("  hub URL : {hub_url}");
    say!("  history : {store}");
    say!();
    if let Some(token) = dev_token {
        say!("Development mode: anonymous subscribers, and a token that publishes and reads");
        say!("everything for 24h:");
        say!();
        say!("  export TOKEN={token}");
        say!();
    }
    let token = if dev_token.is_some() {
        "$TOKEN"
    } else {
        "<token>"
    };
    if anonymous {
        say!("Subscribe:\n  curl -N '{hub_url}?match={topic}'");
    } else {
        say!(
            "Subscribe:\n  curl -N -H \"Authorization: Bearer {token}\" '{hub_url}?match={topic}'"
        );
    }
    if has_verifier {
        say!(
            "Publish:\n  curl -H \"Authorization: Bearer {token}\" -d 'topic={topic}' -d 'data=hello' {hub_url}"
        );
    } else {
        say!("Publishing needs a key: start with --jwt-key <secret> (or --dev to try it out).");
    }
    let _ = out.flush();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_needs_both_files_and_makes_the_public_url_https() {
        let half = ServeOptions {
            tls_cert: Some("cert.pem".into()),
            ..ServeOptions::default()
        };
        let error = half.resolve().err().expect("refused");
        assert!(error.to_string().contains("--tls-cert and --tls-key"));

        let both = ServeOptions {
            tls_cert: Some("cert.pem".into()),
            tls_key: Some("key.pem".into()),
            ..ServeOptions::default()
        };
        let resolved = both.resolve().unwrap();
        assert_eq!(
            resolved.config.hub_url.as_str(),
            "https://127.0.0.1:3000/.well-known/mercure"
        );
        assert!(resolved.tls.is_some());
        assert!(resolved.h2c, "h2c is on by default");
    }

    #[test]
    fn connection_limits_and_timeouts_from_flags_file_and_defaults() {
        let defaults = ServeOptions::default().resolve().unwrap();
        assert!(
            defaults
                .config
                .max_connections
                .is_some_and(|limit| limit > 0),
            "a default below the open-file limit"
        );
        assert_eq!(defaults.config.max_connections_per_ip, None);
        assert_eq!(defaults.header_timeout, Duration::from_secs(10));
        assert_eq!(defaults.config.body_read_timeout, Duration::from_secs(30));

        let file: ServeOptions = toml::from_str(
            "max-connections = 5000\nmax-connections-per-ip = 20\nheader-timeout = \"2s\"\n\
             body-timeout = \"5s\"\n",
        )
        .unwrap();
        let flags = ServeOptions {
            max_connections_per_ip: Some(0),
            ..ServeOptions::default()
        };
        let resolved = flags.or(file).resolve().unwrap();
        assert_eq!(resolved.config.max_connections, Some(5000));
        assert_eq!(resolved.config.max_connections_per_ip, None, "0 = no limit");
        assert_eq!(resolved.header_timeout, Duration::from_secs(2));
        assert_eq!(resolved.config.body_read_timeout, Duration::from_secs(5));

        let unlimited = ServeOptions {
            max_connections: Some(0),
            ..ServeOptions::default()
        };
        assert_eq!(unlimited.resolve().unwrap().config.max_connections, None);
        let zero = ServeOptions {
            header_timeout: Some(HumanDuration(Duration::ZERO)),
            ..ServeOptions::default()
        };
        assert!(zero.resolve().is_err());
    }

    #[test]
    fn tls_and_h2c_come_from_the_file_unless_given() {
        let file: ServeOptions = toml::from_str(
            "tls-cert = \"/etc/herald/cert.pem\"\ntls-key = \"/etc/herald/key.pem\"\nh2c = false\n",
        )
        .unwrap();
        let flags = ServeOptions {
            h2c: Some(true),
            ..ServeOptions::default()
        };
        let merged = flags.or(file);
        assert_eq!(merged.tls_cert, Some(PathBuf::from("/etc/herald/cert.pem")));
        assert_eq!(merged.tls_key, Some(PathBuf::from("/etc/herald/key.pem")));
        assert_eq!(merged.h2c, Some(true));
    }
}
