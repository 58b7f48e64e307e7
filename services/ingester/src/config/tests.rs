#![allow(clippy::unwrap_used)]
use super::*;

const KEY_A: &str = "sk_test_aaaaaaaaaaaaaaaaaaaaaaaa";
const KEY_LIVE: &str = "sk_live_bbbbbbbbbbbbbbbbbbbbbbbb";

fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |k| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
    }
}

const TWO: &str = r#"
    topic_prefix = "x."
    [kafka]
    bootstrap_servers = "k:9092"
    [filters]
    include_event_types = ["invoice.*"]
    include_metadata = { company_id = ["c1", "c2"], tier = "gold" }
    [[accounts]]
    name = "eu"
    platform_account = "acct_1"
    api_key_env = "KEY_A"
    webhook_secrets_env = "WH_A"
    connected_accounts = ["acct_c1"]
    [[accounts]]
    name = "us"
    platform_account = "acct_2"
    api_key_env = "KEY_B"
"#;

#[test]
fn the_example_config_parses() {
    let text = include_str!("../../ingester.example.toml");
    let file = parse(text).unwrap();
    assert_eq!(file.accounts.len(), 2);
    assert_eq!(file.webhook_ack_timeout_ms, Some(10_000));
}

#[test]
fn the_webhook_acknowledgement_wait_is_set_and_must_be_above_zero() {
    let env = env_of(&[
        ("KEY_A", KEY_A),
        ("KEY_B", "rk_test_cccccccccccccccccccccccc"),
        ("WH_A", "whsec_one"),
        ("DATABASE_URL", "postgres://u:p@h/db"),
    ]);
    let default = resolve(parse(TWO).unwrap(), &env).unwrap();
    assert_eq!(default.webhook_ack_timeout, Duration::from_secs(10));
    let set = resolve(
        parse(&format!("webhook_ack_timeout_ms = 2500\n{TWO}")).unwrap(),
        &env,
    )
    .unwrap();
    assert_eq!(set.webhook_ack_timeout, Duration::from_millis(2500));
    let err = resolve(
        parse(&format!("webhook_ack_timeout_ms = 0\n{TWO}")).unwrap(),
        &env,
    )
    .unwrap_err();
    assert!(err.to_string().contains("webhook_ack_timeout_ms"), "{err}");
}

#[test]
fn two_accounts_filters_and_env_overrides() {
    let env = env_of(&[
        ("KEY_A", KEY_A),
        ("KEY_B", "rk_test_cccccccccccccccccccccccc"),
        ("WH_A", "whsec_one, whsec_two"),
        ("DATABASE_URL", "postgres://u:p@h/db"),
        ("LEDGERLINE_TOPIC_PREFIX", "y."),
        ("LEDGERLINE_POLL_MS", "250"),
    ]);
    let cfg = resolve(parse(TWO).unwrap(), &env).unwrap();
    assert_eq!(cfg.accounts.len(), 2);
    assert_eq!(cfg.accounts[0].webhook_secrets.len(), 2);
    assert_eq!(cfg.accounts[0].connected_accounts, ["acct_c1"]);
    assert_eq!(cfg.topics.stripe_events(), "y.stripe.events.v1");
    assert_eq!(cfg.poll_interval, Duration::from_millis(250));
    assert_eq!(cfg.filters.include_metadata.len(), 3);
    assert_eq!(cfg.filters.include_event_types, ["invoice.*"]);
    // No secret in the Debug output.
    let dbg = format!("{cfg:?}");
    assert!(!dbg.contains(KEY_A) && !dbg.contains("whsec_one"), "{dbg}");
}

#[test]
fn errors_name_the_field_and_never_the_secret() {
    let base = || {
        env_of(&[
            ("KEY_A", KEY_A),
            ("KEY_B", KEY_LIVE),
            ("WH_A", "whsec_x"),
            ("DATABASE_URL", "postgres://h/db"),
        ])
    };
    // Test and live mixed.
    let e = resolve(parse(TWO).unwrap(), &base())
        .unwrap_err()
        .to_string();
    assert!(e.contains("accounts[1].api_key_env"), "{e}");
    assert!(e.contains("never mix"), "{e}");
    assert!(!e.contains(KEY_LIVE), "{e}");
    // A missing variable.
    let env = env_of(&[("KEY_A", KEY_A), ("DATABASE_URL", "postgres://h/db")]);
    let e = resolve(parse(TWO).unwrap(), &env).unwrap_err().to_string();
    assert!(
        e.contains("accounts[0].webhook_secrets_env") && e.contains("WH_A"),
        "{e}"
    );
    // A misspelt key.
    let e = parse("[[accounts]]\nname = \"a\"\nplatform_acount = \"acct_1\"\n").unwrap_err();
    assert!(e.contains("platform_acount"), "{e}");
    // A mode the keys do not match.
    let mut f = parse(TWO).unwrap();
    f.mode = Some("live".into());
    let env = env_of(&[
        ("KEY_A", KEY_A),
        ("KEY_B", KEY_A),
        ("WH_A", "whsec_x"),
        ("DATABASE_URL", "postgres://h/db"),
    ]);
    let e = resolve(f, &env).unwrap_err().to_string();
    assert!(
        e.contains("accounts[0].api_key_env") && e.contains("live"),
        "{e}"
    );
    // A bad filter id.
    let mut f = parse(TWO).unwrap();
    f.filters.include_customers = vec!["in_1".into()];
    let e = resolve(
        f,
        &env_of(&[
            ("KEY_A", KEY_A),
            ("KEY_B", KEY_A),
            ("WH_A", "whsec_x"),
            ("DATABASE_URL", "postgres://h/db"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("filters.include_customers"), "{e}");
    // Registration without an encryption key, then with a malformed one (not printed).
    let mut f = parse(TWO).unwrap();
    f.accounts[1].register_webhook_url = Some("https://x.example/webhooks/us".into());
    let env = env_of(&[
        ("KEY_A", KEY_A),
        ("KEY_B", KEY_A),
        ("WH_A", "whsec_x"),
        ("DATABASE_URL", "postgres://h/db"),
        ("WHK", "not-hex-key-material"),
    ]);
    let e = resolve(f, &env).unwrap_err().to_string();
    assert!(
        e.contains("accounts[1].register_webhook_url") && e.contains("key_env"),
        "{e}"
    );
    let mut f = parse(TWO).unwrap();
    f.webhook_secret_encryption.key_env = Some("WHK".into());
    let e = resolve(f, &env).unwrap_err().to_string();
    assert!(e.contains("webhook_secret_encryption.key_env"), "{e}");
    assert!(!e.contains("not-hex-key-material"), "{e}");
    // No account at all.
    let e = resolve(FileConfig::default(), &env_of(&[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("accounts"), "{e}");
}
