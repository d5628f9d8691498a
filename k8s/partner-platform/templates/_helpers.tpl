{{/* Names and labels. A service's objects are named <release>-<service>. */}}

{{- define "pp.name" -}}
{{- $root := index . 0 -}}{{- $service := index . 1 -}}
{{- printf "%s-%s" $root.Release.Name $service | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pp.selector" -}}
{{- $root := index . 0 -}}{{- $service := index . 1 -}}
app.kubernetes.io/name: partner-platform
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ $service }}
{{- end -}}

{{- define "pp.labels" -}}
{{- $root := index . 0 -}}
{{ include "pp.selector" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version }}
{{- end -}}

{{/* The environment prefix of a service's settings: user-profile → USER_PROFILE_ */}}
{{- define "pp.prefix" -}}
{{- printf "%s_" (. | upper | replace "-" "_") -}}
{{- end -}}

{{/* In-cluster URL of a service: (dict "root" $ "name" "auth") */}}
{{- define "pp.url" -}}
{{- $svc := index .root.Values.services .name -}}
{{- printf "http://%s:%v" (include "pp.name" (list .root .name)) $svc.port -}}
{{- end -}}

{{- define "pp.secretName" -}}
{{- default (printf "%s-secrets" .Release.Name) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "pp.image" -}}
{{- $root := index . 0 -}}{{- $service := index . 1 -}}
{{- printf "%s/%s:%s" $root.Values.image.repository $service (default $root.Chart.AppVersion $root.Values.image.tag) -}}
{{- end -}}

{{- define "pp.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-partner-platform" .Release.Name) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* A secret key as an environment variable. */}}
{{- define "pp.secretEnv" -}}
{{- $root := index . 0 -}}{{- $var := index . 1 -}}{{- $key := index . 2 -}}
- name: {{ $var }}
  valueFrom:
    secretKeyRef:
      name: {{ include "pp.secretName" $root }}
      key: {{ $key }}
{{- end -}}

{{/* Environment every container of a service gets, the migration Job's included. */}}
{{- define "pp.baseEnv" -}}
{{- $root := index . 0 -}}{{- $name := index . 1 -}}{{- $svc := index . 2 -}}
- name: RUST_LOG
  value: {{ $root.Values.logLevel | quote }}
- name: LOG_FORMAT
  value: json
{{- if $svc.database }}
{{ include "pp.secretEnv" (list $root (printf "%sDATABASE__URL" (include "pp.prefix" $name)) (printf "%s-database-url" $name)) }}
{{- end }}
{{- if $root.Values.trustedCa.secretKey }}
- name: PLATFORM_BUS__TLS_CA_FILE
  value: /etc/platform-tls/ca.pem
- name: PLATFORM_CACHE__TLS_CA_FILE
  value: /etc/platform-tls/ca.pem
{{- end }}
{{- end -}}

{{/* The trusted CAs as a file (trustedCa.secretKey): a volume mount, then the volume. */}}
{{- define "pp.trustedCaMount" -}}
{{- if .Values.trustedCa.secretKey -}}
- name: trusted-ca
  mountPath: /etc/platform-tls
  readOnly: true
{{- end }}
{{- end -}}

{{- define "pp.trustedCaVolume" -}}
{{- if .Values.trustedCa.secretKey -}}
- name: trusted-ca
  secret:
    secretName: {{ include "pp.secretName" . }}
    items:
      - key: {{ .Values.trustedCa.secretKey }}
        path: ca.pem
{{- end }}
{{- end -}}

{{/* A service's settings file: what every service needs in a pod, then its `config:`. */}}
{{- define "pp.config" -}}
{{- $root := index . 0 -}}{{- $svc := index . 1 -}}
{{- $base := dict "http" (dict "host" "0.0.0.0" "port" $svc.port "drain_delay" "5s") "bus" (dict "kind" "rabbitmq" "exchange" $root.Values.bus.exchange) -}}
{{- toToml (mergeOverwrite $base (deepCopy (default dict $svc.config))) -}}
{{- end -}}
