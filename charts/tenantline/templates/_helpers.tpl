{{- define "tenantline.name" -}}
{{ default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tenantline.fullname" -}}
{{- if .Values.fullnameOverride }}{{ .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}{{ $name := include "tenantline.name" . }}
{{- if contains $name .Release.Name }}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{ else }}{{ printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}{{ end }}
{{- end }}
{{- end }}

{{- define "tenantline.serviceAccountName" -}}
{{ default (include "tenantline.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "tenantline.labels" -}}
app.kubernetes.io/name: {{ include "tenantline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "tenantline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tenantline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- /*
Fail before anything is applied when the values cannot work on this cluster. `lookup` answers only
when Helm talks to a cluster (not under `helm template`): the release's own namespace is there
whenever it does.
*/ -}}
{{- define "tenantline.validate" -}}
{{- if lookup "v1" "Namespace" "" .Release.Namespace }}
{{- with .Values.watchNamespace }}
{{- if not (lookup "v1" "Namespace" "" .) }}
{{- fail (printf "watchNamespace: namespace %q does not exist; create it first (nothing was changed)" .) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (not (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor")) }}
{{- fail "serviceMonitor.enabled: this cluster has no ServiceMonitor kind (monitoring.coreos.com/v1, from the Prometheus Operator); install it first or leave serviceMonitor off (nothing was changed)" }}
{{- end }}
{{- end }}
