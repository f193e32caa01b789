//! The control-plane faults of the `control_plane` scenario, each recorded as it is done:
//! the apiserver restarted, etcd restarted, the operator's connections cut at the relay.
//! Does process and network I/O (through [`ControlPlane`] and [`Relay`]).

use std::time::{Duration, Instant};

use qlikops_testenv::{ControlPlane, Relay};
use serde_json::{Value, json};

use crate::bench::burst::round;

/// How long a cut waits for the operator to have reconnected since the previous cut.
const RECONNECT_WITHIN: Duration = Duration::from_secs(30);
/// How often that wait looks (the relay counts connections; nothing notifies).
const RECONNECT_POLL: Duration = Duration::from_millis(100);

/// Injects the faults and keeps the record of what was done, for the report's `did`.
pub struct Injector<'a> {
    control_plane: &'a ControlPlane,
    relay: &'a Relay,
    /// The scenario's start: fault times are seconds since then.
    start: Instant,
    /// Connections the relay had accepted at the last cut.
    accepted_at_last_cut: u64,
    done: Vec<Value>,
}

impl<'a> Injector<'a> {
    pub fn new(control_plane: &'a ControlPlane, relay: &'a Relay, start: Instant) -> Injector<'a> {
        Injector {
            control_plane,
            relay,
            start,
            accepted_at_last_cut: 0,
            done: Vec::new(),
        }
    }

    /// Kills kube-apiserver and starts it again; returns once it serves.
    pub async fn restart_apiserver(&mut self, when: &str) -> Result<(), String> {
        let at = self.seconds();
        let down = self.control_plane.restart_apiserver().await?;
        self.record(json!({
            "fault": "apiserver_restart", "when": when, "at_seconds": at,
            "down_seconds": round(down.as_secs_f64()),
        }));
        Ok(())
    }

    /// Kills etcd and starts it again; returns once the apiserver serves from it again.
    pub async fn restart_etcd(&mut self, when: &str) -> Result<(), String> {
        let at = self.seconds();
        let down = self.control_plane.restart_etcd().await?;
        self.record(json!({
            "fault": "etcd_restart", "when": when, "at_seconds": at,
            "down_seconds": round(down.as_secs_f64()),
        }));
        Ok(())
    }

    /// Closes every connection the operator has open to the apiserver, once it has opened
    /// a new one since the last cut (waiting at most [`RECONNECT_WITHIN`]): two cuts in a
    /// row would find nothing re-established to break.
    pub async fn cut(&mut self, when: &str) {
        let deadline = Instant::now() + RECONNECT_WITHIN;
        while self.relay.accepted() <= self.accepted_at_last_cut && Instant::now() < deadline {
            tokio::time::sleep(RECONNECT_POLL).await;
        }
        self.accepted_at_last_cut = self.relay.accepted();
        let at = self.seconds();
        let connections = self.relay.cut();
        self.record(json!({
            "fault": "connections_cut", "when": when, "at_seconds": at,
            "connections": connections,
        }));
    }

    /// How many faults of `kind` were injected.
    pub fn count(&self, kind: &str) -> usize {
        self.done.iter().filter(|f| f["fault"] == kind).count()
    }

    /// Every fault, in order.
    pub fn record_json(&self) -> Value {
        Value::Array(self.done.clone())
    }

    fn record(&mut self, fault: Value) {
        println!("control_plane: {fault}");
        self.done.push(fault);
    }

    fn seconds(&self) -> f64 {
        round(self.start.elapsed().as_secs_f64())
    }
}
