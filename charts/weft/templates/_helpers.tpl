{{/* Names: every object is named after the release so two releases never collide. */}}
{{- define "weft.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "weft.controllerName" -}}
{{- printf "%s-controller" (include "weft.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "weft.tlsSecretName" -}}
{{- printf "%s-webhook-tls" (include "weft.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The image tag: the value, or the chart's appVersion (the weft version). */}}
{{- define "weft.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{- define "weft.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "weft.imageTag" .) -}}
{{- end -}}

{{- define "weft.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "weft.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: weft
{{- end -}}

{{/* The webhook Service's DNS names, which the serving certificate must carry. */}}
{{- define "weft.serviceDNSNames" -}}
{{- $svc := include "weft.controllerName" . -}}
{{- list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) | toJson -}}
{{- end -}}

{{/* Namespaces no webhook ever sees: Kubernetes' system namespaces and weft's own (the
     same list pkg/inject skips, so a pod there never waits on the webhook). */}}
{{- define "weft.excludedNamespaces" -}}
- key: kubernetes.io/metadata.name
  operator: NotIn
  values: [kube-system, kube-public, kube-node-lease, {{ .Release.Namespace | quote }}]
{{- end -}}

{{/* What the controller reads with --values: the injection values only (chart-only keys
     such as certManager, tls and monitoring stay out), with the image tag resolved so the
     injected sidecar runs exactly the controller's image. */}}
{{- define "weft.controllerValues" -}}
{{- $v := omit .Values "certManager" "tls" "monitoring" -}}
{{- $image := merge (dict "tag" (include "weft.imageTag" .)) (deepCopy .Values.image) -}}
{{- $_ := set $image "tag" (include "weft.imageTag" .) -}}
{{- $_ := set $v "image" $image -}}
{{- $_ := set $v "policy" (include "weft.policyValues" . | fromYaml) -}}
{{- toYaml $v -}}
{{- end -}}

{{/* The policy values the controller injects with: an empty controllerUrl becomes this
     release's controller Service (port 443 of service.yaml), so every injected proxy gets
     --controller; the CA it verifies the stream with comes from the controller's ca.crt. */}}
{{- define "weft.policyValues" -}}
{{- $p := deepCopy .Values.policy -}}
{{- if not $p.controllerUrl -}}
{{- $_ := set $p "controllerUrl" (printf "https://%s.%s.svc:443" (include "weft.controllerName" .) .Release.Namespace) -}}
{{- end -}}
{{- toYaml $p -}}
{{- end -}}

{{/* clientConfig of a webhook entry; caBundle only where Helm made the CA. */}}
{{- define "weft.webhookClientConfig" -}}
service:
  name: {{ .fullname }}
  namespace: {{ .ns }}
  path: {{ .path }}
  port: 443
{{- with .caBundle }}
caBundle: {{ . }}
{{- end }}
{{- end }}
