//! The [`message!`](crate::message) macro: a message enum or struct with its codec.

/// Declares a message enum or struct and implements [`Encode`](crate::Encode) and
/// [`Decode`](crate::Decode) for it.
///
/// Enum variants are unit variants, have named fields, or are tuple variants (of up to 16
/// fields); each is written as a `u16` tag (its position in the declaration, from 0)
/// followed by its fields in order. Structs are their
/// fields in order. Attributes and doc comments pass through, so `#[derive(Debug)]` works.
/// Adding a variant at the end keeps old tags; reordering variants changes the wire format.
///
/// ```
/// use rpc_env::{message, Reply};
///
/// message! {
///     /// One-way messages of a counter.
///     #[derive(Debug, PartialEq)]
///     pub enum CounterMessage {
///         /// Adds `by` to the count.
///         Increment { by: u64 },
///         /// Sets the count to zero.
///         Reset,
///         /// Sets the count to a value, for a reason (a tuple variant).
///         Set(u64, String),
///     }
/// }
///
/// message! {
///     /// Asks of a counter: each variant's reply port fixes the reply type.
///     pub enum CounterAsk {
///         /// Answers with the current count.
///         Get { reply: Reply<u64> },
///     }
/// }
///
/// message! {
///     /// A plain struct message.
///     #[derive(Debug, PartialEq)]
///     pub struct Point { pub x: i32, pub y: i32 }
/// }
///
/// let bytes = rpc_env::encode_to_bytes(&CounterMessage::Increment { by: 3 });
/// let back: CounterMessage = rpc_env::decode_from(bytes).unwrap();
/// assert_eq!(back, CounterMessage::Increment { by: 3 });
///
/// let set = CounterMessage::Set(7, "restored".into());
/// let back: CounterMessage = rpc_env::decode_from(rpc_env::encode_to_bytes(&set)).unwrap();
/// assert_eq!(back, set);
/// ```
#[macro_export]
macro_rules! message {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident
                $( { $( $(#[$fmeta:meta])* $field:ident : $fty:ty ),* $(,)? } )?
                $( ( $( $(#[$tmeta:meta])* $tty:ty ),* $(,)? ) )?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $(
                $(#[$vmeta])*
                $variant
                $( { $( $(#[$fmeta])* $field : $fty ),* } )?
                $( ( $( $(#[$tmeta])* $tty ),* ) )?
            ),*
        }

        impl $crate::Encode for $name {
            #[allow(unused_variables)]
            fn encode(&self, buf: &mut $crate::__private::BytesMut) {
                #[allow(non_camel_case_types, dead_code, clippy::upper_case_acronyms)]
                #[repr(u16)]
                enum __Tag { $($variant),* }
                match self {
                    $(
                        $name::$variant
                        $( { $($field),* } )?
                        $( ( $( $crate::__message_wildcard!($tty) ),* ) )? => {
                            $crate::Encode::encode(&(__Tag::$variant as u16), buf);
                            $( $( $crate::Encode::encode($field, buf); )* )?
                            $(
                                // Tuple fields have no names to bind in this arm's
                                // pattern: the helper binds them, with names from this
                                // expansion (hygiene), in a pattern of its own.
                                $crate::__message_encode_tuple!(
                                    self, buf, $name::$variant;
                                    [];
                                    [$($tty),*];
                                    [__f0 __f1 __f2 __f3 __f4 __f5 __f6 __f7
                                     __f8 __f9 __f10 __f11 __f12 __f13 __f14 __f15]
                                );
                            )?
                        }
                    )*
                }
            }
        }

        impl $crate::Decode for $name {
            fn decode(
                r: &mut $crate::Reader<'_>,
            ) -> ::std::result::Result<Self, $crate::DecodeError> {
                #[allow(non_camel_case_types, dead_code, clippy::upper_case_acronyms)]
                #[repr(u16)]
                enum __Tag { $($variant),* }
                let tag = r.read_u16()?;
                $(
                    if tag == __Tag::$variant as u16 {
                        return ::std::result::Result::Ok($name::$variant
                            $( { $( $field: $crate::Decode::decode(r)? ),* } )?
                            $( ( $( <$tty as $crate::Decode>::decode(r)? ),* ) )?
                        );
                    }
                )*
                ::std::result::Result::Err($crate::DecodeError::invalid_tag(
                    ::std::stringify!($name),
                    u32::from(tag),
                ))
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $fty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field : $fty ),*
        }

        impl $crate::Encode for $name {
            #[allow(unused_variables)]
            fn encode(&self, buf: &mut $crate::__private::BytesMut) {
                $( $crate::Encode::encode(&self.$field, buf); )*
            }
        }

        impl $crate::Decode for $name {
            #[allow(unused_variables)]
            fn decode(
                r: &mut $crate::Reader<'_>,
            ) -> ::std::result::Result<Self, $crate::DecodeError> {
                ::std::result::Result::Ok($name {
                    $( $field: $crate::Decode::decode(r)? ),*
                })
            }
        }
    };
}

/// `_`, whatever type it is given: the pattern of one tuple field in [`message!`]'s encode.
#[doc(hidden)]
#[macro_export]
macro_rules! __message_wildcard {
    ($ty:ty) => {
        _
    };
}

/// Encodes the fields of a tuple variant (for [`message!`]): pairs each field's type with a
/// name from the pool, then binds the names in one pattern and encodes them in order.
#[doc(hidden)]
#[macro_export]
macro_rules! __message_encode_tuple {
    ($value:ident, $buf:ident, $path:path; [$($bound:ident)*]; []; [$($unused:ident)*]) => {
        if let $path($($bound),*) = $value {
            $( $crate::Encode::encode($bound, $buf); )*
        }
    };
    (
        $value:ident, $buf:ident, $path:path;
        [$($bound:ident)*];
        [$ty:ty $(, $rest:ty)*];
        [$next:ident $($pool:ident)*]
    ) => {
        $crate::__message_encode_tuple!(
            $value, $buf, $path; [$($bound)* $next]; [$($rest),*]; [$($pool)*]
        )
    };
    ($value:ident, $buf:ident, $path:path; [$($bound:ident)*]; [$($rest:ty),+]; []) => {
        ::std::compile_error!("message!: a tuple variant has at most 16 fields")
    };
}
