{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "qlik-csp-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every resource name: the release name, plus the chart name unless it is in it. */}}
{{- define "qlik-csp-operator.fullname" -}}
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

{{- define "qlik-csp-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "qlik-csp-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "qlik-csp-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "qlik-csp-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "qlik-csp-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "qlik-csp-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "qlik-csp-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The rules the operator needs in each namespace it watches. Mirrors REQUIRED_PERMISSIONS in
src/controller/rbac.rs (scope `Watched`); tests/helm_chart.rs fails when the two disagree in
either direction, with `rbac.rolloutTargets` and `secretPush.watchSecrets` on and off.
*/}}
{{- define "qlik-csp-operator.watchedRules" -}}
# QlikTenant: watched by the tenant controller, read by the others; status written.
- apiGroups: ["qlikops.io"]
  resources: ["qliktenants"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["qlikops.io"]
  resources: ["qliktenants/status"]
  verbs: ["patch"]
# CspEntry: watched; finalizer added/removed by patch; status written.
- apiGroups: ["qlikops.io"]
  resources: ["cspentries"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["qlikops.io"]
  resources: ["cspentries/status"]
  verbs: ["patch"]
# SecretRotation: watched; finalizer by patch; status replaced (resourceVersion-guarded).
- apiGroups: ["qlikops.io"]
  resources: ["secretrotations"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["qlikops.io"]
  resources: ["secretrotations/status"]
  verbs: ["update"]
# SecretPush: watched; status patched. Never read by name nor patched (no finalizer).
- apiGroups: ["qlikops.io"]
  resources: ["secretpushes"]
  verbs: ["list", "watch"]
- apiGroups: ["qlikops.io"]
  resources: ["secretpushes/status"]
  verbs: ["patch"]
# The header ConfigMap: server-side applied (which creates it), and the ones the operator
# manages are watched.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Ingresses serving a header ConfigMap get the header's sha256 annotation.
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["list", "watch", "patch"]
# Header targets (spec.header.targets) that opted in: HTTPRoutes get the header as a
# ResponseHeaderModifier entry (JSON patch), Traefik Middlewares in their CSP fields
# (server-side apply). Never listed or watched; harmless where the CRDs are not installed.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "patch"]
- apiGroups: ["traefik.io"]
  resources: ["middlewares"]
  verbs: ["get", "patch"]
# Tenant credentials and SecretPush sources (read) and rotated credentials (server-side
# applied). The operator reads only the Secrets its resources name.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "patch"]
{{- if .Values.secretPush.watchSecrets }}
# The metadata watch of Secrets labelled qlikops.io/push-source=true (secretPush.watchSecrets).
# RBAC cannot narrow it to the label or to metadata.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["list", "watch"]
{{- end }}
{{- if .Values.rbac.rolloutTargets }}
# Rollout targets of a SecretRotation get a pod-template annotation (rbac.rolloutTargets).
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets"]
  verbs: ["patch"]
{{- end }}
# Events on the operator's resources (events.k8s.io/v1 only).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
