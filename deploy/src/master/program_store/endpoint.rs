//! The `ProgramStore` endpoint: answers uploads on a thread of its own, so writing a
//! program to disk never holds up the master's heartbeats and registrations.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use rpc_env::{ConcurrentRpcEndpoint, EndpointContext, HandlerResult, RpcAddress};

use crate::messages::{ProgramStoreAsk, ProgramStoreProtocol};

use super::ProgramStore;

/// The endpoint over the master's store.
pub(crate) struct ProgramStoreEndpoint {
    store: Arc<Mutex<ProgramStore>>,
}

impl ProgramStoreEndpoint {
    /// Answers uploads into `store`.
    pub(crate) fn new(store: Arc<Mutex<ProgramStore>>) -> Self {
        ProgramStoreEndpoint { store }
    }

    fn answer(&self, sender: &RpcAddress, ask: ProgramStoreAsk) {
        let now = Instant::now();
        let mut store = self.store.lock();
        match ask {
            ProgramStoreAsk::BeginUpload {
                size,
                sha256,
                reply,
            } => match store.begin(sender, size, &sha256, now) {
                Ok(start) => reply.send(start),
                Err(why) => reply.fail(why),
            },
            ProgramStoreAsk::UploadChunk {
                upload_id,
                offset,
                bytes,
                reply,
            } => match store.chunk(sender, upload_id, offset, &bytes, now) {
                Ok(written) => reply.send(written),
                Err(why) => reply.fail(why),
            },
            ProgramStoreAsk::FinishUpload { upload_id, reply } => {
                match store.finish(sender, upload_id, now) {
                    Ok(()) => reply.send(()),
                    Err(why) => reply.fail(why),
                }
            }
        }
    }
}

impl ConcurrentRpcEndpoint for ProgramStoreEndpoint {
    type Protocol = ProgramStoreProtocol;

    /// One: uploads are written in order, and a second thread would only wait on the
    /// store's lock.
    fn threads(&self) -> usize {
        1
    }

    fn receive_and_reply(
        &self,
        ctx: &EndpointContext<'_, ProgramStoreProtocol>,
        ask: ProgramStoreAsk,
    ) -> HandlerResult {
        match ctx.sender() {
            Some(sender) => self.answer(sender, ask),
            // An upload belongs to the connection it came on; without one there is none.
            None => fail_local(ask),
        }
        Ok(())
    }
}

fn fail_local(ask: ProgramStoreAsk) {
    const LOCAL: &str = "Uploads come from another process, over its connection";
    match ask {
        ProgramStoreAsk::BeginUpload { reply, .. } => reply.fail(LOCAL),
        ProgramStoreAsk::UploadChunk { reply, .. } => reply.fail(LOCAL),
        ProgramStoreAsk::FinishUpload { reply, .. } => reply.fail(LOCAL),
    }
}
