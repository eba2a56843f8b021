//! The Helm chart in deploy/helm/rekognition-operator: lint, committed render snapshots, values
//! schema, least-privilege RBAC, Pod Security Standard "restricted", and the operator flags it
//! passes. Helm is built from the version pinned in tools/helm (tools/helm/build.sh).

use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use k8s_openapi::api::core::v1::{Container, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use rekognition_operator::runtime::config::{Config, Listen, LogFormat};
use support::helm::{
    CHART, NAMESPACE, ONE_NAMESPACE_VALUES, Rendered, env_field_ref, env_value, helm,
    operator_container, pod_spec, root, template,
};

const TENANCY_VALUES: &str = "deploy/helm/ci/tenancy-values.yaml";
/// The two-team example's values (deploy/examples/two-teams), rendered as a snapshot.
const ACCOUNTS_VALUES: &str = "deploy/examples/two-teams/values.yaml";
const ACCOUNT_MAPPING: &str = "rekognition-operator-accounts";
const SERVICE_ACCOUNT: &str = "rekognition-operator";
const LEASE: &str = "rekognition-operator";

/// The committed snapshots and the values each is rendered with.
const SNAPSHOTS: [(&str, &[&str]); 4] = [
    ("default.yaml", &[]),
    ("one-namespace.yaml", &["-f", ONE_NAMESPACE_VALUES]),
    ("tenancy.yaml", &["-f", TENANCY_VALUES]),
    ("accounts.yaml", &["-f", ACCOUNTS_VALUES]),
];

// ---------------------------------------------------------------------------------------------
// the operator's view of the Deployment

/// Parses the container's arguments with the operator's own flag parser, as the binary would.
/// AWS_REGION and AWS_ENDPOINT_URL_REKOGNITION, which the chart sets as environment variables, are passed as
/// the flags that read them so that their values are checked too.
fn operator_config(container: &Container) -> Result<Config> {
    let mut args = vec!["rekognition-operator".to_owned()];
    args.extend(container.args.iter().flatten().cloned());
    for (env, flag) in [
        ("AWS_REGION", "--region"),
        ("AWS_ENDPOINT_URL_REKOGNITION", "--aws-endpoint-url"),
    ] {
        if let Some(value) = env_value(container, env) {
            args.push(format!("{flag}={value}"));
        }
    }
    Config::try_parse_from(&args)
        .map_err(|e| anyhow::anyhow!("the operator refuses the chart's arguments {args:?}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// lint, snapshots, CRD

#[test]
fn chart_passes_helm_lint() -> Result<()> {
    let everything_on = [
        "--set",
        "replicas=1,leaderElection.enabled=true,aws.endpointUrl=https://rekognition.example",
        "--set",
        "metrics.serviceMonitor.enabled=true,networkPolicy.enabled=true",
        "--set-string",
        "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::123456789012:role/r",
    ];
    for extra in [
        &[][..],
        &["-f", ONE_NAMESPACE_VALUES][..],
        &everything_on[..],
    ] {
        let mut args = vec!["lint", "--strict", CHART, "--namespace", NAMESPACE];
        args.extend_from_slice(extra);
        let output = helm(&args)?;
        ensure!(
            output.status.success(),
            "helm {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

#[test]
fn rendered_chart_matches_committed_snapshots() -> Result<()> {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1");
    let dir = root().join("deploy/helm/snapshots");
    for (file, extra) in SNAPSHOTS {
        let rendered = template(extra)?;
        let path = dir.join(file);
        if update {
            std::fs::write(&path, &rendered)
                .with_context(|| format!("writing {}", path.display()))?;
            continue;
        }
        let committed = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        if committed != rendered {
            let (line, want, got) = committed
                .lines()
                .zip(rendered.lines())
                .enumerate()
                .find(|(_, (want, got))| want != got)
                .map(|(i, (want, got))| (i + 1, want, got))
                .unwrap_or((
                    committed.lines().count().min(rendered.lines().count()) + 1,
                    "(end of file)",
                    "(end of file)",
                ));
            bail!(
                "deploy/helm/snapshots/{file} is out of date; first difference at line {line}:\n  \
                 committed: {want}\n  rendered:  {got}\nReview the change, then run \
                 UPDATE_SNAPSHOTS=1 cargo test --test package chart::"
            );
        }
    }
    if update {
        eprintln!("rewrote deploy/helm/snapshots/ (UPDATE_SNAPSHOTS=1); review them with git diff");
    }
    Ok(())
}

#[test]
fn chart_crd_is_the_generated_crd() -> Result<()> {
    let generated = std::fs::read(root().join("crds/rekognitioncollections.yaml"))?;
    let in_chart = std::fs::read(root().join(CHART).join("crds/rekognitioncollections.yaml"))?;
    ensure!(
        generated == in_chart,
        "{CHART}/crds/rekognitioncollections.yaml differs from crds/rekognitioncollections.yaml; \
         copy it: cp crds/rekognitioncollections.yaml {CHART}/crds/"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// values schema

#[test]
fn values_schema_refuses_bad_values() -> Result<()> {
    let cases: &[(&[&str], &str)] = &[
        (&["--set", "replicas=0"], "/replicas"),
        (&["--set", "replicas=two"], "/replicas"),
        (&["--set", "aws.region=Mars"], "/aws/region"),
        (
            &["--set", "aws.endpointUrl=localhost:4566"],
            "/aws/endpointUrl",
        ),
        (&["--set", "watchNamespace=Bad_NS"], "/watchNamespace"),
        (&["--set", "clusterName=Prod_EU"], "/clusterName"),
        (&["--set", "orphans.policy=purge"], "/orphans/policy"),
        (
            &["--set", "orphans.scanInterval=never"],
            "/orphans/scanInterval",
        ),
        (&["--set", "takeOverFrom[0]=a/b"], "/takeOverFrom/0"),
        (&["--set", "unknownKey=1"], "unknownKey"),
        (&["--set", "image.tag=1"], "/image/tag"),
        (&["--set", "image.digest=sha256:0"], "digest"),
        (&["--set", "resyncInterval=soon"], "/resyncInterval"),
        (&["--set", "resyncInterval=0s"], "/resyncInterval"),
        (&["--set-json", "awsRate=-1"], "/awsRate"),
        (&["--set", "concurrency=0"], "/concurrency"),
        (&["--set", "log.format=xml"], "/log/format"),
        (
            &["--set", "leaderElection.leaseName=Not_A_Name"],
            "/leaderElection/leaseName",
        ),
        (
            &["--set", "podDisruptionBudget.maxUnavailable=most"],
            "/podDisruptionBudget/maxUnavailable",
        ),
        (&["--set", "networkPolicy.egress.allowAll=true"], "allowAll"),
        (
            &[
                "--set",
                "accounts.namespaces.team-a.roleArn=arn:aws:iam::1:user/x",
            ],
            "/accounts/namespaces/team-a/roleArn",
        ),
        (
            &["--set", "accounts.namespaces.team-a.externalID=x"],
            "externalID",
        ),
        (
            &["--set", "accounts.requireMapping=yes"],
            "/accounts/requireMapping",
        ),
    ];
    for (args, field) in cases {
        let error = match template(args) {
            Ok(_) => bail!("helm template {} was accepted", args.join(" ")),
            Err(error) => format!("{error:#}"),
        };
        ensure!(
            error.contains("schema") && error.contains(field),
            "helm template {} failed without naming {field} in a schema error: {error}",
            args.join(" ")
        );
    }

    // Good values of the same fields pass.
    template(&[
        "--set",
        "replicas=3,aws.region=eu-west-1,aws.endpointUrl=https://rekognition.example",
        "--set",
        "watchNamespace=team-a,clusterName=prod-eu-1,takeOverFrom[0]=blue,orphans.policy=delete,orphans.grace=48h,orphans.scanInterval=off,resyncInterval=90s,concurrency=16,podDisruptionBudget.maxUnavailable=50%",
        "--set-json",
        "awsRate=0.5",
        "--set-string",
        "image.tag=1.2.3",
    ])
    .context("good values were refused")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// RBAC

/// One granted verb: (where, API group, resource, verb, resource names).
type Grant = (String, String, String, String, Vec<String>);

fn grants(scope: &str, rules: &[PolicyRule], out: &mut BTreeSet<Grant>) {
    for rule in rules {
        let mut names = rule.resource_names.clone().unwrap_or_default();
        names.sort();
        assert!(
            rule.non_resource_urls.is_none(),
            "{scope} grants non-resource URLs"
        );
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    out.insert((
                        scope.to_owned(),
                        group.clone(),
                        resource.clone(),
                        verb.clone(),
                        names.clone(),
                    ));
                }
            }
        }
    }
}

/// A ClusterRole for tenants (aggregated into the built-in roles), not for the operator.
fn is_tenant_role(role: &ClusterRole) -> bool {
    role.metadata.labels.as_ref().is_some_and(|labels| {
        labels
            .keys()
            .any(|k| k.starts_with("rbac.authorization.k8s.io/aggregate-to-"))
    })
}

/// The operator's ClusterRoles: every rendered one but the tenant roles.
fn operator_cluster_roles(rendered: &Rendered) -> Result<Vec<ClusterRole>> {
    Ok(rendered
        .all::<ClusterRole>("ClusterRole")?
        .into_iter()
        .filter(|role| !is_tenant_role(role))
        .collect())
}

fn rendered_grants(rendered: &Rendered) -> Result<BTreeSet<Grant>> {
    let mut out = BTreeSet::new();
    for role in operator_cluster_roles(rendered)? {
        grants(
            "ClusterRole",
            role.rules.as_deref().unwrap_or_default(),
            &mut out,
        );
    }
    for role in rendered.all::<Role>("Role")? {
        let scope = format!("Role in {}", role.metadata.namespace.unwrap_or_default());
        grants(&scope, role.rules.as_deref().unwrap_or_default(), &mut out);
    }
    Ok(out)
}

/// The table of what the operator does, for the collection rules granted in `scope`.
fn expected_grants(scope: &str) -> BTreeSet<Grant> {
    let grant = |scope: &str, group: &str, resource: &str, verb: &str, names: &[&str]| {
        (
            scope.to_owned(),
            group.to_owned(),
            resource.to_owned(),
            verb.to_owned(),
            names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        )
    };
    let collections = "rekognition.aws-operators.dev";
    let lease_scope = format!("Role in {NAMESPACE}");
    [
        grant(scope, collections, "rekognitioncollections", "list", &[]),
        grant(scope, collections, "rekognitioncollections", "watch", &[]),
        grant(scope, collections, "rekognitioncollections", "get", &[]),
        grant(scope, collections, "rekognitioncollections", "patch", &[]),
        grant(
            scope,
            collections,
            "rekognitioncollections/status",
            "patch",
            &[],
        ),
        grant(scope, "events.k8s.io", "events", "create", &[]),
        grant(scope, "events.k8s.io", "events", "patch", &[]),
        grant(
            &lease_scope,
            "coordination.k8s.io",
            "leases",
            "get",
            &[LEASE],
        ),
        grant(
            &lease_scope,
            "coordination.k8s.io",
            "leases",
            "patch",
            &[LEASE],
        ),
        grant(
            &lease_scope,
            "coordination.k8s.io",
            "leases",
            "list",
            &[LEASE],
        ),
        grant(
            &lease_scope,
            "coordination.k8s.io",
            "leases",
            "watch",
            &[LEASE],
        ),
        grant(&lease_scope, "coordination.k8s.io", "leases", "create", &[]),
        grant(&lease_scope, "", "configmaps", "get", &[ACCOUNT_MAPPING]),
        grant(&lease_scope, "", "configmaps", "list", &[ACCOUNT_MAPPING]),
        grant(&lease_scope, "", "configmaps", "watch", &[ACCOUNT_MAPPING]),
    ]
    .into_iter()
    // The default cluster name, read where the operator holds cluster-scoped rules.
    .chain(
        (scope == "ClusterRole").then(|| grant(scope, "", "namespaces", "get", &["kube-system"])),
    )
    .collect()
}

/// The rendered Roles and ClusterRoles grant exactly `expected_grants(scope)`.
fn check_grants(rendered: &Rendered, scope: &str, values: &str) -> Result<()> {
    let granted = rendered_grants(rendered)?;
    let expected = expected_grants(scope);
    let extra: Vec<_> = granted.difference(&expected).collect();
    let missing: Vec<_> = expected.difference(&granted).collect();
    ensure!(
        extra.is_empty() && missing.is_empty(),
        "RBAC rendered with {values}: grants more than the operator uses: {extra:?}; \
         lacks what it uses: {missing:?}"
    );
    Ok(())
}

/// Every Role and ClusterRole is bound to the operator's ServiceAccount, and nothing else is.
fn check_bindings(rendered: &Rendered) -> Result<()> {
    let mut roles: BTreeSet<(String, String, String)> = BTreeSet::new();
    for role in operator_cluster_roles(rendered)? {
        roles.insert((
            "ClusterRole".into(),
            String::new(),
            role.metadata.name.unwrap_or_default(),
        ));
    }
    for role in rendered.all::<Role>("Role")? {
        roles.insert((
            "Role".into(),
            role.metadata.namespace.unwrap_or_default(),
            role.metadata.name.unwrap_or_default(),
        ));
    }
    let mut bound = BTreeSet::new();
    let bindings = rendered
        .all::<ClusterRoleBinding>("ClusterRoleBinding")?
        .into_iter()
        .map(|b| (String::new(), b.role_ref, b.subjects))
        .chain(
            rendered
                .all::<RoleBinding>("RoleBinding")?
                .into_iter()
                .map(|b| {
                    (
                        b.metadata.namespace.unwrap_or_default(),
                        b.role_ref,
                        b.subjects,
                    )
                }),
        );
    for (namespace, role_ref, subjects) in bindings {
        let subjects = subjects.unwrap_or_default();
        ensure!(
            subjects.len() == 1
                && subjects[0].kind == "ServiceAccount"
                && subjects[0].name == SERVICE_ACCOUNT
                && subjects[0].namespace.as_deref() == Some(NAMESPACE),
            "binding of {} must name only ServiceAccount {NAMESPACE}/{SERVICE_ACCOUNT}: {subjects:?}",
            role_ref.name
        );
        bound.insert((role_ref.kind, namespace, role_ref.name));
    }
    ensure!(
        roles == bound,
        "roles {roles:?} and bindings {bound:?} do not match"
    );
    Ok(())
}

#[test]
fn rbac_grants_only_the_verbs_the_operator_uses() -> Result<()> {
    for (extra, scope) in [
        (&[][..], "ClusterRole".to_owned()),
        (
            &["-f", ONE_NAMESPACE_VALUES][..],
            "Role in team-a".to_owned(),
        ),
    ] {
        let rendered = Rendered::new(extra)?;
        check_grants(&rendered, &scope, &format!("values {extra:?}"))?;
        check_bindings(&rendered)?;

        // The Lease the operator elects on is the one the Role names, in the Role's namespace.
        let config = operator_config(operator_container(&rendered.deployment()?)?)?;
        assert!(config.leader_election);
        assert_eq!(config.lease_name, LEASE);
        assert_eq!(config.lease_namespace.as_deref(), Some(NAMESPACE));
    }
    Ok(())
}

/// The tenant roles: aggregated into admin and edit (every verb on the objects) and view (read),
/// nothing on status, nothing else; on by default, off with tenantRoles.enabled=false and in
/// one-namespace mode, and bound by nothing the chart renders (the platform team's RoleBindings
/// to the built-in roles do that).
#[test]
fn tenant_roles_aggregate_into_the_built_in_roles_and_grant_nothing_on_status() -> Result<()> {
    let aggregated = |role: &ClusterRole| -> BTreeSet<String> {
        role.metadata
            .labels
            .iter()
            .flatten()
            .filter(|(k, v)| {
                k.starts_with("rbac.authorization.k8s.io/aggregate-to-") && *v == "true"
            })
            .map(|(k, _)| {
                k.trim_start_matches("rbac.authorization.k8s.io/aggregate-to-")
                    .to_owned()
            })
            .collect()
    };
    {
        let rendered = Rendered::new(&[])?;
        let what = "default values";
        let tenant: Vec<ClusterRole> = rendered
            .all::<ClusterRole>("ClusterRole")?
            .into_iter()
            .filter(is_tenant_role)
            .collect();
        let mut seen = BTreeMap::new();
        for role in &tenant {
            let mut grants = BTreeSet::new();
            for rule in role.rules.as_deref().unwrap_or_default() {
                for group in rule.api_groups.iter().flatten() {
                    for resource in rule.resources.iter().flatten() {
                        for verb in &rule.verbs {
                            grants.insert(format!("{group}/{resource}:{verb}"));
                        }
                    }
                }
                assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none());
            }
            seen.insert(aggregated(role), grants);
        }
        let verbs = |verbs: &[&str]| -> BTreeSet<String> {
            verbs
                .iter()
                .map(|v| format!("rekognition.aws-operators.dev/rekognitioncollections:{v}"))
                .collect()
        };
        let expected: BTreeMap<BTreeSet<String>, BTreeSet<String>> = [
            (
                ["admin".to_owned(), "edit".to_owned()].into(),
                verbs(&[
                    "get",
                    "list",
                    "watch",
                    "create",
                    "update",
                    "patch",
                    "delete",
                    "deletecollection",
                ]),
            ),
            (["view".to_owned()].into(), verbs(&["get", "list", "watch"])),
        ]
        .into();
        assert_eq!(seen, expected, "tenant roles with {what}");
    }
    let off = Rendered::new(&["--set", "tenantRoles.enabled=false"])?;
    assert!(
        !off.all::<ClusterRole>("ClusterRole")?
            .iter()
            .any(is_tenant_role),
        "tenantRoles.enabled=false still renders tenant roles"
    );
    Ok(())
}

#[test]
fn one_namespace_mode_renders_no_cluster_scoped_rbac() -> Result<()> {
    let rendered = Rendered::new(&["-f", ONE_NAMESPACE_VALUES])?;
    let kinds = rendered.kinds();
    for cluster_scoped in ["ClusterRole", "ClusterRoleBinding"] {
        assert!(
            !kinds.contains(&cluster_scoped),
            "one-namespace mode renders a {cluster_scoped} (tenant roles included): {kinds:?}"
        );
    }
    // Every object rendered is namespaced, in the release namespace or the watched one, but for
    // the tenancy admission policy and its binding, which only ever match RekognitionCollections.
    let admission = [
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ];
    for doc in rendered
        .docs
        .iter()
        .filter(|d| !admission.contains(&d["kind"].as_str().unwrap_or_default()))
    {
        let namespace = doc["metadata"]["namespace"].as_str();
        assert!(
            matches!(namespace, Some(NAMESPACE | "team-a")),
            "{} {} is in namespace {namespace:?}",
            doc["kind"].as_str().unwrap_or("?"),
            doc["metadata"]["name"].as_str().unwrap_or("?")
        );
    }
    let roles: Vec<Role> = rendered.all("Role")?;
    assert!(
        roles
            .iter()
            .any(|role| role.metadata.namespace.as_deref() == Some("team-a")),
        "no Role in the watched namespace"
    );

    let container = operator_container(&rendered.deployment()?)?.clone();
    let config = operator_config(&container)?;
    assert_eq!(config.namespace.as_deref(), Some("team-a"));
    assert_eq!(config.region.as_deref(), Some("eu-west-1"));

    // The default watches every namespace with a ClusterRole.
    let default = Rendered::new(&[])?;
    assert!(default.kinds().contains(&"ClusterRole"));
    let config = operator_config(operator_container(&default.deployment()?)?)?;
    assert_eq!(config.namespace, None);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// the Deployment

#[test]
fn pods_meet_the_restricted_pod_security_standard() -> Result<()> {
    for (_, extra) in SNAPSHOTS {
        let rendered = Rendered::new(extra)?;
        let deployment = rendered.deployment()?;
        let pod = pod_spec(&deployment)?;

        let security = pod
            .security_context
            .as_ref()
            .context("no pod securityContext")?;
        assert_eq!(security.run_as_non_root, Some(true), "runAsNonRoot");
        assert_eq!(security.run_as_user, Some(65532), "runAsUser");
        assert_eq!(security.run_as_group, Some(65532), "runAsGroup");
        assert_eq!(security.fs_group, Some(65532), "fsGroup");
        assert_eq!(
            security.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
            Some("RuntimeDefault"),
            "seccompProfile"
        );
        assert_ne!(pod.host_network, Some(true), "hostNetwork");
        assert_ne!(pod.host_pid, Some(true), "hostPID");
        assert_ne!(pod.host_ipc, Some(true), "hostIPC");
        assert!(
            pod.volumes
                .iter()
                .flatten()
                .all(|volume| volume.host_path.is_none()),
            "hostPath volume"
        );

        let containers = pod
            .containers
            .iter()
            .chain(pod.init_containers.iter().flatten());
        for container in containers {
            let name = &container.name;
            let security = container
                .security_context
                .as_ref()
                .with_context(|| format!("container {name} has no securityContext"))?;
            assert_eq!(security.allow_privilege_escalation, Some(false), "{name}");
            assert_eq!(security.read_only_root_filesystem, Some(true), "{name}");
            assert_ne!(security.privileged, Some(true), "{name}");
            assert_ne!(security.run_as_user, Some(0), "{name}");
            assert_ne!(security.run_as_non_root, Some(false), "{name}");
            let capabilities = security
                .capabilities
                .as_ref()
                .with_context(|| format!("container {name} drops no capabilities"))?;
            assert_eq!(
                capabilities.drop.as_deref(),
                Some(&["ALL".to_owned()][..]),
                "{name}"
            );
            assert!(
                capabilities.add.as_deref().unwrap_or_default().is_empty(),
                "{name}"
            );
            assert!(
                container
                    .ports
                    .iter()
                    .flatten()
                    .all(|p| p.host_port.is_none()),
                "{name} uses a hostPort"
            );
        }

        // The token is mounted by the pod only; the ServiceAccount does not automount it.
        assert_eq!(pod.automount_service_account_token, Some(true));
        assert_eq!(pod.service_account_name.as_deref(), Some(SERVICE_ACCOUNT));
        let account: ServiceAccount = rendered.one("ServiceAccount")?;
        assert_eq!(account.automount_service_account_token, Some(false));
    }
    Ok(())
}

#[test]
fn deployment_runs_the_operator_as_configured() -> Result<()> {
    let rendered = Rendered::new(&[])?;
    let deployment = rendered.deployment()?;
    let spec = deployment.spec.as_ref().context("no spec")?;
    assert_eq!(spec.replicas, Some(2));
    let strategy = spec.strategy.as_ref().context("no strategy")?;
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));

    let pod = pod_spec(&deployment)?;
    assert_eq!(pod.termination_grace_period_seconds, Some(30));
    let spread = pod
        .topology_spread_constraints
        .as_deref()
        .unwrap_or_default();
    assert!(
        spread
            .iter()
            .any(|c| c.topology_key == "kubernetes.io/hostname"
                && c.when_unsatisfiable == "ScheduleAnyway"
                && c.label_selector.is_some()),
        "no soft spread across nodes: {spread:?}"
    );

    let container = operator_container(&deployment)?;
    assert_eq!(
        container.image.as_deref(),
        Some("ghcr.io/aws-operators/rekognition-operator:0.1.0")
    );
    let config = operator_config(container)?;
    assert!(config.leader_election, "two replicas need leader election");
    assert_eq!(
        config.metrics_addr,
        Listen::On("0.0.0.0:8080".parse().expect("address"))
    );
    assert_eq!(config.log_format, Some(LogFormat::Json));
    assert_eq!(config.resync_interval.as_secs(), 600);
    assert_eq!(config.concurrency, 16);
    assert_eq!(config.aws_rate, 4.5);
    assert_eq!(config.aws_rate_ceiling, 100.0);
    assert_eq!(config.aws_burst, 4);
    assert!(
        config.shutdown_timeout.as_secs() < 30,
        "in-flight work must finish within the termination grace period"
    );
    assert_eq!(env_field_ref(container, "POD_NAME"), Some("metadata.name"));
    assert_eq!(
        env_field_ref(container, "POD_NAMESPACE"),
        Some("metadata.namespace")
    );
    assert_eq!(env_value(container, "AWS_REGION"), None);

    let port = container
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("http-metrics"))
        .context("no http-metrics port")?;
    assert_eq!(port.container_port, 8080);
    for (probe, path) in [
        (&container.liveness_probe, "/livez"),
        (&container.readiness_probe, "/readyz"),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .with_context(|| format!("no {path} probe"))?;
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(
            serde_json::to_value(&get.port)?,
            serde_json::json!("http-metrics")
        );
    }

    let resources = container.resources.as_ref().context("no resources")?;
    let quantity = |map: &Option<std::collections::BTreeMap<String, _>>, key: &str| {
        map.as_ref()
            .and_then(|m| m.get(key))
            .map(|q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| q.0.clone())
    };
    assert_eq!(quantity(&resources.requests, "cpu").as_deref(), Some("20m"));
    // Sized from the fleet benchmark: 10,000 objects fit the request.
    assert_eq!(
        quantity(&resources.requests, "memory").as_deref(),
        Some("64Mi")
    );
    assert_eq!(
        quantity(&resources.limits, "memory").as_deref(),
        Some("128Mi")
    );
    assert_eq!(quantity(&resources.limits, "cpu"), None);

    assert_eq!(config.account_mapping.as_deref(), Some(ACCOUNT_MAPPING));
    assert_eq!(config.account_mapping_namespace.as_deref(), Some(NAMESPACE));
    assert!(!config.require_mapping);

    // The optional endpoint reaches the operator, and its value passes the operator's check.
    let rendered = Rendered::new(&["--set", "aws.endpointUrl=https://rekognition.example"])?;
    let container = operator_container(&rendered.deployment()?)?.clone();
    assert_eq!(
        operator_config(&container)?.aws_endpoint_url.as_deref(),
        Some("https://rekognition.example")
    );
    Ok(())
}

#[test]
fn a_single_replica_without_leader_election_is_replaced_not_rolled() -> Result<()> {
    let rendered = Rendered::new(&["--set", "replicas=1"])?;
    let deployment = rendered.deployment()?;
    let strategy = deployment
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .context("no strategy")?;
    assert_eq!(strategy.type_.as_deref(), Some("Recreate"));
    assert!(!operator_config(operator_container(&deployment)?)?.leader_election);
    assert!(
        rendered_grants(&rendered)?
            .iter()
            .all(|(_, group, ..)| group != "coordination.k8s.io"),
        "Lease RBAC without leader election"
    );

    // leaderElection.enabled turns it on for one replica, with the Lease RBAC.
    let rendered = Rendered::new(&["--set", "replicas=1,leaderElection.enabled=true"])?;
    let deployment = rendered.deployment()?;
    assert!(operator_config(operator_container(&deployment)?)?.leader_election);
    check_grants(
        &rendered,
        "ClusterRole",
        "--set replicas=1,leaderElection.enabled=true",
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// optional resources

#[test]
fn service_monitor_and_network_policy_render_only_when_enabled() -> Result<()> {
    let default = Rendered::new(&[])?;
    let kinds = default.kinds();
    for kind in ["ServiceMonitor", "NetworkPolicy"] {
        assert!(!kinds.contains(&kind), "{kind} rendered by default");
    }
    for kind in ["Service", "PodDisruptionBudget", "ServiceAccount"] {
        assert!(kinds.contains(&kind), "{kind} missing by default");
    }

    let rendered = Rendered::new(&[
        "--set",
        "metrics.serviceMonitor.enabled=true,networkPolicy.enabled=true",
    ])?;
    let monitor = rendered
        .docs
        .iter()
        .find(|doc| doc["kind"].as_str() == Some("ServiceMonitor"))
        .context("no ServiceMonitor")?;
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"].as_str(),
        Some("http-metrics")
    );

    let policy: NetworkPolicy = rendered.one("NetworkPolicy")?;
    let spec = policy.spec.context("no NetworkPolicy spec")?;
    let ingress_ports: BTreeSet<String> = spec
        .ingress
        .iter()
        .flatten()
        .flat_map(|rule| rule.ports.iter().flatten())
        .map(|p| serde_json::to_string(&p.port).unwrap_or_default())
        .collect();
    assert_eq!(ingress_ports, BTreeSet::from(["8080".to_owned()]));
    let egress: BTreeSet<(String, String)> = spec
        .egress
        .iter()
        .flatten()
        .flat_map(|rule| rule.ports.iter().flatten())
        .map(|p| {
            (
                serde_json::to_string(&p.port).unwrap_or_default(),
                p.protocol.clone().unwrap_or_default(),
            )
        })
        .collect();
    for (port, protocol) in [
        ("53", "UDP"),
        ("53", "TCP"),
        ("443", "TCP"),
        ("6443", "TCP"),
    ] {
        assert!(
            egress.contains(&(port.to_owned(), protocol.to_owned())),
            "egress to {port}/{protocol} missing: {egress:?}"
        );
    }
    Ok(())
}

#[test]
fn the_account_mapping_values_become_the_configmap_the_operator_reads() -> Result<()> {
    use k8s_openapi::api::core::v1::ConfigMap;
    use rekognition_operator::core::accounts::{MAPPING_KEY, Mapping};
    let rendered = Rendered::new(&["-f", ACCOUNTS_VALUES])?;
    let config = operator_config(operator_container(&rendered.deployment()?)?)?;
    assert!(config.require_mapping);
    let configmap: ConfigMap = rendered
        .all::<ConfigMap>("ConfigMap")?
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == config.account_mapping.as_deref())
        .context("the ConfigMap the operator is told to watch")?;
    let text = configmap
        .data
        .as_ref()
        .and_then(|d| d.get(MAPPING_KEY))
        .context("mapping.yaml")?;
    let mapping = Mapping::parse(text).map_err(anyhow::Error::msg)?;
    let team_a = &mapping.namespaces["team-a"];
    assert_eq!(
        team_a.role_arn,
        "arn:aws:iam::111122223333:role/rekognition-team-a"
    );
    assert_eq!(
        team_a.external_id.as_deref(),
        Some("rekognition-operator-team-a")
    );
    assert_eq!(
        mapping.namespaces["team-b"].role_arn,
        "arn:aws:iam::444455556666:role/rekognition-team-b"
    );

    // Without values: an empty mapping, which the operator reads as "every namespace on its own
    // identity".
    let rendered = Rendered::new(&[])?;
    let configmap: ConfigMap = rendered
        .all::<ConfigMap>("ConfigMap")?
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some(ACCOUNT_MAPPING))
        .context("the default ConfigMap")?;
    let text = configmap
        .data
        .as_ref()
        .and_then(|d| d.get(MAPPING_KEY))
        .context("mapping.yaml")?;
    assert_eq!(Mapping::parse(text), Ok(Mapping::default()));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// versions, packaging, the chart's README

/// Chart.yaml's fields that tie the chart to the operator's release.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChartMeta {
    version: String,
    app_version: String,
}

fn chart_meta() -> Result<ChartMeta> {
    let text = std::fs::read_to_string(root().join(CHART).join("Chart.yaml"))?;
    Ok(serde_yaml::from_str(&text)?)
}

#[test]
fn image_tag_defaults_to_app_version_which_is_the_crate_version() -> Result<()> {
    let meta = chart_meta()?;
    let crate_version = env!("CARGO_PKG_VERSION");
    ensure!(
        meta.app_version == crate_version,
        "Chart.yaml appVersion {} differs from the crate version {crate_version}: a release \
         bumps both (and the chart's version)",
        meta.app_version
    );
    let values: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(
        root().join(CHART).join("values.yaml"),
    )?)?;
    assert_eq!(
        values["image"]["tag"].as_str(),
        Some(""),
        "image.tag must default to empty, so that it follows appVersion"
    );
    let container = operator_container(&Rendered::new(&[])?.deployment()?)?.clone();
    let image = container.image.context("no image")?;
    assert_eq!(
        image.rsplit_once(':').map(|(_, tag)| tag),
        Some(crate_version),
        "{image}"
    );

    // An explicit tag wins.
    let container =
        operator_container(&Rendered::new(&["--set-string", "image.tag=9.9.9"])?.deployment()?)?
            .clone();
    assert_eq!(
        container.image.as_deref(),
        Some("ghcr.io/aws-operators/rekognition-operator:9.9.9")
    );
    Ok(())
}

#[test]
fn chart_packages_with_helm_package() -> Result<()> {
    let meta = chart_meta()?;
    let dir = tempfile::tempdir()?;
    let destination = dir.path().to_string_lossy().into_owned();
    let output = helm(&["package", CHART, "--destination", &destination])?;
    ensure!(
        output.status.success(),
        "helm package failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let package = dir
        .path()
        .join(format!("rekognition-operator-{}.tgz", meta.version));
    ensure!(
        package.is_file(),
        "helm package did not write {}",
        package.display()
    );

    // The package installs what the directory does: it renders the same manifests.
    let from_package = helm(&[
        "template",
        "rekognition-operator",
        &package.to_string_lossy(),
        "--namespace",
        NAMESPACE,
    ])?;
    ensure!(from_package.status.success(), "the package does not render");
    assert_eq!(String::from_utf8(from_package.stdout)?, template(&[])?);
    Ok(())
}

/// One row of the chart README's values table.
struct ValueRow {
    key: String,
    default: String,
    description: String,
}

/// The documented values of values.yaml: each key preceded by a `# -- ` comment (its first
/// paragraph is the description) gets a row with its whole default, and leaves below it get none;
/// any other leaf gets a row without a description (which the test refuses).
fn value_rows(values_yaml: &str) -> Result<Vec<ValueRow>> {
    let defaults: serde_yaml::Value = serde_yaml::from_str(values_yaml)?;
    let mut rows = Vec::new();
    // (indentation, key, documented as a whole)
    let mut stack: Vec<(usize, String, bool)> = Vec::new();
    let mut doc: Option<Vec<String>> = None;
    let mut paragraph_ended = false;
    for line in values_yaml.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some(text) = trimmed.strip_prefix("# --") {
            doc = Some(vec![text.trim().to_owned()]);
            paragraph_ended = false;
            continue;
        }
        if let Some(text) = trimmed.strip_prefix('#') {
            if let Some(lines) = doc.as_mut() {
                let text = text.trim();
                if text.is_empty() {
                    paragraph_ended = true;
                } else if !paragraph_ended {
                    lines.push(text.to_owned());
                }
            }
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('-') {
            continue;
        }
        let Some((key, rest)) = trimmed.split_once(':') else {
            continue;
        };
        while stack.last().is_some_and(|(i, ..)| *i >= indent) {
            stack.pop();
        }
        let under_documented = stack.iter().any(|(.., documented)| *documented);
        let path: Vec<&str> = stack
            .iter()
            .map(|(_, k, _)| k.as_str())
            .chain([key])
            .collect();
        let description = doc.take().map(|lines| lines.join(" "));
        let documented = description.is_some();
        if !under_documented && (documented || !rest.trim().is_empty()) {
            let mut default = &defaults;
            for part in &path {
                default = &default[*part];
            }
            rows.push(ValueRow {
                key: path.join("."),
                default: serde_json::to_string(default)?,
                description: description.unwrap_or_default(),
            });
        }
        stack.push((indent, key.to_owned(), documented));
    }
    Ok(rows)
}

fn values_table(rows: &[ValueRow]) -> String {
    let cell = |text: &str| text.replace('|', "\\|");
    let mut table = String::from("| key | default | description |\n|---|---|---|\n");
    for row in rows {
        table.push_str(&format!(
            "| `{}` | `{}` | {} |\n",
            row.key,
            cell(&row.default),
            cell(&row.description)
        ));
    }
    table
}

const TABLE_START: &str =
    "<!-- values table: generated from values.yaml by tests/package/chart.rs -->\n";
const TABLE_END: &str = "<!-- end of values table -->\n";

#[test]
fn chart_readme_values_table_matches_values_yaml() -> Result<()> {
    let values = std::fs::read_to_string(root().join(CHART).join("values.yaml"))?;
    let rows = value_rows(&values)?;
    let undocumented: Vec<&str> = rows
        .iter()
        .filter(|row| row.description.is_empty())
        .map(|row| row.key.as_str())
        .collect();
    ensure!(
        undocumented.is_empty(),
        "values.yaml keys without a `# -- ` description: {undocumented:?}"
    );
    let table = values_table(&rows);

    let path = root().join(CHART).join("README.md");
    let readme =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let (before, rest) = readme
        .split_once(TABLE_START)
        .context("the chart README has no values table start marker")?;
    let (committed, after) = rest
        .split_once(TABLE_END)
        .context("the chart README has no values table end marker")?;
    if committed == table {
        return Ok(());
    }
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(
            &path,
            format!("{before}{TABLE_START}{table}{TABLE_END}{after}"),
        )?;
        eprintln!("rewrote the values table of {CHART}/README.md (UPDATE_SNAPSHOTS=1)");
        return Ok(());
    }
    bail!(
        "{CHART}/README.md's values table differs from values.yaml; run \
         UPDATE_SNAPSHOTS=1 cargo test --test package chart:: and review the change"
    )
}
