//! The control-plane faults of the `control_plane` scenario, each recorded as it is done:
//! the apiserver restarted, etcd restarted, the operator's connections cut at the relay.
//! Does process and network I/O (through [`ControlPlane`] and [`Relay`]).

use std::time::Instant;

use qlikops_testenv::{ControlPlane, Relay};
use serde_json::{Value, json};

use crate::bench::burst::round;

/// Injects the faults and keeps the record of what was done, for the report's `did`.
pub struct Injector<'a> {
    control_plane: &'a ControlPlane,
    relay: &'a Relay,
    /// The scenario's start: fault times are seconds since then.
    start: Instant,
    done: Vec<Value>,
}

impl<'a> Injector<'a> {
    pub fn new(control_plane: &'a ControlPlane, relay: &'a Relay, start: Instant) -> Injector<'a> {
        Injector {
            control_plane,
            relay,
            start,
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

    /// Closes every connection the operator has open to the apiserver.
    pub fn cut(&mut self, when: &str) {
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
