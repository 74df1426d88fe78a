//! Function instances: a sandbox running a function's bootstrap, serving it the Runtime
//! API, capturing its log stream, and turning what happens into Lambda outcomes.

pub mod logs;
