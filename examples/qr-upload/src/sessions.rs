//! Upload sessions and the photos sent to them, kept in memory within fixed bounds.
//!
//! A session belongs to one member (the desktop that opened it) and lives until its
//! deadline. Its id is the capability the phone holds: 122 random bits, so nobody finds a
//! session by guessing. When it ends, its photos are dropped at once; the session itself is
//! kept as a tombstone for a while so a late upload hears "expired" rather than "unknown".

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use tokio::time::Instant;

use crate::photo;

/// The bounds that keep memory use predictable whatever phones send.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// How long a session accepts uploads.
    pub(crate) ttl: Duration,
    /// Largest photo, in bytes.
    pub(crate) max_photo_bytes: usize,
    /// Most photos in one session.
    pub(crate) max_photos: usize,
    /// Most bytes of photos held across all sessions: the app's whole memory budget.
    pub(crate) max_stored_bytes: usize,
    /// Most sessions known at once, live or ended (tombstones count, they cost memory too).
    pub(crate) max_sessions: usize,
}

/// One upload session.
#[derive(Debug)]
struct Session {
    /// The member whose desktop opened it; only they see its QR code and its updates.
    member: String,
    /// The hub topic its updates go to.
    topic: String,
    /// When it stops accepting photos.
    deadline: Instant,
    /// Set when the expiry task has ended the topic; photos are gone from then on.
    ended: bool,
    /// The photos, in upload order; a photo's number is its position plus one.
    photos: Vec<Photo>,
}

/// One uploaded photo.
#[derive(Debug, Clone)]
pub(crate) struct Photo {
    /// The name the phone gave it, cleaned for display.
    pub(crate) name: String,
    /// The type read from its bytes, served back as `Content-Type`.
    pub(crate) content_type: &'static str,
    /// The file, shared with every response that serves it.
    pub(crate) bytes: Bytes,
}

/// What a session looks like to its pages.
#[derive(Debug, Clone)]
pub(crate) struct SessionInfo {
    /// Time left before it expires.
    pub(crate) remaining: Duration,
    /// Photos received so far.
    pub(crate) photos: usize,
}

/// A photo accepted into a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Accepted {
    /// Its number in the session, from 1.
    pub(crate) number: usize,
    /// The topic to announce it on.
    pub(crate) topic: String,
    /// Its sniffed type.
    pub(crate) content_type: &'static str,
}

/// Why a session or an upload was refused: each says what happened and what to do, and maps
/// to the HTTP status the app answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No such session (a mistyped link, or one that ended long ago).
    Unknown,
    /// The session's time is up.
    Expired,
    /// The photo is larger than the per-photo limit.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The session already holds its maximum number of photos.
    TooMany {
        /// The limit.
        limit: usize,
    },
    /// The file is not an image the app recognizes.
    NotAnImage,
    /// The app's memory budget for photos is used up.
    StorageFull,
    /// Too many sessions are open.
    TooManySessions,
}

impl Refusal {
    /// The status to answer with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Refusal::Unknown => StatusCode::NOT_FOUND,
            Refusal::Expired => StatusCode::GONE,
            Refusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::TooMany { .. } => StatusCode::CONFLICT,
            Refusal::NotAnImage => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
            Refusal::TooManySessions => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Unknown => f.write_str(
                "There is no such upload session. Scan the QR code on your computer again.",
            ),
            Refusal::Expired => f.write_str(
                "This upload session has expired. Start a new one on your computer and scan its QR code.",
            ),
            Refusal::TooLarge { limit } => write!(
                f,
                "This photo is too large: the limit is {} per photo.",
                megabytes(*limit)
            ),
            Refusal::TooMany { limit } => write!(
                f,
                "This session already has {limit} photos, the most it takes. Start a new session for more."
            ),
            Refusal::NotAnImage => write!(
                f,
                "This file is not a photo the app can show ({} only).",
                photo::ACCEPTED
            ),
            Refusal::StorageFull => {
                f.write_str("The server is holding too many photos right now. Try again later.")
            }
            Refusal::TooManySessions => {
                f.write_str("Too many upload sessions are open right now. Try again later.")
            }
        }
    }
}

/// `10 MB`, `1.5 MB`, `200 KB`: sizes as people read them.
pub(crate) fn megabytes(bytes: usize) -> String {
    const MB: usize = 1024 * 1024;
    if bytes >= MB {
        let tenths = bytes * 10 / MB;
        if tenths.is_multiple_of(10) {
            format!("{} MB", tenths / 10)
        } else {
            format!("{}.{} MB", tenths / 10, tenths % 10)
        }
    } else {
        format!("{} KB", bytes.div_ceil(1024))
    }
}

/// Every session, behind one lock: each operation is a few map lookups, never held across an
/// await, so a `std` mutex is the cheapest correct choice.
#[derive(Debug)]
pub(crate) struct Sessions {
    limits: Limits,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<String, Session>,
    /// Bytes of photos held across all sessions, against [`Limits::max_stored_bytes`].
    stored_bytes: usize,
}

impl Sessions {
    pub(crate) fn new(limits: Limits) -> Self {
        Sessions {
            limits,
            state: Mutex::default(),
        }
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the maps consistent (every operation
        // updates them in one step), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens a session `id` for `member`, publishing to `topic`; it expires after
    /// [`Limits::ttl`] from now.
    pub(crate) fn create(&self, id: &str, member: &str, topic: String) -> Result<(), Refusal> {
        let mut state = self.state();
        if state.sessions.len() >= self.limits.max_sessions {
            return Err(Refusal::TooManySessions);
        }
        state.sessions.insert(
            id.to_owned(),
            Session {
                member: member.to_owned(),
                topic,
                deadline: Instant::now() + self.limits.ttl,
                ended: false,
                photos: Vec::new(),
            },
        );
        Ok(())
    }

    /// The session as its pages see it, or why it cannot take photos.
    pub(crate) fn info(&self, id: &str) -> Result<SessionInfo, Refusal> {
        let state = self.state();
        let session = live(&state, id)?;
        Ok(SessionInfo {
            remaining: session.deadline.saturating_duration_since(Instant::now()),
            photos: session.photos.len(),
        })
    }

    /// The topic of session `id` when `member` owns it and it is still live.
    pub(crate) fn owned_topic(&self, id: &str, member: &str) -> Option<String> {
        let state = self.state();
        live(&state, id)
            .ok()
            .filter(|session| session.member == member)
            .map(|session| session.topic.clone())
    }

    /// Refuses early, before the body is read, what would certainly be refused after:
    /// an unknown or expired session, a full session, a declared size above the limit.
    pub(crate) fn precheck(&self, id: &str, declared_len: Option<u64>) -> Result<(), Refusal> {
        let state = self.state();
        let session = live(&state, id)?;
        if session.photos.len() >= self.limits.max_photos {
            return Err(Refusal::TooMany {
                limit: self.limits.max_photos,
            });
        }
        if declared_len.is_some_and(|len| len > self.limits.max_photo_bytes as u64) {
            return Err(Refusal::TooLarge {
                limit: self.limits.max_photo_bytes,
            });
        }
        Ok(())
    }

    /// Stores a photo in session `id`. Every bound is checked again here, under the lock,
    /// because several uploads to one session may have passed [`Sessions::precheck`] at once.
    pub(crate) fn add(&self, id: &str, name: &str, bytes: Bytes) -> Result<Accepted, Refusal> {
        if bytes.len() > self.limits.max_photo_bytes {
            return Err(Refusal::TooLarge {
                limit: self.limits.max_photo_bytes,
            });
        }
        let content_type = photo::sniff(&bytes).ok_or(Refusal::NotAnImage)?;
        let mut state = self.state();
        let stored = state.stored_bytes;
        let session = live_mut(&mut state, id)?;
        if session.photos.len() >= self.limits.max_photos {
            return Err(Refusal::TooMany {
                limit: self.limits.max_photos,
            });
        }
        if stored + bytes.len() > self.limits.max_stored_bytes {
            return Err(Refusal::StorageFull);
        }
        let size = bytes.len();
        session.photos.push(Photo {
            name: photo::display_name(name),
            content_type,
            bytes,
        });
        let accepted = Accepted {
            number: session.photos.len(),
            topic: session.topic.clone(),
            content_type,
        };
        state.stored_bytes += size;
        Ok(accepted)
    }

    /// Photo `number` (from 1) of session `id`, while the session is live.
    pub(crate) fn photo(&self, id: &str, number: usize) -> Option<Photo> {
        let state = self.state();
        let session = live(&state, id).ok()?;
        session.photos.get(number.checked_sub(1)?).cloned()
    }

    /// Ends session `id`: no more uploads, its photos are dropped. Returns its topic, for
    /// ending the stream; `None` when it was already ended or is unknown.
    pub(crate) fn end(&self, id: &str) -> Option<String> {
        let mut state = self.state();
        let session = state.sessions.get_mut(id)?;
        if session.ended {
            return None;
        }
        session.ended = true;
        let freed: usize = session.photos.drain(..).map(|p| p.bytes.len()).sum();
        let topic = session.topic.clone();
        state.stored_bytes -= freed;
        Some(topic)
    }

    /// Forgets session `id` entirely (after its tombstone time).
    pub(crate) fn remove(&self, id: &str) {
        let mut state = self.state();
        if let Some(session) = state.sessions.remove(id) {
            let freed: usize = session.photos.iter().map(|p| p.bytes.len()).sum();
            state.stored_bytes -= freed;
        }
    }
}

/// Session `id` if it still takes photos. Past its deadline it is expired even if the
/// expiry task has not run yet.
fn live<'s>(state: &'s State, id: &str) -> Result<&'s Session, Refusal> {
    let session = state.sessions.get(id).ok_or(Refusal::Unknown)?;
    if session.ended || Instant::now() >= session.deadline {
        return Err(Refusal::Expired);
    }
    Ok(session)
}

fn live_mut<'s>(state: &'s mut State, id: &str) -> Result<&'s mut Session, Refusal> {
    let session = state.sessions.get_mut(id).ok_or(Refusal::Unknown)?;
    if session.ended || Instant::now() >= session.deadline {
        return Err(Refusal::Expired);
    }
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    fn sessions() -> Sessions {
        sessions_lasting(Duration::from_secs(60))
    }

    fn sessions_lasting(ttl: Duration) -> Sessions {
        Sessions::new(Limits {
            ttl,
            max_photo_bytes: 64,
            max_photos: 2,
            max_stored_bytes: 100,
            max_sessions: 3,
        })
    }

    fn png(len: usize) -> Bytes {
        let mut bytes = PNG.to_vec();
        bytes.resize(len, 0);
        Bytes::from(bytes)
    }

    #[test]
    fn photos_are_numbered_and_served_with_their_sniffed_type() {
        let sessions = sessions();
        sessions.create("s1", "m1", "topic-1".into()).unwrap();
        let accepted = sessions.add("s1", "a.png", png(20)).unwrap();
        assert_eq!((accepted.number, accepted.topic.as_str()), (1, "topic-1"));
        assert_eq!(accepted.content_type, "image/png");
        assert_eq!(sessions.add("s1", "b.png", png(20)).unwrap().number, 2);
        let photo = sessions.photo("s1", 2).unwrap();
        assert_eq!((photo.name.as_str(), photo.bytes.len()), ("b.png", 20));
        assert!(sessions.photo("s1", 0).is_none());
        assert!(sessions.photo("s1", 3).is_none());
        assert_eq!(sessions.info("s1").unwrap().photos, 2);
    }

    #[test]
    fn every_bound_is_refused_with_its_reason() {
        let sessions = sessions();
        sessions.create("s1", "m1", "t1".into()).unwrap();
        assert_eq!(sessions.add("nope", "a", png(20)), Err(Refusal::Unknown));
        assert_eq!(
            sessions.add("s1", "a", png(65)),
            Err(Refusal::TooLarge { limit: 64 })
        );
        assert_eq!(
            sessions.precheck("s1", Some(65)),
            Err(Refusal::TooLarge { limit: 64 })
        );
        assert_eq!(
            sessions.add("s1", "a", Bytes::from_static(b"<svg/>")),
            Err(Refusal::NotAnImage)
        );
        sessions.add("s1", "a", png(60)).unwrap();
        sessions.add("s1", "b", png(30)).unwrap();
        assert_eq!(
            sessions.add("s1", "c", png(1 + PNG.len())),
            Err(Refusal::TooMany { limit: 2 })
        );
        assert_eq!(
            sessions.precheck("s1", None),
            Err(Refusal::TooMany { limit: 2 })
        );
        // 90 bytes held of 100: the budget spans sessions.
        sessions.create("s2", "m1", "t2".into()).unwrap();
        assert_eq!(sessions.add("s2", "a", png(20)), Err(Refusal::StorageFull));
        sessions.create("s3", "m2", "t3".into()).unwrap();
        assert_eq!(
            sessions.create("s4", "m2", "t4".into()),
            Err(Refusal::TooManySessions)
        );
        for refusal in [Refusal::Unknown, Refusal::StorageFull, Refusal::NotAnImage] {
            assert!(refusal.status().is_client_error() || refusal.status().is_server_error());
            assert!(refusal.to_string().ends_with('.'), "{refusal}");
        }
    }

    #[test]
    fn only_the_owner_sees_a_live_session() {
        let sessions = sessions();
        sessions.create("s1", "m1", "t1".into()).unwrap();
        assert_eq!(sessions.owned_topic("s1", "m1").as_deref(), Some("t1"));
        assert_eq!(sessions.owned_topic("s1", "m2"), None, "another member");
        assert_eq!(sessions.owned_topic("s2", "m1"), None, "unknown");
    }

    #[test]
    fn a_session_past_its_deadline_refuses_uploads_before_it_is_ended() {
        // A session with no time at all is past its deadline from the start, as any session
        // is between its deadline and the expiry task's turn.
        let sessions = sessions_lasting(Duration::ZERO);
        sessions.create("s1", "m1", "t1".into()).unwrap();
        assert_eq!(sessions.add("s1", "b", png(20)), Err(Refusal::Expired));
        assert_eq!(sessions.precheck("s1", None), Err(Refusal::Expired));
        assert_eq!(sessions.info("s1").unwrap_err(), Refusal::Expired);
        assert_eq!(sessions.owned_topic("s1", "m1"), None);
        assert_eq!(sessions.end("s1").as_deref(), Some("t1"));
        assert_eq!(sessions.end("s1"), None, "ended once");
        assert_eq!(sessions.add("s1", "b", png(20)), Err(Refusal::Expired));
        sessions.remove("s1");
        assert_eq!(sessions.add("s1", "b", png(20)), Err(Refusal::Unknown));
    }

    #[test]
    fn ending_a_session_drops_its_photos_and_frees_their_bytes() {
        let sessions = sessions();
        sessions.create("s1", "m1", "t1".into()).unwrap();
        sessions.add("s1", "a", png(60)).unwrap();
        sessions.create("s2", "m1", "t2".into()).unwrap();
        assert_eq!(sessions.add("s2", "a", png(60)), Err(Refusal::StorageFull));
        assert_eq!(sessions.end("s1").as_deref(), Some("t1"));
        assert!(sessions.photo("s1", 1).is_none());
        assert_eq!(sessions.add("s2", "a", png(60)).unwrap().number, 1);
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(megabytes(10 * 1024 * 1024), "10 MB");
        assert_eq!(megabytes(1024 * 1024 * 3 / 2), "1.5 MB");
        assert_eq!(megabytes(200 * 1024), "200 KB");
        assert_eq!(megabytes(1), "1 KB");
    }
}
