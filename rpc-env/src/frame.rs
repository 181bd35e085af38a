//! Length-prefixed frames: the sans-IO codec under every connection (see `WIRE.md`).
//!
//! ```text
//! u32 length        bytes after this field: 9 + payload
//! u8  kind          1 request, 2 response, 3 failure, 4 one-way
//! u64 request id    0 for one-way frames
//! ... payload       request / one-way: endpoint header, then the message body
//!                   response: the reply body;  failure: the error (kind + text)
//! ```
//!
//! [`FrameDecoder::decode`] splits frames off the front of a read buffer without copying:
//! `Ok(None)` means "need more bytes", `Err` means "malformed: close this connection".

use byteorder::{BigEndian, ByteOrder};
use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::address::RpcAddress;
use crate::codec::{DecodeError, Encode};
use crate::error::RpcError;
use crate::message;

/// Bytes of the fixed header after the length field: kind and request id.
pub(crate) const FIXED_HEADER: usize = 9;
/// Bytes of the length field.
pub(crate) const LENGTH_FIELD: usize = 4;

/// The kind of a frame, its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// An ask: the peer answers with a response or a failure of the same request id.
    Request = 1,
    /// The answer to a request.
    Response = 2,
    /// A request's failure, as text.
    Failure = 3,
    /// A message that wants no answer.
    OneWay = 4,
}

impl FrameKind {
    fn from_byte(b: u8) -> Option<FrameKind> {
        match b {
            1 => Some(FrameKind::Request),
            2 => Some(FrameKind::Response),
            3 => Some(FrameKind::Failure),
            4 => Some(FrameKind::OneWay),
            _ => None,
        }
    }
}

/// One decoded frame; `payload` shares the read buffer's memory.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) kind: FrameKind,
    pub(crate) request_id: u64,
    pub(crate) payload: Bytes,
}

/// Why bytes on a connection are not a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The length field is above the configured maximum.
    TooLarge { len: usize, max: usize },
    /// The length field cannot even hold the fixed header.
    TooShort { len: usize },
    /// An unknown kind byte.
    UnknownKind { kind: u8 },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge { len, max } => {
                write!(
                    f,
                    "Too large frame: {len} (ember.rpc.message.maxSize is {max} bytes)"
                )
            }
            FrameError::TooShort { len } => {
                write!(f, "Frame length should be at least {FIXED_HEADER}: {len}")
            }
            FrameError::UnknownKind { kind } => write!(f, "Unknown frame kind: {kind}"),
        }
    }
}

/// Splits frames off a read buffer; holds only the size limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameDecoder {
    max_frame: usize,
}

impl FrameDecoder {
    /// A decoder refusing frames whose length field exceeds `max_frame`: the same bound
    /// senders check (`ember.rpc.message.maxSize`), so both sides agree to the byte.
    pub(crate) fn new(max_frame: usize) -> FrameDecoder {
        FrameDecoder { max_frame }
    }

    /// Takes one whole frame off the front of `buf`, if it holds one.
    ///
    /// The length is checked before anything else, so a hostile prefix is refused before
    /// the connection buffers it.
    pub(crate) fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if buf.len() < LENGTH_FIELD {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len > self.max_frame {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_frame,
            });
        }
        if len < FIXED_HEADER {
            return Err(FrameError::TooShort { len });
        }
        if buf.len() < LENGTH_FIELD + len {
            // Make room for the rest now so the next reads fill one allocation.
            buf.reserve(LENGTH_FIELD + len - buf.len());
            return Ok(None);
        }
        let kind_byte = buf[LENGTH_FIELD];
        let kind =
            FrameKind::from_byte(kind_byte).ok_or(FrameError::UnknownKind { kind: kind_byte })?;
        let mut frame = buf.split_to(LENGTH_FIELD + len).freeze();
        frame.advance(LENGTH_FIELD + 1);
        let request_id = frame.get_u64();
        Ok(Some(Frame {
            kind,
            request_id,
            payload: frame,
        }))
    }
}

/// Writes a frame's length field and fixed header; returns where the length goes so
/// [`finish_frame`] can patch it once the payload is written.
pub(crate) fn start_frame(buf: &mut BytesMut, kind: FrameKind, request_id: u64) -> usize {
    let start = buf.len();
    buf.put_u32(0);
    buf.put_u8(kind as u8);
    buf.put_u64(request_id);
    start
}

/// Patches the length of the frame begun at `start`; returns the length field's value.
pub(crate) fn finish_frame(buf: &mut BytesMut, start: usize) -> usize {
    let len = buf.len() - start - LENGTH_FIELD;
    let field = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    buf[start..start + LENGTH_FIELD].copy_from_slice(&field);
    len
}

/// Appends a request or one-way frame: endpoint header, then `body`.
pub(crate) fn put_message_frame(
    buf: &mut BytesMut,
    kind: FrameKind,
    request_id: u64,
    sender: Option<&RpcAddress>,
    receiver: &str,
    body: &dyn Fn(&mut BytesMut),
) -> usize {
    let start = start_frame(buf, kind, request_id);
    sender.encode(buf);
    receiver.encode(buf);
    body(buf);
    finish_frame(buf, start)
}

/// Appends a failure frame carrying `error`.
pub(crate) fn put_failure_frame(buf: &mut BytesMut, request_id: u64, error: &RpcError) -> usize {
    let start = start_frame(buf, FrameKind::Failure, request_id);
    WireFailure::from_error(error).encode(buf);
    finish_frame(buf, start)
}

message! {
    /// How a failure travels: the errors an asker can act on keep their kind; everything
    /// else becomes a `Failure` with its text.
    enum WireFailure {
        Failure { message: String },
        NoReply { endpoint: String },
        EndpointNotFound { name: String },
    }
}

impl WireFailure {
    fn from_error(error: &RpcError) -> WireFailure {
        match error {
            RpcError::NoReply { endpoint } => WireFailure::NoReply {
                endpoint: endpoint.clone(),
            },
            RpcError::EndpointNotFound { name } => {
                WireFailure::EndpointNotFound { name: name.clone() }
            }
            RpcError::Failure { message } => WireFailure::Failure {
                message: message.clone(),
            },
            other => WireFailure::Failure {
                message: other.to_string(),
            },
        }
    }

    fn into_error(self) -> RpcError {
        match self {
            WireFailure::Failure { message } => RpcError::Failure { message },
            WireFailure::NoReply { endpoint } => RpcError::NoReply { endpoint },
            WireFailure::EndpointNotFound { name } => RpcError::EndpointNotFound { name },
        }
    }
}

/// The endpoint header of a request or one-way frame, kept as offsets into the payload so
/// the caller can compare the raw sender and receiver with what it last saw before paying
/// to parse them, and parsing costs no reference-count traffic on the payload.
#[derive(Debug)]
pub(crate) struct EndpointHeader {
    payload: Bytes,
    /// The encoded `Option<RpcAddress>` of the sender is `payload[..sender_end]`.
    sender_end: usize,
    /// The receiver endpoint's name (UTF-8 checked) is `payload[name_start..body_start]`.
    name_start: usize,
    /// The message body is `payload[body_start..]`.
    body_start: usize,
}

/// A cursor over a header's bytes, failing as [`Reader`](crate::codec::Reader) does.
struct HeaderCursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl HeaderCursor<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::UnexpectedEnd {
                needed: n,
                remaining: self.remaining(),
            });
        }
        let taken = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(taken)
    }

    fn read_len(&mut self) -> Result<usize, DecodeError> {
        let len = BigEndian::read_u32(self.take(4)?) as usize;
        if len > self.remaining() {
            return Err(DecodeError::LengthTooLarge {
                len,
                remaining: self.remaining(),
            });
        }
        Ok(len)
    }
}

impl EndpointHeader {
    /// Splits a request or one-way payload into header fields and body.
    pub(crate) fn parse(payload: Bytes) -> Result<EndpointHeader, DecodeError> {
        let mut c = HeaderCursor {
            bytes: &payload,
            at: 0,
        };
        // Skip over the sender address to find where it ends; it is parsed only when it
        // differs from the last one seen on the connection.
        match c.take(1)?[0] {
            0 => {}
            1 => {
                let host_len = c.read_len()?;
                c.take(host_len + 2)?;
            }
            _ => {
                return Err(DecodeError::InvalidValue {
                    what: "option flag is neither 0 nor 1",
                })
            }
        }
        let sender_end = c.at;
        let name_len = c.read_len()?;
        let name_start = c.at;
        if std::str::from_utf8(c.take(name_len)?).is_err() {
            return Err(DecodeError::InvalidUtf8);
        }
        let body_start = c.at;
        Ok(EndpointHeader {
            payload,
            sender_end,
            name_start,
            body_start,
        })
    }

    /// The encoded sender address, as it came.
    pub(crate) fn sender_raw(&self) -> &[u8] {
        &self.payload[..self.sender_end]
    }

    /// The receiver name's bytes.
    pub(crate) fn receiver(&self) -> &[u8] {
        &self.payload[self.name_start..self.body_start]
    }

    /// The receiver name (checked UTF-8 in [`parse`](Self::parse)).
    pub(crate) fn receiver_name(&self) -> &str {
        std::str::from_utf8(self.receiver()).unwrap_or("")
    }

    /// Parses the sender address.
    pub(crate) fn sender(&self) -> Result<Option<RpcAddress>, DecodeError> {
        crate::codec::decode_from(self.payload.slice(..self.sender_end))
    }

    /// The message body.
    pub(crate) fn into_body(self) -> Bytes {
        let mut body = self.payload;
        body.advance(self.body_start);
        body
    }
}

/// Reads the error of a failure frame.
pub(crate) fn parse_failure(payload: Bytes) -> Result<RpcError, DecodeError> {
    crate::codec::decode_from::<WireFailure>(payload).map(WireFailure::into_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_way(sender: Option<&RpcAddress>, receiver: &str, body: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        put_message_frame(&mut buf, FrameKind::OneWay, 0, sender, receiver, &|b| {
            b.put_slice(body)
        });
        buf
    }

    #[test]
    fn splits_whole_frames_and_waits_for_partial_ones() {
        let addr = RpcAddress::new("localhost", 7077);
        let mut wire = one_way(Some(&addr), "echo", b"hi");
        let mut second = BytesMut::new();
        put_failure_frame(&mut second, 42, &RpcError::failure("Oops"));
        wire.extend_from_slice(&second);
        let whole = wire.clone();

        let decoder = FrameDecoder::new(1024);
        // Byte by byte: nothing comes out until a frame is complete.
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for b in whole.iter() {
            buf.put_u8(*b);
            while let Some(f) = decoder.decode(&mut buf).expect("valid") {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 2);
        assert!(buf.is_empty());
        assert_eq!(frames[0].kind, FrameKind::OneWay);
        let header = EndpointHeader::parse(frames[0].payload.clone()).expect("header");
        assert_eq!(header.sender().expect("sender"), Some(addr));
        assert_eq!(header.receiver_name(), "echo");
        assert_eq!(&header.into_body()[..], b"hi");
        assert_eq!(frames[1].kind, FrameKind::Failure);
        assert_eq!(frames[1].request_id, 42);
        assert_eq!(
            parse_failure(frames[1].payload.clone()).expect("error"),
            RpcError::failure("Oops")
        );
    }

    #[test]
    fn exact_layout_of_a_one_way_frame() {
        let buf = one_way(None, "ab", b"\x07");
        // length = 9 fixed + 1 (no sender) + 4 + 2 (name) + 1 (body) = 17
        assert_eq!(
            &buf[..],
            &[0, 0, 0, 17, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, b'a', b'b', 7]
        );
    }

    #[test]
    fn frame_at_the_limit_is_accepted_one_over_is_refused() {
        let decoder = FrameDecoder::new(FIXED_HEADER + 16);
        let mut at_limit = BytesMut::new();
        let start = start_frame(&mut at_limit, FrameKind::Response, 1);
        at_limit.put_slice(&[0u8; 16]);
        finish_frame(&mut at_limit, start);
        assert!(decoder.decode(&mut at_limit).expect("ok").is_some());

        let mut over = BytesMut::new();
        let start = start_frame(&mut over, FrameKind::Response, 1);
        over.put_slice(&[0u8; 17]);
        finish_frame(&mut over, start);
        assert_eq!(
            decoder.decode(&mut over).unwrap_err(),
            FrameError::TooLarge { len: 26, max: 25 }
        );
    }

    #[test]
    fn hostile_headers_are_errors_before_any_buffering() {
        let decoder = FrameDecoder::new(1 << 20);
        let mut huge = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            decoder.decode(&mut huge),
            Err(FrameError::TooLarge { .. })
        ));
        let mut short = BytesMut::from(&[0, 0, 0, 3, 1, 2, 3][..]);
        assert_eq!(
            decoder.decode(&mut short).unwrap_err(),
            FrameError::TooShort { len: 3 }
        );
        let mut kind = BytesMut::from(&[0, 0, 0, 9, 77, 0, 0, 0, 0, 0, 0, 0, 0][..]);
        assert_eq!(
            decoder.decode(&mut kind).unwrap_err(),
            FrameError::UnknownKind { kind: 77 }
        );
    }

    #[test]
    fn truncated_endpoint_headers_are_decode_errors() {
        for cut in 0..8 {
            let full = one_way(Some(&RpcAddress::new("h", 1)), "name", b"");
            let payload = Bytes::copy_from_slice(&full[LENGTH_FIELD + FIXED_HEADER..]);
            let truncated = payload.slice(..cut.min(payload.len()));
            assert!(EndpointHeader::parse(truncated).is_err(), "cut at {cut}");
        }
    }
}
