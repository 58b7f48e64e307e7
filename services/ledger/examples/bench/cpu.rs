//! CPU time by process during the fold, from Linux's `/proc` (the ledger runs in this process;
//! PostgreSQL and the broker are the machine's `postgres` and `java` processes): a rate moves
//! with whatever else the machine does, CPU a fact much less, so A/B comparisons use it.

use std::collections::HashMap;

#[derive(Default)]
pub(super) struct Snapshot {
    /// Clock ticks (utime + stime) by process id, with the process's group name.
    ticks: HashMap<u32, (&'static str, u64)>,
    /// The machine's ticks: idle and all.
    idle: u64,
    all: u64,
}

pub(super) struct Used {
    ticks: HashMap<&'static str, u64>,
    idle_share: f64,
}

impl Snapshot {
    pub(super) fn take() -> Option<Self> {
        let me = std::process::id();
        let mut snap = Self::default();
        for dir in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = dir.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(dir.path().join("stat")) else {
                continue; // gone meanwhile
            };
            // `pid (comm) state …`: comm may hold spaces, so split after its last ')'.
            let Some((head, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let comm = head.split_once('(').map_or("", |(_, c)| c);
            let group = match comm {
                _ if pid == me => "ledger (this process)",
                "postgres" => "PostgreSQL",
                "java" => "Kafka broker",
                _ => "other",
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the comm.
            let used: u64 = fields
                .get(11..13)
                .map(|f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
                .unwrap_or(0);
            snap.ticks.insert(pid, (group, used));
        }
        let machine = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = machine
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        snap.idle = cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0);
        snap.all = cpu.iter().sum();
        Some(snap)
    }

    /// What was used between `earlier` and this snapshot, by group: what each process
    /// used since `earlier` (all of it if it started since; processes that ended meanwhile
    /// are not counted).
    pub(super) fn since(self, earlier: Option<&Self>) -> Option<Used> {
        let earlier = earlier?;
        let mut ticks: HashMap<&'static str, u64> = HashMap::new();
        for (pid, (group, used)) in &self.ticks {
            let before = earlier.ticks.get(pid).map_or(0, |(_, t)| *t);
            *ticks.entry(group).or_default() += used.saturating_sub(before);
        }
        let all = self.all.saturating_sub(earlier.all).max(1);
        Some(Used {
            ticks,
            idle_share: self.idle.saturating_sub(earlier.idle) as f64 / all as f64,
        })
    }
}

impl Used {
    /// One line: µs of CPU a fact by process group, and the machine's idle share.
    pub(super) fn per_fact(&self, facts: usize) -> String {
        // USER_HZ is 100 on Linux for every architecture this runs on.
        let us = |ticks: u64| ticks as f64 * 10_000.0 / facts.max(1) as f64;
        let mut groups: Vec<_> = self.ticks.iter().filter(|(_, t)| **t > 0).collect();
        groups.sort_by(|a, b| b.1.cmp(a.1));
        let total: u64 = groups.iter().map(|(_, t)| **t).sum();
        let parts: Vec<String> = groups
            .iter()
            .map(|(g, t)| format!("{g} {:.1}", us(**t)))
            .collect();
        format!(
            "CPU a fact during the fold: {:.1} µs ({}); the machine idle {:.0} %",
            us(total),
            parts.join(", "),
            self.idle_share * 100.0
        )
    }
}
