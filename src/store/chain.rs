//! Walking a conversation backwards, shared by all backends so they agree on truncation,
//! missing links and cycles (a cycle would otherwise loop until `max_turns`).

use std::collections::HashSet;

use super::{History, StoreError, Turn};

/// The walk as a small state machine, so a synchronous backend can drive it with a closure
/// and an async one with `.await` between steps.
pub(crate) struct ChainWalk {
    turns: Vec<Turn>,
    seen: HashSet<String>,
    next: Option<String>,
    complete: bool,
    truncated: bool,
    max_turns: usize,
}

impl ChainWalk {
    pub(crate) fn new(start: &str, max_turns: usize) -> ChainWalk {
        ChainWalk {
            turns: Vec::new(),
            seen: HashSet::new(),
            next: Some(start.to_owned()),
            complete: true,
            truncated: false,
            max_turns,
        }
    }

    /// The response id to fetch next, or `None` when the walk is over.
    pub(crate) fn next_id(&mut self) -> Option<String> {
        let id = self.next.take()?;
        if self.turns.len() >= self.max_turns {
            self.truncated = true;
            return None;
        }
        if !self.seen.insert(id.clone()) {
            self.complete = false;
            return None;
        }
        Some(id)
    }

    /// What fetching the id from [`ChainWalk::next_id`] found.
    pub(crate) fn found(&mut self, turn: Option<Turn>) {
        match turn {
            Some(turn) => {
                self.next.clone_from(&turn.previous_response_id);
                self.turns.push(turn);
            }
            None => self.complete = false,
        }
    }

    /// The chain found so far, oldest first.
    pub(crate) fn finish(mut self) -> History {
        self.turns.reverse();
        History {
            turns: self.turns,
            complete: self.complete,
            truncated: self.truncated,
        }
    }
}

/// Walks a chain backwards from `start` with a synchronous `fetch`.
pub(crate) fn walk_chain(
    start: &str,
    max_turns: usize,
    mut fetch: impl FnMut(&str) -> Result<Option<Turn>, StoreError>,
) -> Result<History, StoreError> {
    let mut walk = ChainWalk::new(start, max_turns);
    while let Some(id) = walk.next_id() {
        let turn = fetch(&id)?;
        walk.found(turn);
    }
    Ok(walk.finish())
}
