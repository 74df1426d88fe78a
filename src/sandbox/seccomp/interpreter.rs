//! Test support: a classic-BPF interpreter for the programs both compilers emit, the
//! kernel's rule for stacked filters, and the check that two compilations of one policy
//! decide alike.
//!
//! **Owns** nothing that ships: compiled for tests only. The interpreter knows exactly the
//! instructions seccompiler and the optimiser emit (`ld` of `seccomp_data`, `and`, `ja`,
//! `jeq`/`jgt`/`jge` with constants, `ret`) and panics on anything else or on running off
//! the end, so a malformed program fails the test rather than passing by accident.
//!
//! **Limits.** The equivalence check samples the argument space (every constant of every
//! rule, its neighbours and masks, edges, and pseudo-random mixes); it is exhaustive over
//! syscall numbers 0..=1023 only.

use std::collections::{BTreeMap, BTreeSet};

use seccompiler::{sock_filter, TargetArch};
use serde_json::{Map, Value};

use super::compiler::syscall_nr;

pub const ALLOW: u32 = 0x7fff_0000;
const LOW32: u64 = 0xffff_ffff;
pub const KILL_PROCESS: u32 = 0x8000_0000;
pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
pub const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
pub const ARCHES: [TargetArch; 2] = [TargetArch::x86_64, TargetArch::aarch64];

pub fn audit_arch(arch: TargetArch) -> u32 {
    match arch {
        TargetArch::x86_64 => AUDIT_ARCH_X86_64,
        TargetArch::aarch64 => AUDIT_ARCH_AARCH64,
    }
}

/// What the kernel hands a filter (`struct seccomp_data`, less the instruction pointer).
#[derive(Debug, Clone, Copy)]
pub struct Call {
    pub arch: u32,
    pub nr: u32,
    pub args: [u64; 6],
}

pub fn call(arch: TargetArch, nr: u32, args: &[u64]) -> Call {
    let mut all = [0u64; 6];
    all[..args.len()].copy_from_slice(args);
    Call {
        arch: audit_arch(arch),
        nr,
        args: all,
    }
}

/// Either `sock_filter` type: seccompiler's or libc's.
pub trait Insn {
    fn parts(&self) -> (u16, u8, u8, u32);
}

impl Insn for sock_filter {
    fn parts(&self) -> (u16, u8, u8, u32) {
        (self.code, self.jt, self.jf, self.k)
    }
}

impl Insn for libc::sock_filter {
    fn parts(&self) -> (u16, u8, u8, u32) {
        (self.code, self.jt, self.jf, self.k)
    }
}

/// A classic-BPF interpreter for the instructions seccompiler and the optimiser emit.
/// Panics on anything else, and on running off the end.
pub fn run<I: Insn>(prog: &[I], c: &Call) -> u32 {
    let load = |offset: u32| -> u32 {
        match offset {
            0 => c.nr,
            4 => c.arch,
            16..=63 => {
                let arg = c.args[(offset as usize - 16) / 8];
                if (offset - 16) % 8 == 4 {
                    (arg >> 32) as u32
                } else {
                    arg as u32
                }
            }
            _ => panic!("load from unexpected offset {offset}"),
        }
    };
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let (code, jt, jf, k) = prog[pc].parts();
        pc += 1;
        let jump = |taken: bool| usize::from(if taken { jt } else { jf });
        match code {
            0x20 => acc = load(k),        // ld [k]
            0x54 => acc &= k,             // and #k
            0x05 => pc += k as usize,     // ja k
            0x15 => pc += jump(acc == k), // jeq #k
            0x25 => pc += jump(acc > k),  // jgt #k
            0x35 => pc += jump(acc >= k), // jge #k
            0x06 => return k,             // ret #k
            other => panic!("unexpected BPF opcode {other:#x}"),
        }
    }
}

/// The kernel's verdict for a stack of filters given in installation order: it runs
/// them newest first and replaces the result only on a strictly lower action
/// (`seccomp_run_filters`, comparing `ACTION_ONLY` as signed).
pub fn stacked<I: Insn>(installed: &[&[I]], c: &Call) -> u32 {
    let action = |ret: u32| (ret & 0xffff_0000) as i32;
    let mut ret = ALLOW;
    for prog in installed.iter().rev() {
        let cur = run(prog, c);
        if action(cur) < action(ret) {
            ret = cur;
        }
    }
    ret
}

/// Argument vectors around every constant in `rules`: each value, its neighbours,
/// its masks and single-bit flips inside them, high halves set or cleared, and the
/// edges (0, u32/u64 limits); the product over the argument indices the rules use,
/// then pseudo-random mixes of those values.
fn argument_grid(rules: &[&Value]) -> Vec<[u64; 6]> {
    const EDGES: [u64; 9] = [
        0,
        1,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        1 << 32,
        1 << 63,
        u64::MAX - 1,
        u64::MAX,
    ];
    let mut per_index: BTreeMap<usize, BTreeSet<u64>> = BTreeMap::new();
    for rule in rules {
        for cond in rule["args"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let index = cond["index"].as_u64().expect("index") as usize;
            let val = cond["val"].as_u64().expect("val");
            let set = per_index.entry(index).or_default();
            set.extend(EDGES);
            let mut base = vec![val, val & LOW32, !val];
            if let Some(mask) = cond["op"].get("masked_eq").and_then(Value::as_u64) {
                base.extend([mask, !mask, val & mask, (val & mask) | !mask, val ^ mask]);
                for bit in (0..64).filter(|b| mask & (1 << b) != 0) {
                    base.push((val & mask) ^ (1 << bit));
                }
            }
            for v in base {
                set.extend([
                    v,
                    v.wrapping_add(1),
                    v.wrapping_sub(1),
                    v | !LOW32,
                    v ^ (1 << 32),
                ]);
            }
        }
    }
    let product: usize = per_index.values().map(BTreeSet::len).product();
    let mut grid = vec![[0u64; 6]];
    if product <= 50_000 {
        for (&index, values) in &per_index {
            grid = grid
                .iter()
                .flat_map(|args| {
                    values.iter().map(move |&v| {
                        let mut next = *args;
                        next[index] = v;
                        next
                    })
                })
                .collect();
        }
    } else {
        // Too many for the full product: start from each rule's own matching values
        // and vary one argument at a time.
        for rule in rules {
            let mut base = [0u64; 6];
            for cond in rule["args"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                base[cond["index"].as_u64().expect("index") as usize] =
                    cond["val"].as_u64().expect("val");
            }
            grid.push(base);
            for (&index, values) in &per_index {
                for &v in values {
                    let mut next = base;
                    next[index] = v;
                    grid.push(next);
                }
            }
        }
    }
    // Arguments no rule looks at must not matter either.
    let unused: Vec<usize> = (0..6).filter(|i| !per_index.contains_key(i)).collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pools: Vec<Vec<u64>> = per_index
        .values()
        .map(|s| s.iter().copied().collect())
        .collect();
    for _ in 0..300 {
        let mut args = [0u64; 6];
        for (&index, pool) in per_index.keys().zip(&pools) {
            let r = random();
            args[index] = match r % 4 {
                0 => random(),
                _ => pool[(r >> 8) as usize % pool.len()],
            };
        }
        for &i in &unused {
            args[i] = random();
        }
        grid.push(args);
    }
    grid
}

/// Checks that `optimized` decides like `reference` for every filter of the policy
/// `text`, program by program and stacked in the order given, over syscall numbers
/// 0..=1023, x32 and other high numbers, foreign architectures, and the argument grid
/// of every syscall that has argument rules. Returns how many calls were compared.
pub fn assert_equivalent(
    arch: TargetArch,
    text: &[u8],
    install_order: &[&str],
    reference: &BTreeMap<String, Vec<sock_filter>>,
    optimized: &BTreeMap<String, Vec<sock_filter>>,
) -> usize {
    assert_eq!(
        reference.keys().collect::<Vec<_>>(),
        optimized.keys().collect::<Vec<_>>()
    );
    let filters: Map<String, Value> = serde_json::from_slice(text).expect("JSON");
    let mut calls: Vec<Call> = Vec::new();
    let mut numbers: Vec<u32> = (0..1024).collect();
    numbers.extend((0..1024).map(|n| n | 0x4000_0000));
    numbers.extend([
        0x3fff_ffff,
        0x4000_0000 | 0x3fff_ffff,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_fffe,
        u32::MAX,
    ]);
    for &nr in &numbers {
        calls.push(call(arch, nr, &[]));
        calls.push(call(arch, nr, &[u64::MAX; 6]));
    }
    for foreign in [
        AUDIT_ARCH_I386,
        AUDIT_ARCH_ARM,
        audit_arch(other(arch)),
        0,
        u32::MAX,
    ] {
        for nr in [0, 1, 3, 59, 221, 435, 0x4000_0000] {
            calls.push(Call {
                arch: foreign,
                nr,
                args: [0; 6],
            });
        }
    }
    // Every syscall with argument rules in any filter, with its grid.
    let mut conditional: BTreeMap<u32, Vec<&Value>> = BTreeMap::new();
    for filter in filters.values() {
        for rule in filter["filter"].as_array().expect("filter list") {
            if rule.get("args").is_some_and(|a| !a.is_null()) {
                let name = rule["syscall"].as_str().expect("name");
                let nr = syscall_nr(arch, name).expect("known syscall");
                conditional.entry(nr).or_default().push(rule);
            }
        }
    }
    let mut outcomes: BTreeMap<u32, BTreeSet<Vec<u32>>> = BTreeMap::new();
    for (&nr, rules) in &conditional {
        for (i, args) in argument_grid(rules).into_iter().enumerate() {
            let c = Call {
                arch: audit_arch(arch),
                nr,
                args,
            };
            let results = reference.values().map(|prog| run(prog, &c)).collect();
            outcomes.entry(nr).or_default().insert(results);
            calls.push(Call {
                arch: audit_arch(arch),
                nr,
                args,
            });
            // The x32 twin: some argument vectors suffice, the number decides first.
            if i < 64 {
                calls.push(Call {
                    arch: audit_arch(arch),
                    nr: nr | 0x4000_0000,
                    args,
                });
            }
        }
    }
    // The grid is only worth something if the arguments change the outcome.
    for (nr, seen) in &outcomes {
        assert!(
            seen.len() > 1,
            "{arch:?} syscall {nr}: the grid never changes the result"
        );
    }
    let refs: Vec<&[sock_filter]> = install_order
        .iter()
        .map(|n| reference[*n].as_slice())
        .collect();
    let opts: Vec<&[sock_filter]> = install_order
        .iter()
        .map(|n| optimized[*n].as_slice())
        .collect();
    for c in &calls {
        for name in reference.keys() {
            let (want, got) = (run(&reference[name], c), run(&optimized[name], c));
            assert_eq!(got, want, "{arch:?} filter {name:?}, {c:x?}");
        }
        assert_eq!(
            stacked(&opts, c),
            stacked(&refs, c),
            "{arch:?} stacked, {c:x?}"
        );
    }
    calls.len()
}

fn other(arch: TargetArch) -> TargetArch {
    match arch {
        TargetArch::x86_64 => TargetArch::aarch64,
        TargetArch::aarch64 => TargetArch::x86_64,
    }
}
