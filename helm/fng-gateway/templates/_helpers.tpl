{{/*
Names and labels.
*/}}
{{- define "fng-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "fng-gateway.fullname" -}}
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

{{- define "fng-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "fng-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fng-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "fng-gateway.labels" -}}
helm.sh/chart: {{ include "fng-gateway.chart" . }}
{{ include "fng-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: fng-gateway
{{- end }}

{{/* The gateway's pods (the migrations Job's pods are component "migrations"). */}}
{{- define "fng-gateway.gatewaySelectorLabels" -}}
{{ include "fng-gateway.selectorLabels" . }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "fng-gateway.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "fng-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fng-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
What is configured, as "true" or "".
*/}}
{{- define "fng-gateway.multiReplica" -}}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{- define "fng-gateway.externalDatabase" -}}
{{- if or .Values.database.url .Values.database.existingSecretKey }}true{{ end }}
{{- end }}

{{- define "fng-gateway.redisConfigured" -}}
{{- if or .Values.redis.url .Values.redis.existingSecretKey }}true{{ end }}
{{- end }}

{{- define "fng-gateway.masterKeysConfigured" -}}
{{- if or .Values.masterKeys.value .Values.masterKeys.existingSecretKey }}true{{ end }}
{{- end }}

{{- define "fng-gateway.masterKeysFile" -}}
{{- if and .Values.masterKeys.mountAsFile (include "fng-gateway.masterKeysConfigured" .) }}true{{ end }}
{{- end }}

{{- define "fng-gateway.migrationsJob" -}}
{{- if and .Values.migrations.enabled (include "fng-gateway.externalDatabase" .) }}true{{ end }}
{{- end }}

{{/* The chart's Secret: what it holds (empty when everything comes from existingSecret). */}}
{{- define "fng-gateway.secretData" -}}
{{- $data := dict }}
{{- with .Values.masterKeys.value }}{{ $_ := set $data "master-keys" . }}{{ end }}
{{- with .Values.database.url }}{{ $_ := set $data "database-url" . }}{{ end }}
{{- with .Values.redis.url }}{{ $_ := set $data "redis-url" . }}{{ end }}
{{- toYaml $data }}
{{- end }}

{{/*
What the pods read from the chart's Secret at start (environment variables), for the
checksum/secret annotation. Master keys mounted as a file are left out: a new key reaches
running pods through the mounted file, with no restart.
*/}}
{{- define "fng-gateway.secretEnvData" -}}
{{- $data := dict }}
{{- if and .Values.masterKeys.value (not .Values.masterKeys.mountAsFile) }}
{{- $_ := set $data "master-keys" .Values.masterKeys.value }}
{{- end }}
{{- with .Values.database.url }}{{ $_ := set $data "database-url" . }}{{ end }}
{{- with .Values.redis.url }}{{ $_ := set $data "redis-url" . }}{{ end }}
{{- toYaml $data }}
{{- end }}

{{/* A secretKeyRef: the chart's Secret when the value is given, else existingSecret. */}}
{{- define "fng-gateway.secretKeyRef" -}}
{{- $root := index . 0 }}
{{- $section := index . 1 }}
{{- $chartKey := index . 2 }}
{{- if $section.value | default $section.url }}
name: {{ include "fng-gateway.fullname" $root }}
key: {{ $chartKey }}
{{- else }}
name: {{ $root.Values.existingSecret }}
key: {{ $section.existingSecretKey }}
{{- end }}
{{- end }}

{{/* Environment variables read from Secrets. */}}
{{- define "fng-gateway.secretEnv" -}}
{{- if include "fng-gateway.externalDatabase" . }}
- name: FNG_GATEWAY_DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- include "fng-gateway.secretKeyRef" (list . .Values.database "database-url") | trim | nindent 6 }}
{{- end }}
{{- if include "fng-gateway.redisConfigured" . }}
- name: FNG_GATEWAY_REDIS_URL
  valueFrom:
    secretKeyRef:
      {{- include "fng-gateway.secretKeyRef" (list . .Values.redis "redis-url") | trim | nindent 6 }}
{{- end }}
{{- if and (include "fng-gateway.masterKeysConfigured" .) (not .Values.masterKeys.mountAsFile) }}
- name: FNG_GATEWAY_MASTER_KEYS
  valueFrom:
    secretKeyRef:
      {{- include "fng-gateway.secretKeyRef" (list . .Values.masterKeys "master-keys") | trim | nindent 6 }}
{{- end }}
{{- end }}

{{/*
Shutdown: terminationGracePeriodSeconds = preStop sleep + drain + grace + margin (values.yaml
explains why each part is there).
*/}}
{{- define "fng-gateway.terminationGracePeriodSeconds" -}}
{{- $s := .Values.shutdown }}
{{- add $s.preStopSleepSeconds $s.drainSeconds $s.graceSeconds $s.marginSeconds }}
{{- end }}

{{/*
The preStop sleep: Kubernetes' own sleep action from 1.30 (needs nothing in the image), the
image's `sleep` before that.
*/}}
{{- define "fng-gateway.preStop" -}}
{{- if semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version -}}
sleep:
  seconds: {{ .Values.shutdown.preStopSleepSeconds }}
{{- else -}}
exec:
  command: ["sleep", {{ .Values.shutdown.preStopSleepSeconds | toString | quote }}]
{{- end }}
{{- end }}

{{/* The restricted pod security profile. */}}
{{- define "fng-gateway.podSecurityContext" -}}
runAsNonRoot: true
{{- with .Values.securityContext.runAsUser }}
runAsUser: {{ . }}
{{- end }}
{{- with .Values.securityContext.runAsGroup }}
runAsGroup: {{ . }}
{{- end }}
{{- with .Values.securityContext.fsGroup }}
fsGroup: {{ . }}
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "fng-gateway.containerSecurityContext" -}}
runAsNonRoot: true
{{- with .Values.securityContext.runAsUser }}
runAsUser: {{ . }}
{{- end }}
{{- with .Values.securityContext.runAsGroup }}
runAsGroup: {{ . }}
{{- end }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Checks that values.schema.json cannot express. Each failure says what to set.
*/}}
{{- define "fng-gateway.validate" -}}
{{- $v := .Values }}
{{- if and (include "fng-gateway.multiReplica" .) (not (include "fng-gateway.externalDatabase" .)) }}
{{- $why := printf "replicaCount is %d" (int $v.replicaCount) }}
{{- if $v.autoscaling.enabled }}{{ $why = "autoscaling is enabled" }}{{ end }}
{{- fail (printf "fng-gateway: %s, but several replicas must share one PostgreSQL database and none is given: set database.url (postgresql+asyncpg://USER:PASSWORD@HOST:5432/DB) or database.existingSecretKey (with existingSecret). SQLite serves a single replica only." $why) }}
{{- end }}
{{- /* URLs hold passwords: the messages below never print them. */}}
{{- with $v.database.url }}
{{- if not (or (hasPrefix "postgresql+asyncpg://" .) (hasPrefix "sqlite+aiosqlite://" .)) }}
{{- fail "fng-gateway: database.url must start with postgresql+asyncpg:// (or sqlite+aiosqlite:// for one replica), the drivers the gateway has; the value is not shown, as it holds a password." }}
{{- end }}
{{- end }}
{{- if and (include "fng-gateway.multiReplica" .) $v.database.url (not (hasPrefix "postgresql+asyncpg://" $v.database.url)) }}
{{- fail "fng-gateway: several replicas need PostgreSQL, but database.url is not a postgresql+asyncpg:// URL." }}
{{- end }}
{{- with $v.redis.url }}
{{- if not (or (hasPrefix "redis://" .) (hasPrefix "rediss://" .) (hasPrefix "unix://" .)) }}
{{- fail "fng-gateway: redis.url must start with redis://, rediss:// or unix://; the value is not shown, as it may hold a password." }}
{{- end }}
{{- end }}
{{- range $name, $section := dict "masterKeys" $v.masterKeys "database" $v.database "redis" $v.redis }}
{{- $inline := $section.value | default $section.url }}
{{- if and $inline $section.existingSecretKey }}
{{- fail (printf "fng-gateway: %s is given both inline and as existingSecretKey %q: choose one." $name $section.existingSecretKey) }}
{{- end }}
{{- if and $section.existingSecretKey (not $v.existingSecret) }}
{{- fail (printf "fng-gateway: %s.existingSecretKey is %q, but existingSecret (the Secret holding it) is not set." $name $section.existingSecretKey) }}
{{- end }}
{{- end }}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
{{- fail "fng-gateway: autoscaling.minReplicas is above autoscaling.maxReplicas." }}
{{- end }}
{{- $pdb := $v.podDisruptionBudget }}
{{- if and $pdb.enabled (kindIs "invalid" $pdb.minAvailable) (kindIs "invalid" $pdb.maxUnavailable) }}
{{- fail "fng-gateway: podDisruptionBudget needs maxUnavailable or minAvailable." }}
{{- end }}
{{- if and (or $v.officialSchemas.ebis $v.officialSchemas.budgetChart $v.officialSchemas.budgetYears $v.officialSchemas.budgetImport) (not $v.officialSchemas.configMap) }}
{{- fail "fng-gateway: officialSchemas names schemas, but officialSchemas.configMap (the ConfigMap holding them) is not set." }}
{{- end }}
{{- end }}
