// Package api is meshinit's public contract: the labels and annotations it reads and writes, the
// syntax of their values, and the effective transparent-proxy configuration document that the
// webhook writes, kuma-init and the CNI plugin read, and the CLI flags spell another way.
//
// Parsers here are pure and field-agnostic: they report what is wrong with a value, and callers
// name the annotation, variable, flag or document path it came from (see FieldError.In).
package api
