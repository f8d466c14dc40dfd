//! Slow clients over a real socket: connections that never finish their request head are
//! closed by the header-read timeout, one address cannot hold more than its share of
//! connections, and everyone else keeps being answered meanwhile.

use std::time::{Duration, Instant};

use spark_control::http::ServeLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{TestApp, DESIRED};

/// Opens a connection from `source`, sends half a request head, and returns when the
/// server closed it: (time the server took to close it, since this connection was open).
async fn half_head(source: &str, server: std::net::SocketAddr) -> Duration {
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind(format!("{source}:0").parse().expect("addr"))
        .expect("bind the slow client's address");
    let mut tcp = sock.connect(server).await.expect("connect");
    let opened = Instant::now();
    // Never finished: no blank line ends the head.
    let _ = tcp
        .write_all(b"GET /api/endpoints HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await;
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return opened.elapsed(),
            Ok(Ok(_)) => continue, // a 408 may come before the close
            Err(_) => panic!("a slow connection was still open after 30 s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_connections_are_closed_and_others_answered() {
    let t = TestApp::start(DESIRED, None).await;
    let timeout = Duration::from_secs(2);
    let cap = 256;
    let state = t.state.clone().with_limits(ServeLimits {
        header_read_timeout: timeout,
        max_connections_per_client: cap,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(spark_control::http::serve(
        listener,
        state,
        t.shutdown.clone(),
    ));

    // 300 slow connections from one address (127.0.0.5).
    let slow: Vec<_> = (0..300)
        .map(|_| tokio::spawn(half_head("127.0.0.5", addr)))
        .collect();
    // Meanwhile another client (127.0.0.1) is answered, again and again.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    for _ in 0..10 {
        let r = client
            .get(format!("http://{addr}/api/endpoints"))
            .send()
            .await
            .expect("a normal request is answered while slow clients hang");
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let mut before_timeout = 0;
    for h in slow {
        let took = h.await.expect("slow client task");
        // Closed by the timeout (with slack for a loaded machine), never left open.
        assert!(
            took < timeout + Duration::from_secs(8),
            "closed after {took:?}"
        );
        if took < timeout {
            before_timeout += 1;
        }
    }
    // The 44 past the per-address cap were closed at once, before any timeout fired.
    assert!(
        before_timeout >= 300 - cap,
        "only {before_timeout} connections were refused at once (cap {cap})"
    );
    // And the server still answers the slow address once it behaves.
    let r = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .expect("answered after the storm");
    assert_eq!(r.status(), 200);
}
