//! [`Encode`] and [`Decode`] for the standard types messages are made of.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use super::{Decode, DecodeError, Encode, Reader};
use crate::address::{EndpointAddress, RpcAddress};

macro_rules! unsigned {
    ($($t:ty => $put:ident, $read:ident);* $(;)?) => {$(
        impl Encode for $t {
            fn encode(&self, buf: &mut BytesMut) {
                buf.$put(*self);
            }
        }
        impl Decode for $t {
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                r.$read()
            }
        }
    )*};
}

unsigned! {
    u8 => put_u8, read_u8;
    u16 => put_u16, read_u16;
    u32 => put_u32, read_u32;
    u64 => put_u64, read_u64;
}

// Signed integers travel as their two's-complement bit patterns.
macro_rules! signed {
    ($($t:ty as $u:ty),* $(,)?) => {$(
        impl Encode for $t {
            fn encode(&self, buf: &mut BytesMut) {
                (*self as $u).encode(buf);
            }
        }
        impl Decode for $t {
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(<$u>::decode(r)? as $t)
            }
        }
    )*};
}

signed!(i8 as u8, i16 as u16, i32 as u32, i64 as u64);

impl Encode for usize {
    fn encode(&self, buf: &mut BytesMut) {
        (*self as u64).encode(buf);
    }
}

impl Decode for usize {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        usize::try_from(r.read_u64()?).map_err(|_| DecodeError::InvalidValue {
            what: "usize out of range",
        })
    }
}

impl Encode for f64 {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_u64(self.to_bits());
    }
}

impl Decode for f64 {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(f64::from_bits(r.read_u64()?))
    }
}

impl Encode for f32 {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_u32(self.to_bits());
    }
}

impl Decode for f32 {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(f32::from_bits(r.read_u32()?))
    }
}

impl Encode for bool {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(u8::from(*self));
    }
}

impl Decode for bool {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.read_u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidValue {
                what: "bool is neither 0 nor 1",
            }),
        }
    }
}

// `()` takes one byte, not none: the answer of an ask that only acknowledges (`Reply<()>`)
// costs a byte, and every type keeps taking at least one, which is what bounds a
// collection's count by the bytes left (a `Vec<()>` of 2^32 elements cannot be claimed by
// four bytes).
impl Encode for () {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(0);
    }
}

impl Decode for () {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.read_u8()? {
            0 => Ok(()),
            _ => Err(DecodeError::InvalidValue {
                what: "unit is not 0",
            }),
        }
    }
}

/// Writes a `u32` length. Lengths above `u32::MAX` cannot occur in a frame, whose size is
/// capped far lower by `ember.rpc.message.maxSize`; saturating keeps the encoder total.
pub(crate) fn put_len(buf: &mut BytesMut, len: usize) {
    buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
}

impl Encode for str {
    fn encode(&self, buf: &mut BytesMut) {
        put_len(buf, self.len());
        buf.put_slice(self.as_bytes());
    }
}

impl Encode for String {
    fn encode(&self, buf: &mut BytesMut) {
        self.as_str().encode(buf);
    }
}

impl Decode for String {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_str()
    }
}

impl Encode for std::sync::Arc<str> {
    fn encode(&self, buf: &mut BytesMut) {
        (**self).encode(buf);
    }
}

impl Decode for std::sync::Arc<str> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_str().map(std::sync::Arc::from)
    }
}

impl Encode for Bytes {
    fn encode(&self, buf: &mut BytesMut) {
        put_len(buf, self.len());
        buf.put_slice(self);
    }
}

impl Decode for Bytes {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.read_len(1)?;
        r.read_bytes(len)
    }
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encode(&self, buf: &mut BytesMut) {
        (**self).encode(buf);
    }
}

impl<T: Encode + ?Sized> Encode for Box<T> {
    fn encode(&self, buf: &mut BytesMut) {
        (**self).encode(buf);
    }
}

impl<T: Decode> Decode for Box<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        T::decode(r).map(Box::new)
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, buf: &mut BytesMut) {
        match self {
            None => buf.put_u8(0),
            Some(v) => {
                buf.put_u8(1);
                v.encode(buf);
            }
        }
    }
}

impl<T: Decode> Decode for Option<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.read_u8()? {
            0 => Ok(None),
            1 => T::decode(r).map(Some),
            _ => Err(DecodeError::InvalidValue {
                what: "option flag is neither 0 nor 1",
            }),
        }
    }
}

// Every element type takes at least one byte on the wire (`()` too, above), so
// a count larger than the bytes left is malformed and is refused before anything is allocated.
// A count that fits can still claim far more memory than its bytes (a 24-byte `String` per
// byte of input), so what is reserved up front is capped and the rest grows as elements
// actually decode.

/// Elements reserved before decoding a collection; beyond this, it grows as it fills.
const PREALLOCATE_AT_MOST: usize = 1024;
impl<T: Encode> Encode for [T] {
    fn encode(&self, buf: &mut BytesMut) {
        put_len(buf, self.len());
        for item in self {
            item.encode(buf);
        }
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, buf: &mut BytesMut) {
        self.as_slice().encode(buf);
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.read_len(1)?;
        let mut out = Vec::with_capacity(len.min(PREALLOCATE_AT_MOST));
        for _ in 0..len {
            out.push(T::decode(r)?);
        }
        Ok(out)
    }
}

impl<K: Encode, V: Encode, S> Encode for HashMap<K, V, S> {
    fn encode(&self, buf: &mut BytesMut) {
        put_len(buf, self.len());
        for (k, v) in self {
            k.encode(buf);
            v.encode(buf);
        }
    }
}

impl<K: Decode + Eq + Hash, V: Decode> Decode for HashMap<K, V> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.read_len(2)?;
        let mut out = HashMap::with_capacity(len.min(PREALLOCATE_AT_MOST));
        for _ in 0..len {
            let k = K::decode(r)?;
            out.insert(k, V::decode(r)?);
        }
        Ok(out)
    }
}

impl<K: Encode, V: Encode> Encode for BTreeMap<K, V> {
    fn encode(&self, buf: &mut BytesMut) {
        put_len(buf, self.len());
        for (k, v) in self {
            k.encode(buf);
            v.encode(buf);
        }
    }
}

impl<K: Decode + Ord, V: Decode> Decode for BTreeMap<K, V> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.read_len(2)?;
        let mut out = BTreeMap::new();
        for _ in 0..len {
            let k = K::decode(r)?;
            out.insert(k, V::decode(r)?);
        }
        Ok(out)
    }
}

impl<T: Encode, S> Encode for HashSet<T, S> {
    fn encode(&self, buf: &mut BytesMut) {
        put_len(buf, self.len());
        for item in self {
            item.encode(buf);
        }
    }
}

impl<T: Decode + Eq + Hash> Decode for HashSet<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.read_len(1)?;
        let mut out = HashSet::with_capacity(len.min(PREALLOCATE_AT_MOST));
        for _ in 0..len {
            out.insert(T::decode(r)?);
        }
        Ok(out)
    }
}

macro_rules! tuple {
    ($($name:ident),+) => {
        impl<$($name: Encode),+> Encode for ($($name,)+) {
            #[allow(non_snake_case)]
            fn encode(&self, buf: &mut BytesMut) {
                let ($($name,)+) = self;
                $($name.encode(buf);)+
            }
        }
        impl<$($name: Decode),+> Decode for ($($name,)+) {
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(($($name::decode(r)?,)+))
            }
        }
    };
}

tuple!(A, B);
tuple!(A, B, C);
tuple!(A, B, C, D);

impl Encode for Duration {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_u64(self.as_secs());
        buf.put_u32(self.subsec_nanos());
    }
}

impl Decode for Duration {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let secs = r.read_u64()?;
        let nanos = r.read_u32()?;
        if nanos >= 1_000_000_000 {
            return Err(DecodeError::InvalidValue {
                what: "duration nanoseconds out of range",
            });
        }
        Ok(Duration::new(secs, nanos))
    }
}

impl Encode for RpcAddress {
    fn encode(&self, buf: &mut BytesMut) {
        self.host().encode(buf);
        buf.put_u16(self.port());
    }
}

impl Decode for RpcAddress {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let host = r.read_str()?;
        let port = r.read_u16()?;
        Ok(RpcAddress::new(&host, port))
    }
}

impl Encode for EndpointAddress {
    fn encode(&self, buf: &mut BytesMut) {
        self.address().encode(buf);
        self.name().encode(buf);
    }
}

impl Decode for EndpointAddress {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let address = Option::<RpcAddress>::decode(r)?;
        let name = r.read_str()?;
        Ok(EndpointAddress::new(address, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_from, encode_to_bytes};

    fn round_trip<T: Encode + Decode + PartialEq + std::fmt::Debug>(v: T) {
        let bytes = encode_to_bytes(&v);
        assert_eq!(decode_from::<T>(bytes).expect("decodes"), v);
    }

    #[test]
    fn unit_is_one_zero_byte_and_bounds_a_collection_of_units() {
        round_trip(());
        round_trip(vec![(), (), ()]);
        assert_eq!(&encode_to_bytes(&())[..], &[0]);
        assert!(decode_from::<()>(Bytes::from_static(&[1])).is_err());
        assert!(decode_from::<()>(Bytes::new()).is_err());
        // A count of 2^32 - 1 units in four bytes is refused before any looping.
        let claim = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]);
        assert!(decode_from::<Vec<()>>(claim).is_err());
    }

    #[test]
    fn primitives_round_trip() {
        round_trip(0u8);
        round_trip(u16::MAX);
        round_trip(123_456u32);
        round_trip(u64::MAX);
        round_trip(-5i8);
        round_trip(i16::MIN);
        round_trip(-1i32);
        round_trip(i64::MIN);
        round_trip(42usize);
        round_trip(true);
        round_trip(1.5f64);
        round_trip(-0.25f32);
        round_trip(Duration::from_millis(1500));
    }

    #[test]
    fn containers_round_trip() {
        round_trip(String::from("héllo"));
        round_trip(Bytes::from_static(b"\x00\x01\xff"));
        round_trip(vec![1u32, 2, 3]);
        round_trip(Some(String::from("x")));
        round_trip(None::<u64>);
        round_trip((1u8, String::from("two"), 3u64));
        let mut m = HashMap::new();
        m.insert(String::from("a"), 1u32);
        m.insert(String::from("b"), 2u32);
        round_trip(m);
        let mut b = BTreeMap::new();
        b.insert(3u16, vec![String::from("z")]);
        round_trip(b);
        round_trip(HashSet::from([1u64, 9, 7]));
        round_trip(Box::new(7u8));
    }

    #[test]
    fn addresses_round_trip() {
        round_trip(RpcAddress::new("localhost", 7077));
        round_trip(RpcAddress::new("::1", 1234));
        round_trip(EndpointAddress::new(
            Some(RpcAddress::new("10.0.0.1", 1)),
            "Master".to_string(),
        ));
        round_trip(EndpointAddress::new(None, "Executor".to_string()));
    }

    #[test]
    fn wire_layout_is_big_endian_with_u32_lengths() {
        assert_eq!(&encode_to_bytes(&258u16)[..], &[1, 2]);
        assert_eq!(&encode_to_bytes("ab")[..], &[0, 0, 0, 2, b'a', b'b']);
        assert_eq!(&encode_to_bytes(&Some(1u8))[..], &[1, 1]);
    }

    #[test]
    fn malformed_input_is_an_error() {
        let short = Bytes::from_static(&[0, 0, 0]);
        assert!(matches!(
            decode_from::<u32>(short),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
        let huge_vec = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 1]);
        assert!(matches!(
            decode_from::<Vec<u8>>(huge_vec),
            Err(DecodeError::LengthTooLarge { .. })
        ));
        let bad_utf8 = Bytes::from_static(&[0, 0, 0, 1, 0xff]);
        assert_eq!(
            decode_from::<String>(bad_utf8),
            Err(DecodeError::InvalidUtf8)
        );
        let bad_bool = Bytes::from_static(&[2]);
        assert!(decode_from::<bool>(bad_bool).is_err());
        let trailing = Bytes::from_static(&[1, 2]);
        assert_eq!(
            decode_from::<u8>(trailing),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
        let bad_nanos = encode_to_bytes(&(1u64, 2_000_000_000u32));
        assert!(decode_from::<Duration>(bad_nanos).is_err());
    }
}
