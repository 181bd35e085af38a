//! The bytes of one record file in the recovery directory: a versioned header, a checksum
//! against damage and, when the cluster has a secret, a MAC against forgery.
//!
//! Version 2 (written since the MAC), all integers big-endian:
//!
//! ```text
//! "EMB2"  flags (u8)  payload length (u32)  CRC-32 of the payload (u32)  [MAC (32 bytes)]  payload
//! ```
//!
//! `flags` bit 0 says a MAC follows: HMAC-SHA256, keyed with the secret's subkey
//! [`MAC_KEY_LABEL`], over the file name's length (u32) and bytes, then the header (magic to
//! CRC), then the payload. The name is covered so that a record cannot be passed off under
//! another key. Other flag bits are refused.
//!
//! Version 1 (before the MAC) was `"EMBR"`, length, CRC-32, payload. What an old record
//! does: without a secret it is read as before (it has the same protection as a version-2
//! record without a MAC: the directory's permissions) and is rewritten in version 2 the next
//! time its entity changes; with a secret it is refused, as anyone could have written it.
//!
//! Which records are acted on:
//!
//! | master has a secret | record                 | outcome                              |
//! |---------------------|------------------------|--------------------------------------|
//! | yes                 | v2 with a MAC that checks | read                              |
//! | yes                 | v2 with a bad MAC, v2 without a MAC, v1 | refused             |
//! | no                  | v2 without a MAC, v1   | read                                 |
//! | no                  | v2 with a MAC          | refused: it cannot be checked        |
//!
//! A MAC does not stop a replay: someone who copied a genuine record earlier (which needs
//! read access to the directory) can put it back. The directory's `0700` mode is what stops
//! that.

use std::fmt;

use hmac::{Hmac, Mac};
use rpc_env::Secret;
use sha2::Sha256;
use zeroize::Zeroizing;

/// The HKDF label of the records' MAC key: a new use of the secret gets a new label.
pub(crate) const MAC_KEY_LABEL: &[u8] = b"ember recovery v1";

/// The largest record file read, in bytes: a record is a few KiB at most (an application's
/// description); anything larger is not ours and is skipped unread.
pub(crate) const MAX_RECORD_BYTES: u64 = 1 << 20;

const MAGIC_V1: [u8; 4] = *b"EMBR";
const MAGIC_V2: [u8; 4] = *b"EMB2";
/// Flag bit: a MAC follows the header.
const FLAG_MAC: u8 = 0x01;
/// v1: magic, length, CRC.
const V1_HEADER_LEN: usize = 12;
/// v2: magic, flags, length, CRC.
const V2_HEADER_LEN: usize = 13;
const MAC_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// The key of the records' MAC, derived from the cluster's secret; never printed.
pub(crate) struct RecordKey(Zeroizing<[u8; 32]>);

impl RecordKey {
    /// The MAC key for records, from the cluster's secret.
    pub(crate) fn from_secret(secret: &Secret) -> RecordKey {
        RecordKey(secret.derive_key(MAC_KEY_LABEL))
    }

    fn mac(&self, name: &str, header: &[u8], payload: &[u8]) -> HmacSha256 {
        // Invariant: HMAC takes a key of any length.
        let mut mac =
            HmacSha256::new_from_slice(self.0.as_ref()).expect("HMAC accepts any key length");
        let name_len = u32::try_from(name.len()).unwrap_or(u32::MAX);
        mac.update(&name_len.to_be_bytes());
        mac.update(name.as_bytes());
        mac.update(header);
        mac.update(payload);
        mac
    }
}

impl fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecordKey(<redacted>)")
    }
}

/// A record read back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Opened {
    /// What was persisted.
    pub(crate) payload: Vec<u8>,
    /// Whether the file is in the old format (version 1), to be rewritten.
    pub(crate) legacy: bool,
}

/// The file content for `payload` stored under the file name `name`: version 2, with a MAC
/// when `key` is given.
pub(crate) fn seal(key: Option<&RecordKey>, name: &str, payload: &[u8]) -> Vec<u8> {
    let flags = if key.is_some() { FLAG_MAC } else { 0 };
    let mut out = Vec::with_capacity(V2_HEADER_LEN + MAC_LEN + payload.len());
    out.extend_from_slice(&MAGIC_V2);
    out.push(flags);
    // A record never nears 4 GiB; saturating keeps the length check failing if one did.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc32(payload).to_be_bytes());
    if let Some(key) = key {
        let tag = key.mac(name, &out, payload).finalize().into_bytes();
        out.extend_from_slice(&tag);
    }
    out.extend_from_slice(payload);
    out
}

/// The payload of the file `bytes` named `name`, or why it is not acted on: see the module's
/// table. The reason never quotes the file's content.
pub(crate) fn unseal(key: Option<&RecordKey>, name: &str, bytes: &[u8]) -> Result<Opened, String> {
    match bytes.get(..4) {
        Some(magic) if magic == MAGIC_V2 => unseal_v2(key, name, bytes),
        Some(magic) if magic == MAGIC_V1 => {
            if key.is_some() {
                return Err(
                    "an old (version 1) record without a MAC, refused since the \
                            cluster has a secret"
                        .to_string(),
                );
            }
            let (header, payload) = split(bytes, V1_HEADER_LEN)?;
            check_payload(word(header, 4), word(header, 8), payload)?;
            Ok(Opened {
                payload: payload.to_vec(),
                legacy: true,
            })
        }
        _ => Err(format!(
            "not an Ember recovery record ({} bytes)",
            bytes.len()
        )),
    }
}

fn unseal_v2(key: Option<&RecordKey>, name: &str, bytes: &[u8]) -> Result<Opened, String> {
    let (header, rest) = split(bytes, V2_HEADER_LEN)?;
    let flags = header[4];
    if flags & !FLAG_MAC != 0 {
        return Err(format!("unknown flags {flags:#04x} (a later Ember?)"));
    }
    let has_mac = flags & FLAG_MAC != 0;
    let payload = match (key, has_mac) {
        (Some(key), true) => {
            let (tag, payload) = split(rest, MAC_LEN)?;
            check_length(word(header, 5), payload)?;
            key.mac(name, header, payload)
                .verify_slice(tag)
                .map_err(|_| {
                    "MAC does not verify: not written by a master with this cluster's secret \
                     (or the secret changed), refused"
                        .to_string()
                })?;
            payload
        }
        (Some(_), false) => {
            return Err(
                "no MAC, refused since the cluster has a secret (anyone who could write the \
                 directory may have written it)"
                    .to_string(),
            )
        }
        (None, true) => {
            return Err(
                "has a MAC but the master has no secret to check it with, refused".to_string(),
            )
        }
        (None, false) => rest,
    };
    check_payload(word(header, 5), word(header, 9), payload)?;
    Ok(Opened {
        payload: payload.to_vec(),
        legacy: false,
    })
}

fn split(bytes: &[u8], at: usize) -> Result<(&[u8], &[u8]), String> {
    bytes
        .split_at_checked(at)
        .ok_or_else(|| format!("torn: {} bytes, shorter than its header", bytes.len()))
}

fn word(header: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
}

fn check_length(len: u32, payload: &[u8]) -> Result<(), String> {
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len != payload.len() {
        return Err(format!(
            "torn: {} bytes of a {len}-byte record",
            payload.len()
        ));
    }
    Ok(())
}

fn check_payload(len: u32, crc: u32, payload: &[u8]) -> Result<(), String> {
    check_length(len, payload)?;
    if crc != crc32(payload) {
        return Err("corrupt: checksum mismatch".to_string());
    }
    Ok(())
}

/// A version-1 record, as Ember wrote before the MAC: for tests of the upgrade.
#[cfg(test)]
pub(crate) fn seal_v1(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC_V1);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32(payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// CRC-32 (IEEE 802.3, as zlib), bit by bit: records are small and written rarely.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> RecordKey {
        RecordKey::from_secret(&Secret::new(s.as_bytes().to_vec(), "test").expect("secret"))
    }

    #[test]
    fn crc32_is_the_zlib_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn the_outcome_table() {
        let k = key("0123456789abcdef-one");
        let other = key("0123456789abcdef-two");
        let with_mac = seal(Some(&k), "app_1", b"payload");
        let without = seal(None, "app_1", b"payload");
        let v1 = seal_v1(b"payload");
        let read = |key: Option<&RecordKey>, name: &str, bytes: &[u8]| unseal(key, name, bytes);
        let ok = |legacy| {
            Ok(Opened {
                payload: b"payload".to_vec(),
                legacy,
            })
        };
        assert_eq!(read(Some(&k), "app_1", &with_mac), ok(false));
        assert_eq!(read(None, "app_1", &without), ok(false));
        assert_eq!(read(None, "app_1", &v1), ok(true));
        for (what, result) in [
            ("other key", read(Some(&other), "app_1", &with_mac)),
            ("other name", read(Some(&k), "app_2", &with_mac)),
            ("no mac", read(Some(&k), "app_1", &without)),
            ("v1", read(Some(&k), "app_1", &v1)),
            ("unverifiable", read(None, "app_1", &with_mac)),
        ] {
            let why = result.expect_err(what);
            assert!(!why.contains("payload"), "{what}: {why}");
        }
    }

    #[test]
    fn every_truncation_and_every_flipped_bit_is_refused() {
        let k = key("0123456789abcdef-one");
        let sealed = seal(Some(&k), "driver_x", b"some driver");
        for len in 0..sealed.len() {
            assert!(
                unseal(Some(&k), "driver_x", &sealed[..len]).is_err(),
                "{len}"
            );
        }
        for bit in 0..sealed.len() * 8 {
            let mut bytes = sealed.clone();
            bytes[bit / 8] ^= 1 << (bit % 8);
            assert!(unseal(Some(&k), "driver_x", &bytes).is_err(), "bit {bit}");
        }
        let plain = seal(None, "driver_x", b"some driver");
        let mut flagged = plain.clone();
        flagged[4] = 0x80;
        assert!(unseal(None, "driver_x", &flagged)
            .expect_err("unknown flag")
            .contains("flags"));
    }

    #[test]
    fn the_key_is_not_printed() {
        assert_eq!(
            format!("{:?}", key("0123456789abcdef-one")),
            "RecordKey(<redacted>)"
        );
    }
}
