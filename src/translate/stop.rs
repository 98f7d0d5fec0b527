//! Stop-sequence matching over streamed text.
//!
//! Model Studio's Responses API has no `stop`, so the gateway watches the text itself.
//! A stop string may be split over several deltas, so the tail of the text that could
//! still grow into a stop string is held back until the next delta decides it.

/// What to do after one delta.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StopStep {
    /// Text safe to send now (on a match: the text before the stop string).
    pub emit: String,
    /// A stop string was found; nothing more is to be sent.
    pub matched: bool,
}

/// Incremental matcher for a set of stop strings.
#[derive(Debug, Clone, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
    matched: bool,
}

impl StopMatcher {
    /// Empty strings are ignored (they would match everywhere).
    pub fn new(stops: Vec<String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            held: String::new(),
            matched: false,
        }
    }

    pub fn is_matched(&self) -> bool {
        self.matched
    }

    pub fn push(&mut self, delta: &str) -> StopStep {
        if self.matched {
            return StopStep {
                emit: String::new(),
                matched: true,
            };
        }
        if self.stops.is_empty() {
            return StopStep {
                emit: delta.to_owned(),
                matched: false,
            };
        }
        self.held.push_str(delta);
        if let Some(at) = earliest_match(&self.held, &self.stops) {
            self.matched = true;
            let mut emit = std::mem::take(&mut self.held);
            emit.truncate(at);
            return StopStep {
                emit,
                matched: true,
            };
        }
        let keep_from = self.partial_start();
        let rest = self.held.split_off(keep_from);
        let emit = std::mem::replace(&mut self.held, rest);
        StopStep {
            emit,
            matched: false,
        }
    }

    /// The held-back text, for the end of the stream (it turned out not to be a stop).
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Start of the longest suffix of `held` that is a proper prefix of some stop string.
    fn partial_start(&self) -> usize {
        let longest = self.stops.iter().map(String::len).max().unwrap_or(0);
        let from = self.held.len().saturating_sub(longest);
        (from..self.held.len())
            .filter(|&i| self.held.is_char_boundary(i))
            .find(|&i| {
                let tail = &self.held[i..];
                self.stops
                    .iter()
                    .any(|stop| stop.len() > tail.len() && stop.starts_with(tail))
            })
            .unwrap_or(self.held.len())
    }
}

/// Byte offset of the first occurrence of any stop string in `text`.
pub(crate) fn earliest_match(text: &str, stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|stop| text.find(stop.as_str()))
        .min()
}
