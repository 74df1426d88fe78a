//! (1) The client-facing, AWS-compatible Lambda API (control-api.md): the route table
//! ([`routes`]), the error table ([`errors`]), and SigV4 verification for the TCP listener.
//! The daemon (`hearth serve`) puts these on its event loop.

pub mod account;
pub mod aliases;
pub mod concurrency;
pub mod errors;
pub mod functions;
pub mod handlers;
pub mod routes;
pub mod sigv4;
pub mod versions;
