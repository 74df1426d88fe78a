//! Hearth: a self-hosted, AWS-Lambda-compatible serverless runtime for Linux.
//!
//! One invocation flows control → dispatch → pool → sandbox → runtime_api and back
//! (see `../shared/ARCHITECTURE.md`). This crate so far holds the bottom of that flow:
//! the [`sandbox`], which creates one isolated, limited process tree and removes every
//! trace of it afterwards, and the `hearth run` front end in [`cli`]. The control API,
//! dispatch, pool and Runtime API arrive with their own issues.
//!
//! Unsafe code and raw system calls live only in [`sys`].

pub mod function;
pub mod http;
pub mod instance;
pub mod runtime_api;
pub mod sandbox;

pub mod cli;
pub mod config;
pub mod control;
pub mod exit;
pub mod invoke_cli;
#[allow(unsafe_code)]
pub mod sys;
