//! Hearth: a self-hosted, AWS-Lambda-compatible serverless runtime for Linux.
//!
//! One invocation flows control → dispatch → pool → sandbox → runtime_api and back
//! (see `../shared/ARCHITECTURE.md`). Here so far: the [`sandbox`], which creates one
//! isolated, limited process tree and removes every trace of it afterwards; the
//! [`runtime_api`] server the code inside talks to; function [`instance`]s (a sandbox
//! running a bootstrap, its Runtime API and its log stream) and the local runner behind
//! `hearth invoke --local`; and the daemon's parts not yet wired into `hearth serve`: the
//! [`control`] API's routes, errors and SigV4, the SQLite [`registry`], the [`config`].
//! Dispatch and the warm pool arrive with their own issues.
//!
//! Unsafe code and raw system calls live only in [`sys`].

// In the order of one invocation (control -> dispatch -> pool -> sandbox -> runtime_api);
// dispatch and the pool arrive with the daemon.
pub mod control;
pub mod instance;
pub mod registry;
pub mod runtime_api;
pub mod sandbox;

// Shared pieces and front ends.
pub mod bench;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod exit;
pub mod function;
pub mod http;
pub mod invoke_cli;
pub mod lambda_cli;
#[allow(unsafe_code)]
pub mod sys;
