//! Ember's own checks: the shipped template, duplicate and nested pool elements, errors that
//! say where, zombies, re-adding, and orderings PoolSuite leaves out.

use super::*;

/// The shipped `conf/fairscheduler.xml.template` parses into the pools it describes.
#[test]
fn the_template_parses() {
    let xml = include_str!("../../../../conf/fairscheduler.xml.template");
    let pools = Pools::fair(Some(xml)).expect("the template parses");
    verify_pool(&pools, "production", 2, 1, SchedulingMode::Fair);
    verify_pool(&pools, "test", 3, 2, SchedulingMode::Fifo);
    verify_pool(&pools, "default", 0, 1, SchedulingMode::Fifo);
    assert_eq!(pools.pool_names(), vec!["production", "test", "default"]);
}

/// A file that defines `default` keeps its settings; the built-in one is only a fallback.
#[test]
fn a_file_may_define_the_default_pool() {
    let xml = r#"<allocations><pool name="default"><schedulingMode>fair</schedulingMode>
        <minShare>2</minShare><weight>3</weight></pool></allocations>"#;
    let pools = Pools::fair(Some(xml)).expect("parses");
    verify_pool(&pools, "default", 2, 3, SchedulingMode::Fair);
    assert_eq!(pools.pool_names(), vec!["default"]);
}

/// Spark reads `xml \\ "pool"`: pools nested in other elements, or in each other, all become
/// pools under the root; a later pool of the same name replaces the earlier one's settings.
#[test]
fn every_pool_element_counts_and_the_last_duplicate_wins() {
    let xml = r#"<allocations>
        <group><pool name="a"><weight>2</weight><pool name="b"/></pool></group>
        <pool name="a"><weight>5</weight></pool>
    </allocations>"#;
    let pools = Pools::fair(Some(xml)).expect("parses");
    assert_eq!(pools.pool_names(), vec!["a", "b", "default"]);
    verify_pool(&pools, "a", 0, 5, SchedulingMode::Fifo);
    assert_eq!(
        pools.nodes[ROOT].children.len(),
        3,
        "b sits under the root too"
    );
}

/// Malformed XML is an error that says where, and so is a pool without a name (Spark would
/// make a pool named "").
#[test]
fn bad_files_are_errors_that_say_where() {
    let error = Pools::fair(Some("<allocations>\n  <pool name=\"a\">\n</allocations>"))
        .expect_err("unclosed pool");
    let text = error.to_string();
    assert!(
        text.starts_with("the allocation file is not well-formed XML"),
        "{text}"
    );
    assert!(text.contains("3:"), "names the line: {text}");

    for xml in ["", "not xml", "<allocations>", "<a/><b/>"] {
        let error = Pools::fair(Some(xml)).expect_err("not a document");
        assert!(error.to_string().contains("XML"), "{error}");
    }

    let dtd = r#"<!DOCTYPE allocations [<!ENTITY x "y">]><allocations/>"#;
    assert!(Pools::fair(Some(dtd)).is_err(), "a DTD is refused");

    for xml in [
        "<allocations>\n  <pool>\n  </pool>\n</allocations>",
        "<allocations>\n  <pool name=\" \"/>\n</allocations>",
    ] {
        let error = Pools::fair(Some(xml)).expect_err("unnamed pool");
        assert_eq!(
            error.to_string(),
            "the allocation file has a <pool> without a name at 2:3; give it name=\"...\""
        );
    }
}

/// An allocation file with no pools at all still gets `default`.
#[test]
fn an_empty_allocations_element_gets_the_default_pool() {
    let pools = Pools::fair(Some("<allocations/>")).expect("parses");
    assert_eq!(pools.pool_names(), vec!["default"]);
}

/// Only schedulable task sets are returned (Spark filters `isSchedulable`), but a pool's
/// running count includes its zombies' tasks, as Spark's does.
#[test]
fn zombies_are_skipped_but_their_running_tasks_count_for_their_pool() {
    let mut pools = Pools::fair(None).expect("no file");
    let mut view = FakeView::default();
    let zombie = view.add(0, 10);
    let busy_pool_set = view.add(1, 10);
    let other = view.add(2, 10);
    pools.add_task_set(zombie, Some("a"));
    pools.add_task_set(busy_pool_set, Some("a"));
    pools.add_task_set(other, Some("b"));
    if let Some(set) = view.sets.get_mut(&zombie) {
        set.zombie = true;
        set.running = 5;
    }
    if let Some(set) = view.sets.get_mut(&other) {
        set.running = 1;
    }
    // Pool a runs 5 tasks, b runs 1: b first, and the zombie is not offered anything.
    assert_eq!(pools.sorted_task_sets(&view), vec![other, busy_pool_set]);
}

/// Removing a task set takes it out of its pool; the pool stays, unknown keys are ignored,
/// and adding a key twice moves it.
#[test]
fn remove_and_re_add() {
    let mut pools = Pools::fair(None).expect("no file");
    let mut view = FakeView::default();
    let first = view.add(0, 1);
    let second = view.add(1, 1);
    pools.add_task_set(first, Some("x"));
    pools.add_task_set(second, Some("x"));
    pools.remove_task_set(first);
    pools.remove_task_set(first);
    pools.remove_task_set(TaskSetKey(99));
    assert_eq!(task_sets_in(&pools, "x"), vec![second]);
    assert_eq!(pools.sorted_task_sets(&view), vec![second]);
    assert!(pools.pool("x").is_some());

    pools.add_task_set(second, None);
    assert!(task_sets_in(&pools, "x").is_empty());
    assert_eq!(task_sets_in(&pools, "default"), vec![second]);
    pools.remove_task_set(second);
    assert!(pools.sorted_task_sets(&view).is_empty());
    assert!(pools.homes.is_empty());
}

/// FIFO: lower job first whatever the stage, then lower stage.
#[test]
fn fifo_orders_by_job_then_stage() {
    let mut pools = Pools::fifo();
    let mut view = FakeView::default();
    let mut keys = Vec::new();
    for (key, job, stage) in [(1, 2, 0), (2, 1, 9), (3, 1, 3), (4, 0, 50)] {
        let key = TaskSetKey(key);
        view.sets.insert(
            key,
            FakeTaskSet {
                job,
                stage,
                tasks: 1,
                ..FakeTaskSet::default()
            },
        );
        pools.add_task_set(key, None);
        keys.push(key);
    }
    assert_eq!(
        pools.sorted_task_sets(&view),
        vec![keys[3], keys[2], keys[1], keys[0]]
    );
}

/// In a FAIR pool, task sets with equal shares go by name, as strings: "TaskSet_10.0" before
/// "TaskSet_9.0".
#[test]
fn fair_pool_ties_between_task_sets_go_by_name() {
    let xml = r#"<allocations><pool name="p"><schedulingMode>FAIR</schedulingMode></pool>
        </allocations>"#;
    let mut pools = Pools::fair(Some(xml)).expect("parses");
    let mut view = FakeView::default();
    let nine = view.add(9, 4);
    let ten = view.add(10, 4);
    pools.add_task_set(nine, Some("p"));
    pools.add_task_set(ten, Some("p"));
    assert_eq!(pools.sorted_task_sets(&view), vec![ten, nine]);
    if let Some(set) = view.sets.get_mut(&ten) {
        set.running = 1;
    }
    assert_eq!(pools.sorted_task_sets(&view), vec![nine, ten]);
}

/// Weights of 0 and below are accepted as Spark accepts them, and order the way Java's
/// `Double.compare` orders the resulting infinities and NaNs, without panicking.
#[test]
fn zero_and_negative_weights_order_like_spark() {
    let xml = r#"<allocations>
        <pool name="nan"><weight>0</weight></pool>
        <pool name="inf"><weight>0</weight></pool>
        <pool name="three"><weight>1</weight></pool>
        <pool name="negative"><weight>-1</weight><minShare>-4</minShare></pool>
    </allocations>"#;
    let mut pools = Pools::fair(Some(xml)).expect("parses");
    verify_pool(&pools, "negative", -4, -1, SchedulingMode::Fifo);
    let mut view = FakeView::default();
    let mut add = |stage, pool, running| {
        let key = view.add(stage, 10);
        if let Some(set) = view.sets.get_mut(&key) {
            set.running = running;
        }
        pools.add_task_set(key, Some(pool));
        key
    };
    let nan = add(0, "nan", 0); // 0 / 0
    let inf = add(1, "inf", 2); // 2 / 0
    let three = add(2, "three", 3); // 3 / 1
    let negative = add(3, "negative", 1); // 1 / -1
    assert_eq!(
        pools.sorted_task_sets(&view),
        vec![negative, three, inf, nan]
    );
}
