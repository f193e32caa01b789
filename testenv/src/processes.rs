//! Spawning the control plane's processes so that none outlives the process that started
//! them, and reading their logs for error messages. Does process I/O only.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};

/// Spawns `commands` (each logging to its file) from a thread that never ends, so that
/// `PR_SET_PDEATHSIG` (which fires when the spawning *thread* exits) fires only when the
/// process that uses the control plane exits. Returns their process ids; `exited` is set,
/// with its exit status, when the last of them exits.
pub fn spawn_keeper(
    name: &str,
    commands: Vec<(Command, std::path::PathBuf)>,
    exited: Arc<OnceLock<String>>,
) -> Result<Vec<u32>, String> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("envtest-keeper-{name}"))
        .spawn(move || {
            let mut children: Vec<Child> = Vec::new();
            for (mut command, log) in commands {
                match spawn_logged(&mut command, &log) {
                    Ok(child) => children.push(child),
                    Err(message) => {
                        for child in &mut children {
                            let _ = child.kill();
                        }
                        let _ = sender.send(Err(message));
                        return;
                    }
                }
            }
            let _ = sender.send(Ok(children.iter().map(Child::id).collect()));
            // Block on the last process so an early exit is reported at once instead of
            // after a readiness deadline; then stay alive for the others.
            if let Some(last) = children.last_mut() {
                let status = last.wait();
                let _ = exited.set(format!("{status:?}"));
            }
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| format!("failed to start the keeper thread: {e}"))?;
    receiver
        .recv()
        .map_err(|_| "the keeper thread died".to_string())?
}

fn spawn_logged(command: &mut Command, log: &Path) -> Result<Child, String> {
    let file = std::fs::File::create(log)
        .map_err(|e| format!("failed to create {}: {e}", log.display()))?;
    let stderr = file
        .try_clone()
        .map_err(|e| format!("failed to open {}: {e}", log.display()))?;
    command.stdin(Stdio::null()).stdout(file).stderr(stderr);
    die_with_parent(command);
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
