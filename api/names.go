package api

import "strings"

// The checks below are those of Kubernetes' validation (k8s.io/apimachinery/pkg/util/validation)
// and useradd, written out because api is linked into kuma-init, which must stay small and start
// fast (BenchmarkKumaInitInstall, in test/perf, times its whole run): the validation package
// brings klog and compiles regular expressions at start-up.
// names_test.go holds them to Kubernetes' answers.

// isEnvVarName is Kubernetes' IsEnvVarName: letters, digits, '_', '-', '.', not starting with a
// digit, and not "." or ".." or starting with "..".
func isEnvVarName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' || s == "." || len(s) >= 2 && s[:2] == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(isLetter(c) || isDigit(c) || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// isDNS1123Label is Kubernetes' IsDNS1123Label: at most 63 lowercase letters, digits and '-',
// starting and ending with a letter or digit.
func isDNS1123Label(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || isDigit(c) || c == '-') {
			return false
		}
	}
	return true
}

// isDNS1123Subdomain is Kubernetes' IsDNS1123Subdomain, the form of most objects' names: at most
// 253 characters of DNS-1123 labels joined by '.'.
func isDNS1123Subdomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || isDigit(c) || c == '-') {
				return false
			}
		}
	}
	return true
}

// isUserName is the portable user name useradd accepts by default: at most 32 of lowercase
// letters, digits, '_' and '-', not starting with a digit or '-'.
func isUserName(s string) bool {
	if s == "" || len(s) > 32 || !(s[0] >= 'a' && s[0] <= 'z' || s[0] == '_') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || isDigit(c) || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
