//! The only place with `unsafe` code: small, documented wrappers around system calls that
//! neither `nix` nor `libc`'s safe surface offers in the form the sandbox needs.
//!
//! Every `unsafe` block carries a `// SAFETY:` comment. The functions here are
//! async-signal-safe and do not allocate, so the sandbox child may call them between
//! `clone` and `execve`.

pub mod fd;
pub mod loopdev;
pub mod mount;
pub mod process;
pub mod seccomp;
pub mod socket;
