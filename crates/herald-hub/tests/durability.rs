//! redb history: what a 200 acknowledged survives a restart and can be replayed.

use std::sync::Arc;

use herald_hub::store::redb::RedbStore;
use herald_testkit::TestHub;

#[tokio::test]
async fn acknowledged_publishes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.redb");
    {
        let store = Arc::new(RedbStore::open(&path, 100).unwrap());
        let hub = TestHub::builder().store(store).start().await;
        for id in 1..=10 {
            let answer = hub.publish(&format!("topic=t&id=e{id}&data=d{id}")).await;
            assert_eq!(answer.status, 200);
        }
        hub.stop().await;
    }
    let store = Arc::new(RedbStore::open(&path, 100).unwrap());
    let hub = TestHub::builder().store(store).start().await;
    let mut stream = hub.subscribe("match=t", &[("Last-Event-ID", "e7")]).await;
    assert_eq!(stream.header("mercure-last-event-id"), Some("e7"));
    for id in 8..=10 {
        assert_eq!(
            stream.next_event().await,
            format!("id: e{id}\ndata: d{id}\n\n")
        );
    }
    let answer = hub.publish("topic=t&id=e11&data=d11").await;
    assert_eq!(answer.status, 200);
    assert_eq!(stream.next_event().await, "id: e11\ndata: d11\n\n");
}
