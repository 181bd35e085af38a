//! The Noise handshake and transport records, sans-IO: bytes in, bytes out, no sockets.
//!
//! Wire (see WIRE.md): every handshake message and every transport record is a big-endian u16
//! length followed by that many bytes. The initiator (always the connecting side) sends
//! message 1 (`psk, e`), the responder message 2 (`e, ee`); then the initiator's first
//! transport record carries its listen address. The responder counts the peer as
//! authenticated only once it has decrypted that record: message 1 alone can be replayed.

use std::sync::Arc;

use bytes::{Buf, BufMut, BytesMut};
use snow::{HandshakeState, StatelessTransportState};

use super::Secret;

/// The Noise protocol: no static keys (both sides know only the shared secret), the PSK
/// mixed in first; X25519, AES-256-GCM and SHA-256 (the hash HKDF already uses).
///
/// AES-GCM rather than ChaCha20-Poly1305 because our frames are small and our hosts have AES
/// and carry-less multiply instructions (RustCrypto's `aes-gcm` uses them when the CPU has
/// them, and a constant-time software AES otherwise): measured with snow 0.10 on this
/// project's CI machine, sealing and opening one 100-byte record took 0.86 us with AES-GCM
/// against 5.3 us with ChaCha20-Poly1305, and a 64 KiB record 115 us against 156 us. An
/// ask's round trip seals and opens twice, so the suite is most of what authentication
/// costs a small ask.
const PARAMS: &str = "Noise_NNpsk0_25519_AESGCM_SHA256";
/// Bound into the handshake hash: a peer speaking another version fails the handshake.
const PROLOGUE: &[u8] = b"ember-rpc/1";
/// HKDF label of the PSK: the secret itself is never a key.
const PSK_LABEL: &[u8] = b"ember-rpc psk v1";
/// Largest Noise message, tag included.
pub(crate) const MAX_RECORD: usize = 65_535;
/// Authentication tag of every encrypted message.
const TAG: usize = 16;
/// Largest plaintext in one transport record.
pub(crate) const MAX_PLAINTEXT: usize = MAX_RECORD - TAG;
/// Largest handshake-phase message accepted from an unauthenticated peer: messages 1 and 2
/// are 48 bytes, the address record a few hundred; nothing larger is buffered.
const MAX_HANDSHAKE_MESSAGE: usize = 1024;

/// Why a handshake or a record failed. Either way the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NoiseError {
    /// Wrong secret, another protocol version, or tampered handshake bytes.
    AuthenticationFailed(String),
    /// A transport record did not decrypt (flipped, replayed or reordered bytes).
    BadRecord(String),
}

impl std::fmt::Display for NoiseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoiseError::AuthenticationFailed(why) => write!(f, "authentication failed ({why})"),
            NoiseError::BadRecord(why) => write!(f, "a record did not decrypt ({why})"),
        }
    }
}

/// Where one side of a handshake is. One enum: no parallel flags.
enum Step {
    /// Initiator: message 1 sent, waiting for message 2.
    AwaitingReply(Box<HandshakeState>),
    /// Responder: waiting for message 1.
    AwaitingHello(Box<HandshakeState>),
    /// Responder: message 2 sent, waiting for the initiator's address record.
    AwaitingAddress(NoiseTransport),
    /// Finished or failed: nothing more to do.
    Spent,
}

/// What [`Handshake::feed`] reached.
pub(crate) enum Progress {
    /// More peer bytes are needed.
    Pending,
    /// Authenticated. `peer_listen` is the initiator's listen address as it sent it (`None`
    /// from a client-mode initiator, and always `None` on the initiator's side).
    Done {
        /// The cipher for the rest of the connection.
        transport: NoiseTransport,
        /// The initiator's listen address, `host:port`.
        peer_listen: Option<String>,
    },
}

/// One side of a handshake in progress.
pub(crate) struct Handshake {
    step: Step,
    /// The initiator's address record, sent once message 2 is read.
    listen: Option<String>,
}

fn builder_error(e: snow::Error) -> NoiseError {
    NoiseError::AuthenticationFailed(format!("noise: {e}"))
}

fn state(secret: &Secret, initiator: bool) -> Result<HandshakeState, NoiseError> {
    let psk = secret.derive_key(PSK_LABEL);
    // Invariant: PARAMS is a constant Noise name snow supports with the features we enable.
    let params = PARAMS.parse().expect("a supported Noise protocol name");
    let builder = snow::Builder::new(params)
        .psk(0, &psk)
        .and_then(|b| b.prologue(PROLOGUE))
        .map_err(builder_error)?;
    if initiator {
        builder.build_initiator()
    } else {
        builder.build_responder()
    }
    .map_err(builder_error)
}

/// Appends `payload` as a u16-length-prefixed message. Invariant for callers: len <= 65535.
fn put_message(out: &mut Vec<u8>, payload: &[u8]) {
    out.put_u16(payload.len() as u16);
    out.extend_from_slice(payload);
}

/// Takes one whole length-prefixed message off `input`, if there is one. `limit` bounds the
/// length accepted, so a peer cannot make us wait for (and buffer) more.
fn take_message(input: &mut BytesMut, limit: usize) -> Result<Option<BytesMut>, usize> {
    if input.len() < 2 {
        return Ok(None);
    }
    let len = u16::from_be_bytes([input[0], input[1]]) as usize;
    if len > limit {
        return Err(len);
    }
    if input.len() < 2 + len {
        return Ok(None);
    }
    input.advance(2);
    Ok(Some(input.split_to(len)))
}

impl Handshake {
    /// The connecting side: returns the handshake and appends message 1 to `out`.
    /// `listen` is this env's address (`None` in client mode).
    pub(crate) fn initiator(
        secret: &Secret,
        listen: Option<String>,
        out: &mut Vec<u8>,
    ) -> Result<Handshake, NoiseError> {
        let mut hs = state(secret, true)?;
        let mut buf = [0u8; 64];
        let n = hs.write_message(&[], &mut buf).map_err(builder_error)?;
        put_message(out, &buf[..n]);
        Ok(Handshake {
            step: Step::AwaitingReply(Box::new(hs)),
            listen,
        })
    }

    /// The accepting side.
    pub(crate) fn responder(secret: &Secret) -> Result<Handshake, NoiseError> {
        Ok(Handshake {
            step: Step::AwaitingHello(Box::new(state(secret, false)?)),
            listen: None,
        })
    }

    /// Consumes what it can of `input` (the peer's bytes), appending what must be sent to
    /// `out`. Bytes after the handshake stay in `input`: they are transport records.
    pub(crate) fn feed(
        &mut self,
        input: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Result<Progress, NoiseError> {
        let failed = |why: String| NoiseError::AuthenticationFailed(why);
        loop {
            let Some(msg) = take_message(input, MAX_HANDSHAKE_MESSAGE)
                .map_err(|len| failed(format!("handshake message of {len} bytes")))?
            else {
                return Ok(Progress::Pending);
            };
            let mut payload = [0u8; MAX_HANDSHAKE_MESSAGE];
            match std::mem::replace(&mut self.step, Step::Spent) {
                Step::AwaitingHello(mut hs) => {
                    hs.read_message(&msg, &mut payload)
                        .map_err(|e| failed(format!("message 1: {e}")))?;
                    let mut buf = [0u8; 64];
                    let n = hs.write_message(&[], &mut buf).map_err(builder_error)?;
                    put_message(out, &buf[..n]);
                    self.step = Step::AwaitingAddress(NoiseTransport::from_handshake(*hs)?);
                }
                Step::AwaitingReply(mut hs) => {
                    hs.read_message(&msg, &mut payload)
                        .map_err(|e| failed(format!("message 2: {e}")))?;
                    let mut transport = NoiseTransport::from_handshake(*hs)?;
                    let record = address_record(self.listen.as_deref());
                    transport.seal(&record, out);
                    return Ok(Progress::Done {
                        transport,
                        peer_listen: None,
                    });
                }
                Step::AwaitingAddress(mut transport) => {
                    let mut record = BytesMut::new();
                    transport
                        .receiving
                        .open_one(&msg, &mut record)
                        .map_err(|e| failed(format!("address record: {e}")))?;
                    let peer_listen = parse_address_record(&record)
                        .ok_or_else(|| failed("malformed address record".to_owned()))?;
                    return Ok(Progress::Done {
                        transport,
                        peer_listen,
                    });
                }
                Step::Spent => return Err(failed("handshake already over".to_owned())),
            }
        }
    }
}

/// The address record: byte 0 = no address (client mode), 1 = UTF-8 `host:port` follows.
fn address_record(listen: Option<&str>) -> Vec<u8> {
    match listen {
        None => vec![0],
        Some(a) => {
            let mut r = vec![1];
            // An address longer than the record allows cannot be a real host:port.
            r.extend_from_slice(&a.as_bytes()[..a.len().min(MAX_HANDSHAKE_MESSAGE - TAG - 3)]);
            r
        }
    }
}

fn parse_address_record(bytes: &[u8]) -> Option<Option<String>> {
    match bytes.split_first()? {
        (0, []) => Some(None),
        (1, rest) if !rest.is_empty() => std::str::from_utf8(rest).ok().map(|s| Some(s.into())),
        _ => None,
    }
}

/// The ciphers of an authenticated connection, one per direction: the IO thread opens what
/// it reads while senders seal what they write, each half with its own nonce, so neither
/// waits for the other. Nonces advance per record, so a replayed, dropped or reordered
/// record fails to open.
pub(crate) struct NoiseTransport {
    /// Seals what this side writes.
    pub(crate) sending: NoiseSealer,
    /// Opens what this side reads.
    pub(crate) receiving: NoiseOpener,
}

impl NoiseTransport {
    fn from_handshake(hs: HandshakeState) -> Result<NoiseTransport, NoiseError> {
        let state = Arc::new(hs.into_stateless_transport_mode().map_err(builder_error)?);
        Ok(NoiseTransport {
            sending: NoiseSealer {
                state: Arc::clone(&state),
                nonce: 0,
            },
            receiving: NoiseOpener { state, nonce: 0 },
        })
    }

    /// Seals with the sending half (see [`NoiseSealer::seal`]).
    pub(crate) fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) {
        self.sending.seal(plain, out)
    }

    /// Opens with the receiving half (see [`NoiseOpener::open`]).
    #[cfg(test)]
    pub(crate) fn open(
        &mut self,
        input: &mut BytesMut,
        plain: &mut BytesMut,
    ) -> Result<(), NoiseError> {
        self.receiving.open(input, plain)
    }
}

/// The sending half of a connection's cipher.
pub(crate) struct NoiseSealer {
    state: Arc<StatelessTransportState>,
    nonce: u64,
}

impl NoiseSealer {
    /// Appends `plain` to `out` as transport records of at most [`MAX_RECORD`] bytes each:
    /// a coalesced write buffer costs one AEAD call per 64 KiB, not one per frame.
    pub(crate) fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) {
        for chunk in plain.chunks(MAX_PLAINTEXT) {
            let start = out.len();
            out.resize(start + 2 + chunk.len() + TAG, 0);
            // Invariant: chunk <= MAX_PLAINTEXT, so the record fits the buffer and the Noise
            // limit; snow fails only on a too-small buffer. The nonce is a u64 counter: at
            // a record per nanosecond it lasts five centuries.
            let n = self
                .state
                .write_message(self.nonce, chunk, &mut out[start + 2..])
                .expect("a record within the Noise limit");
            self.nonce += 1;
            out[start..start + 2].copy_from_slice(&(n as u16).to_be_bytes());
            out.truncate(start + 2 + n);
        }
    }
}

/// The receiving half of a connection's cipher.
pub(crate) struct NoiseOpener {
    state: Arc<StatelessTransportState>,
    nonce: u64,
}

impl NoiseOpener {
    /// Decrypts every whole record in `input` onto `plain`, leaving a partial one in `input`.
    pub(crate) fn open(
        &mut self,
        input: &mut BytesMut,
        plain: &mut BytesMut,
    ) -> Result<(), NoiseError> {
        // A record length over the Noise limit cannot happen: u16 caps it at 65,535.
        while let Some(record) = take_message(input, MAX_RECORD).unwrap_or(None) {
            self.open_one(&record, plain)?;
        }
        Ok(())
    }

    /// Decrypts one record (without its length prefix) onto `plain`.
    fn open_one(&mut self, record: &[u8], plain: &mut BytesMut) -> Result<(), NoiseError> {
        if record.len() < TAG {
            return Err(NoiseError::BadRecord(format!(
                "record of {} bytes",
                record.len()
            )));
        }
        let start = plain.len();
        plain.resize(start + record.len() - TAG, 0);
        let n = self
            .state
            .read_message(self.nonce, record, &mut plain[start..])
            .map_err(|e| NoiseError::BadRecord(format!("decrypt: {e}")))?;
        self.nonce += 1;
        plain.truncate(start + n);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
