//! The one place a request's `model` is resolved for both model endpoints: alias → upstream
//! name, noted on the request (log, metrics, ledger), and checked against the caller's key.

use super::AppState;
use super::auth::Caller;
use crate::error::ApiError;
use crate::request_context::RequestMeta;

/// The upstream model name for `requested` (`None` when the request names none), after the
/// caller's key was checked: a key limited to some models refuses a model-less request too.
pub(super) fn resolve(
    state: &AppState,
    caller: &Caller,
    meta: &RequestMeta,
    requested: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let Some(model) = requested else {
        caller.check_model(None)?;
        return Ok(None);
    };
    let upstream = state.models.resolve(model).to_owned();
    let known = state.models.is_known(&upstream);
    meta.update(|i| {
        i.model = Some(upstream.clone());
        i.model_known = known;
    });
    caller.check_model(Some((model, &upstream)))?;
    Ok(Some(upstream))
}
