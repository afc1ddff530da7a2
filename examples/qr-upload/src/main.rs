//! Upload by QR code: the desktop page opens an upload session and shows a QR code of the
//! session's phone URL; the phone opens it, takes or picks photos, and the desktop page shows
//! each one the moment it arrives. The session ends after a time limit, and so does the
//! desktop's stream.
//!
//! How it maps onto the hub embedded in the app:
//! - each session has its own topic, `{public-url}/members/{member}/uploads/{session}`;
//! - every photo is announced by one **private** update with the event type `upload_by_qr`
//!   and JSON data (the photo's URL, name, size and type);
//! - the desktop reads the topic with a subscribe-only JWT the app puts in an **HttpOnly
//!   cookie**; it grants that member's uploads only, so nobody else sees them, even with the
//!   session id;
//! - when the session expires the app calls [`Hub::end_topics`] with a final
//!   `session_expired` event; the browser's next reconnection gets 204 and `EventSource`
//!   stops.
//!
//! Layout: [`sessions`] (sessions and photos in memory, and their bounds), [`photo`] (what
//! an upload is), [`qr`] (the QR code as SVG); this file has the options and the routes.
//!
//! Run with: `cargo run -p qr-upload` (see `--help`; a phone on the same network needs
//! `--listen 0.0.0.0:3006 --public-url http://<this computer's LAN address>:3006`).

mod photo;
mod qr;
mod sessions;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use herald_hub::auth::{TokenVerifier, VerifierConfig};
use herald_hub::http::HubBody;
use herald_hub::mint::{MintError, TokenRequest};
use herald_hub::store::memory::MemoryStore;
use herald_hub::{Hub, HubConfig, UpdateFields};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HeaderName,
    HeaderValue, SET_COOKIE,
};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use url::Url;

use crate::sessions::{Limits, Refusal, Sessions};

/// The cookie carrying the member's hub token (HttpOnly: page scripts never see it).
const TOKEN_COOKIE: &str = "qr_upload_token";
/// The cookie naming the member. A real app has a login; here a random id per browser
/// stands for the signed-in member.
const MEMBER_COOKIE: &str = "qr_upload_member";
/// Who issues the tokens the hub accepts.
const ISSUER: &str = "https://qr-upload.example";
/// The event type of the update announcing a photo.
const UPLOAD_EVENT: &str = "upload_by_qr";
/// The event type of the final update of an expired session.
const EXPIRED_EVENT: &str = "session_expired";
/// How long an ended session still answers "expired" (and its topic 204) before it is
/// forgotten.
const TOMBSTONE: Duration = Duration::from_secs(3600);

/// Upload by QR code: a Herald example.
#[derive(Debug, Parser)]
#[command(name = "qr-upload", version)]
struct Options {
    /// Address to listen on; `0.0.0.0:3006` lets phones on the network reach it.
    #[arg(long, env = "QR_UPLOAD_LISTEN", default_value = "127.0.0.1:3006")]
    listen: String,
    /// Scheme and host phones use to reach the app, put in the QR code
    /// (default `http://<listen address>`).
    #[arg(long, env = "QR_UPLOAD_PUBLIC_URL")]
    public_url: Option<Url>,
    /// How long a session accepts photos (`90s`, `30m`, `2h`).
    #[arg(long, env = "QR_UPLOAD_SESSION_TTL", default_value = "30m", value_parser = parse_duration)]
    session_ttl: Duration,
    /// Largest photo, in bytes.
    #[arg(long, env = "QR_UPLOAD_MAX_PHOTO_BYTES", default_value_t = 15 * 1024 * 1024)]
    max_photo_bytes: usize,
    /// Most photos in one session.
    #[arg(long, env = "QR_UPLOAD_MAX_PHOTOS", default_value_t = 20)]
    max_photos: usize,
    /// Most bytes of photos held in memory across all sessions.
    #[arg(long, env = "QR_UPLOAD_MAX_STORED_BYTES", default_value_t = 512 * 1024 * 1024)]
    max_stored_bytes: usize,
    /// Most sessions at once (ended ones count for an hour).
    #[arg(long, env = "QR_UPLOAD_MAX_SESSIONS", default_value_t = 1000)]
    max_sessions: usize,
}

/// `500ms`, `90s`, `30m`, `2h`; a bare number is seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 30m or 2h"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(value),
        "" | "s" => Duration::from_secs(value),
        "m" => Duration::from_secs(value * 60),
        "h" => Duration::from_secs(value * 3600),
        _ => return Err(format!("unknown unit {unit:?} (use ms, s, m or h)")),
    };
    if duration.is_zero() {
        return Err("a session needs some time".to_owned());
    }
    Ok(duration)
}

/// The app's state, shared by every connection.
#[derive(Clone)]
struct App {
    hub: Hub,
    sessions: Arc<Sessions>,
    /// Signs the members' hub tokens; fresh per run, so older tokens are simply invalid.
    secret: Arc<Vec<u8>>,
    /// Scheme and host without a trailing slash, as phones reach the app.
    public_url: Arc<str>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = Options::parse();
    let listener = TcpListener::bind(&options.listen).await?;
    let addr = listener.local_addr()?;
    let public_url = match options.public_url {
        Some(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => url,
        Some(url) => return Err(format!("--public-url {url} is not an http(s) URL").into()),
        None => format!("http://{addr}").parse()?,
    };
    let public = public_url.as_str().trim_end_matches('/').to_owned();

    let secret: Vec<u8> = (0..4)
        .flat_map(|_| *uuid::Uuid::new_v4().as_bytes())
        .collect();
    let mut config = HubConfig::new(public_url);
    config.cookie_name = TOKEN_COOKIE.to_owned();
    config.retry = Duration::from_secs(1);
    config.ended_ttl = TOMBSTONE;
    let verifier = TokenVerifier::new(VerifierConfig {
        hmac_secret: Some(secret.clone()),
        public_key_pem: None,
        issuer: Some(ISSUER.to_owned()),
        audience: config.hub_url.to_string(),
        legacy: false,
        hub_url: config.hub_url.clone(),
    })?;
    let hub = Hub::start(config, Arc::new(MemoryStore::new(10_000)), Some(verifier)).await?;
    let limits = Limits {
        ttl: options.session_ttl,
        max_photo_bytes: options.max_photo_bytes,
        max_photos: options.max_photos,
        max_stored_bytes: options.max_stored_bytes,
        max_sessions: options.max_sessions,
    };
    println!("QR upload listening on http://{addr}");
    println!(
        "  phones reach it at {public} (sessions last {ttl:?})",
        ttl = limits.ttl
    );
    if addr.ip().is_loopback() {
        println!(
            "  only this computer can reach it: for a phone, use --listen 0.0.0.0:{port} \
             --public-url http://<this computer's LAN address>:{port}",
            port = addr.port()
        );
    }

    let app = App {
        hub,
        sessions: Arc::new(Sessions::new(limits)),
        secret: Arc::new(secret),
        public_url: public.into(),
    };
    loop {
        let (stream, _) = listener.accept().await?;
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| route(app.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(app: App, request: Request<Incoming>) -> Result<Response<HubBody>, Infallible> {
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = request.method().clone();
    Ok(match (&method, segments.as_slice()) {
        (&Method::GET, [""]) => desktop_page(&app, &request),
        (&Method::GET, ["desktop.js"]) => {
            asset("text/javascript; charset=utf-8", include_str!("desktop.js"))
        }
        (&Method::GET, ["phone.js"]) => {
            asset("text/javascript; charset=utf-8", include_str!("phone.js"))
        }
        (&Method::GET, ["qr-upload.css"]) => {
            asset("text/css; charset=utf-8", include_str!("qr-upload.css"))
        }
        (&Method::POST, ["sessions"]) => create_session(&app, &request),
        (&Method::GET, ["sessions", id, "qr.svg"]) => qr_code(&app, &request, id),
        (&Method::GET, ["upload", id]) if is_session_id(id) => {
            asset("text/html; charset=utf-8", include_str!("phone.html"))
        }
        (&Method::GET, ["upload", id, "info"]) => session_info(&app, id),
        (&Method::POST, ["upload", id, "photos"]) => {
            let id = (*id).to_owned();
            upload(&app, &id, request).await
        }
        (&Method::GET, ["upload", id, "photos", number]) => serve_photo(&app, id, number),
        (_, ["sessions" | "upload", ..]) => text(StatusCode::NOT_FOUND, "not found\n"),
        _ => herald_hub::http::handle(app.hub.clone(), request).await,
    })
}

/// Session ids are 32 lowercase hex digits (a UUID v4 without dashes): anything else is not
/// looked up at all.
fn is_session_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn topic(app: &App, member: &str, session: &str) -> String {
    format!("{}/members/{member}/uploads/{session}", app.public_url)
}

fn cookie<'r>(request: &'r Request<Incoming>, name: &str) -> Option<&'r str> {
    request
        .headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The member of this browser, from its cookie; same shape as a session id.
fn member_of(request: &Request<Incoming>) -> Option<&str> {
    cookie(request, MEMBER_COOKIE).filter(|member| is_session_id(member))
}

/// Sets the member's hub token: it may read private updates of that member's upload topics,
/// nothing else, and outlives a session started now.
fn sign_in(app: &App, response: &mut Response<HubBody>, member: &str) -> Result<(), MintError> {
    let ttl = app.sessions.limits().ttl + Duration::from_secs(3600);
    let token = TokenRequest {
        publish: Vec::new(),
        subscribe: vec![topic(app, member, ":session")],
        ttl,
        issuer: ISSUER.to_owned(),
        audience: app.hub.config().hub_url.to_string(),
        subject: member.to_owned(),
        legacy: false,
        payload: None,
    }
    .sign_hmac(&app.secret)?;
    let cookies = [
        format!(
            "{TOKEN_COOKIE}={token}; HttpOnly; Path=/; SameSite=Lax; Max-Age={}",
            ttl.as_secs()
        ),
        format!("{MEMBER_COOKIE}={member}; HttpOnly; Path=/; SameSite=Lax; Max-Age=31536000"),
    ];
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
    Ok(())
}

/// The desktop page; signs the browser in as a member (new or returning).
fn desktop_page(app: &App, request: &Request<Incoming>) -> Response<HubBody> {
    let member = member_of(request).map(str::to_owned).unwrap_or_else(new_id);
    let mut response = asset("text/html; charset=utf-8", include_str!("desktop.html"));
    if sign_in(app, &mut response, &member).is_err() {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "cannot sign in\n");
    }
    response
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Opens a session for the signed-in member, arms its expiry, and tells the page where the
/// phone goes and what to subscribe to.
fn create_session(app: &App, request: &Request<Incoming>) -> Response<HubBody> {
    let Some(member) = member_of(request) else {
        return text(
            StatusCode::UNAUTHORIZED,
            "Not signed in: open the start page first.\n",
        );
    };
    let id = new_id();
    let topic = topic(app, member, &id);
    if let Err(refusal) = app.sessions.create(&id, member, topic.clone()) {
        return refused(&refusal);
    }
    tokio::spawn(expire(app.clone(), id.clone()));
    let limits = app.sessions.limits();
    let mut response = json(
        StatusCode::CREATED,
        &serde_json::json!({
            "session": id,
            "topic": topic,
            "phone_url": format!("{}/upload/{id}", app.public_url),
            "qr": format!("/sessions/{id}/qr.svg"),
            "expires_in_ms": limits.ttl.as_millis() as u64,
            "max_photos": limits.max_photos,
            "max_photo_bytes": limits.max_photo_bytes,
        }),
    );
    // A fresh token with each session, so a long-open page never reconnects with an
    // expired one.
    if sign_in(app, &mut response, member).is_err() {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "cannot sign in\n");
    }
    response
}

/// Waits out a session's time, then ends it: uploads stop, photos are dropped, and the hub
/// sends the final `session_expired` event and closes the desktop's stream, answering its
/// reconnection with 204. The tombstone goes after [`TOMBSTONE`].
async fn expire(app: App, id: String) {
    tokio::time::sleep(app.sessions.limits().ttl).await;
    if let Some(topic) = app.sessions.end(&id) {
        let last = UpdateFields {
            id: format!("expired-{id}"),
            topics: vec![topic.clone()],
            private: true,
            event_type: Some(EXPIRED_EVENT.to_owned()),
            data: serde_json::json!({
                "session": id,
                "message": "This upload session has expired.",
            })
            .to_string(),
            retry: None,
        };
        if let Err(error) = app.hub.end_topics(&[topic], Some(last)).await {
            eprintln!("cannot end session {id}: {error}");
        }
    }
    tokio::time::sleep(TOMBSTONE).await;
    app.sessions.remove(&id);
}

/// The QR code of a session's phone URL, for the member who owns the session.
fn qr_code(app: &App, request: &Request<Incoming>, id: &str) -> Response<HubBody> {
    let owned = member_of(request).and_then(|member| app.sessions.owned_topic(id, member));
    if owned.is_none() {
        return text(StatusCode::NOT_FOUND, "no such session\n");
    }
    match qr::svg(&format!("{}/upload/{id}", app.public_url)) {
        Some(svg) => {
            let mut response = Response::new(Full::new(Bytes::from(svg)).boxed_unsync());
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
            response
        }
        None => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the public URL is too long for a QR code\n",
        ),
    }
}

/// What the phone page shows before the first upload: the limits and the time left.
fn session_info(app: &App, id: &str) -> Response<HubBody> {
    match app.sessions.info(id) {
        Ok(info) => {
            let limits = app.sessions.limits();
            json(
                StatusCode::OK,
                &serde_json::json!({
                    "expires_in_ms": info.remaining.as_millis() as u64,
                    "photos": info.photos,
                    "max_photos": limits.max_photos,
                    "max_photo_bytes": limits.max_photo_bytes,
                    "max_photo_size": sessions::megabytes(limits.max_photo_bytes),
                    "accepted": photo::ACCEPTED,
                }),
            )
        }
        Err(refusal) => refused(&refusal),
    }
}

/// One photo from the phone, the raw file as the body and its name in `?name=`: stored, then
/// announced to the desktop with one `upload_by_qr` update.
async fn upload(app: &App, id: &str, request: Request<Incoming>) -> Response<HubBody> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Err(refusal) = app.sessions.precheck(id, declared) {
        return refused(&refusal);
    }
    let name = request
        .uri()
        .query()
        .and_then(|query| form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == "name"))
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    let max = app.sessions.limits().max_photo_bytes;
    let bytes = match Limited::new(request.into_body(), max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => {
            return refused(&Refusal::TooLarge { limit: max });
        }
        Err(_) => return text(StatusCode::BAD_REQUEST, "The upload was interrupted.\n"),
    };
    let size = bytes.len();
    let accepted = match app.sessions.add(id, &name, bytes) {
        Ok(accepted) => accepted,
        Err(refusal) => return refused(&refusal),
    };
    let url = format!("{}/upload/{id}/photos/{}", app.public_url, accepted.number);
    let data = serde_json::json!({
        "url": url,
        "name": photo::display_name(&name),
        "size": size,
        "type": accepted.content_type,
        "number": accepted.number,
        "max_photos": app.sessions.limits().max_photos,
    });
    let update = UpdateFields {
        id: format!("{id}-{}", accepted.number),
        topics: vec![accepted.topic],
        private: true,
        event_type: Some(UPLOAD_EVENT.to_owned()),
        data: data.to_string(),
        retry: None,
    };
    match app.hub.publish(update).await {
        Ok(_) => json(StatusCode::CREATED, &data),
        Err(error) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("The photo was stored but could not be announced: {error}\n"),
        ),
    }
}

/// A stored photo, with the type read from its bytes; `nosniff` keeps the browser from
/// second-guessing it.
fn serve_photo(app: &App, id: &str, number: &str) -> Response<HubBody> {
    let photo = number
        .parse::<usize>()
        .ok()
        .and_then(|number| app.sessions.photo(id, number));
    let Some(photo) = photo else {
        return text(StatusCode::NOT_FOUND, "no such photo\n");
    };
    let mut response = Response::new(Full::new(photo.bytes).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(photo.content_type));
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    // "Save image as" proposes the phone's file name; RFC 8187 encoding carries any
    // character safely inside the header.
    let disposition = format!("inline; filename*=UTF-8''{}", header_encode(&photo.name));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    response
}

/// Percent-encodes everything but RFC 8187's `attr-char`s.
fn header_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn refused(refusal: &Refusal) -> Response<HubBody> {
    text(refusal.status(), &format!("{refusal}\n"))
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<HubBody> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())).boxed_unsync());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn text(status: StatusCode, body: &str) -> Response<HubBody> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response<HubBody> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed_unsync());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_hub_options() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn file_names_travel_safely_in_content_disposition() {
        assert_eq!(header_encode("IMG_0042.JPG"), "IMG_0042.JPG");
        assert_eq!(header_encode("été 1.png"), "%C3%A9t%C3%A9%201.png");
        assert_eq!(header_encode("a\"b;c"), "a%22b%3Bc");
    }

    #[test]
    fn session_ids_are_32_lowercase_hex_digits() {
        assert!(is_session_id(&new_id()));
        assert!(!is_session_id("0F6C0B4E9D2A4F7E8C1B5A3D2E4F6A8B"));
        assert!(!is_session_id("../../etc/passwd"));
        assert!(!is_session_id(""));
    }
}
