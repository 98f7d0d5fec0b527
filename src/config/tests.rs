use super::*;
use std::collections::HashMap;

#[test]
fn cors_origins_must_be_origins() {
    let with = |origins: &str| {
        Settings::load_with_env(
            None,
            Some(env(&[(
                "QWEN_GATEWAY__SERVER__CORS_ALLOW_ORIGINS",
                origins,
            )])),
        )
    };
    let ok = with("https://a.example,http://localhost:3000").unwrap();
    assert_eq!(ok.server.cors_allow_origins.len(), 2);
    assert!(with("*").is_ok());
    for bad in ["a.example", "https://a.example/path", "ftp://a"] {
        assert!(with(bad).is_err(), "{bad}");
    }
}

#[test]
fn store_debug_hides_a_url_password() {
    let store = StoreConfig {
        url: StoreUrl::parse("redis://user:s3cret-pw@host:6379/0").unwrap(),
        affinity_ttl: Duration::from_secs(1),
        conversations: false,
        max_replay_turns: 1,
    };
    let shown = format!("{store:?}");
    assert!(shown.contains("redis://user:***@host:6379/0"), "{shown}");
    assert!(!shown.contains("s3cret"));
    assert_eq!(url_password("redis://:pw@h"), Some("pw"));
    assert_eq!(url_password("redis://h:6379"), None);
    assert_eq!(url_password("sqlite://a@b.db"), None);
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn built_in_defaults_load() {
    let s = Settings::load_with_env(None, Some(HashMap::new())).unwrap();
    assert_eq!(s.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.server.header_read_timeout, Duration::from_secs(10));
    assert_eq!(s.server.body_read_timeout, Duration::from_secs(30));
    assert_eq!(s.upstream.regions, ["singapore", "beijing"]);
    assert_eq!(s.auth.mode, AuthMode::None);
}

#[test]
fn listen_must_be_an_ip_and_port() {
    for bad in ["localhost:8080", "8080", "127.0.0.1", "127.0.0.1:99999"] {
        let err =
            Settings::load_with_env(None, Some(env(&[("QWEN_GATEWAY__SERVER__LISTEN", bad)])))
                .unwrap_err()
                .to_string();
        assert!(err.contains("listen"), "{bad}: {err}");
    }
}

#[test]
fn env_overrides_with_double_underscore_and_lists() {
    let s = Settings::load_with_env(
        None,
        Some(env(&[
            ("QWEN_GATEWAY__SERVER__LISTEN", "0.0.0.0:9000"),
            ("QWEN_GATEWAY__UPSTREAM__REGIONS", "beijing,singapore"),
            ("QWEN_GATEWAY__REGIONS__BEIJING__API_KEY_ENV", "A,B"),
        ])),
    )
    .unwrap();
    assert_eq!(s.server.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(s.upstream.regions, ["beijing", "singapore"]);
    assert_eq!(s.regions["beijing"].api_key_env, ["A", "B"]);
}

#[test]
fn file_layer_and_missing_file() {
    let dir = std::env::temp_dir().join(format!("qg-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gw.toml");
    std::fs::write(
        &path,
        "[upstream]\nregions=[\"local\"]\n[regions.local]\nbase_url=\"http://127.0.0.1:1\"\napi_key_env=[\"LOCAL_KEY\"]\n",
    )
    .unwrap();
    let s = Settings::load_with_env(Some(&path), Some(HashMap::new())).unwrap();
    assert_eq!(s.upstream.regions, ["local"]);
    assert!(matches!(
        Settings::load_with_env(Some(&dir.join("nope.toml")), None),
        Err(ConfigError::Missing(_))
    ));
}

#[test]
fn unknown_region_in_order_is_rejected() {
    let err = Settings::load_with_env(
        None,
        Some(env(&[("QWEN_GATEWAY__UPSTREAM__REGIONS", "mars")])),
    )
    .unwrap_err();
    assert!(err.to_string().contains("mars"));
}

#[test]
fn regions_without_keys_are_disabled_and_none_is_an_error() {
    let s = Settings::load_with_env(None, Some(HashMap::new())).unwrap();
    let r = s
        .resolve_regions(|v| (v == "DASHSCOPE_API_KEY").then(|| "sk-x".to_string()))
        .unwrap();
    assert_eq!(r.usable.len(), 1);
    assert_eq!(r.usable[0].name, "singapore");
    assert_eq!(r.warnings.len(), 1);
    assert!(r.warnings[0].contains("DASHSCOPE_API_KEY_BEIJING"));
    let err = s.resolve_regions(|_| Some("  ".into())).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("DASHSCOPE_API_KEY") && msg.contains("DASHSCOPE_API_KEY_BEIJING"));
}

#[test]
fn auth_defaults_and_the_key_cache_bound() {
    let s = Settings::load_with_env(None, Some(HashMap::new())).unwrap();
    assert_eq!(s.auth.admin_token_env, "QWEN_GATEWAY_ADMIN_TOKEN");
    assert_eq!(s.auth.key_cache_ttl, Duration::from_secs(1));
    let err = Settings::load_with_env(
        None,
        Some(env(&[("QWEN_GATEWAY__AUTH__KEY_CACHE_TTL", "5s")])),
    )
    .unwrap_err();
    assert!(err.to_string().contains("key_cache_ttl"), "{err}");
    let s = Settings::load_with_env(
        None,
        Some(env(&[
            ("QWEN_GATEWAY__AUTH__MODE", "keys"),
            ("QWEN_GATEWAY__AUTH__KEY_CACHE_TTL", "250ms"),
        ])),
    )
    .unwrap();
    assert_eq!(s.auth.mode, AuthMode::Keys);
    assert_eq!(s.auth.key_cache_ttl, Duration::from_millis(250));
}

#[test]
fn key_falls_back_to_the_file_named_by_x_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashscope_key");
    std::fs::write(&file, "  sk-from-file\n").unwrap();
    let path = file.to_str().unwrap().to_owned();
    let s = Settings::load_with_env(None, Some(HashMap::new())).unwrap();
    let vars = env(&[
        ("DASHSCOPE_API_KEY_FILE", &path),
        // Set but empty counts as unset, so the file is used.
        ("DASHSCOPE_API_KEY_BEIJING", ""),
        ("DASHSCOPE_API_KEY_BEIJING_FILE", &path),
    ]);
    let r = s.resolve_regions(|v| vars.get(v).cloned()).unwrap();
    assert_eq!(r.usable.len(), 2);
    for region in &r.usable {
        assert_eq!(region.keys[0].secret.expose(), "sk-from-file");
    }
    assert_eq!(r.usable[0].keys[0].env_var, "DASHSCOPE_API_KEY");
    let text = s.describe(|v| vars.get(v).cloned());
    assert!(
        text.contains("DASHSCOPE_API_KEY = <set from file>"),
        "{text}"
    );
    assert!(!text.contains("sk-from-file"));
}

#[test]
fn the_variable_wins_over_its_file_and_bad_files_are_errors() {
    let s = Settings::load_with_env(None, Some(HashMap::new())).unwrap();
    let vars = env(&[
        ("DASHSCOPE_API_KEY", "sk-from-env"),
        ("DASHSCOPE_API_KEY_FILE", "/nonexistent/should-not-be-read"),
    ]);
    let r = s.resolve_regions(|v| vars.get(v).cloned()).unwrap();
    assert_eq!(r.usable[0].keys[0].secret.expose(), "sk-from-env");

    let missing = env(&[("DASHSCOPE_API_KEY_FILE", "/nonexistent/key")]);
    let err = s.resolve_regions(|v| missing.get(v).cloned()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("DASHSCOPE_API_KEY_FILE") && msg.contains("/nonexistent/key"));

    // An empty file is no key: the region is disabled like an empty variable.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let vars = env(&[
        ("DASHSCOPE_API_KEY_FILE", empty.to_str().unwrap()),
        ("DASHSCOPE_API_KEY_BEIJING", "sk-b"),
    ]);
    let r = s.resolve_regions(|v| vars.get(v).cloned()).unwrap();
    assert_eq!(r.usable.len(), 1);
    assert_eq!(r.usable[0].name, "beijing");
    assert!(r.warnings[0].contains("DASHSCOPE_API_KEY"));
}

#[test]
fn secrets_are_redacted() {
    let key = RegionKey {
        env_var: "K".into(),
        secret: Secret::new("sk-very-secret"),
    };
    assert!(!format!("{key:?}").contains("sk-very-secret"));
    let s = Settings::load_with_env(None, Some(HashMap::new())).unwrap();
    let text = s.describe(|_| Some("sk-very-secret".into()));
    assert!(!text.contains("sk-very-secret"));
    assert!(text.contains("DASHSCOPE_API_KEY = <set>"));
}

#[test]
fn store_url_is_parsed_when_the_configuration_loads() {
    let s = Settings::load_with_env(
        None,
        Some(env(&[("QWEN_GATEWAY__STORE__URL", "sqlite://data/x.db")])),
    )
    .unwrap();
    assert_eq!(s.store.url, StoreUrl::Sqlite("data/x.db".into()));
    let err = Settings::load_with_env(
        None,
        Some(env(&[(
            "QWEN_GATEWAY__STORE__URL",
            "postgres://u:hunter2@h/db",
        )])),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("postgres"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn a_bad_base_url_is_a_load_error_naming_the_region_and_hiding_user_info() {
    for bad in [
        "ftp://h.example",
        "https://user:hunter2@h.example/v1",
        "https://h.example/v1?x=1",
    ] {
        let err = Settings::load_with_env(
            None,
            Some(env(&[("QWEN_GATEWAY__REGIONS__SINGAPORE__BASE_URL", bad)])),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("regions.singapore.base_url"), "{bad}: {err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}

#[test]
fn http2_modes_must_fit_the_base_url() {
    let with = |url: &str, mode: &str| {
        Settings::load_with_env(
            None,
            Some(env(&[
                ("QWEN_GATEWAY__REGIONS__SINGAPORE__BASE_URL", url),
                ("QWEN_GATEWAY__REGIONS__SINGAPORE__HTTP2", mode),
            ])),
        )
    };
    for (url, mode) in [
        ("https://h.example/v1", "prior_knowledge"),
        ("http://127.0.0.1:9/v1", "alpn"),
    ] {
        let err = with(url, mode).unwrap_err().to_string();
        assert!(err.contains("regions.singapore.http2"), "{mode}: {err}");
    }
    assert!(with("https://h.example/v1", "h2").is_err());
    for (url, mode, want) in [
        (
            "http://127.0.0.1:9/v1",
            "prior_knowledge",
            Http2::PriorKnowledge,
        ),
        ("https://h.example/v1", "alpn", Http2::Alpn),
        ("http://127.0.0.1:9/v1", "off", Http2::Off),
    ] {
        assert_eq!(with(url, mode).unwrap().regions["singapore"].http2, want);
    }
    // HTTP/1.1 unless asked for, and shown in the effective configuration.
    let default = Settings::load_with_env(None, Some(env(&[]))).unwrap();
    assert_eq!(default.regions["singapore"].http2, Http2::Off);
    assert!(default.describe(|_| None).contains("http2 = \"off\""));
}
