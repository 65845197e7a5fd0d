{{/*
Names and labels. Every name is cut to 63 characters (the DNS label limit of most objects).
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "channelworks.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-<chart>, or the release name alone when it already holds the chart name. */}}
{{- define "channelworks.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* <fullname>-<suffix>, cut to 63 characters. Call with (list . "suffix"). */}}
{{- define "channelworks.suffixed" -}}
{{- $root := index . 0 -}}
{{- $suffix := index . 1 -}}
{{- printf "%s-%s" (include "channelworks.fullname" $root | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix -}}
{{- end -}}

{{- define "channelworks.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels the pods are selected by (they never change, so upgrades keep the selector). */}}
{{- define "channelworks.selectorLabels" -}}
app.kubernetes.io/name: {{ include "channelworks.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Labels of every object but the component. */}}
{{- define "channelworks.commonLabels" -}}
helm.sh/chart: {{ include "channelworks.chart" . }}
app.kubernetes.io/name: {{ include "channelworks.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: channelworks
{{- end -}}

{{/* Labels of the operator's objects. */}}
{{- define "channelworks.labels" -}}
{{ include "channelworks.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* The selector labels as the operator's CHANNELWORKS_OPERATOR_POD_LABELS (k=v,k=v): the
NetworkPolicy it writes for each app's Redis lets pods with these labels in. */}}
{{- define "channelworks.podLabelsSetting" -}}
{{- $pairs := list -}}
{{- range $key, $value := include "channelworks.selectorLabels" . | fromYaml -}}
{{- $pairs = append $pairs (printf "%s=%s" $key $value) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{- define "channelworks.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "channelworks.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Lease the replicas elect a leader with (one per release). */}}
{{- define "channelworks.leaseName" -}}
{{- include "channelworks.fullname" . -}}
{{- end -}}

{{- define "channelworks.metricsServiceName" -}}
{{- include "channelworks.suffixed" (list . "metrics") -}}
{{- end -}}

{{- define "channelworks.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "channelworks.interfaceImage" -}}
{{- $image := .Values.operator.interfaceImage -}}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) -}}
{{- end -}}

{{/* Refuse settings that would run a broken operator, with a message saying what to change. */}}
{{- define "channelworks.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail (printf "replicaCount is %d but leaderElection.enabled is false: several operators would act on the same RealtimeApps at once; enable leader election or set replicaCount: 1" (int .Values.replicaCount)) -}}
{{- end -}}
{{- $le := .Values.leaderElection -}}
{{- if not (and (lt (float64 $le.retryPeriodSeconds) (float64 $le.renewDeadlineSeconds)) (lt (float64 $le.renewDeadlineSeconds) (float64 $le.leaseDurationSeconds))) -}}
{{- fail (printf "leaderElection needs retryPeriodSeconds (%v) < renewDeadlineSeconds (%v) < leaseDurationSeconds (%v)" $le.retryPeriodSeconds $le.renewDeadlineSeconds $le.leaseDurationSeconds) -}}
{{- end -}}
{{- end -}}
