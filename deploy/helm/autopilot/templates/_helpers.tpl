{{/* Labels on every object the chart owns (the pods keep the base's labels only). */}}
{{- define "autopilot.labels" -}}
app.kubernetes.io/part-of: autopilot
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The image, as repository:tag. */}}
{{- define "autopilot.image" -}}
{{ printf "%s:%s" .Values.image.repository .Values.image.tag }}
{{- end }}

{{/* Where Temporal and Prometheus are: the same for the worker and the watchers. */}}
{{- define "autopilot.temporalEnv" -}}
- name: TEMPORAL_ADDRESS
  value: {{ .Values.temporal.address | quote }}
- name: AUTOPILOT_TEMPORAL_NAMESPACE
  value: {{ .Values.temporal.namespace | quote }}
{{- if .Values.temporal.tls }}
- name: AUTOPILOT_TEMPORAL_TLS
  value: "true"
{{- end }}
{{- with .Values.temporal.apiKeySecret.name }}
- name: AUTOPILOT_TEMPORAL_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $.Values.temporal.apiKeySecret.key | quote }}
{{- end }}
- name: PROMETHEUS_URL
  value: {{ .Values.prometheusUrl | quote }}
{{- end }}

{{/* Scheduling and pull secrets of one Deployment's pods; the argument is its values. */}}
{{- define "autopilot.podPlacement" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
