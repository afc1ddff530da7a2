//! `Publisher` against a hand-written HTTP/1.1 server: the exact form on the wire, the token,
//! the hub's reasons for refusing, an unreachable hub, ending a stream.

mod common;

use std::time::Duration;

use common::*;
use herald_client::{Error, Publication, Publisher, StatusCode};

#[tokio::test]
async fn publish_posts_the_form_with_the_token_and_returns_the_id() {
    let mut server = FakeServer::start(|_, mut socket| async move {
        send(&mut socket, &response("200 OK", "", "urn:uuid:5\n")).await;
    })
    .await;
    let publisher = Publisher::builder(server.url("/.well-known/mercure"))
        .bearer("t0ken")
        .build()
        .unwrap();
    let update = Publication::new("https://example.com/books/1")
        .topic("/alt")
        .data("line 1\nline 2 & more")
        .id("id-1")
        .event_type("update")
        .retry(Duration::from_millis(1500))
        .private(true);

    let id = within(publisher.publish(&update)).await.unwrap();

    assert_eq!(id, "urn:uuid:5");
    let request = server.request().await;
    assert_eq!(
        (request.method.as_str(), request.target.as_str()),
        ("POST", "/.well-known/mercure")
    );
    assert_eq!(request.header("authorization"), Some("Bearer t0ken"));
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        request.body,
        "topic=https%3A%2F%2Fexample.com%2Fbooks%2F1&topic=%2Falt&data=line+1%0Aline+2+%26+more\
         &id=id-1&type=update&retry=1500&private=on"
    );
}

#[tokio::test]
async fn a_refusal_carries_the_hubs_reason() {
    let _server = FakeServer::start(|_, mut socket| async move {
        let reason = "the token does not grant publish on topic \"/x\"";
        let challenge = "WWW-Authenticate: Bearer error=\"insufficient_scope\"\r\n";
        send(&mut socket, &response("403 Forbidden", challenge, reason)).await;
    })
    .await;
    let publisher = Publisher::builder(_server.url("/.well-known/mercure"))
        .build()
        .unwrap();

    let error = within(publisher.publish(&Publication::new("/x").data("d")))
        .await
        .unwrap_err();

    let Error::Status {
        status,
        body_snippet,
    } = &error
    else {
        panic!("expected a status error, got {error:?}");
    };
    assert_eq!(*status, StatusCode::FORBIDDEN);
    assert_eq!(
        body_snippet,
        "the token does not grant publish on topic \"/x\""
    );
}

#[tokio::test]
async fn an_unreachable_hub_is_a_connect_error() {
    let url = format!("http://127.0.0.1:{}/.well-known/mercure", closed_port());
    let publisher = Publisher::builder(&url).build().unwrap();

    let error = within(publisher.publish(&Publication::new("/x")))
        .await
        .unwrap_err();

    assert!(matches!(error, Error::Connect { .. }), "{error:?}");
    assert_eq!(error.io_kind(), Some(std::io::ErrorKind::ConnectionRefused));
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_hub_that_does_not_answer_times_out() {
    let _server = FakeServer::start(|_, socket| async move {
        let _open = socket;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let publisher = Publisher::builder(_server.url("/.well-known/mercure"))
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();

    let error = within(publisher.publish(&Publication::new("/x")))
        .await
        .unwrap_err();

    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
}

#[tokio::test]
async fn an_update_needs_a_topic() {
    let publisher = Publisher::builder("http://127.0.0.1:9/.well-known/mercure")
        .build()
        .unwrap();

    let error = publisher
        .publish(&Publication::default())
        .await
        .unwrap_err();

    assert_eq!(error.to_string(), "an update needs at least one topic");
}

#[tokio::test]
async fn end_posts_to_the_end_endpoint() {
    let mut server = FakeServer::start(|_, mut socket| async move {
        let body = "{\"topics\":[\"/s\"],\"closed\":1}";
        send(&mut socket, &response("200 OK", "", body)).await;
    })
    .await;
    let publisher = Publisher::builder(server.url("/.well-known/mercure/"))
        .build()
        .unwrap();

    let answer = within(publisher.end(&Publication::new("/s").event_type("bye").data("done")))
        .await
        .unwrap();

    assert_eq!(answer, "{\"topics\":[\"/s\"],\"closed\":1}");
    let request = server.request().await;
    assert_eq!(request.target, "/.well-known/mercure/end");
    assert_eq!(request.body, "topic=%2Fs&data=done&type=bye");
}
