//! The status UI in a real browser: headless Chromium (Debian's `chromium`, which `.ci/run`
//! installs) driven over the DevTools protocol. While a job runs it opens the master's
//! page, sees both workers and the running application, follows the links to the
//! application, a worker and an executor's stdout, kills the application through the
//! page's form and its confirmation, and sees it among the completed ones. Screenshots of
//! the pages go to `target/ui-screenshots/`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ember::{TaskContext, TaskError, TaskRegistry};
use ember_test_support::{wait_for, TempDir, DEADLINE};
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};

const CHROMIUM: &str = "/usr/bin/chromium";

/// A task that takes a while, so the job is still running while the browser looks.
fn nap(_: &TaskContext, n: u32) -> Result<u32, TaskError> {
    println!("napping {n}");
    std::thread::sleep(Duration::from_millis(50));
    Ok(n)
}

fn tasks() -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    registry.register("nap", nap);
    registry
}

ember::executor_entry!(tasks);

/// `target/ui-screenshots`, beside this test binary's `target/<profile>/deps`.
fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("target/<profile>/deps/<binary>");
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshot directory");
    dir
}

fn screenshot(tab: &Tab, dir: &Path, name: &str) {
    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(dir.join(name), png).expect("the screenshot file");
}

/// The page's visible text.
fn text(tab: &Tab) -> String {
    tab.wait_for_element("body")
        .and_then(|body| body.get_inner_text())
        .expect("the page's text")
}

fn browser(profile: &Path) -> Browser {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium (.ci/run does)"
    );
    let args = [
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let options = LaunchOptions::default_builder()
        .path(Some(PathBuf::from(CHROMIUM)))
        .sandbox(false)
        .headless(true)
        .window_size(Some((1280, 1000)))
        .user_data_dir(Some(profile.to_path_buf()))
        .args(args.iter().map(OsStr::new).collect())
        .idle_browser_timeout(Duration::from_secs(120))
        .build()
        .expect("launch options");
    Browser::new(options).expect("Chromium starts")
}

/// Opens `url` and waits until the page is titled `title…`.
fn open(tab: &Arc<Tab>, url: &str, title: &str) {
    tab.navigate_to(url)
        .and_then(|t| t.wait_until_navigated())
        .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    wait_until_titled(tab, title, url);
}

fn wait_until_titled(tab: &Arc<Tab>, title: &str, after: &str) {
    wait_for(
        &format!("a page titled {title}… after {after}"),
        DEADLINE,
        || {
            let now = tab.get_title().unwrap_or_default();
            if now.starts_with(title) {
                Ok(())
            } else {
                Err(now)
            }
        },
    );
}

/// Clicks `selector` and waits until the page that loads is titled `title…` (a click
/// returns before the next page has loaded, and on a loaded machine well before).
fn click_to(tab: &Arc<Tab>, selector: &str, title: &str) {
    tab.wait_for_element(selector)
        .and_then(|e| e.click().map(|_| ()))
        .unwrap_or_else(|e| panic!("clicking {selector}: {e}"));
    wait_until_titled(tab, title, &format!("clicking {selector}"));
}

#[test]
fn an_operator_browses_the_cluster_and_kills_the_running_application() -> Result<(), ember::Error> {
    let shots = screenshot_dir();
    let cluster = test_cluster()
        .workers(2)
        .cores_per_worker(1)
        .memory_mib_per_worker(1024)
        .conf("ember.ui.killEnabled", "true")
        .start()?;
    let ctx = cluster.context("browsed-app")?;
    cluster.wait_for_executors(&ctx, 2, Duration::from_secs(60))?;
    // 20,000 naps of 50 ms on two cores: running until the kill ends it.
    let job = ctx.submit_job::<u32, u32>("nap", (0..20_000).collect())?;
    let master = format!("http://{}", cluster.master().ui_address().expect("the UI"));
    let app_id = ctx.app_id().to_string();
    let worker_ids: Vec<String> = cluster
        .state()?
        .workers
        .iter()
        .map(|w| w.id.0.clone())
        .collect();

    let profile = TempDir::new("chromium-profile");
    let browser = browser(profile.path());
    let tab = browser.new_tab().expect("a tab");

    open(&tab, &format!("{master}/"), "Ember Master at");
    let title = tab.get_title().expect("the title");
    assert_eq!(title, format!("Ember Master at {}", cluster.master_url()));
    let page = text(&tab);
    for id in &worker_ids {
        assert!(
            page.contains(id.as_str()),
            "worker {id} missing from\n{page}"
        );
    }
    assert!(page.contains("Running Applications (1)"), "{page}");
    assert!(page.contains(&app_id), "{page}");
    screenshot(&tab, &shots, "master.png");

    // The application's page lists its two executors.
    click_to(
        &tab,
        &format!("a[href='/app/?appId={app_id}']"),
        "Application: browsed-app",
    );
    let page = text(&tab);
    assert!(page.contains("Executor Summary (2)"), "{page}");
    screenshot(&tab, &shots, "application.png");

    // An executor's stdout, through its worker's log page.
    click_to(&tab, "a[href*='logType=stdout']", "stdout log page for");
    let page = text(&tab);
    assert!(page.contains("stdout log page for"), "{page}");
    assert!(page.contains("napping"), "{page}");

    // A worker's page, through the master's link.
    open(&tab, &format!("{master}/"), "Ember Master at");
    click_to(
        &tab,
        "#workers + table a[href^='http://']",
        "Ember Worker at 127.0.0.1:",
    );
    let page = text(&tab);
    assert!(page.contains("Running Executors (1)"), "{page}");
    screenshot(&tab, &shots, "worker.png");

    // The kill: the row's button, then the confirmation.
    open(&tab, &format!("{master}/"), "Ember Master at");
    click_to(&tab, "#running-app + table button.kill", "Kill application");
    let page = text(&tab);
    assert!(
        page.contains(&format!("Kill application {app_id}?")),
        "{page}"
    );
    click_to(&tab, "#confirm-kill", "Ember Master at");
    let seen = wait_for(
        "the killed application among the completed ones",
        DEADLINE,
        || {
            open(&tab, &format!("{master}/"), "Ember Master at");
            let page = text(&tab);
            if page.contains("Running Applications (0)") && page.contains("KILLED") {
                Ok(page)
            } else {
                Err(page)
            }
        },
    );
    assert!(seen.contains("Completed Applications (1)"), "{seen}");
    screenshot(&tab, &shots, "master-after-kill.png");

    assert!(job.wait().is_err(), "the killed application's job fails");
    cluster.stop()
}
