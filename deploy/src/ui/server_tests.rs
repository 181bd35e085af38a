//! The UI's HTTP server over real sockets: requests parsed and answered, HEAD without a
//! body, forms read, refusals of oversized and malformed requests. (Slow peers are
//! `deploy/tests/ui_server.rs`, which counts its process's threads.)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use super::http::{UiRequest, UiResponse};
use super::server::UiServer;

/// A server whose route answers with what it was asked.
fn echo_server(name: &str) -> UiServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let route = Box::new(|r: &UiRequest| {
        if r.path == "/boom" {
            panic!("the route fails");
        }
        UiResponse::text(
            200,
            format!(
                "{:?} {} {:?} same_origin={}",
                r.method, r.path, r.params, r.same_origin
            ),
        )
    });
    UiServer::start(name, listener, route).expect("the server starts")
}

/// Sends `raw` and reads the whole answer.
fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(raw).expect("sent");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn status(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn requests_are_parsed_and_answered_with_the_security_headers() {
    let server = echo_server("uit-basic");
    let addr = server.address();
    let get = exchange(addr, b"GET /app/?appId=a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&get), 200, "{get}");
    assert!(get.contains("Get /app [(\"appId\", \"a/b\")]"), "{get}");
    assert!(get.contains("X-Frame-Options: SAMEORIGIN\r\n"), "{get}");
    assert!(
        get.contains("Content-Security-Policy: default-src 'none'"),
        "{get}"
    );
    assert!(get.contains("Connection: close\r\n"), "{get}");

    let head = exchange(addr, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&head), 200);
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("a length");
    assert!(length > 0);
    assert!(head.ends_with("\r\n\r\n"), "no body after a HEAD: {head:?}");

    let host = addr.to_string();
    let post = exchange(
        addr,
        format!(
            "POST /app/kill/ HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n\
             Content-Length: 12\r\n\r\nid=a&x=1+2"
        )
        .as_bytes(),
    );
    // The body is two bytes short of its Content-Length: the peer gives up, nothing answers.
    assert_eq!(post, "", "an incomplete body is not answered");
    let post = exchange(
        addr,
        format!(
            "POST /app/kill/ HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n\
             Content-Length: 10\r\n\r\nid=a&x=1+2"
        )
        .as_bytes(),
    );
    assert!(
        post.contains("Post /app/kill [(\"id\", \"a\"), (\"x\", \"1 2\")] same_origin=true"),
        "{post}"
    );
    let other_site = exchange(
        addr,
        format!("POST /x HTTP/1.1\r\nHost: {host}\r\nOrigin: http://evil\r\n\r\n").as_bytes(),
    );
    assert!(other_site.contains("same_origin=false"), "{other_site}");

    let failed = exchange(addr, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&failed), 500, "a route that panics costs one 500");
    let after = exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&after), 200, "and the server goes on");
    server.stop();
    assert!(
        TcpStream::connect(addr).is_err() || exchange(addr, b"GET / HTTP/1.0\r\n\r\n").is_empty()
    );
}

#[test]
fn oversized_and_malformed_requests_are_refused() {
    let server = echo_server("uit-refuse");
    let addr = server.address();
    let long_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Long: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    assert_eq!(status(&exchange(addr, long_header.as_bytes())), 431);
    let many: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
    assert_eq!(status(&exchange(addr, many.as_bytes())), 431);
    let big_body = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n";
    assert_eq!(status(&exchange(addr, big_body.as_bytes())), 413);
    let chunked = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(status(&exchange(addr, chunked.as_bytes())), 411);
    assert_eq!(status(&exchange(addr, b"\x00\x01garbage\r\n\r\n")), 400);
    assert_eq!(
        status(&exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")),
        200
    );
}
