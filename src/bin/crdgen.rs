//! Prints the CustomResourceDefinition generated from the Rust types, as YAML, or with
//! `--reference` the API reference generated from that CRD's own schema, as Markdown.
//! `cargo run --bin crdgen > crds/rekognitioncollections.yaml`
//! `cargo run --bin crdgen -- --reference > docs/reference.md`

use std::fmt::Write as _;

use anyhow::Result;
use clap::Parser;
use kube::CustomResourceExt;
use rekognition_operator::model::crd::{ReadyReason, RekognitionCollection};
use serde_json::Value;

#[derive(Parser)]
#[command(about = "The RekognitionCollection CRD (YAML), or its API reference (Markdown)")]
struct Args {
    /// Print the API reference instead of the CRD.
    #[arg(long)]
    reference: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let crd = RekognitionCollection::crd();
    if args.reference {
        print!("{}", reference(&serde_json::to_value(&crd)?)?);
    } else {
        print!("{}", serde_yaml::to_string(&crd)?);
    }
    Ok(())
}

/// The reference page: the kind, every spec and status field (type, default, validation with the
/// CEL rules' own messages, description), the object-level rules, and the condition reasons.
fn reference(crd: &Value) -> Result<String> {
    let spec = &crd["spec"];
    let version = &spec["versions"][0];
    let schema = &version["schema"]["openAPIV3Schema"];
    let names = &spec["names"];
    let mut out = String::new();
    writeln!(out, "# API reference")?;
    writeln!(out)?;
    writeln!(
        out,
        "Every field of `{}` with its type, default and validation, as the API server checks them \
         at admission, and the conditions and reasons the operator writes. Generated from the \
         CRD's own schema by `cargo run --bin crdgen -- --reference`; the test command checks it \
         is in sync, so do not edit it by hand.",
        str_of(&names["kind"])
    )?;
    writeln!(out)?;
    writeln!(out, "| | |")?;
    writeln!(out, "|---|---|")?;
    writeln!(
        out,
        "| API version | `{}/{}` |",
        str_of(&spec["group"]),
        str_of(&version["name"])
    )?;
    writeln!(out, "| kind | `{}` |", str_of(&names["kind"]))?;
    writeln!(out, "| scope | {} |", str_of(&spec["scope"]))?;
    writeln!(out, "| plural | `{}` |", str_of(&names["plural"]))?;
    writeln!(out, "| short names | {} |", code_list(&names["shortNames"]))?;
    writeln!(out, "| categories | {} |", code_list(&names["categories"]))?;
    writeln!(out)?;
    writeln!(out, "{}", str_of(&schema["description"]))?;

    for (part, title) in [("spec", "Spec"), ("status", "Status")] {
        let node = &schema["properties"][part];
        writeln!(out)?;
        writeln!(out, "## {title}")?;
        writeln!(out)?;
        writeln!(out, "{}", one_line(str_of(&node["description"])))?;
        writeln!(out)?;
        let mut found = Vec::new();
        fields(&mut found, part, node);
        writeln!(out, "| Field | Type | Default |")?;
        writeln!(out, "|---|---|---|")?;
        for field in &found {
            writeln!(
                out,
                "| [`{}`](#{}) | {} | {} |",
                field.path,
                anchor(&field.path),
                field.kind,
                field.default
            )?;
        }
        for field in &found {
            writeln!(out)?;
            writeln!(out, "### `{}`", field.path)?;
            writeln!(out)?;
            let mut facts = vec![format!("**Type:** {}", field.kind)];
            if !field.default.is_empty() {
                facts.push(format!("**Default:** {}", field.default));
            }
            writeln!(out, "{}", facts.join(" · "))?;
            if !field.validation.is_empty() {
                writeln!(out)?;
                writeln!(out, "**Validation:** {}", field.validation.join("; "))?;
            }
            writeln!(out)?;
            writeln!(out, "{}", field.description)?;
        }
        let rules = rules_of(node);
        if !rules.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "Rules on `{part}` as a whole (CEL, checked on update):"
            )?;
            writeln!(out)?;
            for (rule, message, path) in rules {
                let at = path
                    .map(|p| format!(" (reported at `{part}{p}`)"))
                    .unwrap_or_default();
                writeln!(out, "- {message}{at}: `{rule}`")?;
            }
        }
    }

    writeln!(out)?;
    writeln!(out, "## Conditions")?;
    writeln!(out)?;
    let conditions = &schema["properties"]["status"]["properties"]["conditions"];
    writeln!(out, "{}", one_line(str_of(&conditions["description"])))?;
    writeln!(out)?;
    writeln!(
        out,
        "Ready and Synced take one of these reasons (`kubectl get rekcol` shows Synced's):"
    )?;
    writeln!(out)?;
    writeln!(out, "| Reason | Ready | Meaning |")?;
    writeln!(out, "|---|---|---|")?;
    for reason in ReadyReason::ALL {
        let ready = if reason.is_ready() { "True" } else { "False" };
        writeln!(
            out,
            "| `{}` | {ready} | {} |",
            reason.as_str(),
            prose(reason.description()).replace('|', "\\|")
        )?;
    }
    Ok(out)
}

/// One field of the schema, as the reference shows it.
struct Field {
    /// `spec.tags`, `status.conditions[].type`.
    path: String,
    kind: String,
    default: String,
    validation: Vec<String>,
    description: String,
}

/// Every field under `node` (an object schema), depth first.
fn fields(found: &mut Vec<Field>, path: &str, node: &Value) {
    let Some(properties) = node["properties"].as_object() else {
        return;
    };
    let required: Vec<&str> = node["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (name, field) in properties {
        let here = format!("{path}.{name}");
        let mut validation = validation_of(field);
        if required.contains(&name.as_str()) {
            validation.insert(0, "required".into());
        }
        let default = match &field["default"] {
            Value::Null => String::new(),
            Value::String(empty) if empty.is_empty() => "`\"\"`".into(),
            value => format!("`{}`", scalar(value)),
        };
        found.push(Field {
            path: here.clone(),
            kind: type_of(field),
            default,
            validation,
            description: prose(&one_line(str_of(&field["description"]))),
        });
        fields(found, &here, field);
        if let Some(items) = field.get("items") {
            fields(found, &format!("{here}[]"), items);
        }
    }
}

/// The anchor GitHub and mdBook give the heading `` `path` ``: lower case, without its dots and
/// brackets.
fn anchor(path: &str) -> String {
    path.chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
        .flat_map(char::to_lowercase)
        .collect()
}

fn type_of(field: &Value) -> String {
    match str_of(&field["type"]) {
        "object" if field.get("additionalProperties").is_some() => {
            format!("map of {}", type_of(&field["additionalProperties"]))
        }
        "array" => format!("list of {}", type_of(&field["items"])),
        "string" if field["format"].is_string() => format!("string ({})", str_of(&field["format"])),
        "integer" if field["format"].is_string() => {
            format!("integer ({})", str_of(&field["format"]))
        }
        "" => "any".into(),
        other => other.into(),
    }
}

/// The schema's checks in words, then each CEL rule by its message.
fn validation_of(field: &Value) -> Vec<String> {
    let mut checks = Vec::new();
    if let Some(values) = field["enum"].as_array() {
        let values: Vec<String> = values.iter().map(|v| format!("`{}`", scalar(v))).collect();
        checks.push(format!("one of {}", values.join(", ")));
    }
    match (field["minLength"].as_u64(), field["maxLength"].as_u64()) {
        (Some(min), Some(max)) => checks.push(format!("{min}–{max} characters")),
        (None, Some(max)) => checks.push(format!("at most {max} characters")),
        (Some(min), None) => checks.push(format!("at least {min} characters")),
        (None, None) => {}
    }
    if let Some(pattern) = field["pattern"].as_str() {
        checks.push(format!("matches `{pattern}`"));
    }
    if let Some(max) = field["maxProperties"].as_u64() {
        checks.push(format!("at most {max} entries"));
    }
    if let Some(max) = field["maxItems"].as_u64() {
        checks.push(format!("at most {max} items"));
    }
    if let Some(values) = field.get("additionalProperties") {
        let inner = validation_of(values);
        if !inner.is_empty() {
            checks.push(format!("values: {}", inner.join(", ")));
        }
    }
    if field["x-kubernetes-list-type"] == "map" {
        checks.push(format!(
            "one item per {}",
            code_list(&field["x-kubernetes-list-map-keys"])
        ));
    }
    for (rule, message, _) in rules_of(field) {
        if rule == "self == oldSelf" {
            checks.push("immutable".into());
        } else {
            checks.push(message.to_owned());
        }
    }
    checks
}

/// The CEL rules of a schema node: (rule, message, fieldPath).
fn rules_of(node: &Value) -> Vec<(&str, &str, Option<&str>)> {
    node["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                str_of(&r["rule"]),
                str_of(&r["message"]),
                r["fieldPath"].as_str(),
            )
        })
        .collect()
}

fn str_of(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

fn scalar(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

fn code_list(value: &Value) -> String {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| format!("`{}`", scalar(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Prose whose angle brackets are text, not HTML.
fn prose(text: &str) -> String {
    text.replace('<', "&lt;").replace('>', "&gt;")
}
