package config

import (
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/settings"
)

// binding says which field of Config a setting's variable fills, and how its value is parsed.
type binding struct {
	*settings.Setting
	set func(c *Config, value string) error
}

// bindings binds every setting that has a variable; each setting's names, form and default are in
// its declaration (package api/settings).
var bindings = []binding{
	bind(settings.SystemNamespace, parseNamespace, func(c *Config) *string { return &c.SystemNamespace }),
	bind(settings.ControlPlaneURL, parseURL, func(c *Config) *string { return &c.ControlPlaneURL }),
	bind(settings.AdmissionServerPort, api.ParsePort, func(c *Config) *uint16 { return &c.AdmissionServer.Port }),
	bind(settings.AdmissionServerCertDir, parseDir, func(c *Config) *string { return &c.AdmissionServer.CertDir }),
	bind(settings.CNIEnabled, api.ParseStrictBool, func(c *Config) *bool { return &c.Injector.CNIEnabled }),
	bind(settings.SidecarImage, parseImage, func(c *Config) *string { return &c.Injector.SidecarContainer.Image }),
	bind(settings.KumaDPVersion, parseKumaDPVersion, func(c *Config) *Version { return &c.Injector.SidecarContainer.KumaDPVersion }),
	bind(settings.CACertFile, parseFile, func(c *Config) *string { return &c.Injector.CACertFile }),
	bind(settings.SidecarUID, parseSidecarUID, func(c *Config) *int64 { return &c.Injector.SidecarContainer.UID }),
	bind(settings.SidecarGID, parseGID, func(c *Config) *int64 { return &c.Injector.SidecarContainer.GID }),
	bindValue(settings.RedirectPortInbound, func(c *Config) *uint16 { return &c.Injector.SidecarContainer.RedirectPortInbound }),
	bindValue(settings.RedirectPortOutbound, func(c *Config) *uint16 { return &c.Injector.SidecarContainer.RedirectPortOutbound }),
	bindValue(settings.IPFamilyMode, func(c *Config) *api.IPFamilyMode { return &c.Injector.SidecarContainer.IPFamilyMode }),
	bindValue(settings.SidecarDrainTime, func(c *Config) *time.Duration { return &c.Injector.SidecarContainer.DrainTime }),
	bind(settings.SidecarEnvVars.Setting, parseEnvVars, func(c *Config) *api.EnvVars { return &c.Injector.SidecarContainer.EnvVars }),
	bind(settings.SidecarRequestsCPU, parseQuantity, func(c *Config) *resource.Quantity { return &c.Injector.SidecarContainer.Resources.RequestsCPU }),
	bind(settings.SidecarRequestsMemory, parseQuantity, func(c *Config) *resource.Quantity { return &c.Injector.SidecarContainer.Resources.RequestsMemory }),
	bind(settings.SidecarLimitsCPU, parseQuantity, func(c *Config) *resource.Quantity { return &c.Injector.SidecarContainer.Resources.LimitsCPU }),
	bind(settings.SidecarLimitsMemory, parseQuantity, func(c *Config) *resource.Quantity { return &c.Injector.SidecarContainer.Resources.LimitsMemory }),
	bind(settings.InitImage, parseImage, func(c *Config) *string { return &c.Injector.InitContainer.Image }),
	bind(settings.InitPrivileged, api.ParseStrictBool, func(c *Config) *bool { return &c.Injector.InitContainer.Privileged }),
	bind(settings.BuiltinDNS.Setting, api.ParseStrictBool, func(c *Config) *bool { return &c.Injector.BuiltinDNS.Enabled }),
	bindValue(settings.BuiltinDNSPort, func(c *Config) *uint16 { return &c.Injector.BuiltinDNS.Port }),
	bindValue(settings.TransparentProxyBackend, func(c *Config) *api.Backend { return &c.Injector.TransparentProxyBackend }),
	bindValue(settings.TransparentProxyConfigMap, func(c *Config) *string { return &c.Injector.TransparentProxyConfigMap }),
	bindValue(settings.ContainerPatches, func(c *Config) *[]string { return &c.Injector.ContainerPatches }),
	bindValue(settings.ApplicationProbeProxyPort, func(c *Config) *uint16 { return &c.Injector.ApplicationProbeProxyPort }),
	bindValue(settings.ExcludeInboundPorts, func(c *Config) *api.PortRanges { return &c.SidecarTraffic.ExcludeInboundPorts }),
	bindValue(settings.ExcludeOutboundPorts, func(c *Config) *api.PortRanges { return &c.SidecarTraffic.ExcludeOutboundPorts }),
	bindValue(settings.ExcludeInboundIPs, func(c *Config) *api.CIDRs { return &c.SidecarTraffic.ExcludeInboundIPs }),
	bindValue(settings.ExcludeOutboundIPs, func(c *Config) *api.CIDRs { return &c.SidecarTraffic.ExcludeOutboundIPs }),
	bind(settings.ExceptionsLabels, parseLabelSelectors, func(c *Config) *map[string]string { return &c.Exceptions.Labels }),
	bind(settings.NodeTaintControllerEnabled, api.ParseStrictBool, func(c *Config) *bool { return &c.NodeTaintController.Enabled }),
	bind(settings.NodeTaintControllerCNIApp, parseLabelValue, func(c *Config) *string { return &c.NodeTaintController.CNIApp }),
	bind(settings.NodeTaintControllerCNINamespace, parseNamespace, func(c *Config) *string { return &c.NodeTaintController.CNINamespace }),
	bind(settings.NodeTaintControllerNodeSelector, parseSelector, func(c *Config) *labels.Selector { return &c.NodeTaintController.Nodes }),
	bind(settings.NodeTaintControllerTaintKey, parseTaintKey, func(c *Config) *string { return &c.NodeTaintController.TaintKey }),
}

// bind makes a binding from a parser and the field it fills.
func bind[T any](s *settings.Setting, parse func(string) (T, error), field func(*Config) *T) binding {
	return binding{Setting: s, set: func(c *Config, value string) error {
		v, err := parse(value)
		if err != nil {
			return err
		}
		*field(c) = v
		return nil
	}}
}

// bindValue binds a setting whose declaration has its parser.
func bindValue[T any](v *settings.Value[T], field func(*Config) *T) binding {
	return bind(v.Setting, v.Parse, field)
}
