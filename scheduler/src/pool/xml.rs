//! Reading pools from an allocation file in Spark's `fairscheduler.xml` format, the way
//! Spark's `FairSchedulableBuilder.buildFairSchedulerPool` does.

use roxmltree::{Document, Node};

use super::{
    ErrorKind, PoolError, PoolInfo, SchedulingMode, DEFAULT_MIN_SHARE, DEFAULT_MODE, DEFAULT_WEIGHT,
};

const POOL: &str = "pool";
const NAME: &str = "name";
const SCHEDULING_MODE: &str = "schedulingMode";
const MIN_SHARE: &str = "minShare";
const WEIGHT: &str = "weight";

/// The pools `text` defines, in document order.
///
/// Like Spark (`xml \\ "pool"`), every `<pool>` element in the document counts, however deep,
/// and each becomes a pool under the root. Bad values fall back to defaults with a warning;
/// only XML that does not parse and a pool without a name are errors.
pub(super) fn parse(text: &str) -> Result<Vec<PoolInfo>, PoolError> {
    // roxmltree's defaults refuse a DTD, so a file cannot make us expand entities.
    let doc = Document::parse(text).map_err(|e| PoolError {
        kind: ErrorKind::Xml {
            problem: e.to_string(),
        },
    })?;
    let root = doc.root_element();
    if root.tag_name().name() != "allocations" {
        // Spark does not check the root either; a warning helps spot a wrong file.
        log::warn!(
            "The allocation file's root element is <{}>, not <allocations>; reading its \
             <pool> elements anyway",
            root.tag_name().name()
        );
    }
    let mut pools = Vec::new();
    for node in root.descendants().filter(|n| is_element(n, POOL)) {
        let name = match node.attribute(NAME) {
            Some(name) if !name.trim().is_empty() => name,
            // Spark would make a pool named "" that no job could sensibly name; a file
            // with such a pool is almost surely a mistake worth stopping for.
            _ => {
                let pos = doc.text_pos_at(node.range().start);
                return Err(PoolError {
                    kind: ErrorKind::UnnamedPool {
                        line: pos.row,
                        column: pos.col,
                    },
                });
            }
        };
        pools.push(PoolInfo {
            name: name.to_owned(),
            mode: scheduling_mode(node, name),
            min_share: int_value(node, name, MIN_SHARE, DEFAULT_MIN_SHARE),
            weight: int_value(node, name, WEIGHT, DEFAULT_WEIGHT),
        });
    }
    Ok(pools)
}

/// `<schedulingMode>`, trimmed and upper-cased; FIFO unless it says FIFO or FAIR.
fn scheduling_mode(pool: Node<'_, '_>, pool_name: &str) -> SchedulingMode {
    let value = java_trim(&child_text(pool, SCHEDULING_MODE)).to_uppercase();
    match value.as_str() {
        "FIFO" => SchedulingMode::Fifo,
        "FAIR" => SchedulingMode::Fair,
        // NONE exists as a Spark mode but no pool can use it, so it gets the same warning.
        _ => {
            log::warn!(
                "Unsupported schedulingMode: {value} found in the Fair Scheduler allocation \
                 file, using the default schedulingMode: {DEFAULT_MODE} for pool: {pool_name}"
            );
            DEFAULT_MODE
        }
    }
}

/// An integer child element, trimmed; `default` if blank or not an `Int`.
fn int_value(pool: Node<'_, '_>, pool_name: &str, element: &str, default: i32) -> i32 {
    let text = child_text(pool, element);
    let value = java_trim(&text);
    // Like Java's `Integer.parseInt`: an optional sign and decimal digits within 32 bits
    // (Java would also take non-ASCII digits; nobody writes those in a config file).
    match value.parse::<i32>() {
        Ok(n) => n,
        Err(_) => {
            log::warn!(
                "Error while loading the Fair Scheduler allocation file: {element} is blank or \
                 invalid: {value}, using the default {element}: {default} for pool: {pool_name}"
            );
            default
        }
    }
}

/// The text of `pool`'s child elements named `element`: Scala's `(pool \ element).text`,
/// which joins the text of every such child (normally there is one) and of everything in it.
fn child_text(pool: Node<'_, '_>, element: &str) -> String {
    let mut text = String::new();
    for child in pool.children().filter(|c| is_element(c, element)) {
        for piece in child.descendants().filter(Node::is_text) {
            text.push_str(piece.text().unwrap_or(""));
        }
    }
    text
}

/// Matches on the local name, as Scala's `\` does, so a namespace prefix does not hide a pool.
fn is_element(node: &Node<'_, '_>, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name
}

/// Java's `String.trim`: strips every character up to U+0020, and nothing else.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}
