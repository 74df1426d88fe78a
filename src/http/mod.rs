//! HTTP/1.1 on the event loop, shared by the Runtime API (`runtime_api`) and the control
//! API (`control`): an incremental, bounded request parser ([`parser`]). Each user owns
//! its connections and answers; this module only frames requests.

pub mod parser;
