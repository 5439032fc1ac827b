//! Two networks on loopback: gossip reaches the other node and is forwarded only when
//! accepted; a request is answered; oversized messages are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cairn_p2p::{NetworkEvent, NetworkEvents, P2pError, TopicKind, Verdict};

mod support;

use support::node;

async fn next_gossip(events: &mut NetworkEvents) -> cairn_p2p::GossipMessage {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("an event in time")
            .expect("the network is running");
        if let NetworkEvent::Gossip(message) = event {
            return message;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_and_requests_flow_between_two_peers() {
    let (a, mut a_events) = node(vec![]).await;
    let a_status = a.status().await.unwrap();
    let address = format!("{}/p2p/{}", a_status.listen_addrs[0], a.peer_id())
        .parse()
        .unwrap();
    let (b, mut b_events) = node(vec![address]).await;

    // Gossip needs the mesh: retry until the first message gets through.
    let payload = b"a transaction".to_vec();
    let message = loop {
        match b.publish(TopicKind::Transactions, payload.clone()).await {
            Ok(()) => {}
            Err(P2pError::Publish(_)) => {}
            Err(other) => panic!("{other}"),
        }
        if let Ok(message) =
            tokio::time::timeout(Duration::from_millis(500), next_gossip(&mut a_events)).await
        {
            break message;
        }
    };
    assert_eq!(message.kind, TopicKind::Transactions);
    assert_eq!(message.data, payload);
    a.validate(&message, Verdict::Accept).await.unwrap();

    // Too large for the topic: refused before it leaves.
    let oversized = b.publish(TopicKind::Votes, vec![0; 2048]).await;
    assert!(
        matches!(oversized, Err(P2pError::TooLarge { .. })),
        "{oversized:?}"
    );

    // A request from A is answered by B.
    let asking = tokio::spawn({
        let a = a.clone();
        async move { a.request(None, b"blocks 1..10".to_vec()).await }
    });
    let (id, data) = loop {
        match tokio::time::timeout(Duration::from_secs(20), b_events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            NetworkEvent::Request { id, data, .. } => break (id, data),
            _ => continue,
        }
    };
    assert_eq!(data, b"blocks 1..10");
    b.respond(id, b"here they are".to_vec()).await.unwrap();
    let (peer, answer) = asking.await.unwrap().unwrap();
    assert_eq!(peer, b.peer_id());
    assert_eq!(answer, b"here they are");
}
