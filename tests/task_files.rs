//! Files for tasks (Spark's `SparkContext.addFile` and `SparkFiles.get`): a file the driver
//! adds is read by tasks in executor processes, which fetch it from the driver once each,
//! into their own directory, and in `local[N]`, where tasks read it in place. A name that
//! was not added fails the task, saying so.

use std::path::PathBuf;

use ember::{Context, RpcConf, TaskContext, TaskError, TaskRegistry};

/// The added file's contents, and where the task found it.
fn read_file(ctx: &TaskContext, name: String) -> Result<(String, String), TaskError> {
    let path = ctx.file(&name)?;
    let text = std::fs::read_to_string(&path).map_err(|e| TaskError::msg(e.to_string()))?;
    Ok((text, path.display().to_string()))
}

fn tasks() -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    registry.register("read_file", read_file);
    registry
}

ember::executor_entry!(tasks);

/// A file with `text` in a fresh directory.
fn added_file(test: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ember-task-files-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lookup.txt");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn executors_fetch_an_added_file_once_and_read_it() -> Result<(), ember::Error> {
    let cluster = test_cluster().workers(2).cores_per_worker(2).start()?;
    let ctx = cluster.context("task-files")?;
    cluster.wait_for_executors(&ctx, 2, std::time::Duration::from_secs(30))?;
    let file = added_file("cluster", "alpha beta gamma");
    assert_eq!(ctx.add_file(&file)?, "lookup.txt");

    let out: Vec<(String, String)> =
        ctx.run_job("read_file", vec!["lookup.txt".to_string(); 16])?;
    let mut places: Vec<&str> = out.iter().map(|(_, p)| p.as_str()).collect();
    places.sort_unstable();
    places.dedup();
    for (text, path) in &out {
        assert_eq!(text, "alpha beta gamma");
        assert!(path.ends_with("/files/lookup.txt"), "{path}");
        assert_ne!(
            path,
            &file.display().to_string(),
            "a copy, not the driver's file"
        );
    }
    assert!(places.len() <= 2, "one copy per executor: {places:?}");

    let missing = ctx.run_job::<String, (String, String)>("read_file", vec!["nope.txt".into()]);
    let error = missing.expect_err("a file never added").to_string();
    assert!(error.contains("Cannot get file 'nope.txt'"), "{error}");
    assert!(error.contains("No file is served at"), "{error}");
    cluster.stop()?;
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
    Ok(())
}

#[test]
fn local_tasks_read_an_added_file_in_place() -> Result<(), ember::Error> {
    let conf = RpcConf::new()
        .with(ember::MASTER, "local[2]")
        .with(ember::APP_NAME, "task-files-local");
    let ctx = Context::new(conf, tasks())?;
    let file = added_file("local", "in place");
    let name = ctx.add_file(&file)?;
    let out: Vec<(String, String)> = ctx.run_job("read_file", vec![name; 4])?;
    let real = std::fs::canonicalize(&file).unwrap().display().to_string();
    assert!(
        out.iter().all(|(t, p)| t == "in place" && *p == real),
        "{out:?}"
    );
    let error = ctx
        .run_job::<String, (String, String)>("read_file", vec!["../etc/passwd".into()])
        .expect_err("not a name")
        .to_string();
    assert!(
        error.contains("is not the name of an added file"),
        "{error}"
    );
    // Another file of the same name is refused.
    let other = added_file("local-other", "other");
    let error = ctx
        .add_file(&other)
        .expect_err("the name is taken")
        .to_string();
    assert!(
        error.contains("'lookup.txt' is already the file"),
        "{error}"
    );
    ctx.stop();
    for dir in [file.parent().unwrap(), other.parent().unwrap()] {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}
