//! Ids of the standalone cluster: workers, applications, drivers.

use std::fmt;

use bytes::BytesMut;
use rpc_env::{Decode, DecodeError, Encode, Reader};

macro_rules! text_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub String);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Encode for $name {
            fn encode(&self, buf: &mut BytesMut) {
                self.0.encode(buf);
            }
        }

        impl Decode for $name {
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                String::decode(r).map($name)
            }
        }
    };
}

text_id!(
    /// A worker: `worker-<yyyyMMddHHmmss>-<host>-<port>`.
    WorkerId
);
text_id!(
    /// An application: `app-<yyyyMMddHHmmss>-<NNNN>`.
    AppId
);
text_id!(
    /// A driver submitted in cluster mode: `driver-<yyyyMMddHHmmss>-<NNNN>`.
    DriverId
);
