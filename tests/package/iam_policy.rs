//! deploy/iam-policy.json grants exactly the Rekognition operations the code can call.

use std::collections::BTreeSet;

use rekognition_operator::adapters::aws::OPERATIONS;

fn repo_file(path: &str) -> String {
    let full = testbed::workspace_root().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

/// Every `const OP: &str = "..."` in the AWS adapter: the operations it actually sends.
fn operations_in_adapter() -> BTreeSet<String> {
    repo_file("src/adapters/aws/sdk.rs")
        .lines()
        .filter_map(|line| line.trim().strip_prefix("const OP: &str = \""))
        .filter_map(|rest| rest.strip_suffix("\";"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn policy_actions_equal_the_operations_the_code_calls() {
    let policy: serde_json::Value =
        serde_json::from_str(&repo_file("deploy/iam-policy.json")).expect("valid JSON");
    let actions: BTreeSet<String> = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    let called: BTreeSet<String> = operations_in_adapter()
        .into_iter()
        .map(|op| format!("rekognition:{op}"))
        .collect();
    let declared: BTreeSet<String> = OPERATIONS
        .iter()
        .map(|op| format!("rekognition:{op}"))
        .collect();
    assert_eq!(
        called, declared,
        "aws::OPERATIONS lists what the adapter calls"
    );
    assert_eq!(
        actions, called,
        "the IAM policy grants exactly what the adapter calls"
    );
}

#[test]
fn policy_is_scoped_to_collection_arns_and_allows_only() {
    let policy: serde_json::Value =
        serde_json::from_str(&repo_file("deploy/iam-policy.json")).expect("valid JSON");
    for statement in policy["Statement"].as_array().expect("statements") {
        assert_eq!(statement["Effect"], "Allow");
        let resource = statement["Resource"]
            .as_str()
            .expect("one resource pattern");
        let actions: Vec<&str> = statement["Action"]
            .as_array()
            .expect("actions")
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        // ListCollections acts on no resource (AWS takes only "*" for it), so it alone has a
        // statement of its own.
        if resource == "*" {
            assert_eq!(actions, ["rekognition:ListCollections"], "{statement}");
        } else {
            assert!(
                resource.starts_with("arn:aws:rekognition:") && resource.ends_with(":collection/*"),
                "{resource}"
            );
        }
    }
}
