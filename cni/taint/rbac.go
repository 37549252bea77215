package taint

import (
	rbacv1 "k8s.io/api/rbac/v1"
)

// Rules are the least rights the controller needs, for a ClusterRole bound to the injector:
//
//   - nodes: get, list, watch (the cache) and patch (the taints);
//   - pods: get, list, watch (the cache, to see the CNI pods).
//
// Nodes are cluster-scoped, so their rule needs a ClusterRole. With CacheOptions the pod rule could
// be a Role in the CNI namespace instead; without, the cache lists pods in every namespace.
func Rules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
	}
}
