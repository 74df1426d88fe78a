//! A function's code and the environment it starts in.
//!
//! Owns: the content-addressed code store that checks and unpacks deployment zips once per
//! hash ([`code`]); the supported runtimes and what each implies for the sandbox ([`runtime`]);
//! the bootstrap's environment variables, the checks on user variables, and the log group and
//! stream names ([`env`]).
//!
//! Does not: persist function definitions, versions or aliases (the registry does), decide
//! which tree to delete (the registry passes the hashes in use), mount code into a sandbox or
//! start a process (the sandbox does), or speak HTTP (control maps these errors to AWS ones:
//! [`code::CodeError`] and [`env::EnvError`] to `InvalidParameterValueException`,
//! [`runtime::RuntimeError`] likewise).
//!
//! Limits: Lambda's quotas — zip 50 MB, unpacked 250 MB, user environment 4 KB — and the six
//! runtimes of [`runtime::Runtime::ALL`]. Unpacking is blocking file I/O: run it off the event
//! loop.

pub mod code;
pub mod env;
pub mod managed;
pub mod runtime;
