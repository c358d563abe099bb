//! Everything that speaks Juju: the hook context, the event, the hook tools.

pub mod cached_tools;
pub mod context;
pub mod event;
pub mod hook_tools;
pub mod status;

pub use cached_tools::CachedTools;
pub use context::{JujuContext, ProxySettings};
pub use event::{Event, RelationKind};
pub use hook_tools::{bag_of, CliHookTools, Databag, HookToolError, HookTools};
pub use status::{Status, StatusKind};
