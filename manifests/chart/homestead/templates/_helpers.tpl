{{/* Chart name. */}}
{{- define "homestead.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name used for every object. */}}
{{- define "homestead.fullname" -}}
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

{{/* Namespace everything is installed into. */}}
{{- define "homestead.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{- define "homestead.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "homestead.labels" -}}
helm.sh/chart: {{ include "homestead.chart" . }}
{{ include "homestead.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "homestead.selectorLabels" -}}
app.kubernetes.io/name: {{ include "homestead.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "homestead.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "homestead.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Name of both webhook configurations (one Mutating, one Validating). */}}
{{- define "homestead.webhookConfigurationName" -}}
{{- include "homestead.fullname" . }}
{{- end }}

{{/* Name of the Secret holding the serving certificate. */}}
{{- define "homestead.certSecretName" -}}
{{- default (printf "%s-webhook-tls" (include "homestead.fullname" .)) .Values.certs.secretName }}
{{- end }}

{{- define "homestead.leaseName" -}}
{{- default (printf "%s-leader" (include "homestead.fullname" .)) .Values.controller.leaseName }}
{{- end }}

{{/* The `--cert-mode` value the binary takes for certs.mode. */}}
{{- define "homestead.certMode" -}}
{{- $modes := dict "self" "self" "certManager" "cert-manager" "external" "external" }}
{{- if not (hasKey $modes .Values.certs.mode) }}
{{- fail (printf "certs.mode must be one of self, certManager, external (got %q)" .Values.certs.mode) }}
{{- end }}
{{- get $modes .Values.certs.mode }}
{{- end }}

{{/* caBundle for external mode: accepts PEM or base64 of PEM; renders base64. */}}
{{- define "homestead.externalCaBundle" -}}
{{- $ca := required "certs.external.caBundle is required when certs.mode is external" .Values.certs.external.caBundle }}
{{- if contains "-----BEGIN" $ca }}{{ $ca | b64enc }}{{ else }}{{ $ca | replace "\n" "" }}{{ end }}
{{- end }}

{{/* ClusterRoles homestead binds in managed namespaces: the config's three (default edit) plus extras. */}}
{{- define "homestead.bindableClusterRoles" -}}
{{- $rbac := dig "controller" "rbac" (dict) .Values.config }}
{{- $roles := list (default "edit" $rbac.userClusterRole) (default "edit" $rbac.sessionMemberClusterRole) (default "edit" $rbac.workflowClusterRole) }}
{{- $roles = concat $roles .Values.rbac.extraBindableClusterRoles | uniq | sortAlpha }}
{{- toJson $roles }}
{{- end }}

{{/* Namespaces the webhooks never select. */}}
{{- define "homestead.excludedNamespaces" -}}
{{- $ns := list "kube-system" (include "homestead.namespace" .) }}
{{- $ns = concat $ns .Values.webhook.excludedNamespaces | uniq }}
{{- toJson $ns }}
{{- end }}

{{/* Checks values that would make an unsafe or broken install. */}}
{{- define "homestead.validate" -}}
{{- $_ := include "homestead.certMode" . }}
{{- if and (not .Values.webhook.inCluster) (not .Values.webhook.url) }}
{{- fail "webhook.inCluster=false needs webhook.url: nothing would serve the webhooks" }}
{{- end }}
{{- if and .Values.webhook.url (not (hasPrefix "https://" .Values.webhook.url)) }}
{{- fail (printf "webhook.url must start with https:// (got %q)" .Values.webhook.url) }}
{{- end }}
{{- if not (has .Values.webhook.failurePolicy (list "Fail" "Ignore")) }}
{{- fail "webhook.failurePolicy must be Fail or Ignore" }}
{{- end }}
{{- $t := int .Values.webhook.timeoutSeconds }}
{{- if or (lt $t 1) (gt $t 30) }}
{{- fail "webhook.timeoutSeconds must be between 1 and 30" }}
{{- end }}
{{- if and (eq .Values.certs.mode "external") (not .Values.certs.secretName) .Values.webhook.inCluster }}
{{- fail "certs.secretName (an existing Secret with tls.crt and tls.key) is required when certs.mode is external" }}
{{- end }}
{{- end }}
