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

{{/* The controller's leader-election Lease in homestead's namespace, one per release. */}}
{{- define "homestead.leaseName" -}}
{{- printf "%s-controller" (include "homestead.fullname" .) | trunc 63 | trimSuffix "-" }}
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
{{- $projectRoles := dig "projects" "roles" (dict "admin" (dict "clusterRole" "admin") "edit" (dict "clusterRole" "edit") "view" (dict "clusterRole" "view")) .Values.config }}
{{- range $_, $role := $projectRoles }}
{{- $roles = append $roles $role.clusterRole }}
{{- end }}
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

{{/* Environment of the homestead container and its init container. */}}
{{- define "homestead.env" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: HOMESTEAD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: HOMESTEAD_LEASE_NAME
  value: {{ include "homestead.leaseName" . | quote }}
- name: HOMESTEAD_CONFIG
  value: /etc/homestead/config/config.yaml
- name: HOMESTEAD_LISTEN
  value: "0.0.0.0:{{ .Values.webhook.port }}"
- name: HOMESTEAD_ADMIN_LISTEN
  value: "0.0.0.0:{{ .Values.admin.port }}"
- name: HOMESTEAD_TLS_CERT
  value: /etc/homestead/tls/tls.crt
- name: HOMESTEAD_TLS_KEY
  value: /etc/homestead/tls/tls.key
- name: RUST_LOG
  value: {{ .Values.logLevel | quote }}
- name: HOMESTEAD_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: HOMESTEAD_NO_CONTROLLER
  value: {{ not .Values.controller.enabled | quote }}
- name: HOMESTEAD_CERT_MODE
  value: {{ include "homestead.certMode" . | quote }}
- name: HOMESTEAD_CERT_SECRET
  value: {{ include "homestead.certSecretName" . | quote }}
- name: HOMESTEAD_CA_VALIDITY
  value: {{ .Values.certs.self.caValidity | quote }}
- name: HOMESTEAD_CERT_VALIDITY
  value: {{ .Values.certs.self.certValidity | quote }}
{{- if eq .Values.certs.mode "external" }}
- name: HOMESTEAD_CA_BUNDLE
  value: {{ include "homestead.externalCaBundle" . | quote }}
{{- end }}
- name: HOMESTEAD_WEBHOOK_CONFIGURATION
  value: {{ include "homestead.webhookConfigurationName" . | quote }}
{{- if .Values.webhook.url }}
- name: HOMESTEAD_WEBHOOK_URL
  value: {{ .Values.webhook.url | quote }}
{{- else }}
- name: HOMESTEAD_WEBHOOK_SERVICE
  value: {{ (include "homestead.fullname" .) | quote }}
- name: HOMESTEAD_WEBHOOK_SERVICE_PORT
  value: {{ .Values.webhook.servicePort | quote }}
{{- end }}
- name: HOMESTEAD_WEBHOOK_EXCLUDED_NAMESPACES
  value: {{ include "homestead.excludedNamespaces" . | fromJsonArray | join "," | quote }}
- name: HOMESTEAD_WEBHOOK_FAILURE_POLICY
  value: {{ .Values.webhook.failurePolicy | quote }}
- name: HOMESTEAD_WEBHOOK_TIMEOUT_SECONDS
  value: {{ .Values.webhook.timeoutSeconds | quote }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
