//! Reading one service's instance nodes, bounded: every child's stat first
//! (a few dozen bytes each), then the data of only the nodes that are new or
//! changed since the last pass and within `MAX_NODE_BYTES`. Each node version
//! (its `mzxid`; a re-created node has a new one) is parsed once; one that
//! cannot be used (bad JSON, missing keys, a bad endpoint, too large,
//! unreadable) is logged once and skipped, never failing the others. Knows
//! nothing of watches or sessions.

use std::collections::HashMap;

use futures::future::{OptionFuture, join_all};
use tracing::warn;
use zookeeper_client as zk;

use super::node::{self, MAX_NODE_BYTES, NodeError};
use crate::registry::Instance;

/// What the last pass learnt of each child of one service: its version and
/// its instance, `None` for a node skipped (and logged) at that version.
#[derive(Default)]
pub(crate) struct Known {
    nodes: HashMap<String, (i64, Option<Instance>)>,
}

impl Known {
    /// The instances among `children`, sorted by id. Fails only on an error
    /// that ends the whole pass (connection or session gone).
    pub async fn read(
        &mut self,
        client: &zk::Client,
        service: &str,
        path: &str,
        children: Vec<String>,
    ) -> Result<Vec<Instance>, zk::Error> {
        // Requests are all sent in call order before any answer is awaited:
        // one round trip for the stats, one for the changed nodes' data.
        let stats = children
            .iter()
            .map(|id| client.check_stat(&format!("{path}/{id}")));
        let stats = join_all(stats).await;
        let mut current = HashMap::with_capacity(children.len());
        let mut changed = Vec::new();
        for (id, stat) in children.into_iter().zip(stats) {
            // None: deleted since the listing; the child watch has fired already.
            let Some(stat) = stat? else { continue };
            // Cloned, not moved out: a pass cut short by its deadline leaves
            // what is known intact (no node read or logged twice).
            match self.nodes.get(&id) {
                Some(seen) if seen.0 == stat.mzxid => {
                    current.insert(id, seen.clone());
                }
                _ => changed.push((id, stat)),
            }
        }
        let reads = changed.iter().map(|(id, stat)| {
            let small = size_of(stat) <= MAX_NODE_BYTES;
            OptionFuture::from(small.then(|| client.get_data(&format!("{path}/{id}"))))
        });
        let answers = join_all(reads).await;
        for ((id, stat), answer) in changed.into_iter().zip(answers) {
            let (version, outcome) = match answer {
                None => (
                    stat.mzxid,
                    Err(NodeError::TooLarge {
                        size: size_of(&stat),
                    }
                    .to_string()),
                ),
                Some(Ok((data, now))) => (
                    now.mzxid,
                    node::decode(service, &id, &data).map_err(|e| e.to_string()),
                ),
                Some(Err(zk::Error::NoNode)) => continue,
                // An ACL that hides the node from us: nothing to learn there.
                Some(Err(zk::Error::NoAuth)) => (stat.mzxid, Err(zk::Error::NoAuth.to_string())),
                Some(Err(e)) => return Err(e),
            };
            let instance = outcome
                .inspect_err(|error| {
                    warn!(%service, %id, path = %format!("{path}/{id}"), %error,
                        "ignoring an unusable instance znode (logged once per version)")
                })
                .ok();
            current.insert(id, (version, instance));
        }
        self.nodes = current;
        let mut list: Vec<Instance> = self
            .nodes
            .values()
            .filter_map(|(_, instance)| instance.clone())
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(list)
    }
}

fn size_of(stat: &zk::Stat) -> usize {
    usize::try_from(stat.data_length).unwrap_or(usize::MAX)
}
