// Package cni holds meshinit's CNI side: the kuma-cni plugin that installs the transparent-proxy
// rules when a pod's network is set up (plugin), the install-cni program that puts the plugin
// into the node's CNI configuration and keeps it there (install, conflist), the controller that
// keeps pods off nodes whose CNI is not ready (taint), and the one that keeps the
// NetworkAttachmentDefinition Multus needs to run kuma-cni (multus).
package cni
