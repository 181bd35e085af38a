//! Message encoding: our own [`Encode`] / [`Decode`] traits on `bytes` and `byteorder`.
//!
//! Every value is written big-endian. Strings, byte strings, sequences and maps carry a `u32`
//! length (a count, for sequences and maps) in front; options a `u8` flag; enums made with
//! [`message!`](crate::message) a `u16` variant tag. `WIRE.md` has the full table.
//!
//! Decoding never panics: a short buffer, a bad tag, invalid UTF-8 or a length that cannot fit
//! in what is left all come back as a [`DecodeError`]. A decoder also refuses to allocate more
//! than the bytes it was given could hold, so a hostile length prefix costs nothing.

mod impls;
mod macros;

use std::any::Any;
use std::fmt;

use byteorder::{BigEndian, ByteOrder};
use bytes::{Buf, Bytes, BytesMut};

/// What decoding inside an env carries along: values bound to an env (endpoint refs, reply
/// ports) rebuild themselves from it. The codec knows nothing of envs; the env implements
/// this, and those types find their part with [`Reader::context_as`].
pub(crate) trait DecodeContext {
    /// The context itself, to be downcast to the type its implementor is.
    fn as_any(&self) -> &dyn Any;
}

/// A value that can be written into a message body.
pub trait Encode {
    /// Appends this value's encoding to `buf`.
    fn encode(&self, buf: &mut BytesMut);
}

/// A value that can be read back from a message body.
pub trait Decode: Sized {
    /// Reads one value from `r`, or says why the bytes are not one.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// Encodes `value` into a fresh buffer.
pub fn encode_to_bytes<T: Encode + ?Sized>(value: &T) -> Bytes {
    let mut buf = BytesMut::new();
    value.encode(&mut buf);
    buf.freeze()
}

/// Decodes a whole buffer as one `T`; bytes left over are an error.
///
/// Values that need an env to be rebuilt (endpoint refs, reply ports) fail here with
/// [`DecodeError::MissingContext`]: they only decode inside a running env.
pub fn decode_from<T: Decode>(bytes: Bytes) -> Result<T, DecodeError> {
    let mut r = Reader::new(bytes);
    let value = T::decode(&mut r)?;
    r.finish()?;
    Ok(value)
}

/// A cursor over a message body, handing out values and zero-copy slices.
///
/// Inside an env it also carries the context that endpoint refs and reply ports need to be
/// rebuilt on this side (the env and the connection the message came on).
pub struct Reader<'a> {
    buf: Bytes,
    ctx: Option<&'a dyn DecodeContext>,
}

impl Reader<'static> {
    /// A reader over `buf` with no env context.
    pub fn new(buf: Bytes) -> Reader<'static> {
        Reader { buf, ctx: None }
    }
}

impl<'a> Reader<'a> {
    /// A reader whose refs and reply ports bind to the env and connection in `ctx`.
    pub(crate) fn with_context(buf: Bytes, ctx: &'a dyn DecodeContext) -> Reader<'a> {
        Reader {
            buf,
            ctx: Some(ctx),
        }
    }

    /// The env context, if this reader runs inside an env and its context is a `C`.
    pub(crate) fn context_as<C: 'static>(&self) -> Option<&'a C> {
        self.ctx.and_then(|ctx| ctx.as_any().downcast_ref::<C>())
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails unless every byte has been read.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes { count: n }),
        }
    }

    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::UnexpectedEnd {
                needed: n,
                remaining: self.buf.len(),
            });
        }
        Ok(())
    }

    /// The next byte, without reading it; `None` at the end.
    pub fn peek_u8(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// Reads one byte.
    pub fn read_u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    /// Reads a big-endian `u16`.
    pub fn read_u16(&mut self) -> Result<u16, DecodeError> {
        self.need(2)?;
        let v = BigEndian::read_u16(&self.buf[..2]);
        self.buf.advance(2);
        Ok(v)
    }

    /// Reads a big-endian `u32`.
    pub fn read_u32(&mut self) -> Result<u32, DecodeError> {
        self.need(4)?;
        let v = BigEndian::read_u32(&self.buf[..4]);
        self.buf.advance(4);
        Ok(v)
    }

    /// Reads a big-endian `u64`.
    pub fn read_u64(&mut self) -> Result<u64, DecodeError> {
        self.need(8)?;
        let v = BigEndian::read_u64(&self.buf[..8]);
        self.buf.advance(8);
        Ok(v)
    }

    /// Reads a `u32` length and checks that at least `len * min_item_size` bytes follow, so
    /// no allocation is ever sized by a length the buffer cannot back.
    pub fn read_len(&mut self, min_item_size: usize) -> Result<usize, DecodeError> {
        let len = self.read_u32()? as usize;
        let bytes = len.saturating_mul(min_item_size.max(1));
        if bytes > self.buf.len() {
            return Err(DecodeError::LengthTooLarge {
                len,
                remaining: self.buf.len(),
            });
        }
        Ok(len)
    }

    /// Takes the next `n` bytes without copying.
    pub fn read_bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }

    /// Reads a length-prefixed UTF-8 string.
    pub fn read_str(&mut self) -> Result<String, DecodeError> {
        let len = self.read_len(1)?;
        let s = std::str::from_utf8(&self.buf[..len])
            .map_err(|_| DecodeError::InvalidUtf8)?
            .to_owned();
        self.buf.advance(len);
        Ok(s)
    }
}

/// Why a body did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The buffer ended inside a value.
    UnexpectedEnd {
        /// Bytes the value needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length prefix larger than the rest of the buffer could hold.
    LengthTooLarge {
        /// The length read.
        len: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// Bytes left over after the value.
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// An enum tag that names no variant.
    InvalidTag {
        /// The type being decoded.
        type_name: &'static str,
        /// The tag read.
        tag: u32,
    },
    /// A string that is not UTF-8.
    InvalidUtf8,
    /// A value outside its type's range (a `bool` of 7, a `usize` too large).
    InvalidValue {
        /// What was wrong.
        what: &'static str,
    },
    /// A ref or reply port outside an env, or a reply port in a one-way message.
    MissingContext {
        /// What needed the context.
        what: &'static str,
    },
}

impl DecodeError {
    /// A bad enum tag for `type_name`.
    pub fn invalid_tag(type_name: &'static str, tag: u32) -> DecodeError {
        DecodeError::InvalidTag { type_name, tag }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnexpectedEnd { needed, remaining } => {
                write!(f, "unexpected end: needed {needed} bytes, {remaining} left")
            }
            DecodeError::LengthTooLarge { len, remaining } => {
                write!(f, "length {len} is larger than the {remaining} bytes left")
            }
            DecodeError::TrailingBytes { count } => write!(f, "{count} trailing bytes"),
            DecodeError::InvalidTag { type_name, tag } => {
                write!(f, "invalid tag {tag} for {type_name}")
            }
            DecodeError::InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            DecodeError::InvalidValue { what } => write!(f, "invalid value: {what}"),
            DecodeError::MissingContext { what } => {
                write!(f, "{what} can only be decoded inside an RpcEnv")
            }
        }
    }
}

impl std::error::Error for DecodeError {}
