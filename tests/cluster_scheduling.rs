//! Where a test cluster's master puts executors: applications that want more cores than
//! are free wait, `ember.cores.max` and `ember.executor.cores` size them, and
//! `ember.deploy.spreadOut` spreads them over the workers or packs them. Ports what applies
//! of MasterSuite's scheduling tests on real processes.

pub mod cluster_support;

use std::collections::BTreeSet;

use ember::testing::TestCluster;

use cluster_support::{
    app_now, cluster, cores_used_per_worker, stop_and_check, tasks, wait_gone, wait_until, DEADLINE,
};

ember::executor_entry!(tasks);

#[test]
fn a_second_app_waits_for_cores_until_the_first_stops() {
    let cluster = cluster(2, 1, &[]);
    let first = cluster.context("first").expect("registers");
    cluster
        .wait_for_executors(&first, 2, DEADLINE)
        .expect("the first app takes both cores");
    assert_eq!(app_now(&cluster, first.app_id()).cores_granted, 2);

    let second = cluster.context("second").expect("registers all the same");
    // Scheduling runs in the master's registration handler, before this ask.
    let waiting = app_now(&cluster, second.app_id());
    assert_eq!(
        (
            waiting.state.as_str(),
            waiting.cores_granted,
            waiting.executors
        ),
        ("WAITING", 0, 0)
    );
    let handle = second
        .submit_job::<u64, u64>("square", (0..4u64).collect())
        .expect("submitted");
    assert!(!handle.is_done(), "no executor to run it yet");
    let first_executors = cluster.executor_processes();
    assert_eq!(first_executors.len(), 2);

    first.stop();
    let out = handle
        .wait_timeout(DEADLINE)
        .expect("the job ends once the cores are free")
        .expect("the job succeeds");
    assert_eq!(out, vec![0, 1, 4, 9]);
    let running = app_now(&cluster, second.app_id());
    assert_eq!(
        (running.state.as_str(), running.cores_granted),
        ("RUNNING", 2)
    );
    wait_gone(&first_executors);
    let all = cluster.executor_processes();
    stop_and_check(&cluster, &all);
}

#[test]
fn an_app_whose_executors_fit_no_worker_waits_without_blocking_others() {
    let cluster = cluster(2, 1, &[]);
    // Two cores per executor, on workers of one core each.
    let too_big = cluster
        .context_with("too-big", &[("ember.executor.cores", "2")])
        .expect("registers");
    let fits = cluster.context("fits").expect("registers");
    cluster
        .wait_for_executors(&fits, 2, DEADLINE)
        .expect("the later app gets both cores");
    let out: Vec<u64> = fits.run_job("square", vec![3u64]).expect("succeeds");
    assert_eq!(out, vec![9]);
    let waiting = app_now(&cluster, too_big.app_id());
    assert_eq!(
        (
            waiting.state.as_str(),
            waiting.cores_granted,
            waiting.executors
        ),
        ("WAITING", 0, 0)
    );
    // Even with every core free again it cannot be placed.
    fits.stop();
    wait_until("the cores are free", DEADLINE, || {
        cores_used_per_worker(&cluster, 2) == vec![0, 0]
    });
    assert_eq!(app_now(&cluster, too_big.app_id()).cores_granted, 0);
    assert!(cluster.executor_processes().is_empty());
    stop_and_check(&cluster, &[]);
}

#[test]
fn cores_max_caps_an_app_and_leaves_the_rest_to_the_next() {
    let cluster = cluster(2, 2, &[]);
    let capped = cluster
        .context_with("capped", &[("ember.cores.max", "3")])
        .expect("registers");
    wait_until("the capped app holds 3 cores", DEADLINE, || {
        app_now(&cluster, capped.app_id()).cores_granted == 3
    });
    let other = cluster.context("other").expect("registers");
    cluster
        .wait_for_executors(&other, 1, DEADLINE)
        .expect("the last core goes to the other app");
    assert_eq!(app_now(&cluster, other.app_id()).cores_granted, 1);
    assert_eq!(cores_used_per_worker(&cluster, 2).iter().sum::<u32>(), 4);
    let out: Vec<u64> = capped.run_job("square", vec![5u64; 6]).expect("succeeds");
    assert_eq!(out, vec![25; 6]);
    let all = cluster.executor_processes();
    stop_and_check(&cluster, &all);
}

/// The cores each worker gives an app of `ember.cores.max` 2 on 2 workers of 2 cores, and
/// how many executor processes each worker runs, with `settings` for the cluster and
/// `app_settings` for the app. Sorted, since which worker is first is the policy's choice.
fn placement(settings: &[(&str, &str)], app_settings: &[(&str, &str)]) -> (Vec<u32>, Vec<usize>) {
    let cluster: TestCluster = cluster(2, 2, settings);
    let mut app = vec![("ember.cores.max", "2")];
    app.extend_from_slice(app_settings);
    let ctx = cluster.context_with("placed", &app).expect("registers");
    wait_until("the app holds 2 cores", DEADLINE, || {
        app_now(&cluster, ctx.app_id()).cores_granted == 2
    });
    let executors = app_now(&cluster, ctx.app_id()).executors;
    cluster
        .wait_for_executors(&ctx, executors, DEADLINE)
        .expect("its executors register");
    let mut cores = cores_used_per_worker(&cluster, 2);
    cores.sort_unstable();
    let processes = cluster.executor_processes();
    let workers: Vec<String> = (0..2)
        .map(|i| cluster.worker(i).expect("runs").url())
        .collect();
    let mut per_worker: Vec<usize> = workers
        .iter()
        .map(|w| {
            processes
                .iter()
                .filter(|p| p.worker_url.as_deref() == Some(w.as_str()))
                .count()
        })
        .collect();
    per_worker.sort_unstable();
    // Every process belongs to one of the two workers.
    assert_eq!(per_worker.iter().sum::<usize>(), processes.len());
    let pids: BTreeSet<u32> = processes.iter().map(|p| p.pid).collect();
    assert_eq!(pids.len(), processes.len());
    stop_and_check(&cluster, &processes);
    (cores, per_worker)
}

#[test]
fn spread_out_puts_one_core_on_each_worker() {
    assert_eq!(placement(&[], &[]), (vec![1, 1], vec![1, 1]));
    // The same with one-core executors.
    assert_eq!(
        placement(&[], &[("ember.executor.cores", "1")]),
        (vec![1, 1], vec![1, 1])
    );
}

#[test]
fn packing_fills_one_worker_first() {
    let pack = [("ember.deploy.spreadOut", "false")];
    // One executor with both cores of one worker.
    assert_eq!(placement(&pack, &[]), (vec![0, 2], vec![0, 1]));
    // Two one-core executors, both on the same worker.
    assert_eq!(
        placement(&pack, &[("ember.executor.cores", "1")]),
        (vec![0, 2], vec![0, 2])
    );
}
