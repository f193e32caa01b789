//! The operator's memory as the kernel counts it, read from `/proc/<pid>/status` of the
//! operator process alone (never the bench's own, which creates the objects). Reads
//! `/proc`; writes only `/proc/<pid>/clear_refs` to restart the peak between phases.

use crate::processes::Operator;

/// One operator process's memory counters.
pub struct OperatorMemory {
    pid: u32,
}

impl OperatorMemory {
    /// The counters of `operator`'s process.
    pub fn of(operator: &Operator) -> OperatorMemory {
        OperatorMemory {
            pid: operator.pid(),
        }
    }

    /// Resident memory now (`VmRSS`), in MiB.
    pub fn rss_mib(&self) -> Result<f64, String> {
        self.read_kib("VmRSS").map(|kib| kib / 1024.0)
    }

    /// The highest resident memory since the process started or since [`Self::reset_peak`]
    /// (`VmHWM`), in MiB. Exact: the kernel keeps it, nothing is sampled.
    pub fn peak_mib(&self) -> Result<f64, String> {
        self.read_kib("VmHWM").map(|kib| kib / 1024.0)
    }

    /// Restarts the peak at the current resident memory (writing `5` to `clear_refs`,
    /// Linux 4.0 and later), so that the next [`Self::peak_mib`] covers one phase only.
    pub fn reset_peak(&self) -> Result<(), String> {
        let path = format!("/proc/{}/clear_refs", self.pid);
        std::fs::write(&path, "5").map_err(|e| format!("failed to reset the peak ({path}): {e}"))
    }

    fn read_kib(&self, field: &str) -> Result<f64, String> {
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path)
            .map_err(|e| format!("failed to read the operator's memory ({path}): {e}"))?;
        status_kib(&status, field).ok_or_else(|| format!("no {field} in {path}"))
    }
}

/// The value of a `Field:   1234 kB` line of `/proc/<pid>/status`, in KiB.
fn status_kib(status: &str, field: &str) -> Option<f64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_in_kib() {
        let status = "Name:\tqlik-csp-operat\nVmHWM:\t   48232 kB\nVmRSS:\t   40100 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(48232.0));
        assert_eq!(status_kib(status, "VmRSS"), Some(40100.0));
        assert_eq!(status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_reads_its_own_counters() {
        let me = OperatorMemory {
            pid: std::process::id(),
        };
        let (rss, peak) = (me.rss_mib().unwrap(), me.peak_mib().unwrap());
        assert!(rss > 0.0 && peak >= rss, "rss {rss} peak {peak}");
        // The bench restarts a child's peak the same way; the peak stays at or above the RSS.
        me.reset_peak().unwrap();
        let (rss, peak) = (me.rss_mib().unwrap(), me.peak_mib().unwrap());
        assert!(peak >= rss, "after a reset: rss {rss} peak {peak}");
    }
}
