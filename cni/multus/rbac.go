package multus

import (
	rbacv1 "k8s.io/api/rbac/v1"
)

// Rules are the least rights the controller needs, for a ClusterRole bound to the injector:
//
//   - network-attachment-definitions: get, list, watch (the cache, of kuma-cni's only) and
//     create. Neither update nor delete: a definition already there is never changed.
//
// It also reads namespaces (get, list, watch), which the webhook needs already. Definitions are
// created in any labelled namespace, so the rule needs a ClusterRole.
func Rules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{definitionKind.Group}, Resources: []string{definitionResource}, Verbs: []string{"get", "list", "watch", "create"}},
	}
}
