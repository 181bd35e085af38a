//! [`LocalOnly`]: a message field that only travels between endpoints of one env.

use std::fmt;

use bytes::{BufMut, BytesMut};

use crate::codec::{Decode, DecodeError, Encode, Reader};

/// A value that can travel only between endpoints of the same env, where messages are never
/// encoded: shared state (an `Arc`, a channel) handed from a local caller to an endpoint
/// whose protocol also has remote messages.
///
/// It encodes as one marker byte and never decodes, so a message holding one that somehow
/// reaches the network is refused by the receiver (which closes that connection) instead of
/// being misread.
pub struct LocalOnly<T>(pub T);

/// The byte a `LocalOnly` writes, so it is visible in a capture.
const MARKER: u8 = 0xff;

impl<T> Encode for LocalOnly<T> {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(MARKER);
    }
}

impl<T> Decode for LocalOnly<T> {
    fn decode(_r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Err(DecodeError::InvalidValue {
            what: "a local-only value cannot come from the network",
        })
    }
}

impl<T: fmt::Debug> fmt::Debug for LocalOnly<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalOnly({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_from, encode_to_bytes};

    #[test]
    fn encodes_a_marker_and_never_decodes() {
        let bytes = encode_to_bytes(&LocalOnly(std::sync::Arc::new(5)));
        assert_eq!(&bytes[..], &[MARKER]);
        assert!(decode_from::<LocalOnly<u8>>(bytes).is_err());
    }
}
