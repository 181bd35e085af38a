//! The slot a connection's cipher sits in: Noise today, plain (authenticated at connect time
//! only, `ember.network.crypto.enabled=false`), and later TLS, behind one small trait.

use bytes::BytesMut;

use super::noise::{NoiseError, NoiseTransport};

/// What a connection does with its bytes after the handshake.
pub(crate) trait Channel: Send {
    /// Appends `plain` (a coalesced write buffer) to `out` as it goes on the wire.
    fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>);
    /// Moves what it can of `input` (wire bytes) onto `plain`; an error closes the connection.
    fn open(&mut self, input: &mut BytesMut, plain: &mut BytesMut) -> Result<(), NoiseError>;
}

impl Channel for NoiseTransport {
    fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) {
        NoiseTransport::seal(self, plain, out)
    }
    fn open(&mut self, input: &mut BytesMut, plain: &mut BytesMut) -> Result<(), NoiseError> {
        NoiseTransport::open(self, input, plain)
    }
}

/// Authenticated, then plaintext: bytes pass through unchanged.
pub(crate) struct Plain;

impl Channel for Plain {
    fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(plain);
    }
    fn open(&mut self, input: &mut BytesMut, plain: &mut BytesMut) -> Result<(), NoiseError> {
        plain.extend_from_slice(&input.split());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_passes_bytes_through() {
        let mut out = Vec::new();
        Plain.seal(b"abc", &mut out);
        let mut input = BytesMut::from(&out[..]);
        let mut got = BytesMut::new();
        Plain.open(&mut input, &mut got).unwrap();
        assert_eq!(&got[..], b"abc");
        assert!(input.is_empty());
    }
}
