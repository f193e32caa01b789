//! A real browser for the rig: headless Chromium from Debian's packages opens a page and
//! hands back what the page observed ([`PageReport`]). Spawns processes and serves one
//! loopback HTTP endpoint per visit; no CDP client, no extra crate.
//!
//! The page under test must load the rig's observer (`tests/support/site.rs`), which reports
//! by navigating to the URL in the page's fragment. [`Browser::visit`] opens
//! `<url>#observed=<endpoint>` and waits, with a deadline, for that navigation to arrive: the
//! page says when it is done, no sleep. A fragment never reaches a server, so the same URL
//! works for a page served through a proxy. The browser stays open until the [`Visit`] is
//! dropped, so reports it sends after the page is done (`report-uri`) still go out.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use hyper::StatusCode;
use serde::Deserialize;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::site::{Server, respond};

/// How long a visit may take, browser start included (about 0.6 s for the headless shell
/// and 2 s for full Chromium on an idle 2-core machine; builds may share the cores).
pub const VISIT_DEADLINE: Duration = Duration::from_secs(30);

/// The binaries tried, in order: the headless shell (what `.ci/run` installs: lighter and
/// faster to start), then full Chromium. Debian's `/usr/bin` wrappers are bypassed: they read
/// flags from `/etc/chromium.d` and the headless shell's does not `exec`.
const BINARIES: &[(&str, Kind)] = &[
    (
        "/usr/lib/chromium/chromium-headless-shell",
        Kind::HeadlessShell,
    ),
    ("/usr/lib/chromium/chromium", Kind::Chromium),
];

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// `chromium-headless-shell`: the "old" headless mode, headless without a flag.
    HeadlessShell,
    /// `chromium`: needs `--headless`.
    Chromium,
}

/// A headless Chromium binary.
#[derive(Clone, Debug)]
pub struct Browser {
    binary: PathBuf,
    kind: Kind,
}

impl Browser {
    /// The first of [`BINARIES`] installed; panics with how to install one (a test that needs
    /// a browser never skips).
    pub fn find() -> Browser {
        BINARIES
            .iter()
            .find(|(path, _)| Path::new(path).exists())
            .map(|(path, kind)| Browser {
                binary: PathBuf::from(path),
                kind: *kind,
            })
            .unwrap_or_else(|| {
                panic!(
                    "no headless Chromium (looked for {}); install it with \
                     `apt-get install -y --no-install-recommends chromium-headless-shell` \
                     (as .ci/run does)",
                    BINARIES
                        .iter()
                        .map(|(path, _)| *path)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    /// Opens `url` (which must have no fragment) in a fresh profile and waits until the page
    /// reports what it observed, failing the test after [`VISIT_DEADLINE`] or if the browser
    /// exits first, with the tail of its stderr.
    pub async fn visit(&self, url: &str) -> Visit {
        assert!(!url.contains('#'), "{url}: the rig uses the fragment");
        let (sender, mut observed) = mpsc::unbounded_channel();
        let endpoint = Server::start(move |request| {
            let report = request.uri.query().and_then(|query| {
                form_urlencoded::parse(query.as_bytes())
                    .find(|(key, _)| key == "report")
                    .map(|(_, value)| value.into_owned())
            });
            match report {
                Some(report) => {
                    let _ = sender.send(report);
                    respond(StatusCode::OK, "text/plain", "observed\n")
                }
                None => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
            }
        })
        .await;
        let dir = tempfile::tempdir().expect("a temporary directory for the browser");
        let stderr_path = dir.path().join("stderr.log");
        let stderr = File::create(&stderr_path).expect("the browser's stderr file");
        let mut command = Command::new(&self.binary);
        if let Kind::Chromium = self.kind {
            command.arg("--headless");
        }
        command
            // Chromium's sandbox refuses to start as root, which tests and CI run as here.
            .arg("--no-sandbox")
            .arg("--disable-gpu")
            .arg("--no-first-run")
            .arg("--disable-background-networking")
            .arg("--disable-component-update")
            .arg("--disable-extensions")
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .arg(format!("{url}#observed={}/observed", endpoint.origin()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            // Its own process group, so Drop ends the renderers and helpers with it.
            .process_group(0)
            .kill_on_drop(true);
        let mut process = Process(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("failed to start {}: {e}", self.binary.display())),
        );
        let launch = Launch {
            binary: &self.binary,
            url,
            stderr: &stderr_path,
        };
        let first = async {
            tokio::select! {
                received = observed.recv() => Outcome::Observed(received),
                exited = process.0.wait() => Outcome::Exited(exited),
            }
        };
        let outcome = tokio::time::timeout(VISIT_DEADLINE, first)
            .await
            .unwrap_or(Outcome::TimedOut);
        let text = match outcome {
            Outcome::Observed(Some(text)) => text,
            Outcome::Observed(None) => launch.fail("the report endpoint closed"),
            Outcome::Exited(status) => {
                launch.fail(&format!("the browser exited first ({status:?})"))
            }
            Outcome::TimedOut => launch.fail(&format!("no report within {VISIT_DEADLINE:?}")),
        };
        let report: PageReport = serde_json::from_str(&text)
            .unwrap_or_else(|e| launch.fail(&format!("unreadable report ({e}): {text}")));
        Visit {
            report,
            _process: process,
            _endpoint: endpoint,
            _dir: dir,
        }
    }
}

enum Outcome {
    Observed(Option<String>),
    Exited(std::io::Result<std::process::ExitStatus>),
    TimedOut,
}

/// One browser start, for failure messages.
struct Launch<'a> {
    binary: &'a Path,
    url: &'a str,
    stderr: &'a Path,
}

impl Launch<'_> {
    fn fail(&self, why: &str) -> ! {
        panic!(
            "{} on {}: {why}\n(does the policy's script-src allow the observer script the page \
             loads first?)\nthe browser's stderr ends with:\n{}",
            self.binary.display(),
            self.url,
            tail(self.stderr, 30)
        )
    }
}

/// An open page and what it observed; dropping it ends the browser.
pub struct Visit {
    pub report: PageReport,
    _process: Process,
    _endpoint: Server,
    _dir: tempfile::TempDir,
}

/// The browser, in a process group of its own (`process_group(0)` above); dropping it,
/// on a deadline or a failed assertion too, sends SIGKILL to the whole group, and
/// `kill_on_drop` reaps the main process.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(pid) = self.0.id().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: kill(2) takes no pointers; -pid names the group the browser leads.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
    }
}

/// The last `lines` lines of the file at `path`, or why there are none.
fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(failed to read {}: {e})", path.display()),
    }
}

/// What the page observed, one task after its `load` event.
#[derive(Clone, Debug, Deserialize)]
pub struct PageReport {
    /// The page's URL, without the fragment.
    pub url: String,
    /// The page's scripts but the observer, in document order: `done` if it ran.
    pub scripts: Vec<Load>,
    /// The page's images, in document order: `done` if it loaded.
    pub images: Vec<Load>,
    /// The `securitypolicyviolation` events the document received, in order.
    pub violations: Vec<Violation>,
}

/// A subresource of the page and whether it ran (a script) or loaded (an image).
#[derive(Clone, Debug, Deserialize)]
pub struct Load {
    pub url: String,
    pub done: bool,
}

/// A `securitypolicyviolation` event, its fields as the DOM names them.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    pub blocked_uri: String,
    pub violated_directive: String,
    pub effective_directive: String,
    /// `enforce` or `report`.
    pub disposition: String,
}

impl PageReport {
    /// Whether the page's script `url` ran; panics if the page has no such script.
    pub fn script_ran(&self, url: &str) -> bool {
        Self::find(&self.scripts, url, "script").done
    }

    /// Whether the page's image `url` loaded; panics if the page has no such image.
    pub fn image_loaded(&self, url: &str) -> bool {
        Self::find(&self.images, url, "image").done
    }

    /// The violations of loading `url`.
    pub fn violations_of(&self, url: &str) -> Vec<&Violation> {
        self.violations
            .iter()
            .filter(|violation| violation.blocked_uri == url)
            .collect()
    }

    fn find<'a>(loads: &'a [Load], url: &str, what: &str) -> &'a Load {
        loads
            .iter()
            .find(|load| load.url == url)
            .unwrap_or_else(|| panic!("the page has no {what} {url}: {loads:#?}"))
    }
}
