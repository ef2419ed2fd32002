//! The instance a call picked, kept as its place in the service's instance
//! list (shared) rather than a copy: a call starts without copying the
//! instance's strings, and its answer and cancel handle name it from there.

use crate::registry::{Instance, Instances};

/// An instance of a service's list, as the list was when a call picked it.
#[derive(Debug, Clone)]
pub struct Picked {
    list: Instances,
    index: usize,
}

impl Picked {
    /// The instance at `index` of `list`; `None` past its end.
    pub(super) fn new(list: &Instances, index: usize) -> Option<Picked> {
        (index < list.len()).then(|| Picked {
            list: list.clone(),
            index,
        })
    }

    pub fn instance(&self) -> &Instance {
        // `new` checked the index, and the list is shared, never changed.
        &self.list[self.index]
    }
}
