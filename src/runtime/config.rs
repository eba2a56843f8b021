//! Command-line flags; each also reads an environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Manages Amazon Rekognition face collections declared as RekognitionCollection objects.
#[derive(Clone, Debug, Parser)]
#[command(name = "rekognition-operator", version, about, long_about = None)]
pub struct Config {
    /// Kubeconfig file; without it the in-cluster service account (or ~/.kube/config) is used.
    #[arg(long, env = "KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Watch only this namespace; all namespaces when unset.
    #[arg(long, env = "REKOGNITION_OPERATOR_NAMESPACE", value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Region for objects that do not set spec.region; defaults to the AWS SDK's region chain.
    #[arg(long, env = "AWS_REGION", value_name = "REGION", value_parser = parse_region)]
    pub region: Option<String>,

    /// Rekognition endpoint URL, for VPC endpoints or the emulator. A URL containing {region}
    /// serves every region; a fixed URL serves the default region only (other regions use AWS's
    /// own endpoints). Applies to Rekognition only; the AWS SDK also honours AWS_ENDPOINT_URL (for
    /// every AWS service) by itself.
    #[arg(long, env = "AWS_ENDPOINT_URL_REKOGNITION", value_name = "URL", value_parser = parse_url)]
    pub aws_endpoint_url: Option<String>,

    /// How often each collection is described again to catch drift (e.g. 10m, 90s).
    #[arg(long, env = "REKOGNITION_OPERATOR_RESYNC_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub resync_interval: Duration,

    /// Also read a steady collection's tags back (ListTagsForResource) at its first resync once
    /// this long has passed since they were last read (e.g. 1h), so tags edited in AWS behind the
    /// operator's back are put right. Off by default: a steady object then costs one
    /// DescribeCollection per resync, and its tags are put right at its next spec change.
    #[arg(long, env = "REKOGNITION_OPERATOR_TAG_CHECK_INTERVAL", value_parser = parse_duration)]
    pub tag_check_interval: Option<Duration>,

    /// Objects reconciled at the same time. A reconcile mostly waits (for the API server, AWS or
    /// the limiter), so throughput follows this number until the API server is the bound: on the
    /// test bed, 16 workers made 204-210 new objects Ready per second, 8 made 186-193, 32 made 211.
    #[arg(long, env = "REKOGNITION_OPERATOR_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,

    /// AWS calls per second that each (region, operation) starts with, shared by all workers
    /// (0 turns the limiter off). The default is just under Rekognition's default quota; from
    /// there the limiter finds the account's real quota (it probes upward while AWS answers and
    /// backs off when AWS throttles).
    #[arg(long, env = "REKOGNITION_OPERATOR_AWS_RATE", default_value_t = 4.5, value_parser = parse_rate)]
    pub aws_rate: f64,

    /// The most AWS calls per second per (region, operation) the limiter ever allows, whatever
    /// AWS grants.
    #[arg(long, env = "REKOGNITION_OPERATOR_AWS_RATE_CEILING", default_value_t = 100.0, value_parser = parse_rate)]
    pub aws_rate_ceiling: f64,

    /// AWS calls per (region, operation) allowed in a burst after a quiet period.
    #[arg(long, env = "REKOGNITION_OPERATOR_AWS_BURST", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub aws_burst: u32,

    /// Time limit for one AWS call.
    #[arg(long, env = "REKOGNITION_OPERATOR_AWS_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub aws_timeout: Duration,

    /// Address of the HTTP endpoints /livez, /readyz and /metrics; "off" disables them.
    #[arg(long, env = "REKOGNITION_OPERATOR_METRICS_ADDR", default_value = "0.0.0.0:8080", value_parser = parse_listen)]
    pub metrics_addr: Listen,

    /// Run with leader election on a coordination.k8s.io Lease, so that of several replicas one
    /// is active.
    #[arg(
        long,
        env = "REKOGNITION_OPERATOR_LEADER_ELECTION",
        default_value_t = false
    )]
    pub leader_election: bool,

    /// Name of the leader election Lease.
    #[arg(
        long,
        env = "REKOGNITION_OPERATOR_LEASE_NAME",
        default_value = "rekognition-operator"
    )]
    pub lease_name: String,

    /// Namespace of the leader election Lease; defaults to POD_NAMESPACE, else "default".
    #[arg(long, env = "REKOGNITION_OPERATOR_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// How long the Lease stays valid without renewal: the longest a failover takes.
    #[arg(long, env = "REKOGNITION_OPERATOR_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,

    /// How long before the Lease expires the leader renews it.
    #[arg(long, env = "REKOGNITION_OPERATOR_LEASE_RENEW_BEFORE", default_value = "5s", value_parser = parse_duration)]
    pub lease_renew_before: Duration,

    /// A leader makes no AWS write once this long has passed since its last successful Lease
    /// renewal (by its own clock): longer than the renewal interval (lease duration minus
    /// renew-before), shorter than the lease duration, so a leader cut off from the API server stops
    /// writing before another replica can take over.
    #[arg(long, env = "REKOGNITION_OPERATOR_LEASE_RENEW_DEADLINE", default_value = "12s", value_parser = parse_duration)]
    pub lease_renew_deadline: Duration,

    /// Tenancy policy: the regions objects may use, comma-separated (default: any).
    #[arg(long, env = "REKOGNITION_OPERATOR_ALLOWED_REGIONS", value_delimiter = ',', value_parser = parse_region)]
    pub allowed_regions: Vec<String>,

    /// Tenancy policy: collection IDs must start with "<namespace>-".
    #[arg(
        long,
        env = "REKOGNITION_OPERATOR_REQUIRE_NAMESPACE_PREFIX",
        default_value_t = false
    )]
    pub require_namespace_prefix: bool,

    /// Tenancy policy: namespaces exempt from --require-namespace-prefix, comma-separated.
    #[arg(
        long,
        env = "REKOGNITION_OPERATOR_PREFIX_EXEMPT_NAMESPACES",
        value_delimiter = ','
    )]
    pub prefix_exempt_namespaces: Vec<String>,

    /// Tenancy policy: which namespaces may use managementPolicy Adopt and ObserveOnly (the powers
    /// that reach collections a namespace did not create): "all", "none", or those with the label
    /// KEY=VALUE.
    #[arg(
        long,
        env = "REKOGNITION_OPERATOR_EXTERNAL_POWERS",
        default_value = "all"
    )]
    pub external_powers: crate::core::policy::ExternalPowers,

    /// Many AWS accounts: the ConfigMap that maps namespaces to IAM roles (key mapping.yaml:
    /// `<namespace>: {roleArn: ..., externalId: ..., formerRoles: [...], formerOwnIdentity: ...}`),
    /// watched so a change applies without a restart. It is the only authority on accounts: a
    /// role pinned in an object's status is used only while this gives it to the namespace.
    /// Unset: every namespace uses the operator's own identity.
    #[arg(
        long,
        env = "REKOGNITION_OPERATOR_ACCOUNT_MAPPING",
        value_name = "CONFIGMAP"
    )]
    pub account_mapping: Option<String>,

    /// Namespace of the --account-mapping ConfigMap; defaults to POD_NAMESPACE, else "default".
    #[arg(long, env = "REKOGNITION_OPERATOR_ACCOUNT_MAPPING_NAMESPACE")]
    pub account_mapping_namespace: Option<String>,

    /// Refuse (PolicyDenied, no AWS call) objects in namespaces the account mapping does not
    /// name, instead of serving them with the operator's own identity.
    #[arg(
        long,
        env = "REKOGNITION_OPERATOR_REQUIRE_MAPPING",
        default_value_t = false
    )]
    pub require_mapping: bool,

    /// This cluster installation's name, written into the claim tag of every collection (with the
    /// object's namespace and name), so that objects restored or re-applied here with new UIDs
    /// reclaim their collections. Keep it when a cluster is restored or rebuilt from Git; give
    /// each live cluster its own. Default: the UID of the kube-system namespace, which a
    /// rebuilt cluster does not keep.
    #[arg(long, env = "REKOGNITION_OPERATOR_CLUSTER_NAME", value_name = "NAME", value_parser = parse_cluster_name)]
    pub cluster_name: Option<String>,

    /// Migration: clusters whose collections this one takes over, comma-separated. An object
    /// here takes over the collection that the object of the same namespace and name claims in
    /// one of these clusters; that cluster's operator then leaves it alone (HandedOver).
    #[arg(long, env = "REKOGNITION_OPERATOR_TAKE_OVER_FROM", value_delimiter = ',', value_parser = parse_cluster_name)]
    pub take_over_from: Vec<String>,

    /// How often the orphan inventory looks at each (account, region) in use for collections that
    /// claim this cluster for an object that no longer exists (one ListCollections, then one
    /// ListTagsForResource per collection no live object uses); "off" turns it off.
    #[arg(long, env = "REKOGNITION_OPERATOR_ORPHAN_SCAN_INTERVAL", default_value = "6h", value_parser = parse_optional_duration)]
    pub orphan_scan_interval: Interval,

    /// What the inventory does with an orphan: report it (metric, log line, /orphans), delete it,
    /// or release it (remove the ownership and claim tags).
    #[arg(
        long,
        env = "REKOGNITION_OPERATOR_ORPHAN_POLICY",
        value_enum,
        default_value = "report"
    )]
    pub orphan_policy: crate::core::orphans::OrphanPolicy,

    /// How long this process must have seen a collection orphaned before --orphan-policy delete or
    /// release acts on it: longer than a restore takes to re-apply its objects.
    #[arg(long, env = "REKOGNITION_OPERATOR_ORPHAN_GRACE", default_value = "24h", value_parser = parse_duration)]
    pub orphan_grace: Duration,

    /// The most tag reads per second the inventory makes (beside the rate limiter it shares with
    /// the reconciles).
    #[arg(long, env = "REKOGNITION_OPERATOR_ORPHAN_SCAN_RATE", default_value_t = 1.0, value_parser = parse_rate)]
    pub orphan_scan_rate: f64,

    /// On shutdown, how long in-flight reconciles may take to finish.
    #[arg(long, env = "REKOGNITION_OPERATOR_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Log format; json when running in a cluster, text otherwise.
    #[arg(long, env = "REKOGNITION_OPERATOR_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log level or filter (e.g. info, debug, rekognition_operator=debug). RUST_LOG wins when set.
    #[arg(long, env = "REKOGNITION_OPERATOR_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

/// An optional listen address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    Off,
    On(std::net::SocketAddr),
}

fn parse_listen(value: &str) -> Result<Listen, String> {
    if value == "off" {
        return Ok(Listen::Off);
    }
    value
        .parse()
        .map(Listen::On)
        .map_err(|_| format!("'{value}' is not host:port (e.g. 0.0.0.0:8080) or 'off'"))
}

fn parse_cluster_name(value: &str) -> Result<String, String> {
    crate::core::ownership::valid_cluster_name(value).map(|()| value.to_owned())
}

/// A duration, or "off".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval(pub Option<Duration>);

fn parse_optional_duration(value: &str) -> Result<Interval, String> {
    if value == "off" {
        return Ok(Interval(None));
    }
    parse_duration(value).map(|d| Interval(Some(d)))
}

fn parse_duration(value: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(value)
        .map_err(|e| format!("{e} (use a duration such as 30s, 10m or 1h)"))?;
    if duration.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(duration)
}

fn parse_rate(value: &str) -> Result<f64, String> {
    let rate: f64 = value
        .parse()
        .map_err(|_| format!("'{value}' is not a number"))?;
    if !rate.is_finite() || rate < 0.0 {
        return Err("must be zero (off) or a positive number of calls per second".into());
    }
    Ok(rate)
}

fn parse_region(value: &str) -> Result<String, String> {
    let valid = value.split('-').count() >= 3
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && value.chars().last().is_some_and(|c| c.is_ascii_digit());
    if valid {
        Ok(value.to_owned())
    } else {
        Err(format!("'{value}' is not an AWS region (e.g. us-east-1)"))
    }
}

fn parse_url(value: &str) -> Result<String, String> {
    if (value.starts_with("http://") || value.starts_with("https://")) && value.len() > 8 {
        Ok(value.to_owned())
    } else {
        Err(format!("'{value}' is not an http(s) URL"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("rekognition-operator").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_sensible() {
        let config = parse(&[]).expect("defaults parse");
        assert_eq!(config.resync_interval, Duration::from_secs(600));
        assert_eq!(
            config.tag_check_interval, None,
            "tags checked on spec changes only"
        );
        assert_eq!(
            parse(&["--tag-check-interval", "1h"])
                .expect("parses")
                .tag_check_interval,
            Some(Duration::from_secs(3600))
        );
        assert!(parse(&["--tag-check-interval", "0s"]).is_err());
        assert_eq!(config.concurrency, 16);
        assert!(config.aws_rate > 0.0 && config.aws_rate < 5.0);
    }

    #[test]
    fn bad_values_fail_with_the_flag_named() {
        for (args, flag) in [
            (&["--resync-interval", "soon"][..], "--resync-interval"),
            (&["--concurrency", "0"][..], "--concurrency"),
            (&["--aws-rate=-1"][..], "--aws-rate"),
            (&["--region", "Mars"][..], "--region"),
            (
                &["--aws-endpoint-url", "localhost:4566"][..],
                "--aws-endpoint-url",
            ),
            (&["--log-format", "xml"][..], "--log-format"),
            (&["--metrics-addr", "8080"][..], "--metrics-addr"),
            (&["--lease-duration", "0s"][..], "--lease-duration"),
        ] {
            let error = parse(args).expect_err("must fail").to_string();
            assert!(error.contains(flag), "{error}");
        }
    }
}
