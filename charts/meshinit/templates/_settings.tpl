{{/* Generated from the declarations in api/settings; do not edit:
   go test ./charts -run TestSettingsTemplate -update rewrites it. */}}

{{/* The injector's variable of every setting that has one, by the setting's name. */}}
{{- define "meshinit.settingEnv" -}}
{
  "admission-server-cert-dir": "KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_CERT_DIR",
  "admission-server-port": "KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_PORT",
  "application-probe-proxy-port": "KUMA_RUNTIME_KUBERNETES_APPLICATION_PROBE_PROXY_PORT",
  "builtin-dns": "KUMA_RUNTIME_KUBERNETES_INJECTOR_BUILTIN_DNS_ENABLED",
  "builtin-dns-port": "KUMA_RUNTIME_KUBERNETES_INJECTOR_BUILTIN_DNS_PORT",
  "ca-cert-file": "KUMA_RUNTIME_KUBERNETES_INJECTOR_CA_CERT_FILE",
  "cni-enabled": "KUMA_RUNTIME_KUBERNETES_INJECTOR_CNI_ENABLED",
  "container-patches": "KUMA_RUNTIME_KUBERNETES_INJECTOR_CONTAINER_PATCHES",
  "control-plane-url": "KUMA_RUNTIME_KUBERNETES_CONTROL_PLANE_URL",
  "exceptions-labels": "KUMA_RUNTIME_KUBERNETES_EXCEPTIONS_LABELS",
  "exclude-inbound-ips": "KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_IPS",
  "exclude-inbound-ports": "KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_PORTS",
  "exclude-outbound-ips": "KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_IPS",
  "exclude-outbound-ports": "KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_PORTS",
  "init-image": "KUMA_RUNTIME_KUBERNETES_INJECTOR_INIT_CONTAINER_IMAGE",
  "init-privileged": "KUMA_RUNTIME_KUBERNETES_INJECTOR_INIT_CONTAINER_PRIVILEGED",
  "ip-family-mode": "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IP_FAMILY_MODE",
  "kuma-dp-version": "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION",
  "node-taint-controller-cni-app": "KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_CNI_APP",
  "node-taint-controller-cni-namespace": "KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_CNI_NAMESPACE",
  "node-taint-controller-enabled": "KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_ENABLED",
  "node-taint-controller-node-selector": "KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_NODE_SELECTOR",
  "node-taint-controller-taint-key": "KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_TAINT_KEY",
  "redirect-inbound-port": "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT_INBOUND",
  "redirect-outbound-port": "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT_OUTBOUND",
  "sidecar-drain-time": "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_DRAIN_TIME",
  "sidecar-env-vars": "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_ENV_VARS",
  "sidecar-gid": "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_GID",
  "sidecar-image": "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE",
  "sidecar-limits-cpu": "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_CPU",
  "sidecar-limits-memory": "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_MEMORY",
  "sidecar-requests-cpu": "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_CPU",
  "sidecar-requests-memory": "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_MEMORY",
  "sidecar-uid": "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_UID",
  "system-namespace": "KUMA_RUNTIME_KUBERNETES_SYSTEM_NAMESPACE",
  "transparent-proxy-backend": "KUMA_RUNTIME_KUBERNETES_INJECTOR_TRANSPARENT_PROXY_BACKEND",
  "transparent-proxy-configmap": "KUMA_RUNTIME_KUBERNETES_INJECTOR_TRANSPARENT_PROXY_CONFIGMAP_NAME"
}
{{- end -}}

{{/* The built-in value of every setting that has a variable, by the setting's name. */}}
{{- define "meshinit.settingDefaults" -}}
{
  "admission-server-cert-dir": "/var/run/secrets/kuma.io/tls-cert",
  "admission-server-port": "5443",
  "application-probe-proxy-port": "9001",
  "builtin-dns": "true",
  "builtin-dns-port": "15053",
  "ca-cert-file": "",
  "cni-enabled": "false",
  "container-patches": "",
  "control-plane-url": "https://kuma-control-plane.kuma-system:5678",
  "exceptions-labels": "openshift.io/build.name:*,openshift.io/deployer-pod-for.name:*",
  "exclude-inbound-ips": "",
  "exclude-inbound-ports": "",
  "exclude-outbound-ips": "",
  "exclude-outbound-ports": "",
  "init-image": "ghcr.io/meshinit/kuma-init:0.1.0",
  "init-privileged": "false",
  "ip-family-mode": "dualstack",
  "kuma-dp-version": "",
  "node-taint-controller-cni-app": "kuma-cni",
  "node-taint-controller-cni-namespace": "kube-system",
  "node-taint-controller-enabled": "false",
  "node-taint-controller-node-selector": "",
  "node-taint-controller-taint-key": "NodeReadiness",
  "redirect-inbound-port": "15006",
  "redirect-outbound-port": "15001",
  "sidecar-drain-time": "30s",
  "sidecar-env-vars": "",
  "sidecar-gid": "5678",
  "sidecar-image": "docker.io/kumahq/kuma-dp:2.14.3",
  "sidecar-limits-cpu": "1000m",
  "sidecar-limits-memory": "512Mi",
  "sidecar-requests-cpu": "50m",
  "sidecar-requests-memory": "64Mi",
  "sidecar-uid": "5678",
  "system-namespace": "kuma-system",
  "transparent-proxy-backend": "auto",
  "transparent-proxy-configmap": "kuma-transparent-proxy-config"
}
{{- end -}}

{{/* [variable, value path] of every setting whose variable a chart value fills. */}}
{{- define "meshinit.settingValues" -}}
[
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IP_FAMILY_MODE","dataPlane.ipFamilyMode"],
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_TRANSPARENT_PROXY_BACKEND","dataPlane.transparentProxyBackend"],
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT_INBOUND","dataPlane.redirectPortInbound"],
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT_OUTBOUND","dataPlane.redirectPortOutbound"],
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_BUILTIN_DNS_ENABLED","dataPlane.builtinDNS.enabled"],
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_BUILTIN_DNS_PORT","dataPlane.builtinDNS.port"],
  ["KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_PORTS","dataPlane.traffic.excludeInboundPorts"],
  ["KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_PORTS","dataPlane.traffic.excludeOutboundPorts"],
  ["KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_IPS","dataPlane.traffic.excludeInboundIPs"],
  ["KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_IPS","dataPlane.traffic.excludeOutboundIPs"],
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_ENV_VARS","dataPlane.envVars"],
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_DRAIN_TIME","dataPlane.drainTime"],
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_TRANSPARENT_PROXY_CONFIGMAP_NAME","dataPlane.transparentProxyConfigMap"],
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_CONTAINER_PATCHES","dataPlane.containerPatches"],
  ["KUMA_RUNTIME_KUBERNETES_APPLICATION_PROBE_PROXY_PORT","dataPlane.applicationProbeProxyPort"],
  ["KUMA_RUNTIME_KUBERNETES_CONTROL_PLANE_URL","dataPlane.controlPlaneURL"],
  ["KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_PORT","controlPlane.admissionServerPort"],
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_CNI_ENABLED","cni.enabled"],
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE","dataPlane.image"],
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION","dataPlane.kumaDPVersion"],
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_UID","dataPlane.uid"],
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_GID","dataPlane.gid"],
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_CPU","dataPlane.resources.requests.cpu"],
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_MEMORY","dataPlane.resources.requests.memory"],
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_CPU","dataPlane.resources.limits.cpu"],
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_MEMORY","dataPlane.resources.limits.memory"],
  ["KUMA_RUNTIME_KUBERNETES_INJECTOR_INIT_CONTAINER_PRIVILEGED","dataPlane.initContainerPrivileged"],
  ["KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_ENABLED","cni.taintController.enabled"],
  ["KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_CNI_NAMESPACE","cni.namespace"],
  ["KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_TAINT_KEY","cni.taintController.taintKey"]
]
{{- end -}}

{{/* [variable, value path] of every setting of install-cni whose variable a chart value fills. */}}
{{- define "meshinit.installCNISettingValues" -}}
[
  ["CNI_REPAIR_ENABLED","cni.repair.enabled"]
]
{{- end -}}
