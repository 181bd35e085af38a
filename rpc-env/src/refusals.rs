//! [`Refusals`]: what an endpoint refused because of who sent it, counted, and logged once
//! per peer.

use std::fmt;

use crate::address::RpcAddress;
use crate::fast_hash::FastSet;

/// Messages an endpoint refused because their sender may not say them (a peer speaking for
/// a worker or an executor it is not): each is counted, and the first from each peer is
/// logged, so that a flood costs a handful of log lines. Past
/// [`MAX_PEERS_LOGGED`](Self::MAX_PEERS_LOGGED) peers, refusals are only counted.
#[derive(Debug, Default)]
pub struct Refusals {
    count: u64,
    logged: FastSet<RpcAddress>,
}

impl Refusals {
    /// How many peers' first refusal is logged; past that, one more line says logging
    /// stopped, and refusals are only counted. It bounds the memory a flood of peers costs.
    pub const MAX_PEERS_LOGGED: usize = 1024;

    /// No refusals yet.
    pub fn new() -> Refusals {
        Refusals::default()
    }

    /// Counts a refused message and logs it if it is the first from `peer` (`None`: a
    /// sender the endpoint could not tell). `what` describes it; quote anything the peer
    /// chose (ids, names) with `{:?}`, so that a log line cannot be forged.
    pub fn refuse(&mut self, endpoint: &str, peer: Option<&RpcAddress>, what: fmt::Arguments<'_>) {
        self.count += 1;
        let Some(peer) = peer else {
            // No peer to remember it by: rate-limited instead of once per peer.
            crate::limited_log!(
                log::Level::Warn,
                "{endpoint} refused {what}: its sender is unknown"
            );
            return;
        };
        if self.logged.contains(peer) || self.logged.len() > Self::MAX_PEERS_LOGGED {
            return;
        }
        if self.logged.len() == Self::MAX_PEERS_LOGGED {
            // One entry past the cap marks that this line was written.
            self.logged.insert(peer.clone());
            log::warn!(
                "{endpoint} refused {what} from {peer}; {} peers have had messages refused, \
                 further refusals are only counted",
                Self::MAX_PEERS_LOGGED
            );
            return;
        }
        self.logged.insert(peer.clone());
        log::warn!(
            "{endpoint} refused {what} from {peer}: that peer may not send it (further \
             refusals from {peer} are only counted)"
        );
    }

    /// How many messages were refused.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// How many peers' refusals were logged (at most one more than the cap).
    pub fn peers_logged(&self) -> usize {
        self.logged.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_counts_and_each_peer_is_remembered_once_up_to_the_cap() {
        let mut refusals = Refusals::new();
        let a = RpcAddress::new("10.0.0.1", 1);
        for _ in 0..10 {
            refusals.refuse("Master", Some(&a), format_args!("a heartbeat"));
        }
        assert_eq!((refusals.count(), refusals.peers_logged()), (10, 1));
        refusals.refuse("Master", None, format_args!("a heartbeat"));
        assert_eq!((refusals.count(), refusals.peers_logged()), (11, 1));
        for port in 0..5000u16 {
            let peer = RpcAddress::new("10.0.0.2", port);
            refusals.refuse("Master", Some(&peer), format_args!("a heartbeat"));
        }
        assert_eq!(refusals.count(), 5011);
        assert_eq!(refusals.peers_logged(), Refusals::MAX_PEERS_LOGGED + 1);
    }
}
