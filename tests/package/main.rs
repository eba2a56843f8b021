//! What ships, checked as users receive it: the Helm chart (lint, renders, schema, RBAC, its
//! whole lifecycle on a real API server), the alerting rules (promtool), the image built without
//! a daemon, the IAM policy and the release pipeline's inputs. One binary for the tier.

#[path = "../support/mod.rs"]
mod support;

mod alerts;
mod chart;
mod helm_lifecycle;
mod iam_policy;
mod image;
mod release;
