//! How many parse-server workers, with how big a V8 heap, fit the machine; and the service's
//! memory limit. The rule:
//!
//! - The service may use `MemoryMax` = the `memory-limit` option, or 75 % of the machine's
//!   memory when it is 0. `MemoryHigh` (where the kernel starts throttling) is 90 % of that:
//!   the budget every worker at its peak must fit in.
//! - A worker reserves its heap cap (`--max-old-space-size`), three times its semi-space
//!   size (`--max-semi-space-size`: the young generation at its largest) and 48 MiB for
//!   what is not V8 heap (code, buffers): 1024 + 24 + 48 MiB by default, as 256 + 48 + 48
//!   did under V8's own 16 MiB semi-spaces; with more than one worker the cluster master
//!   reserves 64 MiB more.
//! - Semi-space size: the operator's, else 8 MiB.
//! - Workers: the operator's, else one per CPU as far as the budget allows with a 256 MiB
//!   heap each (a worker per CPU is worth more than a bigger heap), at least one.
//! - Heap cap: the operator's, else the largest up to 1024 MiB that the workers fit in the
//!   budget, at least 128 MiB. In `make bench`'s sweep (README, Benchmarks) 1024/8 was on
//!   the frontier of peak memory per worker against req/s in every run, at 0.52-0.59 of V8's
//!   peak for 0.87-0.98 of its req/s, never behind the earlier 256 MiB with V8's 16 MiB
//!   semi-spaces; no capped setting reached 0.95 of V8's req/s in every run (2048 MiB does,
//!   with V8's memory: V8 grows a heap of 2 GiB as it does its default one).
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
    pub semi_space_mib: Option<u32>,
    pub memory_limit_mib: Option<u64>,
}

/// The result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    pub workers: u32,
    pub heap_mib: u32,
    /// `--max-semi-space-size`, MiB.
    pub semi_space_mib: u32,
    pub memory_max_mib: u64,
    pub memory_high_mib: u64,
}

/// What a worker holds besides V8's heap (code, buffers, the runtime).
pub const WORKER_BASE_MIB: u64 = 48;
pub const MASTER_MIB: u64 = 64;
/// The heap cap unless the operator sets it (lowered to what the workers fit).
pub const DEFAULT_HEAP_MIB: u32 = 1024;
/// The heap the sized worker count is counted at.
pub const COUNTED_HEAP_MIB: u32 = 256;
/// `--max-semi-space-size` unless the operator sets it.
pub const DEFAULT_SEMI_SPACE_MIB: u32 = 8;
pub const MIN_HEAP_MIB: u32 = 128;

/// What a worker reserves besides its heap cap: the young generation at its largest (two
/// semi-spaces and as much again of new large objects) and [`WORKER_BASE_MIB`]. 96 MiB at
/// V8's own 16 MiB semi-spaces.
pub fn worker_overhead_mib(semi_space: u32) -> u64 {
    WORKER_BASE_MIB + 3 * u64::from(semi_space)
}

impl Sizing {
    /// The memory all workers (and the master) reserve at their peak.
    pub fn reserved_mib(&self) -> u64 {
        reserved(self.workers, self.heap_mib, self.semi_space_mib)
    }
}

fn reserved(workers: u32, heap: u32, semi: u32) -> u64 {
    u64::from(workers) * (u64::from(heap) + worker_overhead_mib(semi))
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
    let semi = req.semi_space_mib.unwrap_or(DEFAULT_SEMI_SPACE_MIB);
    let overhead = worker_overhead_mib(semi);
    let fit = |workers: u32, heap: u32| -> Result<Sizing, String> {
        let need = reserved(workers, heap, semi);
        if need > budget {
            let master = if workers > 1 {
                format!(" + {MASTER_MIB}")
            } else {
                String::new()
            };
            return Err(format!(
                "{workers} × ({heap}+{overhead}){master} = {need} MiB > {budget} MiB \
                 (MemoryHigh, 90% of {memory_max} MiB)"
            ));
        }
        Ok(Sizing {
            workers,
            heap_mib: heap,
            semi_space_mib: semi,
            memory_max_mib: memory_max,
            memory_high_mib: budget,
        })
    };
    // The largest heap up to the default that fits `w` workers (at least the smallest).
    let largest_heap = |w: u32| -> u32 {
        let per_worker = budget.saturating_sub(if w > 1 { MASTER_MIB } else { 0 }) / u64::from(w);
        (per_worker
            .saturating_sub(overhead)
            .min(u64::from(DEFAULT_HEAP_MIB)) as u32)
            .max(MIN_HEAP_MIB)
    };
    match (req.workers, req.heap_mib) {
        (Some(w), Some(h)) => fit(w, h),
        (Some(w), None) => fit(w, largest_heap(w)),
        (None, heap) => {
            // Workers are counted at the operator's heap, else at COUNTED_HEAP_MIB: a worker
            // per CPU is worth more than a heap above that.
            let per = u64::from(heap.unwrap_or(COUNTED_HEAP_MIB)) + overhead;
            let many = (budget.saturating_sub(MASTER_MIB) / per) as u32;
            let workers = many.min(cpus).max(1);
            fit(workers, heap.unwrap_or_else(|| largest_heap(workers)))
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
                heap_mib: 619,
                semi_space_mib: 8,
                memory_max_mib: 768,
                memory_high_mib: 691
            }
        );
        assert_eq!(
            size(machine(2, 4), auto).unwrap(),
            Sizing {
                workers: 2,
                heap_mib: 1024,
                semi_space_mib: 8,
                memory_max_mib: 3072,
                memory_high_mib: 2764
            }
        );
        assert_eq!(
            size(machine(8, 16), auto).unwrap(),
            Sizing {
                workers: 8,
                heap_mib: 1024,
                semi_space_mib: 8,
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
        assert_eq!((s.workers, s.heap_mib), (1, 273));
        // 256 MiB: one worker at the smallest heap does not fit 90% of 75% of it: refused,
        // as the same worker asked for explicitly is (never run over its own budget).
        let small = Machine {
            cpus: 1,
            memory_mib: 256,
        };
        let e = size(small, auto).unwrap_err();
        assert_eq!(
            e,
            "1 × (128+72) = 200 MiB > 172 MiB (MemoryHigh, 90% of 192 MiB)"
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
        assert_eq!(size(small, whole).unwrap().heap_mib, 158);
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
        // Workers counted at 256 MiB; the heap is what five of them fit.
        assert_eq!((s.workers, s.heap_mib), (5, 283));
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
        // Four workers on 2 CPUs: the largest heap up to the default that four fit.
        assert_eq!((s.workers, s.heap_mib), (4, 603));
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
            "8 × (2048+72) + 64 = 17024 MiB > 2764 MiB (MemoryHigh, 90% of 3072 MiB)"
        );
        let e = size(
            machine(1, 1),
            Requested {
                workers: Some(16),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.starts_with("16 × (128+72) + 64"), "{e}");
    }

    #[test]
    fn the_default_is_1024_mib_and_8_mib_semi_spaces_where_the_workers_fit_it() {
        let auto = Requested::default();
        // One worker and two, as `make bench` measured them (2 CPUs, 4 GiB).
        for cpus in [1, 2] {
            let s = size(machine(cpus, 4), auto).unwrap();
            assert_eq!((s.workers, s.heap_mib, s.semi_space_mib), (cpus, 1024, 8));
        }
        // The reservation: heap + 3 × semi-space + 48 per worker, + 64 for the master.
        let s = size(machine(2, 4), auto).unwrap();
        assert_eq!(worker_overhead_mib(8), 72);
        assert_eq!(worker_overhead_mib(16), 96);
        assert_eq!(s.reserved_mib(), 2 * (1024 + 72) + 64);
        // 2 CPUs, 2 GiB: the worker count is the same as at a 256 MiB heap; the heap is
        // lowered to what both fit, not the workers to what the heap fits.
        let s = size(machine(2, 2), auto).unwrap();
        assert_eq!((s.workers, s.heap_mib), (2, 587));
        assert!(s.reserved_mib() <= s.memory_high_mib);
    }

    #[test]
    fn the_semi_space_is_the_operators_where_set_and_reserved() {
        let s = size(
            machine(2, 4),
            Requested {
                semi_space_mib: Some(32),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((s.workers, s.heap_mib, s.semi_space_mib), (2, 1024, 32));
        assert_eq!(s.reserved_mib(), 2 * (1024 + 48 + 96) + 64);
        // An explicit heap keeps the default semi-space: one rule, whatever the cap.
        let s = size(
            machine(2, 4),
            Requested {
                heap_mib: Some(256),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((s.workers, s.heap_mib, s.semi_space_mib), (2, 256, 8));
        // What does not fit is refused with the semi-space in the arithmetic.
        let e = size(
            machine(1, 1),
            Requested {
                heap_mib: Some(512),
                semi_space_mib: Some(64),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            e,
            "1 × (512+240) = 752 MiB > 691 MiB (MemoryHigh, 90% of 768 MiB)"
        );
    }
}
