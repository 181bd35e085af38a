//! The `HeartbeatReceiver` endpoint: executors ask it every `ember.executor.heartbeatInterval`;
//! one silent for longer than `ember.network.timeout` is reported lost to the driver. An
//! executor's heartbeats count only from the connection it registered from: another peer
//! cannot keep a hung executor alive.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rpc_env::{
    ControlRef, EndpointContext, HandlerResult, Refusals, RpcAddress, RpcEndpoint, RpcEnv,
    Threading, Ticker,
};

use crate::messages::{
    DriverControl, DriverProtocol, HeartbeatAsk, HeartbeatControl, HeartbeatProtocol,
    HeartbeatResponse,
};
use crate::ExecutorId;

/// Tracks when each executor last heartbeat.
pub struct HeartbeatReceiver {
    driver: ControlRef<DriverProtocol>,
    timeout: Duration,
    check_interval: Duration,
    /// When each executor last heartbeat, and where its heartbeats must come from.
    last_seen: HashMap<ExecutorId, (Instant, Option<RpcAddress>)>,
    ticker: Option<Ticker>,
    /// Heartbeats refused because they came from elsewhere.
    refused: Refusals,
}

impl HeartbeatReceiver {
    /// A receiver that reports to `driver` executors silent longer than `timeout`, checking
    /// every `check_interval` (Spark: `ember.network.timeoutInterval`, 60 s).
    pub fn new(
        driver: ControlRef<DriverProtocol>,
        timeout: Duration,
        check_interval: Duration,
    ) -> Self {
        HeartbeatReceiver {
            driver,
            timeout,
            check_interval,
            last_seen: HashMap::new(),
            ticker: None,
            refused: Refusals::new(),
        }
    }

    fn expire_dead_hosts(&mut self) {
        let now = Instant::now();
        let dead: Vec<(ExecutorId, Duration)> = self
            .last_seen
            .iter()
            .filter_map(|(id, (seen, _))| {
                let silent = now.duration_since(*seen);
                (silent > self.timeout).then(|| (id.clone(), silent))
            })
            .collect();
        for (executor_id, silent) in dead {
            log::warn!(
                "Removing executor {executor_id} with no recent heartbeats: {} ms exceeds timeout {} ms",
                silent.as_millis(),
                self.timeout.as_millis()
            );
            self.last_seen.remove(&executor_id);
            if let Err(e) = self.driver.send(DriverControl::ExecutorUnresponsive {
                executor_id,
                silent_ms: u64::try_from(silent.as_millis()).unwrap_or(u64::MAX),
            }) {
                log::warn!("Could not report a dead executor to the driver: {e}");
            }
        }
    }
}

impl RpcEndpoint for HeartbeatReceiver {
    type Protocol = HeartbeatProtocol;

    /// A busy shared loop must not delay heartbeats into false executor loss (SPARK-40778).
    fn threading(&self) -> Threading {
        Threading::Dedicated
    }

    fn on_start(&mut self, ctx: &EndpointContext<'_, HeartbeatProtocol>) -> HandlerResult {
        let me = ctx.control_ref();
        self.ticker = Some(Ticker::start(
            "heartbeat-receiver-expiry",
            self.check_interval,
            move || me.send(HeartbeatControl::ExpireDeadHosts).is_ok(),
        )?);
        Ok(())
    }

    fn receive_control(
        &mut self,
        _ctx: &EndpointContext<'_, HeartbeatProtocol>,
        msg: HeartbeatControl,
    ) -> HandlerResult {
        match msg {
            HeartbeatControl::ExecutorRegistered {
                executor_id,
                address,
            } => {
                self.last_seen
                    .insert(executor_id, (Instant::now(), address));
            }
            HeartbeatControl::ExecutorRemoved { executor_id } => {
                self.last_seen.remove(&executor_id);
            }
            HeartbeatControl::ExpireDeadHosts => self.expire_dead_hosts(),
        }
        Ok(())
    }

    fn receive_and_reply(
        &mut self,
        ctx: &EndpointContext<'_, HeartbeatProtocol>,
        ask: HeartbeatAsk,
    ) -> HandlerResult {
        let HeartbeatAsk::Heartbeat {
            executor_id, reply, ..
        } = ask;
        let known = match self.last_seen.get_mut(&executor_id) {
            Some((_, expected)) if expected.as_ref() != ctx.sender() => {
                // Answered as for an unknown executor: the peer learns nothing.
                self.refused.refuse(
                    "The heartbeat receiver",
                    ctx.sender(),
                    format_args!("a heartbeat of executor {:?}", executor_id.as_str()),
                );
                false
            }
            Some((seen, _)) => {
                *seen = Instant::now();
                true
            }
            None => false,
        };
        reply.send(HeartbeatResponse {
            unknown_executor: !known,
        });
        Ok(())
    }

    fn on_stop(&mut self, _env: &RpcEnv) -> HandlerResult {
        self.ticker = None;
        Ok(())
    }
}
