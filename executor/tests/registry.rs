//! The task registry's public checks and `TaskError`, as a driver uses them before it runs a
//! job. Ember's own: Spark ships closures and has no registry.

use std::any::type_name;

use ember_executor::{TaskError, TaskRegistry};

fn registry() -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    registry
        .register("double", |_, n: u64| Ok::<u64, TaskError>(n * 2))
        .register("len", |_, s: String| Ok::<u32, TaskError>(s.len() as u32));
    registry
}

/// Ember's own: `check` accepts a function registered with the job's types.
#[test]
fn check_accepts_the_registered_types() {
    let registry = registry();
    assert_eq!(registry.check::<u64, u64>("double"), Ok(()));
    assert_eq!(registry.check::<String, u32>("len"), Ok(()));
    assert_eq!(registry.names(), vec!["double", "len"]);
}

/// Ember's own: `check` refuses other types, naming both the registered and the asked ones
/// (as `std::any::type_name` spells them, which std does not promise to keep).
#[test]
fn check_refuses_other_types_naming_them() {
    let err = registry().check::<String, u64>("double").unwrap_err();
    let (number, string) = (type_name::<u64>(), type_name::<String>());
    assert_eq!(
        err,
        format!(
            "Task function 'double' takes {number} and returns {number}, not {string} and {number}"
        )
    );
}

/// Ember's own: `check` of an unknown name lists the names registered.
#[test]
fn check_of_an_unknown_name_lists_the_registered_ones() {
    let err = registry().check::<u64, u64>("triple").unwrap_err();
    assert_eq!(
        err,
        "Unknown task function 'triple'; this application registers: double, len"
    );
}

/// Ember's own: a later registration of a name replaces the earlier one, types included.
#[test]
fn registering_a_name_again_replaces_it() {
    let mut registry = registry();
    registry.register("double", |_, n: u32| Ok::<u32, TaskError>(n * 2));
    assert_eq!(registry.check::<u32, u32>("double"), Ok(()));
    assert!(registry.check::<u64, u64>("double").is_err());
    assert_eq!(registry.names(), vec!["double", "len"]);
}

/// Ember's own: `TaskError` says whether it is a kill, shows its message, and any standard
/// error converts into a failure (so task functions can use `?`).
#[test]
fn task_errors_are_failures_or_kills() {
    let failure = TaskError::msg("bad input");
    assert!(!failure.is_killed());
    assert_eq!(failure.message(), "bad input");
    assert_eq!(failure.to_string(), "bad input");
    assert_eq!(
        format!("{failure:?}"),
        "TaskError(\"bad input\", killed: false)"
    );
    let kill = TaskError::killed("cancelled");
    assert!(kill.is_killed());
    assert_eq!(kill.message(), "cancelled");
    fn parse(text: &str) -> Result<u64, TaskError> {
        Ok(text.parse::<u64>()?)
    }
    let std_error = "x1".parse::<u64>().unwrap_err();
    let err = parse("x1").unwrap_err();
    assert!(!err.is_killed());
    assert_eq!(
        err.message(),
        std_error.to_string(),
        "the std error's own text"
    );
}

/// Ember's own: the signature lists every task with its types in name order, and a registry
/// that differs in one type has another signature (a test cluster compares them).
#[test]
fn signature_lists_each_task_with_its_types() {
    let (number, u32_name, string) = (
        type_name::<u64>(),
        type_name::<u32>(),
        type_name::<String>(),
    );
    assert_eq!(
        registry().signature(),
        format!("double: {number} -> {number}\nlen: {string} -> {u32_name}\n")
    );
    let mut other = registry();
    other.register("len", |_, s: String| Ok::<u64, TaskError>(s.len() as u64));
    assert_ne!(other.signature(), registry().signature());
    assert_eq!(TaskRegistry::new().signature(), "");
}
