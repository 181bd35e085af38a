//! Scheduling pools: the tree that decides which task set gets the next offer.
//!
//! As in Spark, the scheduler keeps one tree of pools. In FIFO mode it is a single root pool
//! that holds every task set. In FAIR mode the root holds named pools (read from an
//! allocation file in Spark's `fairscheduler.xml` format, plus `default`), and each pool holds
//! the task sets of the jobs that name it in `ember.scheduler.pool`. Each pool orders its
//! children with its own comparator and [`Pools::sorted_task_sets`] flattens the tree in that
//! order, keeping only task sets that can take a task.
//!
//! The tree knows task sets only by [`TaskSetKey`]. Their live numbers (running tasks, job,
//! stage, name, whether they still want offers) come from a [`TaskSetView`] at sort time, so
//! the pools hold no copy that could go stale and need no task-set-manager type.
//!
//! # Comparators (Spark's `FIFOSchedulingAlgorithm` and `FairSchedulingAlgorithm`)
//!
//! - **FIFO**: lower priority (the job id) first, then lower stage id. A pool inside a FIFO
//!   pool counts as priority 0, stage -1, as in Spark.
//! - **FAIR**: a child running fewer tasks than its `minShare` is *needy* and goes before any
//!   child that is not; two needy children compare `running / max(minShare, 1)`, two others
//!   `running / weight`; ties go by name. A pool's running count is the sum over every task
//!   set below it; a task set counts as minShare 0, weight 1.
//!
//! Ties that the comparator leaves open keep the order children were added in, because
//! Spark's `sortWith` is a stable sort over the pool's insertion-ordered queue.
//!
//! # The allocation file
//!
//! ```xml
//! <allocations>
//!   <pool name="production">
//!     <schedulingMode>FAIR</schedulingMode>
//!     <weight>1</weight>
//!     <minShare>2</minShare>
//!   </pool>
//! </allocations>
//! ```
//!
//! Every `<pool>` element anywhere in the document becomes a pool under the root. Values are
//! trimmed and the mode upper-cased; a missing, blank or unknown mode (`NONE` included) means
//! FIFO, a missing, blank or non-integer `minShare` means 0 and `weight` 1, each with a warning.
//! See `conf/fairscheduler.xml.template`.

use std::fmt;

use crate::ids::FastMap;

mod sort;
mod xml;

#[cfg(test)]
mod tests;

/// The pool FAIR jobs go to when they name none.
const DEFAULT_POOL: &str = "default";
/// The settings of a pool the file leaves out or a job names without it being configured.
const DEFAULT_MODE: SchedulingMode = SchedulingMode::Fifo;
const DEFAULT_MIN_SHARE: i32 = 0;
const DEFAULT_WEIGHT: i32 = 1;

/// The index of the root in [`Pools::nodes`].
const ROOT: usize = 0;

/// How a pool orders its children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchedulingMode {
    /// Lower job id first, then lower stage id.
    Fifo,
    /// Needy children (below their minimum share) first, then by running tasks per weight.
    Fair,
}

impl SchedulingMode {
    /// Reads `FIFO` or `FAIR` in any case, as `ember.scheduler.mode` is read.
    ///
    /// # Errors
    ///
    /// `NONE` (Spark's third, internal mode) and anything else are errors that name the value.
    pub fn parse(s: &str) -> Result<SchedulingMode, PoolError> {
        // Spark upper-cases the setting before looking it up and does not trim it.
        match s.to_uppercase().as_str() {
            "FIFO" => Ok(SchedulingMode::Fifo),
            "FAIR" => Ok(SchedulingMode::Fair),
            "NONE" => Err(PoolError {
                kind: ErrorKind::UnsupportedMode,
            }),
            _ => Err(PoolError {
                kind: ErrorKind::UnknownMode {
                    value: s.to_owned(),
                },
            }),
        }
    }

    /// `"FIFO"` or `"FAIR"`, as Spark prints the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            SchedulingMode::Fifo => "FIFO",
            SchedulingMode::Fair => "FAIR",
        }
    }
}

impl fmt::Display for SchedulingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A task set as the pools see it (implemented by the task scheduler).
///
/// Answers must not change while one [`Pools::sorted_task_sets`] call runs; the scheduler
/// calls it under its lock, so they don't.
pub trait TaskSetView {
    /// Tasks of the set running now, zombie sets included.
    fn running_tasks(&self, key: TaskSetKey) -> usize;
    /// The set's FIFO priority: its job id, lower first.
    fn priority(&self, key: TaskSetKey) -> u32;
    /// The set's stage id, the FIFO tie-break.
    fn stage_id(&self, key: TaskSetKey) -> u32;
    /// `"TaskSet_<stage>.<attempt>"`, the FAIR tie-break.
    fn name(&self, key: TaskSetKey) -> String;
    /// Whether the set may take a task: not a zombie and with tasks left to launch.
    fn is_schedulable(&self, key: TaskSetKey) -> bool;
}

/// The key of a task set in the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskSetKey(pub u64);

/// A pool's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolInfo {
    /// The name jobs give in `ember.scheduler.pool`.
    pub name: String,
    /// How the pool orders its task sets.
    pub mode: SchedulingMode,
    /// Running tasks below which the pool is served before pools that are not below theirs.
    /// Kept as Spark's `Int`: the file may give any integer, negative ones included.
    pub min_share: i32,
    /// The pool's share relative to its siblings once all are past their minimum share.
    pub weight: i32,
}

impl PoolInfo {
    fn new(name: &str, mode: SchedulingMode, min_share: i32, weight: i32) -> PoolInfo {
        PoolInfo {
            name: name.to_owned(),
            mode,
            min_share,
            weight,
        }
    }
}

/// One pool in the tree.
#[derive(Debug, Clone)]
struct Node {
    info: PoolInfo,
    /// Pools and task sets in the order they were added, which decides comparator ties.
    children: Vec<Child>,
}

/// What a pool holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Child {
    /// Another pool, by index into [`Pools::nodes`].
    Pool(usize),
    /// A task set.
    TaskSet(TaskSetKey),
}

/// The pool tree.
#[derive(Debug, Clone)]
pub struct Pools {
    mode: SchedulingMode,
    /// Every pool, the root first. Pools are never removed (Spark keeps them for the life of
    /// the application), so an index stays valid.
    nodes: Vec<Node>,
    /// Named pools; the root has no name and is not here.
    by_name: FastMap<String, usize>,
    /// The pool each task set sits in, so removal need not search the tree.
    homes: FastMap<TaskSetKey, usize>,
}

impl Pools {
    /// FIFO: one root pool in FIFO mode holding task sets directly.
    pub fn fifo() -> Pools {
        Pools::with_root(SchedulingMode::Fifo)
    }

    /// FAIR: pools from `xml` (Spark's `fairscheduler.xml` format), plus pool `default` (FIFO,
    /// minShare 0, weight 1) if the file does not define it. `None` means no file is
    /// configured: only `default` exists, so jobs run FIFO until they name other pools.
    ///
    /// # Errors
    ///
    /// Text that is not well-formed XML, or a `<pool>` without a `name`. The error gives the
    /// line and column; the caller, who read the file, adds its path.
    pub fn fair(xml: Option<&str>) -> Result<Pools, PoolError> {
        let mut pools = Pools::with_root(SchedulingMode::Fair);
        match xml {
            Some(text) => {
                for info in xml::parse(text)? {
                    log::info!(
                        "Created pool: {}, schedulingMode: {}, minShare: {}, weight: {}",
                        info.name,
                        info.mode,
                        info.min_share,
                        info.weight
                    );
                    pools.add_pool(ROOT, info);
                }
            }
            None => log::warn!(
                "Fair Scheduler configuration file not found so jobs will be scheduled in FIFO \
                 order. To use fair scheduling, set {} to a file that configures pools.",
                crate::keys::ALLOCATION_FILE
            ),
        }
        if !pools.by_name.contains_key(DEFAULT_POOL) {
            pools.add_pool(
                ROOT,
                PoolInfo::new(
                    DEFAULT_POOL,
                    DEFAULT_MODE,
                    DEFAULT_MIN_SHARE,
                    DEFAULT_WEIGHT,
                ),
            );
            log::info!(
                "Created default pool: {DEFAULT_POOL}, schedulingMode: {DEFAULT_MODE}, \
                 minShare: {DEFAULT_MIN_SHARE}, weight: {DEFAULT_WEIGHT}"
            );
        }
        Ok(pools)
    }

    /// The mode of the root pool: FIFO or FAIR scheduling for the application.
    pub fn mode(&self) -> SchedulingMode {
        self.mode
    }

    /// Adds a task set. FIFO: under the root, whatever `pool` says. FAIR: under the pool named
    /// by `pool` (the job's `ember.scheduler.pool`), `default` when `None`; a name no pool
    /// has creates that pool with the defaults (FIFO, minShare 0, weight 1), as Spark does.
    /// An empty name is a name like any other, as in Spark.
    ///
    /// Adding a key that is already in the tree moves it: a key is in one pool at most.
    pub fn add_task_set(&mut self, key: TaskSetKey, pool: Option<&str>) {
        if self.homes.contains_key(&key) {
            log::warn!("Task set {key:?} was added to the pools twice; keeping the later add");
            self.remove_task_set(key);
        }
        let home = match self.mode {
            SchedulingMode::Fifo => ROOT,
            SchedulingMode::Fair => {
                let name = pool.unwrap_or(DEFAULT_POOL);
                match self.by_name.get(name) {
                    Some(&index) => index,
                    None => {
                        log::warn!(
                            "A job was submitted with scheduler pool {name}, which has not been \
                             configured. This can happen when the file that pools are read \
                             from isn't set, or when that file doesn't contain {name}. Created \
                             {name} with default configuration (schedulingMode: \
                             {DEFAULT_MODE}, minShare: {DEFAULT_MIN_SHARE}, weight: \
                             {DEFAULT_WEIGHT})"
                        );
                        self.add_pool(
                            ROOT,
                            PoolInfo::new(name, DEFAULT_MODE, DEFAULT_MIN_SHARE, DEFAULT_WEIGHT),
                        )
                    }
                }
            }
        };
        self.add_task_set_to(home, key);
        log::debug!(
            "Added task set {key:?} to pool {:?}",
            self.nodes[home].info.name
        );
    }

    /// Removes a task set from its pool; an unknown key is ignored. The pool stays.
    pub fn remove_task_set(&mut self, key: TaskSetKey) {
        let Some(home) = self.homes.remove(&key) else {
            return;
        };
        let children = &mut self.nodes[home].children;
        // `remove`, not `swap_remove`: the order of the rest breaks comparator ties.
        if let Some(at) = children.iter().position(|c| *c == Child::TaskSet(key)) {
            children.remove(at);
        }
    }

    /// Schedulable task sets in the order offers go to them (Spark's `getSortedTaskSetQueue`).
    pub fn sorted_task_sets(&self, view: &dyn TaskSetView) -> Vec<TaskSetKey> {
        sort::sorted_task_sets(self, view)
    }

    /// A pool's settings, for tests and tools. FIFO mode has no named pools.
    pub fn pool(&self, name: &str) -> Option<PoolInfo> {
        self.by_name
            .get(name)
            .map(|&index| self.nodes[index].info.clone())
    }

    /// The names of all pools in the order they were created.
    pub fn pool_names(&self) -> Vec<String> {
        self.nodes
            .iter()
            .skip(1)
            .map(|node| node.info.name.clone())
            .collect()
    }

    /// A tree with only a root in `mode`. Spark's root is `Pool("", mode, 0, 0)`; its own
    /// share never matters because nothing compares it.
    fn with_root(mode: SchedulingMode) -> Pools {
        Pools {
            mode,
            nodes: vec![Node {
                info: PoolInfo::new("", mode, 0, 0),
                children: Vec::new(),
            }],
            by_name: FastMap::default(),
            homes: FastMap::default(),
        }
    }

    /// Adds a pool under `parent` and returns its index. A second pool of the same name
    /// replaces the first one's settings, keeping its place and task sets: in Spark both stay
    /// in the queue but jobs only reach the later one, and an empty pool changes no order.
    fn add_pool(&mut self, parent: usize, info: PoolInfo) -> usize {
        if let Some(&index) = self.by_name.get(&info.name) {
            log::warn!(
                "Pool {} is defined more than once; using the last definition",
                info.name
            );
            self.nodes[index].info = info;
            return index;
        }
        let index = self.nodes.len();
        self.by_name.insert(info.name.clone(), index);
        self.nodes.push(Node {
            info,
            children: Vec::new(),
        });
        self.nodes[parent].children.push(Child::Pool(index));
        index
    }

    fn add_task_set_to(&mut self, pool: usize, key: TaskSetKey) {
        self.nodes[pool].children.push(Child::TaskSet(key));
        self.homes.insert(key, pool);
    }
}

/// Why pools could not be built: an unsupported scheduling mode, or an allocation file that
/// does not parse. `Display` says what and where.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolError {
    kind: ErrorKind,
}

#[derive(Debug, Clone, PartialEq)]
enum ErrorKind {
    /// `NONE`, which Spark has as a mode but no pool can use.
    UnsupportedMode,
    /// Neither FIFO nor FAIR nor NONE.
    UnknownMode { value: String },
    /// The allocation file is not well-formed XML; roxmltree's message carries the position.
    Xml { problem: String },
    /// A `<pool>` element whose `name` is missing or blank.
    UnnamedPool { line: u32, column: u32 },
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::UnsupportedMode => {
                f.write_str("Unsupported scheduling mode: NONE. Use FAIR or FIFO instead.")
            }
            ErrorKind::UnknownMode { value } => write!(
                f,
                "Unrecognized scheduling mode: {value:?}. Use FAIR or FIFO instead."
            ),
            ErrorKind::Xml { problem } => {
                write!(f, "the allocation file is not well-formed XML: {problem}")
            }
            ErrorKind::UnnamedPool { line, column } => write!(
                f,
                "the allocation file has a <pool> without a name at {line}:{column}; \
                 give it name=\"...\""
            ),
        }
    }
}

impl std::error::Error for PoolError {}
