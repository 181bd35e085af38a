//! Routing without a socket: frames built as a peer would send them, endpoints and asks in
//! plain maps.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use bytes::{BufMut, BytesMut};

use super::*;
use crate::frame::{put_failure_frame, put_message_frame, FrameDecoder};

/// Endpoints by name (an inbox is its name here) and asks by id (an ask is its route).
#[derive(Default)]
struct Tables {
    endpoints: RefCell<HashMap<String, String>>,
    asks: RefCell<HashMap<u64, u64>>,
    generation: Cell<u64>,
    lookups: Cell<usize>,
}

impl Tables {
    fn with_endpoints(names: &[&str]) -> Tables {
        let tables = Tables::default();
        for name in names {
            tables.register(name);
        }
        tables
    }

    fn register(&self, name: &str) {
        self.endpoints
            .borrow_mut()
            .insert(name.to_string(), name.to_string());
        self.generation.set(self.generation.get() + 1);
    }
}

impl Destinations for Tables {
    type Inbox = String;
    type Ask = u64;

    fn generation(&self) -> u64 {
        self.generation.get()
    }

    fn endpoint(&self, name: &str) -> Option<String> {
        self.lookups.set(self.lookups.get() + 1);
        self.endpoints.borrow().get(name).cloned()
    }

    fn take_answered(&self, request_id: u64, routes: [u64; 2]) -> Option<u64> {
        let mut asks = self.asks.borrow_mut();
        let route = *asks.get(&request_id)?;
        routes.contains(&route).then(|| {
            asks.remove(&request_id);
            request_id
        })
    }
}

const CONN_ID: u64 = 5;
const OUTBOX_ROUTE: u64 = 9;

fn socket() -> RpcAddress {
    RpcAddress::new("10.0.0.7", 40000)
}

fn inbound() -> ReadRoutes<String> {
    ReadRoutes::new(CONN_ID, Direction::Inbound, socket())
}

fn outbound() -> ReadRoutes<String> {
    ReadRoutes::new(
        CONN_ID,
        Direction::Outbound {
            outbox_route: OUTBOX_ROUTE,
        },
        socket(),
    )
}

fn decode(buf: BytesMut) -> Frame {
    let mut buf = buf;
    let frame = FrameDecoder::new(1 << 20)
        .decode(&mut buf)
        .expect("well-formed")
        .expect("whole");
    assert!(buf.is_empty());
    frame
}

fn message(kind: FrameKind, id: u64, sender: Option<&RpcAddress>, to: &str) -> Frame {
    let mut buf = BytesMut::new();
    put_message_frame(&mut buf, kind, id, sender, to, &|b: &mut BytesMut| {
        b.put_slice(b"body")
    });
    decode(buf)
}

fn response(id: u64) -> Frame {
    let mut buf = BytesMut::new();
    let start = crate::frame::start_frame(&mut buf, FrameKind::Response, id);
    buf.put_slice(b"answer");
    crate::frame::finish_frame(&mut buf, start);
    decode(buf)
}

fn failure(id: u64) -> Frame {
    let mut buf = BytesMut::new();
    put_failure_frame(&mut buf, id, &RpcError::failure("it broke"));
    decode(buf)
}

#[test]
fn a_request_for_a_known_endpoint_is_delivered_with_its_sender_and_id() {
    let tables = Tables::with_endpoints(&["echo"]);
    let peer = RpcAddress::new("node-1", 7077);
    let frame = message(FrameKind::Request, 42, Some(&peer), "echo");
    let routed = route(frame, &mut outbound(), &tables).expect("routes");
    assert!(
        routed.learned.is_none(),
        "we dialled it: its address is known"
    );
    match routed.action {
        Action::Deliver {
            inbox,
            kind,
            request_id,
            sender,
            body,
        } => {
            assert_eq!(inbox, "echo");
            assert_eq!(kind, FrameKind::Request);
            assert_eq!(request_id, 42);
            assert_eq!(*sender, peer);
            assert_eq!(&body[..], b"body");
        }
        other => panic!("not delivered: {other:?}"),
    }
}

#[test]
fn a_client_mode_peer_is_known_by_its_socket_address() {
    let tables = Tables::with_endpoints(&["driver"]);
    let frame = message(FrameKind::OneWay, 0, None, "driver");
    let routed = route(frame, &mut inbound(), &tables).expect("routes");
    assert!(
        routed.learned.is_none(),
        "a client-mode peer has no listen address"
    );
    let Action::Deliver { sender, .. } = routed.action else {
        panic!("not delivered");
    };
    assert_eq!(*sender, socket());
}

#[test]
fn the_first_listen_address_on_an_inbound_connection_is_learned_once() {
    let tables = Tables::with_endpoints(&["master"]);
    let mut routes = inbound();
    let worker = RpcAddress::new("worker-1", 35000);
    let first = route(
        message(FrameKind::OneWay, 0, Some(&worker), "master"),
        &mut routes,
        &tables,
    )
    .expect("routes");
    assert_eq!(first.learned.as_deref(), Some(&worker));
    let again = route(
        message(FrameKind::OneWay, 0, Some(&worker), "master"),
        &mut routes,
        &tables,
    )
    .expect("routes");
    assert!(again.learned.is_none());
    // Another sender later on the same connection is a forgery: one connection cannot
    // speak for two processes (the spoofed-worker attack of issue 11).
    let other = RpcAddress::new("worker-2", 35000);
    let third = route(
        message(FrameKind::OneWay, 0, Some(&other), "master"),
        &mut routes,
        &tables,
    );
    let err = third.expect_err("a second sender is refused");
    assert!(err.to_string().contains("worker-2:35000"), "{err}");
    // So is a client-mode frame (no sender) from a peer that named itself.
    assert!(route(
        message(FrameKind::OneWay, 0, None, "master"),
        &mut routes,
        &tables
    )
    .is_err());
}

#[test]
fn a_peer_pinned_by_the_handshake_cannot_name_another_sender() {
    let tables = Tables::with_endpoints(&["master"]);
    let worker = RpcAddress::new("worker-1", 35000);
    let mut routes = inbound();
    routes.pin(Some(Arc::new(worker.clone())));
    let ok = route(
        message(FrameKind::OneWay, 0, Some(&worker), "master"),
        &mut routes,
        &tables,
    )
    .expect("routes");
    assert!(ok.learned.is_none(), "the handshake announced it already");
    let other = RpcAddress::new("master-host", 7077);
    assert!(route(
        message(FrameKind::Request, 1, Some(&other), "master"),
        &mut routes,
        &tables
    )
    .is_err());
    // A client-mode peer pinned by its handshake sends without an address.
    let mut routes = inbound();
    routes.pin(None);
    let ok = route(
        message(FrameKind::OneWay, 0, None, "master"),
        &mut routes,
        &tables,
    )
    .expect("routes");
    let Action::Deliver { sender, .. } = ok.action else {
        panic!("not delivered");
    };
    assert_eq!(*sender, socket());
    assert!(route(
        message(FrameKind::OneWay, 0, Some(&worker), "master"),
        &mut routes,
        &tables
    )
    .is_err());
}

#[test]
fn an_unknown_endpoint_refuses_a_request_and_drops_a_one_way_message() {
    let tables = Tables::with_endpoints(&["echo"]);
    let mut routes = inbound();
    let refused = route(
        message(FrameKind::Request, 3, None, "nobody"),
        &mut routes,
        &tables,
    )
    .expect("routes");
    match refused.action {
        Action::Refuse { request_id, error } => {
            assert_eq!(request_id, 3);
            assert_eq!(
                error,
                RpcError::EndpointNotFound {
                    name: "nobody".into()
                }
            );
        }
        other => panic!("not refused: {other:?}"),
    }
    let dropped = route(
        message(FrameKind::OneWay, 0, None, "nobody"),
        &mut routes,
        &tables,
    )
    .expect("routes");
    assert!(
        matches!(dropped.action, Action::Drop { error: RpcError::EndpointNotFound { ref name } } if name == "nobody"),
        "{:?}",
        dropped.action
    );
}

#[test]
fn the_receiver_is_looked_up_once_per_registration_generation() {
    let tables = Tables::with_endpoints(&["echo"]);
    let mut routes = inbound();
    for _ in 0..3 {
        route(
            message(FrameKind::OneWay, 0, None, "echo"),
            &mut routes,
            &tables,
        )
        .expect("routes");
    }
    assert_eq!(tables.lookups.get(), 1, "remembered");
    tables.register("other");
    route(
        message(FrameKind::OneWay, 0, None, "echo"),
        &mut routes,
        &tables,
    )
    .expect("routes");
    assert_eq!(
        tables.lookups.get(),
        2,
        "looked up again after a registration change"
    );
    route(
        message(FrameKind::OneWay, 0, None, "other"),
        &mut routes,
        &tables,
    )
    .expect("routes");
    assert_eq!(tables.lookups.get(), 3, "another receiver");
}

#[test]
fn answers_complete_only_asks_that_went_out_on_this_connection() {
    let tables = Tables::default();
    tables.asks.borrow_mut().insert(1, CONN_ID);
    tables.asks.borrow_mut().insert(2, OUTBOX_ROUTE);
    tables.asks.borrow_mut().insert(3, 77);
    let mut routes = outbound();
    for id in [1, 2] {
        let routed = route(response(id), &mut routes, &tables).expect("routes");
        match routed.action {
            Action::Complete { ask, body } => {
                assert_eq!(ask, id);
                assert_eq!(&body[..], b"answer");
            }
            other => panic!("ask {id} not completed: {other:?}"),
        }
    }
    let foreign = route(response(3), &mut routes, &tables).expect("routes");
    assert!(
        matches!(
            foreign.action,
            Action::Ignore {
                request_id: 3,
                what: Ignored::Response { bytes: 6 }
            }
        ),
        "an ask sent elsewhere: {:?}",
        foreign.action
    );
    assert!(tables.asks.borrow().contains_key(&3), "and it still waits");
    let late = route(response(1), &mut routes, &tables).expect("routes");
    assert!(
        matches!(late.action, Action::Ignore { request_id: 1, .. }),
        "answered once"
    );
}

#[test]
fn a_failure_fails_its_ask_with_the_error_it_carries() {
    let tables = Tables::default();
    tables.asks.borrow_mut().insert(8, CONN_ID);
    let mut routes = inbound();
    let routed = route(failure(8), &mut routes, &tables).expect("routes");
    match routed.action {
        Action::Fail { ask, error } => {
            assert_eq!(ask, 8);
            assert_eq!(error, RpcError::failure("it broke"));
        }
        other => panic!("not failed: {other:?}"),
    }
    let ignored = route(failure(8), &mut routes, &tables).expect("routes");
    assert!(matches!(
        ignored.action,
        Action::Ignore {
            request_id: 8,
            what: Ignored::Failure(_)
        }
    ));
}

#[test]
fn malformed_headers_and_failures_are_errors_that_close_the_connection() {
    let tables = Tables::with_endpoints(&["echo"]);
    let mut routes = inbound();
    // A request whose sender flag is neither 0 nor 1.
    let mut buf = BytesMut::new();
    let start = crate::frame::start_frame(&mut buf, FrameKind::Request, 1);
    buf.put_u8(7);
    crate::frame::finish_frame(&mut buf, start);
    assert!(route(decode(buf), &mut routes, &tables).is_err());
    // A failure frame whose payload is not a failure.
    let mut buf = BytesMut::new();
    let start = crate::frame::start_frame(&mut buf, FrameKind::Failure, 1);
    buf.put_u16(999);
    crate::frame::finish_frame(&mut buf, start);
    assert!(route(decode(buf), &mut routes, &tables).is_err());
}
