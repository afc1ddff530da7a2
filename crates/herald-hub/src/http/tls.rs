//! TLS for the hub's listener: rustls (with the `ring` provider) offering ALPN `h2` and
//! `http/1.1`, and certificates that can be replaced while the hub runs.
//!
//! [`TlsSettings::from_pem_files`] reads a PEM certificate chain and private key.
//! [`TlsSettings::reload`] reads them again and swaps them in: the [`ServerConfig`] never
//! changes, only what its certificate resolver hands to the *next* handshake, so open
//! connections (and the streams on them) are untouched. [`TlsSettings::spawn_reloader`]
//! reloads on `SIGHUP` and whenever the files' modification times change.
//!
//! Serving with TLS is [`serve_with`](crate::http::serve_with) with
//! [`ServerOptions::tls`](crate::http::ServerOptions::tls) set.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::task::JoinHandle;

/// Why certificates could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The certificate file holds no usable `CERTIFICATE` block.
    #[error("no PEM certificate in {0}")]
    NoCertificate(PathBuf),
    /// The key file holds no usable private key block.
    #[error("no PEM private key (PKCS#8, PKCS#1 or SEC1) in {0}")]
    NoKey(PathBuf),
    /// rustls refused the key, or the key does not belong to the certificate.
    #[error("unusable certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Hands every handshake the current certificate; [`TlsSettings::reload`] replaces it.
///
/// A `RwLock<Arc<_>>` rather than rebuilding the `ServerConfig`: a handshake only clones the
/// `Arc` under a read lock held for nanoseconds, and a reload never touches a connection
/// that has already finished its handshake.
struct ReloadingResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for ReloadingResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingResolver").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        Some(Arc::clone(&current))
    }
}

/// A rustls server configuration whose certificate can be reloaded from its files.
/// Cheap to clone: clones share the certificate.
#[derive(Clone)]
pub struct TlsSettings {
    inner: Arc<Inner>,
}

struct Inner {
    /// The PEM certificate chain, end-entity first.
    cert_path: PathBuf,
    /// The PEM private key.
    key_path: PathBuf,
    /// The `ring` provider: the one used to parse keys and to run handshakes.
    provider: Arc<CryptoProvider>,
    resolver: Arc<ReloadingResolver>,
    config: Arc<ServerConfig>,
    /// Modification times of (certificate, key) at the last load, so the poller reloads
    /// only when a file changed.
    loaded: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("cert", &self.inner.cert_path)
            .field("key", &self.inner.key_path)
            .finish_non_exhaustive()
    }
}

impl TlsSettings {
    /// Reads the PEM certificate chain at `cert` and the PEM private key at `key`, checks
    /// that they belong together, and builds a server configuration offering ALPN `h2` then
    /// `http/1.1` (TLS 1.2 and 1.3, `ring` provider).
    pub fn from_pem_files(
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Result<Self, TlsError> {
        let cert_path = cert.into();
        let key_path = key.into();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let times = (modified(&cert_path), modified(&key_path));
        let certified = load(&cert_path, &key_path, &provider)?;
        let resolver = Arc::new(ReloadingResolver {
            current: RwLock::new(Arc::new(certified)),
        });
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            inner: Arc::new(Inner {
                cert_path,
                key_path,
                provider,
                resolver,
                config: Arc::new(config),
                loaded: Mutex::new(times),
            }),
        })
    }

    /// The server configuration (its resolver always serves the latest loaded certificate).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.inner.config)
    }

    /// Reads the files again and, when they are valid, uses them for every later handshake.
    /// On error the previous certificate stays in use. Open connections are not affected.
    pub fn reload(&self) -> Result<(), TlsError> {
        let inner = &self.inner;
        let times = (modified(&inner.cert_path), modified(&inner.key_path));
        let certified = load(&inner.cert_path, &inner.key_path, &inner.provider)?;
        *inner
            .resolver
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(certified);
        *inner.loaded.lock().unwrap_or_else(|p| p.into_inner()) = times;
        Ok(())
    }

    /// Reloads when either file's modification time differs from the last load. Returns
    /// whether it reloaded.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let inner = &self.inner;
        let times = (modified(&inner.cert_path), modified(&inner.key_path));
        if *inner.loaded.lock().unwrap_or_else(|p| p.into_inner()) == times {
            return Ok(false);
        }
        self.reload().map(|()| true)
    }

    /// Spawns a task that reloads the certificate on `SIGHUP` (on Unix) and when the files
    /// change, checking their modification times every `poll`. Failures are logged and the
    /// previous certificate is kept. Abort the handle to stop it.
    pub fn spawn_reloader(&self, poll: Duration) -> JoinHandle<()> {
        let settings = self.clone();
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut hangup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut ticker = tokio::time::interval(poll);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                #[cfg(unix)]
                let hup = async {
                    match hangup.as_mut() {
                        Some(signal) => signal.recv().await,
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let hup = std::future::pending::<Option<()>>();
                let forced = tokio::select! {
                    _ = ticker.tick() => false,
                    _ = hup => true,
                };
                let result = if forced {
                    settings.reload().map(|()| true)
                } else {
                    settings.reload_if_changed()
                };
                match result {
                    Ok(true) => tracing::info!(
                        cert = %settings.inner.cert_path.display(),
                        "TLS certificate reloaded"
                    ),
                    Ok(false) => {}
                    Err(error) => {
                        tracing::error!(%error, "TLS certificate reload failed; keeping the previous one");
                    }
                }
            }
        })
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Parses the chain and key and checks that the key matches the end-entity certificate.
fn load(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(cert_path)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::NoCertificate(cert_path.to_owned()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert_path.to_owned()));
    }
    let key_pem = read(key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| TlsError::NoKey(key_path.to_owned()))?;
    Ok(CertifiedKey::from_der(chain, key, provider)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_and_bad_pem_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        assert!(matches!(
            TlsSettings::from_pem_files(&cert, &key),
            Err(TlsError::Read { .. })
        ));
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(&key, "not a key").unwrap();
        assert!(matches!(
            TlsSettings::from_pem_files(&cert, &key),
            Err(TlsError::NoCertificate(_))
        ));
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let one = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let two = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, one.cert.pem()).unwrap();
        std::fs::write(&key, two.signing_key.serialize_pem()).unwrap();
        assert!(matches!(
            TlsSettings::from_pem_files(&cert, &key),
            Err(TlsError::Rustls(_))
        ));
        std::fs::write(&key, one.signing_key.serialize_pem()).unwrap();
        let settings = TlsSettings::from_pem_files(&cert, &key).unwrap();
        assert!(!settings.reload_if_changed().unwrap());
        assert_eq!(
            settings.server_config().alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}
