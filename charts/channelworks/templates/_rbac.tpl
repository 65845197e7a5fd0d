{{/*
The operator's rules: the same resources and verbs as operator/src/channelworks_operator/rbac.py
(rendered to operator/rbac.yaml); tests/chart checks the two are equal. Why each rule is there is
written in that module.
*/}}

{{/* Rules over the watched namespaces: a ClusterRole, or a Role in watchNamespace. */}}
{{- define "channelworks.rules" -}}
- apiGroups: ["channelworks.dev"]
  resources: ["realtimeapps"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["channelworks.dev"]
  resources: ["realtimeapps/status"]
  verbs: ["get", "patch"]
- apiGroups: ["channelworks.dev"]
  resources: ["realtimeapps/finalizers"]
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["keda.sh"]
  resources: ["scaledobjects"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["monitoring.coreos.com"]
  resources: ["podmonitors", "servicemonitors"]
  verbs: ["get", "create", "patch", "delete"]
{{- end -}}

{{/* Rules in the release namespace: the leader election Lease. */}}
{{- define "channelworks.leaderElectionRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- end -}}
