// Package initcontainer is the transparent-proxy engine: the effective configuration goes in, and
// iptables rules that send the workload's traffic through the sidecar come out. kuma-init, the
// meshinit CLI and the CNI plugin all use it.
//
// The core is pure: Build turns the configuration and a few facts about the host (the proxy's UID,
// the nameservers) into a Ruleset per IP family, and Transition turns the rules of ours currently
// in the kernel and the desired ones into one iptables-restore script per family. The edges
// (Installer) read the current state, run the scripts, verify and roll back.
package initcontainer
