//! The stop-string matcher.

use crate::translate::{StopMatcher, StopStep};

fn matcher(stops: &[&str]) -> StopMatcher {
    StopMatcher::new(stops.iter().map(|s| s.to_string()).collect())
}

fn step(emit: &str, matched: bool) -> StopStep {
    StopStep {
        emit: emit.into(),
        matched,
    }
}

#[test]
fn split_across_three_deltas() {
    let mut m = matcher(&["STOP"]);
    assert_eq!(m.push("Hello S"), step("Hello ", false));
    assert_eq!(m.push("T"), step("", false));
    assert_eq!(m.push("OP tail"), step("", true));
    assert!(m.is_matched());
    assert_eq!(m.push("more"), step("", true));
    assert_eq!(m.flush(), "");
}

#[test]
fn held_text_is_released_when_it_stops_looking_like_a_stop() {
    let mut m = matcher(&["STOP"]);
    assert_eq!(m.push("ST"), step("", false));
    assert_eq!(m.push("ART"), step("START", false));
    assert_eq!(m.push("x ST"), step("x ", false));
    assert_eq!(m.flush(), "ST");
}

#[test]
fn earliest_of_several_stops_wins() {
    let mut m = matcher(&["world", "lo w"]);
    assert_eq!(m.push("hello world"), step("hel", true));
}

#[test]
fn multibyte_text_is_never_split_inside_a_character() {
    let mut m = matcher(&["。終"]);
    assert_eq!(m.push("人工知能。"), step("人工知能", false));
    assert_eq!(m.push("終わり"), step("", true));
    let mut m = matcher(&["。終"]);
    assert_eq!(m.push("人工知能。です"), step("人工知能。です", false));
}

#[test]
fn no_stops_passes_everything_through() {
    let mut m = matcher(&["", ""]);
    assert_eq!(m.push("anything"), step("anything", false));
    assert_eq!(m.flush(), "");
}
