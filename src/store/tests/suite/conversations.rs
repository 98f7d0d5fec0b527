//! Affinity records, stored turns and the history walk.

use super::*;
use crate::store::Affinity;

pub(crate) async fn affinity_put_get_expire(f: &Fixture) {
    let s = &f.store;
    let short = f.short_ttl();
    s.put_affinity("resp_long", &Affinity::new("intl", None), HOUR)
        .await
        .unwrap();
    s.put_affinity("resp_short", &Affinity::new("cn", None), short)
        .await
        .unwrap();
    assert_eq!(region_of(s, "resp_long").await.as_deref(), Some("intl"));
    assert_eq!(region_of(s, "resp_short").await.as_deref(), Some("cn"));
    assert_eq!(s.get_affinity("resp_unknown").await.unwrap(), None);

    s.put_affinity("resp_long", &Affinity::new("us", None), HOUR)
        .await
        .unwrap();
    assert_eq!(region_of(s, "resp_long").await.as_deref(), Some("us"));

    f.expire(short).await;
    assert_eq!(s.get_affinity("resp_short").await.unwrap(), None);
    assert_eq!(region_of(s, "resp_long").await.as_deref(), Some("us"));

    // A zero TTL is expired at once.
    s.put_affinity("resp_long", &Affinity::new("intl", None), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(s.get_affinity("resp_long").await.unwrap(), None);
}

pub(crate) async fn affinity_and_turns_keep_their_owner(f: &Fixture) {
    let s = &f.store;
    let owned = Affinity::new("intl", Some("key_a".to_owned()));
    s.put_affinity("resp_owned", &owned, HOUR).await.unwrap();
    assert_eq!(s.get_affinity("resp_owned").await.unwrap(), Some(owned));
    let mut t = turn("resp_owned", None);
    t.owner = Some("key_a".to_owned());
    s.put_turn(&t, HOUR).await.unwrap();
    assert_eq!(s.get_turn("resp_owned").await.unwrap(), Some(t));
    let anonymous = turn("resp_anon", None);
    s.put_turn(&anonymous, HOUR).await.unwrap();
    assert_eq!(
        s.get_turn("resp_anon").await.unwrap().and_then(|t| t.owner),
        None
    );
}

pub(crate) async fn affinity_delete(f: &Fixture) {
    let s = &f.store;
    s.put_affinity("resp_1", &Affinity::new("intl", None), HOUR)
        .await
        .unwrap();
    assert!(s.delete_affinity("resp_1").await.unwrap());
    assert_eq!(s.get_affinity("resp_1").await.unwrap(), None);
    assert!(!s.delete_affinity("resp_1").await.unwrap());
    assert!(!s.delete_affinity("resp_never").await.unwrap());
}

pub(crate) async fn turns_put_get_expire(f: &Fixture) {
    let s = &f.store;
    let short = f.short_ttl();
    let long = turn("resp_a", None);
    let brief = turn("resp_b", Some("resp_a"));
    s.put_turn(&long, HOUR).await.unwrap();
    s.put_turn(&brief, short).await.unwrap();
    assert_eq!(s.get_turn("resp_a").await.unwrap(), Some(long.clone()));
    assert_eq!(s.get_turn("resp_b").await.unwrap(), Some(brief));
    assert_eq!(s.get_turn("resp_none").await.unwrap(), None);

    let mut replaced = long.clone();
    replaced.region = "cn".to_owned();
    s.put_turn(&replaced, HOUR).await.unwrap();
    assert_eq!(s.get_turn("resp_a").await.unwrap(), Some(replaced.clone()));

    f.expire(short).await;
    assert_eq!(s.get_turn("resp_b").await.unwrap(), None);
    assert_eq!(s.get_turn("resp_a").await.unwrap(), Some(replaced));
}

pub(crate) async fn history_follows_chain(f: &Fixture) {
    let s = &f.store;
    for t in [
        turn("r1", None),
        turn("r2", Some("r1")),
        turn("r3", Some("r2")),
    ] {
        s.put_turn(&t, HOUR).await.unwrap();
    }
    let h = s.history("r3", 10).await.unwrap();
    assert_eq!(ids(&h.turns), ["r1", "r2", "r3"]);
    assert!(h.complete);
    assert_eq!(h.turns[2], turn("r3", Some("r2")));

    let h = s.history("r1", 10).await.unwrap();
    assert_eq!(ids(&h.turns), ["r1"]);
    assert!(h.complete);

    let h = s.history("r_unknown", 10).await.unwrap();
    assert!(h.turns.is_empty());
    assert!(!h.complete);
}

pub(crate) async fn history_truncates_at_max_turns(f: &Fixture) {
    let s = &f.store;
    let mut previous: Option<String> = None;
    for i in 1..=5 {
        let id = format!("r{i}");
        s.put_turn(&turn(&id, previous.as_deref()), HOUR)
            .await
            .unwrap();
        previous = Some(id);
    }
    let h = s.history("r5", 2).await.unwrap();
    assert_eq!(ids(&h.turns), ["r4", "r5"]);
    assert!(h.complete, "stopping at max_turns is not a missing link");
    assert!(h.truncated, "older turns were left");
    let h = s.history("r5", 5).await.unwrap();
    assert!(!h.truncated, "exactly max_turns turns, none left");

    let h = s.history("r5", 0).await.unwrap();
    assert!(h.turns.is_empty());
}

pub(crate) async fn history_missing_link_is_incomplete(f: &Fixture) {
    let s = &f.store;
    s.put_turn(&turn("r2", Some("r1_gone")), HOUR)
        .await
        .unwrap();
    s.put_turn(&turn("r3", Some("r2")), HOUR).await.unwrap();
    let h = s.history("r3", 10).await.unwrap();
    assert_eq!(ids(&h.turns), ["r2", "r3"]);
    assert!(!h.complete);
}

pub(crate) async fn history_expired_link_is_incomplete(f: &Fixture) {
    let s = &f.store;
    let short = f.short_ttl();
    s.put_turn(&turn("r1", None), short).await.unwrap();
    s.put_turn(&turn("r2", Some("r1")), HOUR).await.unwrap();
    assert!(s.history("r2", 10).await.unwrap().complete);
    f.expire(short).await;
    let h = s.history("r2", 10).await.unwrap();
    assert_eq!(ids(&h.turns), ["r2"]);
    assert!(!h.complete);
}

pub(crate) async fn history_cycle_is_incomplete(f: &Fixture) {
    let s = &f.store;
    s.put_turn(&turn("ra", Some("rb")), HOUR).await.unwrap();
    s.put_turn(&turn("rb", Some("ra")), HOUR).await.unwrap();
    let h = s.history("ra", 100).await.unwrap();
    assert_eq!(ids(&h.turns), ["rb", "ra"]);
    assert!(!h.complete);
}
