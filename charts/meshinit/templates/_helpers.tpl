{{/* The name of the release's objects. */}}
{{- define "meshinit.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The injector's name: its Deployment, Service, account and certificate. */}}
{{- define "meshinit.injector" -}}
{{- printf "%s-injector" (include "meshinit.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The CNI DaemonSet's name, also the app label of its pods that the taint controller watches. */}}
{{- define "meshinit.cni" -}}
{{- printf "%s-cni" (include "meshinit.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Whether the injector runs in the cluster, rather than at webhook.url. */}}
{{- define "meshinit.inCluster" -}}
{{- if not .Values.webhook.url }}true{{ end -}}
{{- end -}}

{{/* The Secret holding the injector's serving certificate. */}}
{{- define "meshinit.tlsSecret" -}}
{{- if eq .Values.tls.mode "secret" -}}
{{- .Values.tls.secretName -}}
{{- else -}}
{{- printf "%s-tls" (include "meshinit.injector" .) -}}
{{- end -}}
{{- end -}}

{{/* The names the injector's certificate is valid for: its Service, as the API server calls it. */}}
{{- define "meshinit.dnsNames" -}}
{{- $svc := include "meshinit.injector" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson -}}
{{- end -}}

{{/* A meshinit image: (dict "root" $ "image" .Values.x.image). */}}
{{- define "meshinit.image" -}}
{{- $g := .root.Values.global.image -}}
{{- $tag := .image.tag | default $g.tag | default .root.Chart.AppVersion -}}
{{- printf "%s/%s:%s" $g.registry .image.repository $tag -}}
{{- end -}}

{{- define "meshinit.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Labels selecting a component's pods: (dict "root" $ "component" "injector"). */}}
{{- define "meshinit.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The pods' imagePullSecrets field, or nothing. */}}
{{- define "meshinit.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets -}}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}

{{/*
A value as a KUMA_RUNTIME_* setting spells it: lists joined by commas, maps as NAME=value
pairs joined by semicolons (sorted), everything else as text. Unset (null, "", empty) is "".
*/}}
{{- define "meshinit.setting" -}}
{{- if kindIs "slice" . -}}
{{- join "," . -}}
{{- else if kindIs "map" . -}}
{{- $pairs := list -}}
{{- range $k, $v := . }}{{ $pairs = append $pairs (printf "%s=%s" $k (include "meshinit.setting" $v)) }}{{ end -}}
{{- join ";" $pairs -}}
{{- else if kindIs "float64" . -}}
{{- /* YAML numbers arrive as float64; the schema lets only integers through. */ -}}
{{- int64 . -}}
{{- else if not (kindIs "invalid" .) -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{/*
The injector's KUMA_RUNTIME_* environment, as a JSON object: what the chart decides, the value of
every setting that a chart value fills (_settings.tpl, generated from the settings' declarations;
values under cni apply only when cni.enabled), then controlPlane.envVars, which must agree with any
of those it names again.
*/}}
{{- define "meshinit.runtimeEnv" -}}
{{- $v := .Values -}}
{{- $names := include "meshinit.settingEnv" . | fromJson -}}
{{- /* [setting name, where its value comes from, the value]: what the chart decides itself. */ -}}
{{- $decided := list
  (list "system-namespace" "the release namespace" .Release.Namespace)
  (list "admission-server-cert-dir" "the chart" "/var/run/secrets/kuma.io/tls-cert")
  (list "init-image" "dataPlane.initImage" (include "meshinit.image" (dict "root" . "image" $v.dataPlane.initImage)))
-}}
{{- if include "meshinit.controlPlaneCA" . -}}
{{- $decided = append $decided (list "ca-cert-file" "dataPlane.controlPlaneCA" (include "meshinit.controlPlaneCAFile" .)) -}}
{{- end -}}
{{- if $v.cni.enabled -}}
{{- /* The taint controller leaves alone the nodes the DaemonSet does not run on. */ -}}
{{- $nodes := list -}}
{{- range $k, $val := $v.cni.nodeSelector }}{{ $nodes = append $nodes (printf "%s=%s" $k $val) }}{{ end -}}
{{- $decided = concat $decided (list
  (list "node-taint-controller-cni-app" "the chart" (include "meshinit.cni" .))
  (list "node-taint-controller-node-selector" "cni.nodeSelector" (join "," $nodes))
) -}}
{{- end -}}
{{- $fromValues := list -}}
{{- range $decided -}}
{{- $name := index . 0 -}}
{{- if not (hasKey $names $name) }}{{ fail (printf "the chart names a setting %q that api/settings does not declare" $name) }}{{ end -}}
{{- $fromValues = append $fromValues (list (get $names $name) (index . 1) (index . 2)) -}}
{{- end -}}
{{- range include "meshinit.settingValues" . | fromJsonArray -}}
{{- $path := index . 1 -}}
{{- if or $v.cni.enabled (not (hasPrefix "cni." $path)) (eq $path "cni.enabled") -}}
{{- $value := $v -}}
{{- range splitList "." $path }}{{ $value = index $value . }}{{ end -}}
{{- $fromValues = append $fromValues (list (index . 0) $path $value) -}}
{{- end -}}
{{- end -}}
{{- $env := dict -}}
{{- $source := dict -}}
{{- range $fromValues -}}
{{- $value := include "meshinit.setting" (index . 2) -}}
{{- if $value -}}
{{- $_ := set $env (index . 0) $value -}}
{{- $_ := set $source (index . 0) (index . 1) -}}
{{- end -}}
{{- end -}}
{{- /* exceptionsLabels may be set empty, for no exceptions. */ -}}
{{- if not (kindIs "invalid" $v.dataPlane.exceptionsLabels) -}}
{{- $name := get $names "exceptions-labels" -}}
{{- $_ := set $env $name (include "meshinit.setting" $v.dataPlane.exceptionsLabels) -}}
{{- $_ := set $source $name "dataPlane.exceptionsLabels" -}}
{{- end -}}
{{- range $name, $raw := $v.controlPlane.envVars -}}
{{- $value := include "meshinit.setting" $raw -}}
{{- if and (hasKey $env $name) (ne (get $env $name) $value) -}}
{{- fail (printf "controlPlane.envVars.%s is %q, but %s sets it to %q: drop one of the two" $name $value (get $source $name) (get $env $name)) -}}
{{- end -}}
{{- $_ := set $env $name $value -}}
{{- end -}}
{{- toJson $env -}}
{{- end -}}

{{/* Whether the injector mounts the control plane's CA (dataPlane.controlPlaneCA). */}}
{{- define "meshinit.controlPlaneCA" -}}
{{- with .Values.dataPlane.controlPlaneCA }}{{ if or .secretName .configMapName }}true{{ end }}{{ end -}}
{{- end -}}

{{/* Where the injector reads the control plane's CA. */}}
{{- define "meshinit.controlPlaneCAFile" -}}
/var/run/secrets/kuma.io/control-plane-ca/ca.crt
{{- end -}}

{{/*
Settings that only make sense together; each failure names the values and what to do.
*/}}
{{- define "meshinit.validate" -}}
{{- $tls := .Values.tls -}}
{{- if and .Values.webhook.url (ne $tls.mode "secret") -}}
{{- fail (printf "webhook.url points the API server at an injector outside the cluster, whose certificate the chart cannot make (tls.mode is %q): set tls.mode=secret and tls.caBundle to the base64 PEM of the CA that signed it" $tls.mode) -}}
{{- end -}}
{{- if and .Values.webhook.url (not (hasPrefix "https://" .Values.webhook.url)) -}}
{{- fail (printf "webhook.url %q is not an https URL: the API server calls webhooks over TLS only; give https://host[:port]" .Values.webhook.url) -}}
{{- end -}}
{{- if eq $tls.mode "secret" -}}
{{- if not $tls.caBundle -}}
{{- fail "tls.mode is secret but tls.caBundle is empty: set it to the base64-encoded PEM of the CA that signed the injector's certificate" -}}
{{- end -}}
{{- if and (not $tls.secretName) (include "meshinit.inCluster" .) -}}
{{- fail "tls.mode is secret but tls.secretName is empty: set it to a kubernetes.io/tls Secret (tls.crt, tls.key) in the release namespace" -}}
{{- end -}}
{{- else if or $tls.secretName $tls.caBundle -}}
{{- fail (printf "tls.secretName and tls.caBundle are only read when tls.mode is secret, and it is %q: set tls.mode=secret, or unset them" $tls.mode) -}}
{{- end -}}
{{- with .Values.webhook.clientCA -}}
{{- if and .secretName .configMapName -}}
{{- fail (printf "webhook.clientCA names both the Secret %q and the ConfigMap %q: the CA comes from one of them; unset the other" .secretName .configMapName) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.networkPolicy.enabled (not .Values.networkPolicy.apiServerCIDRs) -}}
{{- fail "networkPolicy.enabled is true but networkPolicy.apiServerCIDRs is empty: the API server could not reach the webhook; give the API server's addresses as the injector's pods see them, such as 10.0.0.0/24" -}}
{{- end -}}
{{- with .Values.dataPlane.controlPlaneCA -}}
{{- if and .secretName .configMapName -}}
{{- fail (printf "dataPlane.controlPlaneCA names both the Secret %q and the ConfigMap %q: the CA comes from one of them; unset the other" .secretName .configMapName) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.cni.chained (not .Values.cni.enabled) -}}
{{- fail "cni.chained is true but cni.enabled is false: set cni.enabled=true to install kuma-cni" -}}
{{- end -}}
{{- /*
install-cni runs as root and mounts cni.netDir, cni.binDir and cni.runDir read-write: a system
directory of the host there would hand it the host. The list is of such directories themselves; the CNI
directories of the distributions are below them (/etc/cni/net.d, /opt/cni/bin, GKE's
/home/kubernetes/bin, k3s's /var/lib/rancher/k3s/...).
*/ -}}
{{- $system := list "/" "/bin" "/boot" "/dev" "/etc" "/etc/kubernetes" "/home" "/lib" "/lib32" "/lib64" "/mnt" "/opt" "/proc" "/root" "/run" "/sbin" "/srv" "/sys" "/tmp" "/usr" "/usr/bin" "/usr/lib" "/usr/lib64" "/usr/libexec" "/usr/local" "/usr/local/bin" "/usr/local/sbin" "/usr/sbin" "/var" "/var/lib" "/var/lib/kubelet" "/var/run" -}}
{{- range $key, $example := dict "netDir" "/etc/cni/net.d" "binDir" "/opt/cni/bin" "runDir" "/var/run/kuma-cni" -}}
{{- $dir := index $.Values.cni $key -}}
{{- if and $.Values.cni.enabled (has (clean $dir) $system) -}}
{{- fail (printf "cni.%s %q is a system directory of the host, which the kuma-cni DaemonSet would mount read-write into a root container; accepted: the node's CNI directory itself, such as %s" $key $dir $example) -}}
{{- end -}}
{{- end -}}
{{- with .Values.cni.confName -}}
{{- if and (not $.Values.cni.chained) (hasSuffix ".conflist" .) -}}
{{- fail (printf "cni.confName %q is a conflist, but standalone mode (cni.chained=false) writes kuma-cni's own single-plugin file: give a name ending in .conf or .json, such as kuma-cni.conf, or set cni.chained=true to chain into %s" . .) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- /* Whether the injector requires client certificates signed by webhook.clientCA. */ -}}
{{- define "meshinit.clientCA" -}}
{{- if or .Values.webhook.clientCA.secretName .Values.webhook.clientCA.configMapName -}}true{{- end -}}
{{- end -}}
