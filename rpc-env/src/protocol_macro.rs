//! The [`protocol!`](crate::protocol) macro: a protocol, its marker type and its message
//! enums, declared in one place.

/// Declares a [`Protocol`](crate::Protocol) in one place: its marker type, its
/// [`PROTOCOL_VERSION`](crate::Protocol::PROTOCOL_VERSION), and the enums of its sections.
///
/// Each section is optional, written at most once, and in any order:
/// - `message Name { .. }`: one-way messages ([`message!`](crate::message) enum, with its
///   codec);
/// - `ask Name { .. }`: asks, each variant carrying its [`Reply`](crate::Reply)
///   ([`message!`](crate::message) enum);
/// - `control Name { .. }`: control messages, a plain enum with no codec at all (only this
///   process can send them, through a [`ControlRef`](crate::ControlRef)).
///
/// A section left out is [`NoMessage`](crate::NoMessage). Variants are written as in
/// `message!` (unit, named fields or tuple); attributes and doc comments pass through, and
/// the enums take the protocol's visibility. `version N` is optional (default 1).
///
/// ```
/// use rpc_env::{protocol, EndpointRef, NoMessage, Protocol, Reply};
///
/// protocol! {
///     /// A key-value store's protocol.
///     pub protocol KvProtocol version 2 {
///         /// What the store is asked.
///         #[derive(Debug)]
///         ask KvAsk {
///             /// Answers the value of a key.
///             Get { key: String, reply: Reply<Option<String>> },
///             /// Sets a key; answers once it is set.
///             Put(String, String, Reply<()>),
///         }
///         /// What the store is told.
///         message KvMessage {
///             /// Forgets every key.
///             Clear,
///         }
///         /// What only the store's own process may say.
///         control KvControl {
///             /// Writes a snapshot now.
///             Snapshot,
///         }
///     }
/// }
///
/// fn assert_protocol<P: Protocol<Message = KvMessage, Ask = KvAsk, Control = KvControl>>() {}
/// assert_protocol::<KvProtocol>();
/// assert_eq!(KvProtocol::PROTOCOL_VERSION, 2);
///
/// protocol! {
///     /// Notices only: no asks, no control.
///     pub protocol WatcherProtocol {
///         message WatchMessage { Changed(String) }
///     }
/// }
///
/// fn assert_notices<P: Protocol<Ask = NoMessage, Control = NoMessage>>() {}
/// assert_notices::<WatcherProtocol>();
/// # let _: Option<EndpointRef<WatcherProtocol>> = None;
/// ```
///
/// A section of another kind, or a kind written twice, is a compile error naming it:
///
/// ```compile_fail
/// rpc_env::protocol! {
///     pub protocol Typo { mesage TypoMessage { Hello } }
/// }
/// ```
///
/// ```compile_fail
/// rpc_env::protocol! {
///     pub protocol Twice {
///         message First { A }
///         message Second { B }
///     }
/// }
/// ```
#[macro_export]
macro_rules! protocol {
    (
        $(#[$meta:meta])*
        $vis:vis protocol $name:ident $(version $version:literal)? {
            $(
                $(#[$smeta:meta])*
                $kind:ident $section:ident { $($body:tt)* }
            )*
        }
    ) => {
        $(#[$meta])*
        $vis struct $name;

        impl $crate::Protocol for $name {
            $( const PROTOCOL_VERSION: u32 = $version; )?
            type Message = $crate::__protocol_section_type!(message; $($kind $section)*);
            type Ask = $crate::__protocol_section_type!(ask; $($kind $section)*);
            type Control = $crate::__protocol_section_type!(control; $($kind $section)*);
        }

        $crate::__protocol_sections_once!([] $($kind)*);

        $(
            $crate::__protocol_section!(
                $kind, [$(#[$smeta])*], $vis, $section, { $($body)* }
            );
        )*
    };
}

/// One section of [`protocol!`]: a `message!` enum for `message` and `ask`, a plain enum
/// for `control`, a compile error naming the three for anything else.
#[doc(hidden)]
#[macro_export]
macro_rules! __protocol_section {
    (message, [$(#[$meta:meta])*], $vis:vis, $name:ident, { $($body:tt)* }) => {
        $crate::message! { $(#[$meta])* $vis enum $name { $($body)* } }
    };
    (ask, [$(#[$meta:meta])*], $vis:vis, $name:ident, { $($body:tt)* }) => {
        $crate::message! { $(#[$meta])* $vis enum $name { $($body)* } }
    };
    (control, [$(#[$meta:meta])*], $vis:vis, $name:ident, { $($body:tt)* }) => {
        $(#[$meta])* $vis enum $name { $($body)* }
    };
    ($other:ident, [$($meta:tt)*], $vis:vis, $name:ident, { $($body:tt)* }) => {
        ::std::compile_error!(::std::concat!(
            "protocol!: unknown section `",
            ::std::stringify!($other),
            "`: a section is `message`, `ask` or `control`"
        ));
    };
}

/// The enum a [`protocol!`] declares for one kind of section, or `NoMessage` without one.
#[doc(hidden)]
#[macro_export]
macro_rules! __protocol_section_type {
    (message; message $name:ident $($rest:tt)*) => { $name };
    (ask; ask $name:ident $($rest:tt)*) => { $name };
    (control; control $name:ident $($rest:tt)*) => { $name };
    ($want:ident; $other:ident $name:ident $($rest:tt)*) => {
        $crate::__protocol_section_type!($want; $($rest)*)
    };
    ($want:ident;) => { $crate::NoMessage };
}

/// A compile error when a [`protocol!`] has a kind of section twice (the `Protocol` could
/// name only one of them).
#[doc(hidden)]
#[macro_export]
macro_rules! __protocol_sections_once {
    ([$($seen:ident)*]) => {};
    ([$($seen:ident)*] $kind:ident $($rest:ident)*) => {
        $crate::__protocol_sections_once!(@check $kind [$($seen)*]);
        $crate::__protocol_sections_once!([$($seen)* $kind] $($rest)*);
    };
    (@check $kind:ident []) => {};
    (@check message [message $($seen:ident)*]) => { $crate::__protocol_twice!(message); };
    (@check ask [ask $($seen:ident)*]) => { $crate::__protocol_twice!(ask); };
    (@check control [control $($seen:ident)*]) => { $crate::__protocol_twice!(control); };
    (@check $kind:ident [$first:ident $($seen:ident)*]) => {
        $crate::__protocol_sections_once!(@check $kind [$($seen)*]);
    };
}

/// The compile error of a section written twice in a [`protocol!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __protocol_twice {
    ($kind:ident) => {
        ::std::compile_error!(::std::concat!(
            "protocol!: more than one `",
            ::std::stringify!($kind),
            "` section: a protocol has one enum of each kind"
        ));
    };
}
