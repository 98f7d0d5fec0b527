use super::*;

fn spec(name: &str) -> NewKey {
    NewKey {
        name: name.into(),
        ..Default::default()
    }
}

#[test]
fn validation_names_the_problem() {
    let regions = vec!["singapore".to_owned()];
    assert!(validate(&spec("alice"), &regions).is_ok());
    for bad in ["", "a b", "key_x", &"x".repeat(65)] {
        assert!(validate(&spec(bad), &regions).is_err(), "{bad}");
    }
    let mut s = spec("a");
    s.regions = vec!["mars".into()];
    let err = validate(&s, &regions).unwrap_err().to_string();
    assert!(err.contains("mars") && err.contains("singapore"), "{err}");
    let mut s = spec("a");
    s.rpm = Some(0);
    assert!(validate(&s, &regions).is_err());
}

#[test]
fn page_limits_default_and_bound() {
    assert_eq!(page_limit(None).unwrap(), DEFAULT_PAGE);
    assert_eq!(page_limit(Some("1")).unwrap(), 1);
    assert_eq!(page_limit(Some("1000")).unwrap(), 1000);
    let huge = "9".repeat(100);
    for bad in ["0", "1001", "-1", "+5", "abc", "", "1.5", " 5", "5 ", &huge] {
        match page_limit(Some(bad)) {
            Err(AuthError::InvalidParam { param, message }) => {
                assert_eq!(param, "limit");
                assert!(message.contains("1 to 1000"), "{message}");
                assert!(message.len() < 200, "the value is clipped: {message}");
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

#[test]
fn usage_cursors_round_trip_and_refuse_anything_else() {
    let cursor = UsageCursor {
        day: "2026-01-02".into(),
        key_id: "key_x".into(),
        model: "qwen max|\"odd\" ✓&after=1".into(),
        region: "r0".into(),
    };
    let text = usage_cursor_text(&cursor);
    assert!(text.bytes().all(|b| b.is_ascii_hexdigit()), "{text}");
    assert_eq!(parse_usage_cursor(&text), Some(cursor));
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    for bad in [
        String::new(),
        "zz".into(),
        "abc".into(),
        "+1".into(),
        "ÿÿ".into(),
        hex("[1,2,3,4]"),
        hex(r#"["2026-01-02","k","m"]"#),
        hex(r#"["2026-02-30","k","m","r"]"#),
        hex(r#"["yesterday","k","m","r"]"#),
        "0".repeat(MAX_CURSOR_CHARS + 2),
    ] {
        assert_eq!(parse_usage_cursor(&bad), None, "{bad:?}");
    }
}

#[tokio::test]
async fn create_list_revoke_and_usage() {
    let store = Store::open("memory").await.unwrap();
    let mut s = spec("alice");
    s.expires = Some(Duration::from_secs(3600));
    s.rpm = Some(5);
    let created = create_key(&store, s, &[]).await.unwrap();
    assert!(created.record.expires_at.is_some());
    assert_eq!(created.record.hash, keys::hash_key(created.key.expose()));
    assert!(create_key(&store, spec("alice"), &[]).await.is_err());
    let list = list_keys(&store).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].status, KeyStatus::Active);
    let json = serde_json::to_string(&list).unwrap();
    assert!(!json.contains(&created.record.hash));
    assert!(!json.contains(created.key.expose()));
    assert!(keys_table(&list).contains("alice"));
    let revoked = revoke_key(&store, "alice").await.unwrap();
    assert_eq!(revoked.status, KeyStatus::Revoked);
    assert!(matches!(
        revoke_key(&store, "bob").await,
        Err(AuthError::KeyNotFound(_))
    ));

    store
        .record_usage(&crate::store::UsageDelta {
            day: "2026-01-23".into(),
            key_id: created.record.id.clone(),
            model: "m".into(),
            region: "r0".into(),
            requests: 2,
            input_tokens: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    store
        .record_usage(&crate::store::UsageDelta {
            day: "2026-01-24".into(),
            model: "m,x".into(),
            requests: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let lines = usage(&store, Some("2026-01-01")).await.unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].key_name.as_deref(), Some("alice"));
    let table = usage_table(&lines);
    assert!(table.contains("alice") && table.contains("(no key)") && table.contains("TOTAL"));
    let csv = usage_csv(&lines);
    assert!(csv.starts_with("day,key_id,key_name,model,region,requests"));
    assert!(csv.contains("\"m,x\""));
    assert_eq!(usage(&store, Some("2026-01-24")).await.unwrap().len(), 1);
    assert!(usage(&store, Some("2026-02-30")).await.is_err());
}
