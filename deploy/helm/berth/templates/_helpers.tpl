{{/* Names and labels. */}}
{{- define "berth.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "berth.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "berth.labels" -}}
{{ include "berth.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Harbor scales core, registry, jobservice and portal apart; Berth is all of them. */}}
{{- define "berth.replicas" -}}
{{- $v := .Values -}}
{{- max (int $v.core.replicas) (int $v.registry.replicas) (int $v.jobservice.replicas) (int $v.portal.replicas) -}}
{{- end -}}

{{/* The host of externalURL. */}}
{{- define "berth.externalHost" -}}
{{- $url := urlParse .Values.externalURL -}}
{{- (split ":" $url.host)._0 -}}
{{- end -}}

{{/* "true" when Berth's own port serves the clients' TLS (a Service exposes it directly). */}}
{{- define "berth.servesExposeTLS" -}}
{{- if and .Values.expose.tls.enabled (ne .Values.expose.type "ingress") -}}true{{- end -}}
{{- end -}}

{{/* "true" when Berth's port speaks TLS at all. */}}
{{- define "berth.tls" -}}
{{- if or (include "berth.servesExposeTLS" .) .Values.internalTLS.enabled -}}true{{- end -}}
{{- end -}}

{{- define "berth.scheme" -}}
{{- if include "berth.tls" . -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}

{{- define "berth.port" -}}
{{- if include "berth.tls" . -}}8443{{- else -}}8080{{- end -}}
{{- end -}}

{{/* The Secret with the clients' certificate (tls.crt, tls.key, maybe ca.crt), if any. */}}
{{- define "berth.exposeTLSSecret" -}}
{{- if .Values.expose.tls.enabled -}}
{{- if eq .Values.expose.tls.certSource "auto" -}}{{ include "berth.fullname" . }}-expose-tls
{{- else if eq .Values.expose.tls.certSource "secret" -}}{{ .Values.expose.tls.secret.secretName }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The Secret with Berth's internal certificate (tls.crt, tls.key, ca.crt). */}}
{{- define "berth.internalTLSSecret" -}}
{{- if eq .Values.internalTLS.certSource "secret" -}}{{ .Values.internalTLS.core.secretName }}
{{- else -}}{{ include "berth.fullname" . }}-internal-tls
{{- end -}}
{{- end -}}

{{/* The Secret whose ca.crt systeminfo/getcert serves, if any. */}}
{{- define "berth.caDownload" -}}
{{- if .Values.caSecretName -}}{{ .Values.caSecretName }}
{{- else if and .Values.expose.tls.enabled (eq .Values.expose.tls.certSource "auto") -}}{{ include "berth.fullname" . }}-expose-tls
{{- end -}}
{{- end -}}

{{/* Whether the pods need the registry volume: the embedded database, or blobs on it. */}}
{{- define "berth.needsVolume" -}}
{{- if or (eq .Values.database.type "internal") (eq .Values.persistence.imageChartStorage.type "filesystem") -}}true{{- end -}}
{{- end -}}

{{- define "berth.claimName" -}}
{{- .Values.persistence.persistentVolumeClaim.registry.existingClaim | default (printf "%s-registry" (include "berth.fullname" .)) -}}
{{- end -}}

{{/* A value kept from the live object on upgrades (lookup), else made anew. */}}
{{- define "berth.kept" -}}
{{- $secret := lookup "v1" "Secret" .root.Release.Namespace .name -}}
{{- if and $secret (hasKey $secret.data .key) -}}
{{- index $secret.data .key | b64dec -}}
{{- end -}}
{{- end -}}

{{/*
Values Berth cannot honour are refused here, with the reason, rather than rendered and
ignored. docs/helm.md lists them.
*/}}
{{- define "berth.validate" -}}
{{- $v := .Values -}}
{{- $replicas := int (include "berth.replicas" .) -}}
{{- if not (has $v.expose.type (list "ingress" "clusterIP" "nodePort" "loadBalancer")) -}}
{{- fail (printf "expose.type must be ingress, clusterIP, nodePort or loadBalancer, not %q" $v.expose.type) -}}
{{- end -}}
{{- if not (has $v.expose.tls.certSource (list "auto" "secret" "none")) -}}
{{- fail (printf "expose.tls.certSource must be auto, secret or none, not %q" $v.expose.tls.certSource) -}}
{{- end -}}
{{- if and $v.expose.tls.enabled (eq $v.expose.tls.certSource "secret") (not $v.expose.tls.secret.secretName) -}}
{{- fail "expose.tls.certSource secret needs expose.tls.secret.secretName" -}}
{{- end -}}
{{- if and $v.expose.tls.enabled (eq $v.expose.tls.certSource "none") (ne $v.expose.type "ingress") -}}
{{- fail "expose.tls.certSource none leaves TLS to an ingress controller: it needs expose.type ingress (or expose.tls.enabled false)" -}}
{{- end -}}
{{- if not $v.externalURL -}}
{{- fail "externalURL is required (the URL clients reach the registry at)" -}}
{{- end -}}
{{- if not (has $v.database.type (list "internal" "external")) -}}
{{- fail (printf "database.type must be internal or external, not %q" $v.database.type) -}}
{{- end -}}
{{- if not (has $v.redis.type (list "internal" "external")) -}}
{{- fail (printf "redis.type must be internal or external, not %q" $v.redis.type) -}}
{{- end -}}
{{- if and (eq $v.database.type "internal") (gt $replicas 1) -}}
{{- fail (printf "%d replicas need database.type external (PostgreSQL): the internal database is SQLite on one pod's volume" $replicas) -}}
{{- end -}}
{{- if and (gt $replicas 1) (eq $v.redis.type "internal") -}}
{{- fail (printf "%d replicas need redis.type external: replicas share caches, login throttles and upload limits through Redis" $replicas) -}}
{{- end -}}
{{- if and (gt $replicas 1) (eq $v.persistence.imageChartStorage.type "filesystem") (ne $v.persistence.persistentVolumeClaim.registry.accessMode "ReadWriteMany") -}}
{{- fail (printf "%d replicas on filesystem storage need persistence.persistentVolumeClaim.registry.accessMode ReadWriteMany (or object storage)" $replicas) -}}
{{- end -}}
{{- if and (eq $v.database.type "internal") (not $v.persistence.enabled) -}}
{{- fail "database.type internal keeps the database on the registry volume: it needs persistence.enabled (or database.type external)" -}}
{{- end -}}
{{- $storage := $v.persistence.imageChartStorage -}}
{{- if not (has $storage.type (list "filesystem" "s3" "gcs" "azure" "swift" "oss")) -}}
{{- fail (printf "persistence.imageChartStorage.type must be filesystem, s3, gcs, azure, swift or oss, not %q" $storage.type) -}}
{{- end -}}
{{- if has $storage.type (list "swift" "oss") -}}
{{- fail (printf "persistence.imageChartStorage.type %s is not in this chart yet: Berth's image is built without the feature opendal that drives Swift and OSS, and its Swift driver takes a token rather than Keystone credentials (docs/helm.md)" $storage.type) -}}
{{- end -}}
{{- if eq $storage.type "s3" -}}
{{- range $key := list "encrypt" "keyid" "skipverify" "storageclass" -}}
{{- $value := index $storage.s3 $key -}}
{{- if and $value (not (and (eq $key "storageclass") (eq (toString $value) "STANDARD"))) -}}
{{- fail (printf "persistence.imageChartStorage.s3.%s is not supported yet (docs/helm.md)" $key) -}}
{{- end -}}
{{- end -}}
{{- if and (hasKey $storage.s3 "v4auth") (not $storage.s3.v4auth) -}}
{{- fail "persistence.imageChartStorage.s3.v4auth false: Berth signs with Signature Version 4 only" -}}
{{- end -}}
{{- end -}}
{{- range $component := $v.proxy.components -}}
{{- if not (has $component (list "core" "jobservice" "registry" "trivy")) -}}
{{- fail (printf "proxy.components: unknown component %q; Harbor's are core, jobservice, registry and trivy" $component) -}}
{{- end -}}
{{- end -}}
{{- if and $v.trace.enabled (ne $v.trace.provider "otel") -}}
{{- fail (printf "trace.provider %q: Berth exports OTLP only (trace.provider otel; Jaeger's collector takes OTLP)" $v.trace.provider) -}}
{{- end -}}
{{- if and $v.trace.enabled $v.trace.otel.compression -}}
{{- fail "trace.otel.compression: Berth's OTLP exporter sends uncompressed; set it false" -}}
{{- end -}}
{{- if $v.internalTLS.enabled -}}
{{- if not (has $v.internalTLS.certSource (list "auto" "manual" "secret")) -}}
{{- fail (printf "internalTLS.certSource must be auto, manual or secret, not %q" $v.internalTLS.certSource) -}}
{{- end -}}
{{- if and (eq $v.internalTLS.certSource "manual") (not (and $v.internalTLS.trustCa $v.internalTLS.core.crt $v.internalTLS.core.key)) -}}
{{- fail "internalTLS.certSource manual needs internalTLS.trustCa, internalTLS.core.crt and internalTLS.core.key" -}}
{{- end -}}
{{- if and (eq $v.internalTLS.certSource "secret") (not $v.internalTLS.core.secretName) -}}
{{- fail "internalTLS.certSource secret needs internalTLS.core.secretName" -}}
{{- end -}}
{{- end -}}
{{- if and $v.core.tokenKey $v.core.secretName -}}
{{- fail "core.tokenKey and core.secretName both name the token signing key: give one" -}}
{{- end -}}
{{- if and $v.core.tokenKey (not (contains "-----BEGIN" $v.core.tokenKey)) -}}
{{- fail "core.tokenKey must be a PEM private key (P-256)" -}}
{{- end -}}
{{- if and $v.core.tokenKey (contains "RSA PRIVATE KEY" $v.core.tokenKey) -}}
{{- fail "core.tokenKey: Berth signs tokens with a P-256 (ES256) key, not RSA; leave it empty to have one made, or give an EC key" -}}
{{- end -}}
{{- if not (has (lower (toString $v.logLevel)) (list "debug" "info" "warning" "warn" "error" "fatal")) -}}
{{- fail (printf "logLevel must be debug, info, warning, error or fatal, not %q" $v.logLevel) -}}
{{- end -}}
{{- end -}}

{{/* The Service in front of the pods: Harbor's expose.<type>.name, or the chart's name behind an ingress. */}}
{{- define "berth.serviceName" -}}
{{- if eq .Values.expose.type "ingress" -}}{{ include "berth.fullname" . }}
{{- else -}}{{ (index .Values.expose .Values.expose.type).name | default (include "berth.fullname" .) }}
{{- end -}}
{{- end -}}

{{/* The Secret Berth's own port takes its certificate from. */}}
{{- define "berth.servingTLSSecret" -}}
{{- if include "berth.servesExposeTLS" . -}}{{ include "berth.exposeTLSSecret" . }}
{{- else if .Values.internalTLS.enabled -}}{{ include "berth.internalTLSSecret" . }}
{{- end -}}
{{- end -}}

{{/* The container's environment: the S3 access key (Berth reads no file for it) and extraEnvVars. */}}
{{- define "berth.env" -}}
{{- $v := .Values -}}
{{- $name := include "berth.fullname" . -}}
{{- $storage := $v.persistence.imageChartStorage -}}
{{- if eq $storage.type "s3" -}}
{{- if $storage.s3.existingSecret }}
- name: BERTH_STORAGE__S3__ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $storage.s3.existingSecret }}
      key: REGISTRY_STORAGE_S3_ACCESSKEY
{{- else if $storage.s3.accesskey }}
- name: BERTH_STORAGE__S3__ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: s3-access-key
{{- end }}
{{- end }}
{{- with $v.core.extraEnvVars }}
{{ toYaml . }}
{{- end }}
{{- end -}}
