//! swarm-core: the plan model, its parser and validator, the pure scheduler and model router, and
//! the public types (events, task states, reports) every other crate speaks.

pub mod backoff;
pub mod completion;
pub mod config;
pub mod diagnostic;
pub mod duration;
pub mod event;
pub mod failure;
pub mod plan;
pub mod report;
pub mod router;
pub mod scheduler;
pub mod schema;
pub mod secrets;
pub mod state;
pub mod state_doc;
pub mod team;
pub mod timeline;
pub mod untrusted;

pub use event::{Event, EventKind, Stream};
pub use plan::{Plan, Task, Workdir};
pub use report::{AttemptReport, RunReport, TaskReport};
pub use state::{Reason, RunState, TaskState};
