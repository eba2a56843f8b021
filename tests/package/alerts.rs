//! The chart's alerting rules, unit-tested by the real promtool: `promtool check rules` on the
//! rules as helm renders them, and `promtool test rules` with deploy/prometheus/alerts.test.yaml
//! (series in, alerts out) for every alert, at the chart's default thresholds.

use crate::support;

use anyhow::Result;
use rekognition_operator::adapters::aws::CallCounter;
use support::prometheus::{promtool, rules_yaml};

const ALERTS: [&str; 10] = [
    "RekognitionCollectionsStalled",
    "RekognitionCollectionsNotSynced",
    "RekognitionCollectionsOrphaned",
    "RekognitionOperatorDown",
    "RekognitionOperatorNoLeader",
    "RekognitionOperatorCredentialsFailing",
    "RekognitionOperatorThrottled",
    "RekognitionOperatorRateLimited",
    "RekognitionOperatorResyncsBehind",
    "RekognitionOperatorReconcileErrors",
];

fn test_file() -> std::path::PathBuf {
    support::helm::root().join("deploy/prometheus/alerts.test.yaml")
}

#[test]
fn the_rules_are_valid_and_every_alert_passes_its_unit_tests() -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("rules.yaml"), rules_yaml(&[])?)?;
    std::fs::copy(test_file(), dir.path().join("alerts.test.yaml"))?;
    let checked = promtool(dir.path(), &["check", "rules", "rules.yaml"])?;
    assert!(
        checked.contains(&format!("{} rules found", ALERTS.len())),
        "{checked}"
    );
    let tested = promtool(dir.path(), &["test", "rules", "alerts.test.yaml"])?;
    assert!(tested.contains("SUCCESS"), "{tested}");
    Ok(())
}

#[test]
fn every_alert_has_a_unit_test_a_runbook_entry_and_its_annotations() -> Result<()> {
    let tests = std::fs::read_to_string(test_file())?;
    let runbooks = std::fs::read_to_string(support::helm::root().join("docs/runbooks.md"))?;
    let rules: serde_yaml::Value = serde_yaml::from_str(&rules_yaml(&[])?)?;
    let mut seen = Vec::new();
    for group in rules["groups"].as_sequence().into_iter().flatten() {
        for rule in group["rules"].as_sequence().into_iter().flatten() {
            let name = rule["alert"].as_str().unwrap_or_default();
            seen.push(name.to_owned());
            for key in ["summary", "description", "runbook_url"] {
                assert!(
                    rule["annotations"][key]
                        .as_str()
                        .is_some_and(|v| !v.is_empty()),
                    "{name} has a {key}"
                );
            }
            assert!(
                rule["labels"]["severity"].is_string(),
                "{name} has a severity"
            );
            let anchor = name.to_lowercase();
            assert!(
                rule["annotations"]["runbook_url"]
                    .as_str()
                    .is_some_and(|u| u.ends_with(&format!("docs/runbooks.md#{anchor}"))),
                "{name}'s runbook_url"
            );
            assert!(
                runbooks.contains(&format!("\n## {name}\n")),
                "docs/runbooks.md has a runbook for {name}"
            );
            assert!(
                tests.contains(&format!("alertname: {name}\n")),
                "{name} has a promtool test"
            );
        }
    }
    assert_eq!(seen, ALERTS, "the alerts, in order");
    Ok(())
}

#[test]
fn thresholds_are_values_and_a_selector_replaces_the_default() -> Result<()> {
    let rules = rules_yaml(&[
        "--set",
        "metrics.prometheusRule.thresholds.stalledFor=2m",
        "--set-json",
        "metrics.prometheusRule.thresholds.throttledRatio=0.5",
        "--set-string",
        "metrics.prometheusRule.selector=job=\"operators\"",
        "--set",
        "metrics.prometheusRule.additionalLabels.team=platform",
    ])?;
    assert!(rules.contains("for: 2m"), "{rules}");
    assert!(rules.contains("> 0.5"), "{rules}");
    assert!(rules.contains(r#"up{job="operators"}"#), "{rules}");
    assert!(!rules.contains("rekognition-operator-metrics"), "{rules}");
    assert!(rules.contains("team: platform"), "{rules}");
    Ok(())
}

/// The tests read the operator's metrics with `support::metric_sum`: a metric nothing has counted
/// yet reads 0, and a name the operator does not export is an error, not 0.
#[test]
fn metric_sum_reads_zero_for_an_empty_family_and_refuses_an_unknown_name() -> Result<()> {
    let metrics = rekognition_operator::runtime::metrics::Metrics::new();
    let text = metrics.encode();
    assert_eq!(
        support::metric_sum(&text, "rekognition_operator_aws_calls_total")?,
        0.0
    );
    metrics.count_aws_call("123456789012", "us-east-1", "CreateCollection", "ok");
    assert_eq!(
        support::metric_sum(&metrics.encode(), "rekognition_operator_aws_calls_total")?,
        1.0
    );
    let renamed = support::metric_sum(&text, "rekognition_operator_aws_call_total");
    assert!(renamed.is_err(), "{renamed:?}");
    Ok(())
}
