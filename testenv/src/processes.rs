//! Spawning the control plane's processes so that none outlives the process that started
//! them, restarting one of them on request, and reading their logs for error messages.
//! Does process I/O only.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How soon the keeper notices that its last process exited on its own.
const EXIT_POLL: Duration = Duration::from_millis(100);

/// The processes one keeper thread spawned, and a way to restart one of them from that
/// same thread (so that the new process is tied to it like the first).
pub struct Keeper {
    requests: mpsc::Sender<Request>,
    /// Process ids at start, in the order of the commands.
    pub pids: Vec<u32>,
}

/// A restart asked of the keeper thread: which process, and where to answer.
struct Request {
    index: usize,
    /// When the process was killed, once it has been started again.
    reply: tokio::sync::oneshot::Sender<Result<Instant, String>>,
}

impl Keeper {
    /// Kills process `index` (SIGKILL, as a crash or an OOM kill would) and starts it
    /// again with the same command, appending to the same log. Does not wait for it to
    /// be ready: that depends on what it is. Returns when it was killed.
    pub async fn restart(&self, index: usize) -> Result<Instant, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.requests
            .send(Request { index, reply })
            .map_err(|_| "the keeper thread is gone".to_owned())?;
        answer
            .await
            .map_err(|_| "the keeper thread dropped the restart".to_owned())?
    }
}

/// One process of a keeper, with what it takes to start it again.
struct Kept {
    command: Command,
    log: PathBuf,
    child: Child,
}

/// Spawns `commands` (each logging to its file) from a thread that never ends, so that
/// `PR_SET_PDEATHSIG` (which fires when the spawning *thread* exits) fires only when the
/// process that uses the control plane exits. `exited` is set, with its exit status, when
/// the last of them exits on its own (not when it is restarted).
pub fn spawn_keeper(
    name: &str,
    commands: Vec<(Command, PathBuf)>,
    exited: Arc<OnceLock<String>>,
) -> Result<Keeper, String> {
    let (started, receiver) = mpsc::channel();
    let (requests, incoming) = mpsc::channel::<Request>();
    std::thread::Builder::new()
        .name(format!("envtest-keeper-{name}"))
        .spawn(move || {
            let mut kept: Vec<Kept> = Vec::new();
            for (mut command, log) in commands {
                // Once: the restarts spawn the same command, hook and all.
                die_with_parent(&mut command);
                match spawn_logged(&mut command, &log, false) {
                    Ok(child) => kept.push(Kept {
                        command,
                        log,
                        child,
                    }),
                    Err(message) => {
                        for process in &mut kept {
                            let _ = process.child.kill();
                        }
                        let _ = started.send(Err(message));
                        return;
                    }
                }
            }
            let _ = started.send(Ok(kept.iter().map(|k| k.child.id()).collect()));
            serve(&mut kept, &incoming, &exited);
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| format!("failed to start the keeper thread: {e}"))?;
    let pids = receiver
        .recv()
        .map_err(|_| "the keeper thread died".to_string())??;
    Ok(Keeper { requests, pids })
}

/// Answers restart requests and reports an exit of the last process, until the
/// [`Keeper`] is dropped; then waits for that exit alone (the processes live on until the
/// process that started them exits, as they always have).
fn serve(kept: &mut [Kept], incoming: &mpsc::Receiver<Request>, exited: &OnceLock<String>) {
    loop {
        match incoming.recv_timeout(EXIT_POLL) {
            Ok(request) => {
                let answer = restart(kept, request.index);
                let _ = request.reply.send(answer);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if exited.get().is_none()
            && let Some(last) = kept.last_mut()
            && let Ok(Some(status)) = last.child.try_wait()
        {
            let _ = exited.set(status.to_string());
        }
    }
    if exited.get().is_none()
        && let Some(last) = kept.last_mut()
    {
        let status = match last.child.wait() {
            Ok(status) => status.to_string(),
            Err(e) => format!("unknown: {e}"),
        };
        let _ = exited.set(status);
    }
}

fn restart(kept: &mut [Kept], index: usize) -> Result<Instant, String> {
    let process = kept
        .get_mut(index)
        .ok_or_else(|| format!("no process {index} to restart"))?;
    let program = process.command.get_program().to_string_lossy().into_owned();
    // A process that already exited on its own is started again all the same.
    let _ = process.child.kill();
    process
        .child
        .wait()
        .map_err(|e| format!("failed to wait for {program} to exit: {e}"))?;
    let killed_at = Instant::now();
    process.child = spawn_logged(&mut process.command, &process.log, true)?;
    Ok(killed_at)
}

/// Starts `command` with its output in `log`: a new log, or appended to the one of the
/// process it replaces (after a line that says so), so a post-mortem sees both.
fn spawn_logged(command: &mut Command, log: &Path, append: bool) -> Result<Child, String> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(log)
        .map_err(|e| format!("failed to open {}: {e}", log.display()))?;
    if append {
        let _ = writeln!(file, "--- restarted by the test harness ---");
    }
    let stderr = file
        .try_clone()
        .map_err(|e| format!("failed to open {}: {e}", log.display()))?;
    command.stdin(Stdio::null()).stdout(file).stderr(stderr);
    command
        .spawn()
        .map_err(|e| format!("failed to start {:?}: {e}", command.get_program()))
}
/// Asks the kernel to SIGKILL the process `command` starts when the spawning *thread*
/// exits (`PR_SET_PDEATHSIG`), so that no helper process outlives its test or tool.
pub fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl and getppid are async-signal-safe and touch no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() == 1 {
                return Err(std::io::Error::other("parent exited before exec"));
            }
            Ok(())
        });
    }
}

/// The last 30 lines of `log`, for an error message.
pub fn tail(log: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(log) {
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
