//! How launches are cut into messages that fit `ember.rpc.message.maxSize`.

use crate::TaskDescription;

/// What a `LaunchTasks` frame needs besides its tasks: the frame header, the sender's
/// address and the receiver's name.
pub(super) const FRAME_ALLOWANCE: usize = 4096;

/// A task's size on the wire, near enough to decide batches without encoding it.
pub(super) fn estimated_size(task: &TaskDescription) -> usize {
    let properties: usize = task
        .properties
        .iter()
        .map(|(k, v)| k.len() + v.len() + 8)
        .sum();
    task.input.len() + properties + task.function.len() + task.executor_id.as_str().len() + 96
}

/// Splits one executor's tasks, in order, into `LaunchTasks` messages that fit.
pub(super) fn batches_that_fit(
    tasks: Vec<TaskDescription>,
    max_message_size: usize,
) -> Vec<Vec<TaskDescription>> {
    let limit = max_message_size.saturating_sub(FRAME_ALLOWANCE);
    let total: usize = tasks.iter().map(estimated_size).sum();
    if total <= limit {
        return vec![tasks];
    }
    let mut batches = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    for task in tasks {
        let this = estimated_size(&task);
        if !current.is_empty() && size + this > limit {
            batches.push(std::mem::take(&mut current));
            size = 0;
        }
        size += this;
        current.push(task);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}
