//! A TCP relay between a client (the operator) and the apiserver, so a test or a chaos
//! scenario can cut every connection the client holds (its watches, and requests in
//! flight) while the apiserver stays up: the network failure between the two, which a
//! restart of the apiserver does not isolate. Bytes pass through untouched (TLS end to end: the apiserver's certificate
//! names 127.0.0.1, where the relay listens too). Does network I/O.
//!
//! Why a relay rather than the apiserver's own watch timeouts (`--min-request-timeout`):
//! those end a watch cleanly, at a moment of the apiserver's choosing, which every client
//! handles routinely; a cut breaks connections mid-stream and mid-request, when the
//! scenario chooses.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running relay; stops (and closes every connection) when dropped.
pub struct Relay {
    /// `https://127.0.0.1:<port>`: where clients of the relay connect.
    pub url: String,
    cuts: watch::Sender<u64>,
    live: Arc<AtomicU64>,
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Listens on a free loopback port and relays every connection to `upstream`
    /// (`host:port`).
    pub async fn start(upstream: &str) -> Result<Relay, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("failed to bind the relay: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("the relay has no address: {e}"))?
            .port();
        let (cuts, cut) = watch::channel(0u64);
        let live = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(accept(
            listener,
            upstream.to_owned(),
            cut,
            live.clone(),
            accepted.clone(),
        ));
        Ok(Relay {
            url: format!("https://127.0.0.1:{port}"),
            cuts,
            live,
            accepted,
            task,
        })
    }

    /// Closes every connection open now, and returns how many there were. New
    /// connections are relayed as before.
    pub fn cut(&self) -> u64 {
        let open = self.live.load(Ordering::Relaxed);
        self.cuts.send_modify(|generation| *generation += 1);
        open
    }

    /// Connections relayed so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// A copy of `kubeconfig` (written to `out`) whose server is the relay instead of
    /// `server`.
    pub fn kubeconfig(
        &self,
        kubeconfig: &Path,
        server: &str,
        out: PathBuf,
    ) -> Result<PathBuf, String> {
        let text = std::fs::read_to_string(kubeconfig)
            .map_err(|e| format!("failed to read {}: {e}", kubeconfig.display()))?;
        let needle = format!("server: {server}\n");
        if !text.contains(&needle) {
            return Err(format!("{} names no server {server}", kubeconfig.display()));
        }
        let relayed = text.replace(&needle, &format!("server: {}\n", self.url));
        std::fs::write(&out, relayed)
            .map_err(|e| format!("failed to write {}: {e}", out.display()))?;
        Ok(out)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // The connections close too: their tasks end when `cuts` is dropped.
        self.task.abort();
    }
}

async fn accept(
    listener: TcpListener,
    upstream: String,
    cut: watch::Receiver<u64>,
    live: Arc<AtomicU64>,
    accepted: Arc<AtomicU64>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of file descriptors, say: a pause, not a spin.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        accepted.fetch_add(1, Ordering::Relaxed);
        let mut cut = cut.clone();
        cut.mark_unchanged();
        let (upstream, live) = (upstream.clone(), live.clone());
        tokio::spawn(async move {
            // A refused upstream (the apiserver restarting) closes the client's connection:
            // what it would see without the relay.
            let Ok(server) = TcpStream::connect(&upstream).await else {
                return;
            };
            live.fetch_add(1, Ordering::Relaxed);
            let (mut client, mut server) = (client, server);
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                // A cut, or the relay gone: dropping both ends closes them.
                _ = cut.changed() => {}
            }
            live.fetch_sub(1, Ordering::Relaxed);
        });
    }
}
