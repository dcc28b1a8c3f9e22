//! Auth settings: the `[auth]` table, rules, modes, layering.

use super::*;
use crate::server::config::Layer;

fn parse(text: &str) -> AuthSettings {
    #[derive(Deserialize)]
    struct File {
        auth: AuthSettings,
    }
    toml::from_str::<File>(text).unwrap().auth
}

#[test]
fn rules_from_the_config_file() {
    let s = parse(
        r#"
        [auth]
        mode = "token"
        [auth.groups]
        ci = ["bot"]
        [[auth.rules]]
        repository = "public/*"
        anonymous = true
        actions = ["pull"]
        [[auth.rules]]
        repository = "team/**"
        groups = ["ci"]
        actions = ["pull", "push"]
        [[auth.rules]]
        catalog = true
        users = ["admin"]
        "#,
    );
    let r = rules(&s).unwrap().unwrap();
    assert_eq!(r.rules().len(), 3);
    assert_eq!(r.granted(Some("bot"), "team/x").iter().count(), 2);
    assert!(r.catalog_granted(Some("admin")));
    assert!(!r.catalog_granted(Some("bot")));
}

#[test]
fn bad_rules_and_modes_fail_closed() {
    for (text, expect) in [
        ("[auth]\nhtpasswd = \"/x\"", "auth mode is none"),
        (
            "[auth]\nmode = \"none\"\n[[auth.rules]]\nrepository = \"x\"\nusers = [\"*\"]\nactions = [\"pull\"]",
            "auth mode is none",
        ),
        ("[auth]\nmode = \"htpasswd\"", "needs --htpasswd"),
        (
            "[auth]\nmode = \"token\"\ntoken_keys = \"/nonexistent\"\ntoken_issuer = \"i\"",
            "cannot read token key file",
        ),
        (
            "[auth]\nmode = \"token\"\n[[auth.rules]]\nrepository = \"x\"\ngroups = [\"nope\"]\nactions = [\"pull\"]",
            "group \"nope\" is not defined",
        ),
        (
            "[auth]\nmode = \"token\"\n[[auth.rules]]\nrepository = \"x\"\nactions = [\"pull\"]",
            "applies to nobody",
        ),
        (
            "[auth]\nmode = \"token\"\n[[auth.rules]]\nrepository = \"x\"\nanonymous = true\nactions = [\"write\"]",
            "unknown action",
        ),
        (
            "[auth]\nmode = \"token\"\n[[auth.rules]]\nrepository = \"x\"\nanonymous = true",
            "no actions",
        ),
        (
            "[auth]\nmode = \"token\"\n[[auth.rules]]\nanonymous = true\nactions = [\"pull\"]",
            "needs a repository",
        ),
        (
            "[auth]\nmode = \"token\"\ntoken_realm = \"ftp://x\"",
            "expected an http(s) URL",
        ),
    ] {
        let e = build(&parse(text), false)
            .err()
            .unwrap_or_else(|| panic!("{text}"));
        assert!(e.contains(expect), "{text}: {e}");
    }
    assert!(toml::from_str::<AuthSettings>("mode = \"ldap\"").is_err());
    assert!(toml::from_str::<AuthSettings>("colour = 1").is_err());
}

#[test]
fn flags_beat_the_file_field_by_field() {
    let flags = AuthSettings {
        mode: Some(AuthMode::Htpasswd),
        ..Default::default()
    };
    let file = parse(
        "[auth]\nmode = \"token\"\nhtpasswd = \"/h\"\n[[auth.rules]]\nrepository = \"x\"\nanonymous = true\nactions = [\"pull\"]",
    );
    let s = flags.or(file);
    assert_eq!(s.mode, Some(AuthMode::Htpasswd));
    assert_eq!(s.htpasswd, Some("/h".into()));
    assert_eq!(s.rules.len(), 1);
    assert_eq!("token".parse::<AuthMode>(), Ok(AuthMode::Token));
    assert!("ldap".parse::<AuthMode>().is_err());
}
