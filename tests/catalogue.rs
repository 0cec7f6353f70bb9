//! The rule catalogue (`checks/*.toml`) and the code agree, and every entry is a complete manual.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

use std::collections::BTreeSet;

use secgate::catalogue::{self, Lifecycle};
use secgate::checks::FAMILIES as CHECKS;

#[test]
fn catalogue_parses() {
    assert_eq!(catalogue::load_error(), None);
    assert!(!catalogue::all().is_empty());
}

#[test]
fn code_and_catalogue_hold_the_same_rules() {
    let in_code: BTreeSet<&str> = CHECKS
        .iter()
        .flat_map(|c| c.rule_ids().iter().copied())
        .collect();
    let in_catalogue: BTreeSet<&str> = catalogue::all()
        .iter()
        .filter(|r| r.status == Lifecycle::Stable)
        .map(|r| r.id.as_str())
        .collect();
    let missing: Vec<_> = in_code.difference(&in_catalogue).collect();
    let orphaned: Vec<_> = in_catalogue.difference(&in_code).collect();
    assert!(
        missing.is_empty(),
        "emitted by code but not in checks/*.toml: {missing:?}"
    );
    assert!(
        orphaned.is_empty(),
        "in checks/*.toml but no code emits them: {orphaned:?}"
    );
}

#[test]
fn each_rule_belongs_to_the_family_that_emits_it() {
    for check in CHECKS {
        for id in check.rule_ids() {
            let rule = catalogue::get(id).unwrap();
            assert_eq!(rule.family, check.family(), "{id}");
        }
    }
    for (file, _) in catalogue::SOURCES {
        let family = file.trim_start_matches("checks/").trim_end_matches(".toml");
        assert!(
            secgate::checks::family(family).is_some(),
            "{file} has no family in CHECKS"
        );
    }
}

#[test]
fn ids_are_unique_dotted_and_lower_case() {
    let mut seen = BTreeSet::new();
    for rule in catalogue::all() {
        assert!(seen.insert(rule.id.clone()), "duplicate id {}", rule.id);
        let ok = rule.id.split('.').count() >= 2
            && rule.id.split('.').all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            });
        assert!(ok, "bad id {}", rule.id);
    }
}

#[test]
fn every_entry_is_a_complete_manual() {
    for rule in catalogue::all() {
        for (name, text) in [
            ("title", &rule.title),
            ("description", &rule.description),
            ("rationale", &rule.rationale),
            ("remediation", &rule.remediation),
        ] {
            assert!(
                text.trim().len() >= 10,
                "{}: {name} is empty or too short",
                rule.id
            );
        }
        assert!(!rule.references.is_empty(), "{}: no references", rule.id);
        for r in &rule.references {
            assert!(
                r.starts_with("https://"),
                "{}: reference {r} is not an https URL",
                rule.id
            );
        }
        assert!(!rule.cwe.is_empty(), "{}: no CWE", rule.id);
        // SARIF adds the family as a tag; a repeated tag makes the SARIF invalid.
        assert!(
            !rule.tags.contains(&rule.family),
            "{}: tag '{}' repeats the family",
            rule.id,
            rule.family
        );
        let text = rule.explain();
        for section in [
            "What it checks",
            "Why it matters",
            "How to fix it",
            "References",
        ] {
            assert!(
                text.contains(section),
                "{}: explain lacks {section}",
                rule.id
            );
        }
    }
}

/// Each family's `[budget]` in its catalogue file is what its code allows at the default
/// options: per target, and per configured endpoint of each role.
#[test]
fn catalogue_budgets_are_the_code_budgets_at_the_defaults() {
    use secgate::endpoint::{Endpoint, Role, Secret, SecretRef, SecretSource};
    use secgate::plan::Settings;
    use secgate::target::Target;
    let settings = Settings::default();
    for family in CHECKS {
        let doc = catalogue::family(family.family())
            .unwrap_or_else(|| panic!("{}: no [budget] in its catalogue file", family.family()));
        assert!(!doc.budget.scales.is_empty(), "{}", family.family());
        // A target whose kind the family runs on, with no endpoints.
        let bare = ["https://a.example/", "a.example", "127.0.0.1"]
            .iter()
            .map(|t| Target::parse(t).unwrap())
            .find(|t| family.applies_to(t))
            .unwrap_or_else(|| Target::parse("https://a.example/").unwrap());
        assert_eq!(
            family.budget(&bare, &settings),
            doc.budget.per_target,
            "{}: budget of a target without endpoints",
            family.family()
        );
        for role in ["login", "protected", "api", "jwt"] {
            let mut t = Target::parse("https://a.example/").unwrap();
            let mut e = Endpoint::new("e", Role::parse(role).unwrap(), "/e");
            // A login with its test account's password loaded, as a scan has it.
            e.username = Some("test".into());
            e.password = Some(SecretRef {
                key: "password".into(),
                source: SecretSource::Env("SECGATE_TEST_PASSWORD".into()),
                value: Some(Secret::new("not-a-real-password")),
            });
            t.endpoints.push(e);
            let want =
                doc.budget.per_target + doc.budget.per_endpoint.get(role).copied().unwrap_or(0);
            assert_eq!(
                family.budget(&t, &settings),
                want,
                "{}: budget with one {role} endpoint",
                family.family()
            );
        }
    }
}
