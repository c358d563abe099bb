//! How many parse-server workers, with how big a V8 heap, fit the machine; and the service's
//! memory limit. The rule:
//!
//! - The service may use `MemoryMax` = the `memory-limit` option, or 75 % of the machine's
//!   memory when it is 0. `MemoryHigh` (where the kernel starts throttling) is 90 % of that:
//!   the budget every worker at its peak must fit in.
//! - A worker reserves its heap cap (`--max-old-space-size`) plus 96 MiB for what is not
//!   old-space heap (code, buffers, the young generation); with more than one worker the
//!   cluster master reserves 64 MiB more.
//! - Heap cap: the operator's, else 256 MiB (measured: any cap near parse-server's live set
//!   halves a worker's peak memory against V8's default, at the same throughput), lowered
//!   toward 128 MiB when one worker must fit a small budget.
//! - Workers: the operator's, else one per CPU as far as the budget allows, at least one.
//! - What cannot fit is refused with the arithmetic: values the operator set, and a budget
//!   too small for even one worker at the smallest heap (running it anyway would exceed the
//!   limit the status claims).

/// What the charm knows of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    pub cpus: u32,
    pub memory_mib: u64,
}

/// The operator's settings (`None`: the charm chooses).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requested {
    pub workers: Option<u32>,
    pub heap_mib: Option<u32>,
    pub memory_limit_mib: Option<u64>,
}

/// The result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    pub workers: u32,
    pub heap_mib: u32,
    pub memory_max_mib: u64,
    pub memory_high_mib: u64,
}

pub const WORKER_OVERHEAD_MIB: u64 = 96;
pub const MASTER_MIB: u64 = 64;
pub const DEFAULT_HEAP_MIB: u32 = 256;
pub const MIN_HEAP_MIB: u32 = 128;

impl Sizing {
    /// The memory all workers (and the master) reserve at their peak.
    pub fn reserved_mib(&self) -> u64 {
        reserved(self.workers, self.heap_mib)
    }
}

fn reserved(workers: u32, heap: u32) -> u64 {
    u64::from(workers) * (u64::from(heap) + WORKER_OVERHEAD_MIB)
        + if workers > 1 { MASTER_MIB } else { 0 }
}

/// Applies the rule. `Err` is the arithmetic, for a message naming the options.
pub fn size(machine: Machine, req: Requested) -> Result<Sizing, String> {
    let memory_max = match req.memory_limit_mib {
        Some(l) if l > machine.memory_mib => {
            return Err(format!(
                "memory-limit: {l} MiB is more than the machine's {} MiB",
                machine.memory_mib
            ))
        }
        Some(l) => l,
        None => machine.memory_mib * 3 / 4,
    };
    let budget = memory_max * 9 / 10;
    let cpus = machine.cpus.max(1);
    let fit = |workers: u32, heap: u32| -> Result<Sizing, String> {
        let need = reserved(workers, heap);
        if need > budget {
            let master = if workers > 1 {
                format!(" + {MASTER_MIB}")
            } else {
                String::new()
            };
            return Err(format!(
                "{workers} × ({heap}+{WORKER_OVERHEAD_MIB}){master} = {need} MiB > {budget} MiB \
                 (MemoryHigh, 90% of {memory_max} MiB)"
            ));
        }
        Ok(Sizing {
            workers,
            heap_mib: heap,
            memory_max_mib: memory_max,
            memory_high_mib: budget,
        })
    };
    match (req.workers, req.heap_mib) {
        (Some(w), Some(h)) => fit(w, h),
        (Some(w), None) => {
            // The largest heap up to the default that fits w workers.
            let per_worker =
                budget.saturating_sub(if w > 1 { MASTER_MIB } else { 0 }) / u64::from(w);
            let heap = per_worker
                .saturating_sub(WORKER_OVERHEAD_MIB)
                .min(u64::from(DEFAULT_HEAP_MIB)) as u32;
            fit(w, heap.max(MIN_HEAP_MIB))
        }
        (None, heap) => {
            let h = heap.unwrap_or(DEFAULT_HEAP_MIB);
            let per = u64::from(h) + WORKER_OVERHEAD_MIB;
            let many = (budget.saturating_sub(MASTER_MIB) / per) as u32;
            let workers = many.min(cpus);
            if workers >= 2 {
                return fit(workers, h);
            }
            // One worker: no master; a small budget lowers the default heap.
            let h = match heap {
                Some(h) => h,
                None => (budget.saturating_sub(WORKER_OVERHEAD_MIB) as u32)
                    .clamp(MIN_HEAP_MIB, DEFAULT_HEAP_MIB),
            };
            fit(1, h)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(cpus: u32, gib: u64) -> Machine {
        Machine {
            cpus,
            memory_mib: gib * 1024,
        }
    }

    #[test]
    fn defaults_for_three_machines() {
        let auto = Requested::default();
        assert_eq!(
            size(machine(1, 1), auto).unwrap(),
            Sizing {
                workers: 1,
                heap_mib: 256,
                memory_max_mib: 768,
                memory_high_mib: 691
            }
        );
        assert_eq!(
            size(machine(2, 4), auto).unwrap(),
            Sizing {
                workers: 2,
                heap_mib: 256,
                memory_max_mib: 3072,
                memory_high_mib: 2764
            }
        );
        assert_eq!(
            size(machine(8, 16), auto).unwrap(),
            Sizing {
                workers: 8,
                heap_mib: 256,
                memory_max_mib: 12288,
                memory_high_mib: 11059
            }
        );
    }

    #[test]
    fn small_machines_get_fewer_workers_and_a_smaller_heap() {
        let auto = Requested::default();
        // 8 CPUs, 1 GiB: memory, not CPUs, decides.
        let s = size(machine(8, 1), auto).unwrap();
        assert_eq!(s.workers, 1);
        assert!(s.reserved_mib() <= s.memory_high_mib);
        // 512 MiB: the heap shrinks to fit one worker.
        let s = size(
            Machine {
                cpus: 2,
                memory_mib: 512,
            },
            auto,
        )
        .unwrap();
        assert_eq!((s.workers, s.heap_mib), (1, 249));
        // 256 MiB: one worker at the smallest heap does not fit 90% of 75% of it: refused,
        // as the same worker asked for explicitly is (never run over its own budget).
        let small = Machine {
            cpus: 1,
            memory_mib: 256,
        };
        let e = size(small, auto).unwrap_err();
        assert_eq!(
            e,
            "1 × (128+96) = 224 MiB > 172 MiB (MemoryHigh, 90% of 192 MiB)"
        );
        let explicit = Requested {
            workers: Some(1),
            ..Default::default()
        };
        assert_eq!(size(small, explicit).unwrap_err(), e);
        // The whole machine as the limit holds it.
        let whole = Requested {
            memory_limit_mib: Some(256),
            ..Default::default()
        };
        assert_eq!(size(small, whole).unwrap().heap_mib, 134);
    }

    #[test]
    fn a_memory_limit_is_the_budget() {
        let s = size(
            machine(8, 16),
            Requested {
                memory_limit_mib: Some(2048),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((s.memory_max_mib, s.memory_high_mib), (2048, 1843));
        assert_eq!(s.workers, 5);
        assert!(s.reserved_mib() <= 1843);
        let e = size(
            machine(2, 4),
            Requested {
                memory_limit_mib: Some(8192),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.contains("more than the machine's 4096 MiB"), "{e}");
    }

    #[test]
    fn explicit_settings_are_honoured_or_refused_with_the_arithmetic() {
        let s = size(
            machine(2, 4),
            Requested {
                workers: Some(4),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((s.workers, s.heap_mib), (4, 256));
        let s = size(
            machine(2, 4),
            Requested {
                heap_mib: Some(1024),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((s.workers, s.heap_mib), (2, 1024));
        let e = size(
            machine(2, 4),
            Requested {
                workers: Some(8),
                heap_mib: Some(2048),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            e,
            "8 × (2048+96) + 64 = 17216 MiB > 2764 MiB (MemoryHigh, 90% of 3072 MiB)"
        );
        let e = size(
            machine(1, 1),
            Requested {
                workers: Some(16),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.starts_with("16 × (128+96) + 64"), "{e}");
    }
}
