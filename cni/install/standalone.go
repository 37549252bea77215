package install

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/meshinit/meshinit/cni"
	"github.com/meshinit/meshinit/cni/conflist"
	"github.com/meshinit/meshinit/internal/atomicfile"
)

// StandaloneConfName is the file standalone mode writes when CNI_CONF_NAME is empty.
const StandaloneConfName = "kuma-cni.conf"

// standaloneVersion is the standalone configuration's cniVersion unless Kuma's CNI_NETWORK_CONFIG
// says another: every Multus release accepts 0.3.1.
const standaloneVersion = "0.3.1"

// standalone keeps kuma-cni's own network configuration in Multus's conf dir. The kuma-cni
// NetworkAttachmentDefinition the injector creates carries no configuration, so Multus looks in
// that dir for a file whose name field is kuma-cni.
type standalone struct {
	path string
	data []byte
}

func newStandalone(path, name, version string, entry cni.NetConf) (*standalone, error) {
	// The fields are spelled out as conflist's entry does: marshalled whole, cni.NetConf would go
	// through the MarshalJSON of its embedded types.NetConf, which drops kuma-cni's own fields.
	data, err := json.MarshalIndent(struct {
		CNIVersion string         `json:"cniVersion"`
		Name       string         `json:"name"`
		Type       string         `json:"type"`
		LogLevel   string         `json:"log_level,omitempty"`
		LogSocket  string         `json:"log_socket,omitempty"`
		Kubernetes cni.Kubernetes `json:"kubernetes"`
	}{version, name, cni.PluginType, entry.LogLevel, entry.LogSocket, entry.Kubernetes}, "", "  ")
	if err != nil {
		return nil, err
	}
	return &standalone{path: path, data: append(data, '\n')}, nil
}

// ensure writes the configuration when the file is missing or differs, and reports whether it
// did. A file there that configures another plugin is left alone: CNI_CONF_NAME then names a
// file that is not kuma-cni's, and writing over it would take that network from the node.
func (s *standalone) ensure() (bool, error) {
	old, err := os.ReadFile(s.path)
	if err == nil {
		if fi, err := os.Stat(s.path); err == nil && fi.Mode().Perm() == 0o644 && bytes.Equal(old, s.data) {
			return false, nil
		}
		if other := othersType(old); other != "" {
			return false, fmt.Errorf("%s configures another plugin (type %q), which kuma-cni does not write over; "+
				"accepted: a CNI_CONF_NAME of kuma-cni's own, such as %s", s.path, other, StandaloneConfName)
		}
	}
	_, err = atomicfile.Write(s.path, bytes.NewReader(s.data), 0o644, atomicfile.TempDir(conflist.TempDir))
	return true, err
}

// remove deletes the file unless it configures another plugin; reports whether it did.
func (s *standalone) remove() (bool, error) {
	data, err := os.ReadFile(s.path)
	if os.IsNotExist(err) || (err == nil && othersType(data) != "") {
		return false, nil
	}
	if err := os.Remove(s.path); err != nil {
		return false, err
	}
	return true, nil
}

// othersType is the plugin type data configures when that is not kuma-cni; "" when it is
// kuma-cni's, or no network configuration at all.
func othersType(data []byte) string {
	var conf struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(data, &conf) != nil || conf.Type == cni.PluginType {
		return ""
	}
	return conf.Type
}
