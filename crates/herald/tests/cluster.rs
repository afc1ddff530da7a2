//! A cluster as users run it: several `herald serve --transport redis://…` processes on
//! loopback ports sharing one Redis. Needs Redis at `REDIS_URL` (CI starts it); the restart
//! tests start their own `redis-server` so they can kill it.

use std::path::Path;
use std::time::{Duration, Instant};

use herald_testkit::encode;
use herald_testkit::process::{
    ClusterName, HubProcess, RedisCluster, RedisServer, redis_url, token,
};

const TOPIC: &str = "https://example.com/cluster";

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_herald"))
}

/// Starts `count` nodes of one cluster on `redis`.
fn nodes(redis: &str, cluster: &str, count: usize) -> Vec<HubProcess> {
    nodes_with(redis, cluster, count, &[])
}

/// Starts `count` nodes of one cluster on `redis`, with `extra` options.
fn nodes_with(redis: &str, cluster: &str, count: usize, extra: &[&str]) -> Vec<HubProcess> {
    let mut args = vec![
        "--transport",
        redis,
        "--cluster-name",
        cluster,
        "--heartbeat",
        "1s",
    ];
    args.extend_from_slice(extra);
    (0..count)
        .map(|_| HubProcess::start_with_test_keys(binary(), &args))
        .collect()
}

fn topic_query() -> String {
    format!("match={}", encode(TOPIC))
}

/// `id: N` and `data: uN` as the stream carries them.
fn numbered(id: u32) -> String {
    format!("id: {id}\ndata: u{id}\n\n")
}

#[tokio::test]
async fn publish_on_one_node_reaches_subscribers_on_the_others() {
    let Some(redis) = redis_url() else { return };
    let cluster = ClusterName::new("fanout", &redis);
    let [a, b, c]: [HubProcess; 3] = nodes(&redis, &cluster.name, 3).try_into().ok().unwrap();
    let reader = format!("Bearer {}", token(&[], &[TOPIC]));
    let mut on_b_granted = b
        .subscribe(&topic_query(), &[("Authorization", &reader)])
        .await;
    let mut on_c_anonymous = c.subscribe(&topic_query(), &[]).await;
    assert_eq!((on_b_granted.status, on_c_anonymous.status), (200, 200));

    for form in [
        format!("topic={}&id=public&data=for+everyone", encode(TOPIC)),
        format!("topic={}&id=secret&data=for+b&private=on", encode(TOPIC)),
        format!("topic={}&id=after&data=marker", encode(TOPIC)),
    ] {
        let answer = a.publish(&form).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }

    assert_eq!(
        on_b_granted.next_event().await,
        "id: public\ndata: for everyone\n\n"
    );
    assert_eq!(
        on_b_granted.next_event().await,
        "id: secret\ndata: for b\n\n"
    );
    assert_eq!(
        on_b_granted.next_event().await,
        "id: after\ndata: marker\n\n"
    );
    // The private update never reaches a subscriber without a grant, on any node.
    assert_eq!(
        on_c_anonymous.next_event().await,
        "id: public\ndata: for everyone\n\n"
    );
    assert_eq!(
        on_c_anonymous.next_event().await,
        "id: after\ndata: marker\n\n"
    );
}

#[tokio::test]
async fn clients_of_a_killed_node_resume_on_another_with_no_gap() {
    let Some(redis) = redis_url() else { return };
    let cluster = ClusterName::new("failover", &redis);
    let [a, b, c]: [HubProcess; 3] = nodes(&redis, &cluster.name, 3).try_into().ok().unwrap();
    let mut on_b = b.subscribe(&topic_query(), &[]).await;
    a.publish_numbered(TOPIC, 1..=3).await;
    for id in 1..=3 {
        assert_eq!(on_b.next_event().await, numbered(id));
    }

    b.kill();
    // Published while the client has no connection.
    a.publish_numbered(TOPIC, 4..=6).await;

    let mut on_c = c.subscribe(&topic_query(), &[("Last-Event-ID", "3")]).await;
    assert_eq!(on_c.status, 200);
    assert_eq!(on_c.header("mercure-last-event-id"), Some("3"));
    c.publish_numbered(TOPIC, 7..=7).await;
    // Replay (4–6, from the shared log) then live (7): in order, each once.
    for id in 4..=7 {
        assert_eq!(on_c.next_event().await, numbered(id));
    }
    assert!(
        !on_c
            .drain_for(Duration::from_millis(300))
            .await
            .contains("id: ")
    );
}

#[tokio::test]
async fn subscription_events_reach_watchers_on_every_node() {
    let Some(redis) = redis_url() else { return };
    let cluster = ClusterName::new("events", &redis);
    let [a, b]: [HubProcess; 2] = nodes_with(&redis, &cluster.name, 2, &["--subscription-events"])
        .try_into()
        .ok()
        .unwrap();
    let watcher_token = format!("Bearer {}", token(&[], &["*"]));
    let pattern = encode("/.well-known/mercure/subscriptions/:type/:match/:subscriber");
    let mut watcher_on_a = a
        .subscribe(
            &format!("match_urlpattern={pattern}"),
            &[("Authorization", &watcher_token)],
        )
        .await;
    assert_eq!(watcher_on_a.status, 200);

    let subscriber_on_b = b.subscribe(&topic_query(), &[]).await;
    let mut connected = watcher_on_a.next_event().await;
    while !connected.contains(TOPIC) {
        connected = watcher_on_a.next_event().await;
    }
    assert!(connected.contains("event: mercure\n"), "{connected}");
    assert!(connected.contains("\"active\":true"), "{connected}");

    drop(subscriber_on_b);
    // Node B notices the closed connection on its next write at the latest (a heartbeat).
    let mut disconnected = watcher_on_a.next_event().await;
    while !disconnected.contains(TOPIC) {
        disconnected = watcher_on_a.next_event().await;
    }
    assert!(disconnected.contains("\"active\":false"), "{disconnected}");
}

#[tokio::test]
async fn a_paused_node_holds_nobody_back_and_catches_up_when_it_resumes() {
    let Some(redis) = redis_url() else { return };
    let cluster = ClusterName::new("slow", &redis);
    let [a, b, c]: [HubProcess; 3] = nodes(&redis, &cluster.name, 3).try_into().ok().unwrap();
    let mut on_b = b.subscribe(&topic_query(), &[]).await;
    let mut on_c = c.subscribe(&topic_query(), &[]).await;

    b.pause();
    a.publish_numbered(TOPIC, 1..=5).await;
    for id in 1..=5 {
        assert_eq!(on_c.next_event().await, numbered(id));
    }
    b.resume();
    // B reads the log from where it stopped: everything, in order, once.
    for id in 1..=5 {
        assert_eq!(on_b.next_event().await, numbered(id));
    }
}

#[tokio::test]
async fn ending_a_topic_on_one_node_ends_its_streams_on_every_node() {
    let Some(redis) = redis_url() else { return };
    let cluster = ClusterName::new("end", &redis);
    let [a, b, c]: [HubProcess; 3] = nodes(&redis, &cluster.name, 3).try_into().ok().unwrap();
    let mut on_b = b.subscribe(&topic_query(), &[]).await;
    let mut on_c = c.subscribe(&topic_query(), &[]).await;

    let answer = a
        .post(
            "/.well-known/mercure/end",
            &format!("topic={}&id=last&type=bye&data=done", encode(TOPIC)),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    // The final event first (it is in the log before the end), then the stream closes.
    for stream in [&mut on_b, &mut on_c] {
        assert_eq!(
            stream.next_event().await,
            "id: last\nevent: bye\ndata: done\n\n"
        );
        stream.read_to_end().await;
    }
    // Every node answers 204 now, so browsers stop reconnecting wherever they land.
    for node in [&a, &b, &c] {
        assert_eq!(node.subscribe(&topic_query(), &[]).await.status, 204);
    }
    // Publishing again opens a new stream on every node.
    a.publish_numbered(TOPIC, 1..=1).await;
    let mut reopened = c
        .subscribe(&topic_query(), &[("Last-Event-ID", "last")])
        .await;
    assert_eq!(reopened.status, 200);
    assert_eq!(reopened.next_event().await, numbered(1));
}

/// Publishes `id` to `node` until it is accepted (Redis is coming back), at most 20 s.
async fn publish_when_back(node: &HubProcess, id: u32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = node
            .publish(&format!("topic={}&id={id}&data=u{id}", encode(TOPIC)))
            .await;
        if answer.status == 200 {
            return;
        }
        assert_eq!(answer.status, 503, "{}", answer.text());
        assert!(
            Instant::now() < deadline,
            "publishing did not resume: {}",
            answer.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn redis_restart_refuses_publishes_then_both_nodes_continue_where_they_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut redis) = RedisServer::start(dir.path(), true) else {
        return;
    };
    let [a, b]: [HubProcess; 2] = nodes(&redis.url(), "restart", 2).try_into().ok().unwrap();
    let mut on_b = b.subscribe(&topic_query(), &[]).await;
    a.publish_numbered(TOPIC, 1..=2).await;
    assert_eq!(on_b.next_event().await, numbered(1));
    assert_eq!(on_b.next_event().await, numbered(2));

    redis.kill();
    let refused = a
        .publish(&format!("topic={}&id=lost&data=never", encode(TOPIC)))
        .await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(
        refused.text().contains("history store unavailable"),
        "{}",
        refused.text()
    );

    redis.restart();
    publish_when_back(&a, 3).await;
    b.publish_numbered(TOPIC, 4..=4).await;
    // The subscriber kept its connection: it gets what was accepted, in order, and never
    // the refused publish.
    assert_eq!(on_b.next_event().await, numbered(3));
    assert_eq!(on_b.next_event().await, numbered(4));
    // And history survived (Redis kept its append-only file): resume from 1 on node A.
    let mut resumed = a.subscribe(&topic_query(), &[("Last-Event-ID", "1")]).await;
    for id in 2..=4 {
        assert_eq!(resumed.next_event().await, numbered(id));
    }
}

#[tokio::test]
async fn redis_that_comes_back_empty_makes_subscribers_resume_with_a_gap_notice() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut redis) = RedisServer::start(dir.path(), false) else {
        return;
    };
    let [a, b]: [HubProcess; 2] = nodes(&redis.url(), "empty", 2).try_into().ok().unwrap();
    let mut on_b = b.subscribe(&topic_query(), &[]).await;
    a.publish_numbered(TOPIC, 1..=1).await;
    assert_eq!(on_b.next_event().await, numbered(1));

    redis.restart();
    publish_when_back(&a, 2).await;
    // Node B notices the log was lost and closes its streams with a retry hint, so the
    // client resumes rather than trusting a history that no longer exists.
    on_b.read_to_end().await;
    let mut resumed = b.subscribe(&topic_query(), &[("Last-Event-ID", "1")]).await;
    assert_eq!(resumed.header("mercure-last-event-id"), Some("earliest"));
    let gap = resumed.next_event().await;
    assert!(gap.contains("event: herald-history-gap"), "{gap}");
    assert_eq!(resumed.next_event().await, numbered(2));
}

#[tokio::test]
async fn nodes_on_a_redis_cluster_share_one_history() {
    let dir = tempfile::tempdir().unwrap();
    let Some(redis) = RedisCluster::start(dir.path()) else {
        return;
    };
    // Keys of one cluster name share a hash tag, so they live on one shard whichever it is.
    let [a, b]: [HubProcess; 2] = nodes(&redis.url(), "sharded", 2).try_into().ok().unwrap();
    let mut on_b = b.subscribe(&topic_query(), &[]).await;
    a.publish_numbered(TOPIC, 1..=3).await;
    for id in 1..=3 {
        assert_eq!(on_b.next_event().await, numbered(id));
    }
    let mut resumed = a.subscribe(&topic_query(), &[("Last-Event-ID", "1")]).await;
    assert_eq!(resumed.next_event().await, numbered(2));
    assert_eq!(resumed.next_event().await, numbered(3));
}
