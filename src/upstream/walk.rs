//! What a walk over the regions has gathered so far, and the answer it ends with when no
//! region delivered: the last upstream answer, else the last error, else why every region
//! was skipped.

use super::{FailoverReason, UpstreamError, UpstreamResponse};
use std::time::Duration;

#[derive(Default)]
pub(super) struct Walk {
    last_response: Option<UpstreamResponse>,
    last_error: Option<UpstreamError>,
    /// Regions not tried, and why.
    skipped: Vec<String>,
    /// The soonest a rate-limited region takes requests again.
    rate_limited_for: Option<Duration>,
    /// Why the last region tried failed, when the region itself was the problem.
    region_failure: Option<String>,
}

impl Walk {
    pub(super) fn skip(&mut self, why: String) {
        self.skipped.push(why);
    }

    pub(super) fn skip_rate_limited(&mut self, region: &str, wait: Duration) {
        self.skipped
            .push(format!("{region}: every key is rate-limited"));
        self.rate_limited_for = Some(self.rate_limited_for.map_or(wait, |w| w.min(wait)));
    }

    /// A region was tried and left for the next one.
    pub(super) fn region_left(
        &mut self,
        reason: FailoverReason,
        error: Option<UpstreamError>,
        response: Option<UpstreamResponse>,
    ) {
        self.region_failure = reason
            .counts_against_region()
            .then(|| match (&error, &response) {
                (Some(err), _) => err.to_string(),
                (None, Some(r)) => format!("it answered HTTP {}", r.status.as_u16()),
                (None, None) => reason.to_string(),
            });
        if response.is_some() {
            self.last_response = response;
        }
        if error.is_some() {
            self.last_error = error;
        }
    }

    /// The answer when no region delivered; `affinity` is the conversation's home, if any.
    pub(super) fn finish(
        self,
        affinity: Option<String>,
        candidates: usize,
    ) -> Result<UpstreamResponse, UpstreamError> {
        // A conversation's home failing is not an answer to relay: say which region holds
        // it and why, so the caller can replay elsewhere or the client knows what happened.
        if let (Some(home), Some(why)) = (&affinity, self.region_failure) {
            return Err(UpstreamError::HomeRegionUnavailable {
                region: home.clone(),
                reason: why,
            });
        }
        if let Some(response) = self.last_response {
            return Ok(response);
        }
        if let Some(error) = self.last_error {
            return Err(error);
        }
        if let Some(retry_after) = self.rate_limited_for
            && self.skipped.len() == candidates
        {
            return Err(UpstreamError::RateLimited { retry_after });
        }
        let detail = if self.skipped.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.skipped.join("; "))
        };
        match affinity {
            Some(home) => Err(UpstreamError::HomeRegionUnavailable {
                region: home,
                reason: detail.trim_matches([' ', '(', ')']).to_owned(),
            }),
            None => Err(UpstreamError::NoRegion { detail }),
        }
    }
}
