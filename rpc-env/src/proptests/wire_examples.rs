//! `WIRE.md`'s worked examples, byte for byte, so the page cannot drift from the code.

use bytes::BytesMut;

use crate::address::RpcAddress;
use crate::codec::Encode;
use crate::frame::{finish_frame, put_failure_frame, put_message_frame, start_frame, FrameKind};
use crate::{message, Reply};

message! {
    /// The echo ask of the crate docs, for the request of `WIRE.md`'s worked example.
    enum EchoAsk {
        Echo { text: String, reply: Reply<String> },
    }
}

/// Bytes from spaced hex, as `WIRE.md` prints them.
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("x"), 16).unwrap_or(0))
        .collect()
}

/// `WIRE.md`'s worked examples, byte for byte, so the page cannot drift from the code.
#[test]
fn wire_md_worked_examples() {
    let sender = RpcAddress::new("localhost", 12345);

    // send("foo") to `test` from the env at localhost:12345 (the example Spark's RPC walk-throughs use).
    let mut one_way = BytesMut::new();
    put_message_frame(
        &mut one_way,
        FrameKind::OneWay,
        0,
        Some(&sender),
        "test",
        &|b| "foo".encode(b),
    );
    let expected = hex("00000028 04 0000000000000000
         01 00000009 6c6f63616c686f7374 3039
         00000004 74657374
         00000003 666f6f");
    assert_eq!(&one_way[..], &expected[..]);

    // The first remote ask of an env (slot 0, generation 1): Echo { text: "hi" } to `echo`.
    let id = 1u64 << 32;
    let ask = EchoAsk::Echo {
        text: "hi".into(),
        reply: Reply::detached(),
    };
    let mut request = BytesMut::new();
    put_message_frame(
        &mut request,
        FrameKind::Request,
        id,
        Some(&sender),
        "echo",
        &|b| ask.encode(b),
    );
    let expected = hex("00000029 01 0000000100000000
         01 00000009 6c6f63616c686f7374 3039
         00000004 6563686f
         0000 00000002 6869");
    assert_eq!(&request[..], &expected[..]);

    // Its answer, "hi", and the failure it would get if `echo` did not exist.
    let mut response = BytesMut::new();
    let start = start_frame(&mut response, FrameKind::Response, id);
    "hi".encode(&mut response);
    finish_frame(&mut response, start);
    assert_eq!(
        &response[..],
        &hex("0000000f 02 0000000100000000 00000002 6869")[..]
    );
    let mut failure = BytesMut::new();
    let not_found = crate::RpcError::EndpointNotFound {
        name: "echo".into(),
    };
    put_failure_frame(&mut failure, id, &not_found);
    let expected = hex("00000013 03 0000000100000000
         0002 00000004 6563686f");
    assert_eq!(&failure[..], &expected[..]);

    // The same one-way from a client-mode env: no sender address.
    let mut client = BytesMut::new();
    put_message_frame(&mut client, FrameKind::OneWay, 0, None, "test", &|b| {
        "foo".encode(b)
    });
    let expected = hex("00000019 04 0000000000000000
         00
         00000004 74657374
         00000003 666f6f");
    assert_eq!(&client[..], &expected[..]);
}
