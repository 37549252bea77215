// Package conflist puts kuma-cni's entry into a node's CNI network configuration, after the
// cluster's own plugins, and takes it out again.
//
// Edits are surgical: the entry is spliced into the bytes of the plugins array, and every other
// byte of the file stays as it was. The provider's formatting, key order, unknown keys and number
// spellings survive, inserting again gives the same bytes, and removing after inserting gives the
// original bytes back. The entry is indented like the plugin before it.
//
// A legacy single-plugin .conf (or .json) cannot hold a chain, so Insert turns it into a .conflist
// of the same base name (10-calico.conf becomes 10-calico.conflist), the way runtimes convert one
// when they load it (libcni's ConfListFromConf): the list takes the conf's cniVersion and name,
// its first plugin is the original conf whole (name and cniVersion included, which runtimes
// overwrite with the list's anyway), and kuma-cni comes second. InsertFile keeps the original
// aside in the same directory as OriginalName (10-calico.conf.kuma-cni-original): an extension no
// runtime loads, on the host, so a crashed installer's successor still finds it. RemoveFiles
// renames it back, byte for byte, and deletes the .conflist.
package conflist
