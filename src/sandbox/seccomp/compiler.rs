//! From the policy JSON to classic BPF, twice: seccompiler's reference program and the
//! optimised program the sandbox installs.
//!
//! **Owns** the policy texts (`../policy/*.json`, embedded), merging the x86_64 overlay into
//! the common file, and both compilers:
//!
//! - [`reference`]: seccompiler 0.4's `compile_from_json`, unchanged. Its `main` program is a
//!   linear chain (about five instructions per listed syscall, 1.4k in all on x86_64).
//! - [`optimized`]: the same decisions in far fewer instructions. seccompiler still does
//!   everything that needs judgement: it validates the whole policy (the reference is
//!   compiled first, so the optimiser accepts exactly what seccompiler accepts), it maps
//!   syscall names to numbers (read back from one-rule programs, so the numbers come from
//!   the same tables as the reference), and it compiles every argument rule. What this file
//!   adds is only the dispatch on the syscall number: after seccompiler's own architecture
//!   check and `ld nr`, a balanced tree of `jge` over the *intervals* of numbers that share a
//!   decision (deny, allow, or "check this syscall's arguments"). Leaves are shared `ret`
//!   instructions or the start of an argument subprogram: seccompiler's program for a filter
//!   holding only that syscall's rules (same actions), minus its architecture check, which
//!   the tree has already passed. Everything above the largest listed number, including the
//!   x32 numbers (bit 30 set), falls into the last interval: the mismatch action.
//!
//! Also owns the module's error type, [`SeccompError`] (`super` re-exports it), because
//! both compilers report through it.
//!
//! This file is also compiled into `build.rs` (with `#[path]`), which runs [`optimized`] for
//! the target architecture and embeds the result, so it may use only std, seccompiler,
//! serde_json and thiserror, never `crate::` (except in its tests, which `build.rs` does
//! not compile).
//!
//! **Does not** install anything or know the kernel's stacking rules (`super` does).
//!
//! **Limits.** Classic BPF conditional jumps reach 255 instructions; the assembler rewrites
//! any longer branch through an unconditional `ja` (32-bit offset) trampoline and checks
//! the finished program like the kernel does (every jump lands inside, the last
//! instruction returns, at most 4096 instructions).

use std::collections::{BTreeMap, HashMap};

use seccompiler::{sock_filter, SeccompAction, TargetArch};
use serde_json::{json, Map, Value};

/// Name of the allowlist filter, installed first.
pub const MAIN_FILTER: &str = "main";
/// Name of the filter that turns `clone3` into `ENOSYS`, installed second.
pub const ENOSYS_FILTER: &str = "enosys";

const COMMON_FILE: &str = "src/sandbox/policy/seccomp.json";
/// The common policy: both filters, valid for both architectures.
pub const COMMON_POLICY: &str = include_str!("../policy/seccomp.json");
const X86_64_FILE: &str = "src/sandbox/policy/seccomp.x86_64.json";
/// x86_64-only additions to `main` (legacy syscalls aarch64 never had).
pub const X86_64_POLICY: &str = include_str!("../policy/seccomp.x86_64.json");

/// The kernel's limit on one program (`BPF_MAXINSNS`).
const BPF_MAX_LEN: usize = 4096;

const BPF_CLASS_MASK: u16 = 0x07;
const BPF_CLASS_JMP: u16 = 0x05;
const BPF_CLASS_RET: u16 = 0x06;
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_JMP_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;
/// Offsets in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;

/// Errors from loading or compiling the policy. Applying it fails only with a bare
/// `Errno`, because the child between `clone` and `execve` cannot carry more.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The running architecture has no policy (only x86_64 and aarch64 do).
    #[error("no seccomp policy for architecture {arch}")]
    UnsupportedArch { arch: &'static str },
    /// A policy file is not valid JSON or not a map of filters.
    #[error("seccomp policy {file} is not a JSON map of filters: {source}")]
    Json {
        file: &'static str,
        source: serde_json::Error,
    },
    /// The x86_64 overlay cannot be merged into the common policy.
    #[error("seccomp policy {file}: filter {filter:?} cannot be merged: {reason}")]
    Overlay {
        file: &'static str,
        filter: String,
        reason: &'static str,
    },
    /// seccompiler rejected the (merged) policy.
    #[error("seccomp policy does not compile for {arch:?}: {source}")]
    Compile {
        arch: TargetArch,
        source: seccompiler::Error,
    },
    /// seccompiler's output does not have the shape the optimiser builds on (a new
    /// seccompiler version, most likely); the reference program still compiles.
    #[error("seccomp filter {filter:?} cannot be optimised for {arch:?}: {reason}")]
    Optimize {
        arch: TargetArch,
        filter: String,
        reason: String,
    },
    /// A filter that `apply` installs is missing from the policy.
    #[error("seccomp policy for {arch:?} has no filter named {name:?}")]
    MissingFilter {
        arch: TargetArch,
        name: &'static str,
    },
    /// The policy holds a filter that `apply` would never install (a typo, most likely).
    #[error("seccomp policy for {arch:?} has a filter named {name:?} that is never installed")]
    UnknownFilter { arch: TargetArch, name: String },
}

/// The two programs `apply` installs, in seccompiler's instruction type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Programs {
    pub main: Vec<sock_filter>,
    pub enosys: Vec<sock_filter>,
}

/// seccompiler's own programs for the embedded policy on `arch`.
pub fn reference(arch: TargetArch) -> Result<Programs, SeccompError> {
    let text = policy_json(arch)?;
    programs(arch, compile_reference(arch, &text)?)
}

/// The optimised programs for the embedded policy on `arch`: same decisions as
/// [`reference`], a fraction of the instructions.
pub fn optimized(arch: TargetArch) -> Result<Programs, SeccompError> {
    let text = policy_json(arch)?;
    programs(arch, compile_optimized(arch, &text)?)
}

/// Takes exactly the two filters `apply` installs out of a compiled policy.
fn programs(
    arch: TargetArch,
    mut compiled: BTreeMap<String, Vec<sock_filter>>,
) -> Result<Programs, SeccompError> {
    let mut take = |name: &'static str| {
        compiled
            .remove(name)
            .ok_or(SeccompError::MissingFilter { arch, name })
    };
    let main = take(MAIN_FILTER)?;
    let enosys = take(ENOSYS_FILTER)?;
    if let Some(name) = compiled.into_keys().next() {
        return Err(SeccompError::UnknownFilter { arch, name });
    }
    Ok(Programs { main, enosys })
}

/// seccompiler's programs for every filter in `text`.
pub fn compile_reference(
    arch: TargetArch,
    text: &[u8],
) -> Result<BTreeMap<String, Vec<sock_filter>>, SeccompError> {
    let compiled = seccompiler::compile_from_json(text, arch)
        .map_err(|source| SeccompError::Compile { arch, source })?;
    Ok(compiled.into_iter().collect())
}

/// Optimised programs for every filter in `text`, which must be seccompiler's JSON format.
pub fn compile_optimized(
    arch: TargetArch,
    text: &[u8],
) -> Result<BTreeMap<String, Vec<sock_filter>>, SeccompError> {
    // The reference compile is the validation: whatever seccompiler rejects is rejected
    // here with seccompiler's error, and the optimiser may rely on a well-formed policy.
    let reference = compile_reference(arch, text)?;
    let filters: Map<String, Value> =
        serde_json::from_slice(text).map_err(|e| SeccompError::Optimize {
            arch,
            filter: String::new(),
            reason: format!("policy is not a JSON map: {e}"),
        })?;
    let mut numbers = Numbers::new(arch);
    let mut out = BTreeMap::new();
    for (name, program) in reference {
        let filter = filters.get(&name).ok_or_else(|| SeccompError::Optimize {
            arch,
            filter: name.clone(),
            reason: "seccompiler compiled a filter the JSON does not hold".to_owned(),
        })?;
        let optimized =
            optimize_filter(arch, &program, filter, &mut numbers).map_err(|reason| {
                SeccompError::Optimize {
                    arch,
                    filter: name.clone(),
                    reason,
                }
            })?;
        out.insert(name, optimized);
    }
    Ok(out)
}

/// The syscall number seccompiler uses for `name` on `arch` (`None` if its table lacks it),
/// read back from a one-rule program: architecture check (3), `ld nr`, then `jeq nr`.
pub fn syscall_nr(arch: TargetArch, name: &str) -> Option<u32> {
    let filter = json!({ "n": {
        "mismatch_action": "allow",
        "match_action": { "errno": 1 },
        "filter": [ { "syscall": name } ],
    }});
    let text = serde_json::to_vec(&filter).ok()?;
    let programs = seccompiler::compile_from_json(text.as_slice(), arch).ok()?;
    let program = programs.get("n")?;
    match program.get(3..5)? {
        [load, cmp] if is_load_nr(load) && cmp.code == BPF_JMP_JEQ_K => Some(cmp.k),
        _ => None,
    }
}

/// Syscall numbers by name, each looked up once.
struct Numbers {
    arch: TargetArch,
    known: HashMap<String, u32>,
}

impl Numbers {
    fn new(arch: TargetArch) -> Self {
        Self {
            arch,
            known: HashMap::new(),
        }
    }

    fn get(&mut self, name: &str) -> Result<u32, String> {
        if let Some(&nr) = self.known.get(name) {
            return Ok(nr);
        }
        let nr = syscall_nr(self.arch, name)
            .ok_or_else(|| format!("no syscall number for {name:?} in seccompiler's output"))?;
        self.known.insert(name.to_owned(), nr);
        Ok(nr)
    }
}

/// What one interval of syscall numbers leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaf {
    /// `ret k`.
    Ret(u32),
    /// The argument subprogram with this index.
    Args(usize),
}

/// Builds the optimised program of one filter whose reference program is `reference`.
fn optimize_filter(
    arch: TargetArch,
    reference: &[sock_filter],
    filter: &Value,
    numbers: &mut Numbers,
) -> Result<Vec<sock_filter>, String> {
    let prologue = reference
        .get(..3)
        .filter(|p| is_arch_check(p))
        .ok_or("the reference program does not start with the architecture check")?;
    let action = |key: &str| -> Result<u32, String> {
        let value = filter.get(key).cloned().unwrap_or(Value::Null);
        serde_json::from_value::<SeccompAction>(value)
            .map(u32::from)
            .map_err(|e| format!("{key}: {e}"))
    };
    let mismatch = action("mismatch_action")?;
    let matched = action("match_action")?;
    let rules = filter
        .get("filter")
        .and_then(Value::as_array)
        .ok_or("no \"filter\" list")?;

    // Rules by number, in policy order: seccompiler groups them the same way.
    let mut by_nr: BTreeMap<u32, Vec<&Value>> = BTreeMap::new();
    for rule in rules {
        let name = rule
            .get("syscall")
            .and_then(Value::as_str)
            .ok_or("a rule without a \"syscall\" name")?;
        by_nr.entry(numbers.get(name)?).or_default().push(rule);
    }

    let mut subprograms = Vec::new();
    let mut intervals: Vec<(u32, Leaf)> = Vec::new();
    let mut push = |start: u32, leaf: Leaf| match intervals.last() {
        Some(&(_, last)) if last == leaf => {}
        _ => intervals.push((start, leaf)),
    };
    let mut next = Some(0u32);
    for (&nr, rules) in &by_nr {
        let Some(from) = next else { break };
        if nr > from {
            push(from, Leaf::Ret(mismatch));
        }
        // seccompiler drops an argument-free rule when the same number also has argument
        // rules: then the syscall is conditional. `"args": null` is argument-free.
        let conditional = rules
            .iter()
            .any(|r| r.get("args").is_some_and(|a| !a.is_null()));
        if conditional {
            let sub = argument_subprogram(arch, filter, nr, rules, prologue)?;
            subprograms.push(sub);
            push(nr, Leaf::Args(subprograms.len() - 1));
        } else {
            push(nr, Leaf::Ret(matched));
        }
        next = nr.checked_add(1);
    }
    if let Some(from) = next {
        push(from, Leaf::Ret(mismatch));
    }

    // Layout: architecture check, ld nr, the tree (root first), the shared returns, the
    // argument subprograms. Every jump goes forward.
    let mut ops: Vec<Op> = prologue.iter().cloned().map(Op::Fixed).collect();
    ops.push(Op::Fixed(stmt(BPF_LD_W_ABS, DATA_NR)));
    let mut returns: Vec<u32> = Vec::new();
    for &(_, leaf) in &intervals {
        if let Leaf::Ret(k) = leaf {
            if !returns.contains(&k) {
                returns.push(k);
            }
        }
    }
    let block = |leaf: Leaf| match leaf {
        Leaf::Ret(k) => Block(
            returns
                .iter()
                .position(|&r| r == k)
                .expect("every return value is listed"),
        ),
        Leaf::Args(i) => Block(returns.len() + i),
    };
    let root = tree(&intervals, &mut ops, &block);
    if let Dest::Block(b) = root {
        // A single interval: the whole filter is one action.
        ops.push(Op::Ja(Dest::Block(b)));
    }
    let mut block_start = Vec::new();
    for &k in &returns {
        block_start.push(ops.len());
        ops.push(Op::Fixed(stmt(BPF_RET_K, k)));
    }
    for sub in subprograms {
        block_start.push(ops.len());
        ops.extend(sub.into_iter().map(Op::Fixed));
    }
    let resolve = |dest: Dest| match dest {
        Dest::Op(i) => i,
        Dest::Block(Block(b)) => block_start[b],
    };
    let ops: Vec<AsmOp> = ops
        .into_iter()
        .map(|op| match op {
            Op::Fixed(insn) => AsmOp::Fixed(insn),
            Op::Ja(t) => AsmOp::Ja(resolve(t)),
            Op::Cond { code, k, t, f } => AsmOp::Cond {
                code,
                k,
                t: resolve(t),
                f: resolve(f),
            },
        })
        .collect();
    let program = assemble(&ops)?;
    if program.len() > BPF_MAX_LEN {
        return Err(format!(
            "{} instructions, more than the kernel's {BPF_MAX_LEN}",
            program.len()
        ));
    }
    check_program(&program)?;
    Ok(program)
}

/// seccompiler's program for a filter holding only `rules` (all for syscall `nr`), with the
/// same actions, minus the architecture check `prologue`. What remains starts with
/// `ld nr; jeq nr` and is self-contained: its jumps stay inside and it ends in returns.
fn argument_subprogram(
    arch: TargetArch,
    filter: &Value,
    nr: u32,
    rules: &[&Value],
    prologue: &[sock_filter],
) -> Result<Vec<sock_filter>, String> {
    let one = json!({ "s": {
        "mismatch_action": filter.get("mismatch_action"),
        "match_action": filter.get("match_action"),
        "filter": rules,
    }});
    let text = serde_json::to_vec(&one).map_err(|e| e.to_string())?;
    let mut compiled = seccompiler::compile_from_json(text.as_slice(), arch)
        .map_err(|e| format!("syscall {nr} alone does not compile: {e}"))?;
    let program = compiled.remove("s").ok_or("seccompiler lost the filter")?;
    let Some(body) = program.strip_prefix(prologue) else {
        return Err(format!("syscall {nr}: unexpected prologue"));
    };
    match body {
        [load, cmp, ..] if is_load_nr(load) && cmp.code == BPF_JMP_JEQ_K && cmp.k == nr => {}
        _ => {
            return Err(format!(
                "syscall {nr}: no `ld nr; jeq {nr}` after the prologue"
            ))
        }
    }
    check_program(body).map_err(|e| format!("syscall {nr}: {e}"))?;
    Ok(body.to_vec())
}

/// Index of a block placed after the tree: a shared return, then each subprogram.
#[derive(Debug, Clone, Copy)]
struct Block(usize);

#[derive(Debug, Clone, Copy)]
enum Dest {
    Op(usize),
    Block(Block),
}

/// An instruction before the blocks' places are known.
enum Op {
    Fixed(sock_filter),
    Ja(Dest),
    Cond { code: u16, k: u32, t: Dest, f: Dest },
}

/// Emits the search tree over `intervals` (sorted, the first starting at 0) in preorder:
/// each node is `jge start(mid)`, its false branch (the lower half) right after it.
/// Returns where the tree's root is: a node, or directly a leaf's block.
fn tree(intervals: &[(u32, Leaf)], ops: &mut Vec<Op>, block: &dyn Fn(Leaf) -> Block) -> Dest {
    if let [(_, leaf)] = intervals {
        return Dest::Block(block(*leaf));
    }
    let mid = intervals.len() / 2;
    let at = ops.len();
    let k = intervals[mid].0;
    ops.push(Op::Fixed(stmt(0, 0))); // patched below
    let f = tree(&intervals[..mid], ops, block);
    let t = tree(&intervals[mid..], ops, block);
    ops[at] = Op::Cond {
        code: BPF_JMP_JGE_K,
        k,
        t,
        f,
    };
    Dest::Op(at)
}

/// An instruction whose targets are instruction indices in the same list.
#[derive(Debug, Clone)]
enum AsmOp {
    /// Copied as is: not a jump, or a jump inside a self-contained block.
    Fixed(sock_filter),
    Ja(usize),
    Cond {
        code: u16,
        k: u32,
        t: usize,
        f: usize,
    },
}

/// Lays out `ops`, giving every conditional branch that cannot reach its target in 8 bits
/// a `ja` trampoline right after the jump: `jxx k, 0, jf; ja T` (or `jxx k, jt, 0; ja F`,
/// or `jxx k, 0, 1; ja T; ja F`). Trampolines lengthen the jumps around them, so it repeats
/// until nothing changes; each branch switches at most once, so that terminates.
fn assemble(ops: &[AsmOp]) -> Result<Vec<sock_filter>, String> {
    for (i, op) in ops.iter().enumerate() {
        let forward = match *op {
            AsmOp::Fixed(_) => true,
            AsmOp::Ja(t) => t > i && t < ops.len(),
            AsmOp::Cond { t, f, .. } => t > i && f > i && t < ops.len() && f < ops.len(),
        };
        if !forward {
            return Err(format!("instruction {i} does not jump forward inside"));
        }
    }
    let mut far = vec![(false, false); ops.len()];
    let pos = loop {
        let mut pos = Vec::with_capacity(ops.len() + 1);
        let mut at = 0usize;
        for &(t, f) in &far {
            pos.push(at);
            at += 1 + usize::from(t) + usize::from(f);
        }
        pos.push(at);
        let mut changed = false;
        for (i, op) in ops.iter().enumerate() {
            if let AsmOp::Cond { t, f, .. } = *op {
                let reach = |target: usize| pos[target] - pos[i] - 1 <= usize::from(u8::MAX);
                if !far[i].0 && !reach(t) {
                    far[i].0 = true;
                    changed = true;
                }
                if !far[i].1 && !reach(f) {
                    far[i].1 = true;
                    changed = true;
                }
            }
        }
        if !changed {
            break pos;
        }
    };
    // A copied jump keeps its offsets, so no trampoline may sit between it and its target.
    for (i, op) in ops.iter().enumerate() {
        let AsmOp::Fixed(insn) = op else { continue };
        if insn.code & BPF_CLASS_MASK != BPF_CLASS_JMP {
            continue;
        }
        let reach = if insn.code == BPF_JMP_JA {
            insn.k as usize
        } else {
            usize::from(insn.jt.max(insn.jf))
        };
        let end = (i + 1 + reach).min(ops.len());
        if pos[end] - pos[i] != end - i {
            return Err(format!(
                "a trampoline landed inside copied instruction {i}'s jump"
            ));
        }
    }
    let offset8 = |from: usize, to: usize| {
        u8::try_from(to - from - 1).map_err(|_| format!("jump {from} → {to} out of reach"))
    };
    let offset32 = |from: usize, to: usize| {
        u32::try_from(to - from - 1).map_err(|_| format!("jump {from} → {to} out of reach"))
    };
    let mut out = Vec::with_capacity(pos[ops.len()]);
    for (i, op) in ops.iter().enumerate() {
        let here = pos[i];
        match *op {
            AsmOp::Fixed(ref insn) => out.push(insn.clone()),
            AsmOp::Ja(t) => out.push(stmt(BPF_JMP_JA, offset32(here, pos[t])?)),
            AsmOp::Cond { code, k, t, f } => match far[i] {
                (false, false) => out.push(jump(
                    code,
                    k,
                    offset8(here, pos[t])?,
                    offset8(here, pos[f])?,
                )),
                (true, false) => {
                    out.push(jump(code, k, 0, offset8(here, pos[f])?));
                    out.push(stmt(BPF_JMP_JA, offset32(here + 1, pos[t])?));
                }
                (false, true) => {
                    out.push(jump(code, k, offset8(here, pos[t])?, 0));
                    out.push(stmt(BPF_JMP_JA, offset32(here + 1, pos[f])?));
                }
                (true, true) => {
                    out.push(jump(code, k, 0, 1));
                    out.push(stmt(BPF_JMP_JA, offset32(here + 1, pos[t])?));
                    out.push(stmt(BPF_JMP_JA, offset32(here + 2, pos[f])?));
                }
            },
        }
    }
    debug_assert_eq!(out.len(), pos[ops.len()]);
    Ok(out)
}

/// The kernel's structural check (`bpf_check_classic`), as far as these programs go: every
/// jump lands inside the program and the last instruction returns, so control can never
/// run off the end. Applied to each copied subprogram and to the finished program.
fn check_program(program: &[sock_filter]) -> Result<(), String> {
    let Some(last) = program.last() else {
        return Err("empty program".to_owned());
    };
    if last.code & BPF_CLASS_MASK != BPF_CLASS_RET {
        return Err("the last instruction does not return".to_owned());
    }
    for (i, insn) in program.iter().enumerate() {
        if insn.code & BPF_CLASS_MASK != BPF_CLASS_JMP {
            continue;
        }
        let targets = if insn.code == BPF_JMP_JA {
            vec![i as u64 + 1 + u64::from(insn.k)]
        } else {
            vec![
                i as u64 + 1 + u64::from(insn.jt),
                i as u64 + 1 + u64::from(insn.jf),
            ]
        };
        if targets.iter().any(|&t| t >= program.len() as u64) {
            return Err(format!("instruction {i} jumps past the end"));
        }
    }
    Ok(())
}

/// seccompiler's prologue: `ld arch; jeq AUDIT_ARCH_*, 1, 0; ret KILL_PROCESS`.
fn is_arch_check(p: &[sock_filter]) -> bool {
    matches!(p, [load, cmp, kill]
        if load.code == BPF_LD_W_ABS && load.k == DATA_ARCH
            && cmp.code == BPF_JMP_JEQ_K && cmp.jt == 1 && cmp.jf == 0
            && kill.code == BPF_RET_K && kill.k == SECCOMP_RET_KILL_PROCESS)
}

fn is_load_nr(insn: &sock_filter) -> bool {
    insn.code == BPF_LD_W_ABS && insn.k == DATA_NR
}

fn stmt(code: u16, k: u32) -> sock_filter {
    jump(code, k, 0, 0)
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The policy text seccompiler compiles for `arch`: the common file, plus on x86_64 the
/// overlay's rules appended to the same-named filters.
pub fn policy_json(arch: TargetArch) -> Result<Vec<u8>, SeccompError> {
    if arch != TargetArch::x86_64 {
        return Ok(COMMON_POLICY.as_bytes().to_vec());
    }
    let mut common = parse(COMMON_FILE, COMMON_POLICY)?;
    let overlay = parse(X86_64_FILE, X86_64_POLICY)?;
    merge(&mut common, overlay, X86_64_FILE)?;
    serde_json::to_vec(&common).map_err(|source| SeccompError::Json {
        file: X86_64_FILE,
        source,
    })
}

fn parse(file: &'static str, text: &str) -> Result<Map<String, Value>, SeccompError> {
    serde_json::from_str(text).map_err(|source| SeccompError::Json { file, source })
}

/// Appends each overlay filter's rules to the base filter of the same name. Rules only:
/// the actions must agree, so an overlay can never turn a deny into an allow.
fn merge(
    base: &mut Map<String, Value>,
    overlay: Map<String, Value>,
    file: &'static str,
) -> Result<(), SeccompError> {
    for (name, extra) in overlay {
        let fail = |reason| SeccompError::Overlay {
            file,
            filter: name.clone(),
            reason,
        };
        let target = base
            .get_mut(&name)
            .ok_or_else(|| fail("the common policy has no filter of that name"))?;
        for key in ["mismatch_action", "match_action"] {
            if target.get(key) != extra.get(key) {
                return Err(fail("its actions differ from the common policy's"));
            }
        }
        let rules = extra
            .get("filter")
            .and_then(Value::as_array)
            .ok_or_else(|| fail("it has no \"filter\" list"))?;
        target
            .get_mut("filter")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| fail("the common filter has no \"filter\" list"))?
            .extend(rules.iter().cloned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The optimiser against seccompiler, through the test interpreter: on the real policy
    //! for both architectures, and on synthetic policies built to stress the tree and the
    //! trampolines. (Tests only: `build.rs` never compiles this part, so it may use
    //! `crate::`.)

    use super::*;
    use crate::sandbox::seccomp::interpreter::{assert_equivalent, run, Call, ARCHES};

    /// The property everything rests on, for the policy the sandbox installs.
    #[test]
    fn optimized_policy_decides_like_the_reference() {
        for arch in ARCHES {
            let text = policy_json(arch).expect("policy text");
            let reference = compile_reference(arch, &text).expect("reference");
            let optimized = compile_optimized(arch, &text).expect("optimised");
            let compared = assert_equivalent(
                arch,
                &text,
                &[MAIN_FILTER, ENOSYS_FILTER],
                &reference,
                &optimized,
            );
            println!(
                "{arch:?}: main {} → {} instructions, enosys {} → {}; {compared} calls",
                reference[MAIN_FILTER].len(),
                optimized[MAIN_FILTER].len(),
                reference[ENOSYS_FILTER].len(),
                optimized[ENOSYS_FILTER].len(),
            );
            assert!(optimized[MAIN_FILTER].len() * 4 < reference[MAIN_FILTER].len());
            assert!(optimized[ENOSYS_FILTER].len() <= reference[ENOSYS_FILTER].len());
        }
    }

    #[test]
    fn syscall_numbers_come_from_seccompiler() {
        assert_eq!(syscall_nr(TargetArch::x86_64, "read"), Some(0));
        assert_eq!(syscall_nr(TargetArch::x86_64, "clone3"), Some(435));
        assert_eq!(syscall_nr(TargetArch::x86_64, "process_madvise"), Some(440));
        assert_eq!(syscall_nr(TargetArch::aarch64, "read"), Some(63));
        assert_eq!(syscall_nr(TargetArch::aarch64, "clone"), Some(220));
        assert_eq!(syscall_nr(TargetArch::aarch64, "open"), None);
        assert_eq!(syscall_nr(TargetArch::x86_64, "no_such_call"), None);
    }

    /// Syscall names spread over the whole table (the policy's own, so they exist).
    fn policy_names(arch: TargetArch) -> Vec<(u32, String)> {
        let text = policy_json(arch).expect("policy text");
        let filters: Map<String, Value> = serde_json::from_slice(&text).expect("JSON");
        let mut names: BTreeMap<u32, String> = BTreeMap::new();
        for filter in filters.values() {
            for rule in filter["filter"].as_array().expect("list") {
                let name = rule["syscall"].as_str().expect("name");
                names.insert(syscall_nr(arch, name).expect("known"), name.to_owned());
            }
        }
        names.into_iter().collect()
    }

    fn check_synthetic(arch: TargetArch, policy: &Value, order: &[&str]) -> (usize, usize) {
        let text = serde_json::to_vec(policy).expect("JSON");
        let reference = compile_reference(arch, &text).expect("reference");
        let optimized = compile_optimized(arch, &text).expect("optimised");
        assert_equivalent(arch, &text, order, &reference, &optimized);
        (reference["f"].len(), optimized["f"].len())
    }

    /// Every listed syscall: half allowed outright, half only for certain arguments (each
    /// its own subprogram, so no two neighbours merge): hundreds of intervals, a tree
    /// longer than a conditional jump reaches, and the assembler has to route branches
    /// through trampolines.
    #[test]
    fn long_trees_and_far_subprograms_stay_equivalent() {
        for arch in ARCHES {
            let rules: Vec<Value> = policy_names(arch)
                .into_iter()
                .enumerate()
                .map(|(i, (_, name))| {
                    if i % 2 == 0 {
                        json!({ "syscall": name })
                    } else {
                        let cond = json!({
                            "index": i % 6, "type": "qword", "op": "ne", "val": (i as u64) << 31,
                        });
                        json!({ "syscall": name, "args": [cond] })
                    }
                })
                .collect();
            let policy = json!({ "f": {
                "mismatch_action": { "errno": 1 },
                "match_action": "allow",
                "filter": rules,
            }});
            let (before, after) = check_synthetic(arch, &policy, &["f"]);
            let text = serde_json::to_vec(&policy).expect("JSON");
            let program = &compile_optimized(arch, &text).expect("optimised")["f"];
            // The tree alone is longer than 255 instructions: far branches exist.
            let tree_len = program
                .iter()
                .take_while(|i| i.code != BPF_RET_K || i.k == SECCOMP_RET_KILL_PROCESS)
                .count();
            assert!(tree_len > 260, "{arch:?}: tree of {tree_len}");
            assert!(
                program.iter().take(tree_len).any(|i| i.code == BPF_JMP_JA),
                "{arch:?}: no trampoline"
            );
            println!("{arch:?}: synthetic {before} → {after} instructions");
        }
    }

    /// A deny-list (mismatch allow), a filter without rules, rules mixing arguments and
    /// none for one syscall (seccompiler keeps only the argument rules), and aliases.
    #[test]
    fn other_filter_shapes_stay_equivalent() {
        let arch = TargetArch::x86_64;
        let policy = json!({
            "f": {
                "mismatch_action": "allow",
                "match_action": { "errno": 13 },
                "filter": [
                    { "syscall": "ptrace" },
                    { "syscall": "mount" },
                    { "syscall": "umount2" },
                    { "syscall": "ioctl" },
                    { "syscall": "ioctl", "args": [
                        { "index": 1, "type": "dword", "op": "eq", "val": 21522 },
                    ] },
                    { "syscall": "kill", "args": [
                        { "index": 1, "type": "qword", "op": "ge", "val": 64 },
                    ] },
                    { "syscall": "kill", "args": [
                        { "index": 0, "type": "qword", "op": "le", "val": 1 },
                        { "index": 1, "type": "dword", "op": "lt", "val": 9 },
                    ] },
                    { "syscall": "tgkill", "args": [
                        { "index": 2, "type": "dword", "op": "gt", "val": 31 },
                    ] },
                    { "syscall": "read", "args": null },
                ],
            },
            "g": {
                "mismatch_action": "kill_process",
                "match_action": "allow",
                "filter": [],
            },
        });
        check_synthetic(arch, &policy, &["f", "g"]);
        // Every name the policy uses, all allowed: few, long intervals.
        let names = policy_names(arch);
        let all = json!({ "f": {
            "mismatch_action": "trap",
            "match_action": "allow",
            "filter": names.iter().map(|(_, n)| json!({ "syscall": n })).collect::<Vec<_>>(),
        }});
        check_synthetic(arch, &all, &["f"]);
    }

    #[test]
    fn what_seccompiler_rejects_is_rejected() {
        let arch = TargetArch::aarch64;
        for bad in [
            // Identical actions.
            json!({ "mismatch_action": "allow", "match_action": "allow", "filter": [] }),
            // Unknown on aarch64.
            json!({ "mismatch_action": "allow", "match_action": "trap",
                    "filter": [{ "syscall": "open" }] }),
            // A misspelt key.
            json!({ "mismatch_action": "allow", "match_action": "trap",
                    "filter": [{ "syscall": "read", "arg": [] }] }),
            // An argument rule without conditions.
            json!({ "mismatch_action": "allow", "match_action": "trap",
                    "filter": [{ "syscall": "read", "args": [] }] }),
        ] {
            let text = serde_json::to_vec(&json!({ "f": bad })).expect("JSON");
            let err = compile_optimized(arch, &text).expect_err("rejected");
            assert!(matches!(err, SeccompError::Compile { .. }), "{bad}: {err}");
        }
    }

    /// Both branches of one jump out of 8-bit reach: `jge k, 0, 1; ja T; ja F`.
    #[test]
    fn assembler_routes_far_branches_through_trampolines() {
        let ret = |k| AsmOp::Fixed(stmt(BPF_RET_K, k));
        let cond = |code, k, t, f| AsmOp::Cond { code, k, t, f };
        let mut ops = vec![
            AsmOp::Fixed(stmt(BPF_LD_W_ABS, DATA_NR)),
            cond(BPF_JMP_JGE_K, 10, 2, 3),
            cond(BPF_JMP_JEQ_K, 20, 402, 302),
            cond(BPF_JMP_JGE_K, 5, 4, 5),
            cond(BPF_JMP_JEQ_K, 7, 301, 6),
            cond(BPF_JMP_JEQ_K, 3, 6, 300),
        ];
        // Instruction i returns i.
        ops.extend((6..403).map(|k| ret(k as u32)));
        let program = assemble(&ops).expect("assembles");
        check_program(&program).expect("well-formed");
        let parts = |i: usize| (program[i].code, program[i].jt, program[i].jf);
        assert_eq!(program.len(), ops.len() + 4);
        assert_eq!(parts(1), (BPF_JMP_JGE_K, 0, 3));
        // Both branches far: `jeq 20, 0, 1; ja T; ja F`.
        assert_eq!(parts(2), (BPF_JMP_JEQ_K, 0, 1));
        assert_eq!(parts(3).0, BPF_JMP_JA);
        assert_eq!(parts(4).0, BPF_JMP_JA);
        assert_eq!(parts(5), (BPF_JMP_JGE_K, 0, 2));
        // Only the true branch far: `jeq 7, 0, jf; ja T`.
        assert_eq!(parts(6), (BPF_JMP_JEQ_K, 0, 3));
        assert_eq!(parts(7).0, BPF_JMP_JA);
        // Only the false branch far: the true branch skips the trampoline.
        assert_eq!(parts(8), (BPF_JMP_JEQ_K, 1, 0));
        assert_eq!(parts(9).0, BPF_JMP_JA);
        let at = |nr| {
            let c = Call {
                arch: 0,
                nr,
                args: [0; 6],
            };
            run(&program, &c)
        };
        for (nr, want) in [(20, 402), (11, 302), (7, 301), (8, 6), (3, 6), (4, 300)] {
            assert_eq!(at(nr), want, "nr {nr}");
        }
        assert!(assemble(&[AsmOp::Ja(0)]).is_err(), "backward jump accepted");
        // A copied jump across an instruction that needs a trampoline would go astray.
        let mut across = vec![
            AsmOp::Fixed(stmt(BPF_JMP_JA, 2)),
            cond(BPF_JMP_JEQ_K, 1, 2, 300),
        ];
        across.extend((2..301).map(|k| ret(k as u32)));
        assert!(
            assemble(&across).is_err(),
            "trampoline inside a copied jump"
        );
    }

    #[test]
    fn overlay_cannot_change_actions() {
        let mut base = parse(COMMON_FILE, COMMON_POLICY).expect("common");
        let overlay: Map<String, Value> = serde_json::from_value(json!({ "main": {
            "mismatch_action": "allow",
            "match_action": "allow",
            "filter": [],
        }}))
        .expect("map");
        let err = merge(&mut base, overlay, X86_64_FILE).expect_err("merged");
        assert!(matches!(err, SeccompError::Overlay { .. }), "{err}");
    }
}
