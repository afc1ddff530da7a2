//! The HTTP side shared by [`EventSource`](crate::EventSource) and
//! [`Publisher`](crate::Publisher): the hyper client over rustls (ring provider), URL and
//! header checks, error classification, response snippets.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use url::Url;

use crate::error::{BoxError, Error};

/// The hyper client every request goes through.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How much of an error response body is kept for [`Error::Status`]: enough for the one-line
/// reason a hub gives, little enough that a hostile server cannot make us buffer much.
pub(crate) const SNIPPET_LIMIT: usize = 512;

/// Connection options common to both builders.
#[derive(Clone)]
pub(crate) struct TransportOptions {
    /// Extra trusted roots, PEM, parsed at build time so builder methods can stay infallible.
    pub(crate) root_pems: Vec<Vec<u8>>,
    /// Trust the Mozilla roots bundled by `webpki-roots`.
    pub(crate) built_in_roots: bool,
    /// Speak HTTP/2 only: h2c prior knowledge on `http://`, ALPN `h2` only on `https://`.
    pub(crate) http2_only: bool,
    /// Bound on connecting plus the TLS handshake plus the response head.
    pub(crate) connect_timeout: Duration,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            root_pems: Vec::new(),
            built_in_roots: true,
            http2_only: false,
            connect_timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for TransportOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportOptions")
            .field("extra_roots", &self.root_pems.len())
            .field("built_in_roots", &self.built_in_roots)
            .field("http2_only", &self.http2_only)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl TransportOptions {
    /// Builds the hyper client: TCP with `TCP_NODELAY` (events are small and latency
    /// matters), rustls with the ring provider, ALPN `h2` + `http/1.1`.
    pub(crate) fn client(&self) -> Result<HttpClient, Error> {
        let mut roots = rustls::RootCertStore::empty();
        if self.built_in_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for pem in &self.root_pems {
            let mut found = false;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|error| Error::RootCertificate(error.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|error| Error::RootCertificate(error.to_string()))?;
                found = true;
            }
            if !found {
                return Err(Error::RootCertificate(
                    "no CERTIFICATE block in the PEM".into(),
                ));
            }
        }
        // The ring provider explicitly: never rely on a process-wide default that another
        // crate could set to aws-lc-rs.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| Error::RootCertificate(error.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(self.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let https = if self.http2_only {
            https.enable_http2().wrap_connector(http)
        } else {
            https.enable_http1().enable_http2().wrap_connector(http)
        };
        Ok(Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .http2_only(self.http2_only)
            .build(https))
    }
}

/// Parses a URL given by the user: `http` or `https`, fragment dropped (never sent).
pub(crate) fn parse_url(text: &str) -> Result<Url, Error> {
    let invalid = |reason: String| Error::InvalidUrl {
        url: text.to_owned(),
        reason,
    };
    let mut url = Url::parse(text).map_err(|error| invalid(error.to_string()))?;
    check_url(&url).map_err(invalid)?;
    url.set_fragment(None);
    Ok(url)
}

/// The checks every requested URL passes, including redirect targets.
pub(crate) fn check_url(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(format!("scheme {other:?} is not http or https")),
    }
    if url.host().is_none() {
        return Err("no host".into());
    }
    Ok(())
}

/// Converts to the `http` crate's URI.
pub(crate) fn to_uri(url: &Url) -> Result<http::Uri, String> {
    http::Uri::try_from(url.as_str()).map_err(|error| error.to_string())
}

/// Validates user-supplied headers (and the bearer token) into a map. Every value is marked
/// sensitive so that `Debug` output and logs never show a token.
pub(crate) fn header_map(
    headers: &[(String, String)],
    bearer: Option<&str>,
) -> Result<HeaderMap, Error> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let invalid = |reason: String| Error::InvalidHeader {
            name: name.clone(),
            reason,
        };
        let header =
            HeaderName::from_bytes(name.as_bytes()).map_err(|error| invalid(error.to_string()))?;
        let mut value = HeaderValue::from_str(value).map_err(|error| invalid(error.to_string()))?;
        value.set_sensitive(true);
        map.append(header, value);
    }
    if let Some(token) = bearer {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            Error::InvalidHeader {
                name: "Authorization".into(),
                reason: "the token contains characters not allowed in a header".into(),
            }
        })?;
        value.set_sensitive(true);
        map.insert(AUTHORIZATION, value);
    }
    Ok(map)
}

/// Turns a failed request into [`Error::Tls`] when the server's certificate was refused
/// (retrying would not help) and [`Error::Connect`] otherwise.
pub(crate) fn classify(url: &Url, error: hyper_util::client::legacy::Error) -> Error {
    let url = url.to_string();
    if is_certificate_error(&error) {
        Error::Tls {
            url,
            source: Box::new(error),
        }
    } else {
        Error::Connect {
            url,
            source: Box::new(error),
        }
    }
}

/// Whether a rustls certificate error is somewhere in the chain. rustls errors travel inside
/// `io::Error`s (hyper-rustls wraps them twice), whose `source()` skips the wrapped error, so
/// look inside those explicitly.
fn is_certificate_error(error: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        let mut candidate = Some(error);
        while let Some(inner) = candidate {
            if let Some(
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented,
            ) = inner.downcast_ref::<rustls::Error>()
            {
                return true;
            }
            candidate = inner
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .map(|wrapped| wrapped as &(dyn StdError + 'static));
        }
        next = error.source();
    }
    false
}

/// Wraps a body read error.
pub(crate) fn body_error(url: &Url, error: hyper::Error) -> Error {
    Error::Body {
        url: url.to_string(),
        source: BoxError::from(error),
    }
}

/// The start of an error body as text: lossy UTF-8, cut to [`SNIPPET_LIMIT`] bytes on a
/// character boundary, trimmed.
pub(crate) fn snippet(bytes: &[u8]) -> String {
    let mut cut = &bytes[..bytes.len().min(SNIPPET_LIMIT)];
    if let Err(error) = std::str::from_utf8(cut)
        && error.error_len().is_none()
    {
        // The cut split a character: drop its first bytes rather than show U+FFFD.
        cut = &cut[..error.valid_up_to()];
    }
    String::from_utf8_lossy(cut).trim().to_owned()
}

/// Whether a `Content-Type` value is `text/event-stream` (any case, any parameters).
pub(crate) fn is_event_stream(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("text/event-stream")
}

/// A `Retry-After` header in delta-seconds (the HTTP-date form is ignored: it needs a clock
/// agreement we cannot check).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_stream_content_types() {
        assert!(is_event_stream("text/event-stream"));
        assert!(is_event_stream("Text/Event-Stream; charset=utf-8"));
        assert!(!is_event_stream("text/plain"));
        assert!(!is_event_stream("text/event-streams"));
    }

    #[test]
    fn urls_must_be_http() {
        assert!(
            parse_url("http://127.0.0.1:3000/x#frag").is_ok_and(|url| url.fragment().is_none())
        );
        assert!(matches!(
            parse_url("ftp://example.com/"),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(matches!(
            parse_url("not a url"),
            Err(Error::InvalidUrl { .. })
        ));
    }

    #[test]
    fn snippets_are_bounded_and_lossy() {
        assert_eq!(snippet(b"  no grant\n"), "no grant");
        assert_eq!(snippet(&[b'a'; 2000]).len(), SNIPPET_LIMIT);
        assert_eq!(snippet(b"\xffok"), "\u{fffd}ok");
        let mut split = vec![b'a'; SNIPPET_LIMIT - 1];
        split.extend_from_slice("é".as_bytes());
        assert_eq!(snippet(&split), "a".repeat(SNIPPET_LIMIT - 1));
    }

    #[test]
    fn headers_are_validated_and_sensitive() {
        let map = header_map(&[("X-Key".into(), "v".into())], Some("t0k")).unwrap();
        assert!(map.get("x-key").is_some_and(HeaderValue::is_sensitive));
        assert!(!format!("{map:?}").contains("t0k"));
        let bad = header_map(&[("bad name".into(), "v".into())], None);
        assert!(matches!(bad, Err(Error::InvalidHeader { .. })));
        let bad = header_map(&[], Some("new\nline"));
        assert!(matches!(bad, Err(Error::InvalidHeader { .. })));
    }

    #[test]
    fn retry_after_seconds_only() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn bad_root_certificates_are_refused() {
        let options = TransportOptions {
            root_pems: vec![b"not pem".to_vec()],
            ..TransportOptions::default()
        };
        assert!(matches!(options.client(), Err(Error::RootCertificate(_))));
    }
}
