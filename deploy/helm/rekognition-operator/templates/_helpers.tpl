{{/*
Chart name, or nameOverride.
*/}}
{{- define "rekognition-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's resources: fullnameOverride, else the release name when it already
contains the chart name, else "<release>-<chart>". Truncated to 63 characters (DNS label).
*/}}
{{- define "rekognition-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"<chart>-<version>" for the helm.sh/chart label.
*/}}
{{- define "rekognition-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels that select the operator pods. They never change across upgrades (a Deployment's selector
is immutable).
*/}}
{{- define "rekognition-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rekognition-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Standard labels on every resource.
*/}}
{{- define "rekognition-operator.labels" -}}
helm.sh/chart: {{ include "rekognition-operator.chart" . }}
{{ include "rekognition-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The operator's ServiceAccount.
*/}}
{{- define "rekognition-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rekognition-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
"true" when the operator runs with leader election: always with more than one replica, and with
one replica when leaderElection.enabled. Empty otherwise (templates test it with `if`).
*/}}
{{- define "rekognition-operator.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) }}true{{- end }}
{{- end }}

{{/*
Name of the leader election Lease.
*/}}
{{- define "rekognition-operator.leaseName" -}}
{{- default (include "rekognition-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
The image reference; the tag defaults to the chart's appVersion.
*/}}
{{- define "rekognition-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
RBAC rules for the watched objects, for the ClusterRole (all namespaces) or the Role (one
namespace).
*/}}
{{- define "rekognition-operator.watchRules" -}}
# The controller's watch cache (list + watch), the cleanup finalizer (patch), and the quorum
# read (get) that a create makes when no write of its reconcile has checked the object is still
# live (the watch cache may be behind a deletion).
- apiGroups:
    - rekognition.aws-operators.dev
  resources:
    - rekognitioncollections
  verbs:
    - get
    - list
    - watch
    - patch
# Status is written by server-side apply.
- apiGroups:
    - rekognition.aws-operators.dev
  resources:
    - rekognitioncollections/status
  verbs:
    - patch
# Events on the objects (created, then patched as they repeat).
- apiGroups:
    - events.k8s.io
  resources:
    - events
  verbs:
    - create
    - patch
{{- end }}

{{/*
Name of the account mapping ConfigMap in the release namespace.
*/}}
{{- define "rekognition-operator.accountMappingName" -}}
{{- printf "%s-accounts" (include "rekognition-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
