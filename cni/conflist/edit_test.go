package conflist

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/google/go-cmp/cmp"

	"github.com/meshinit/meshinit/cni"
	"github.com/meshinit/meshinit/test/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var testEntry = cni.NetConf{LogLevel: "info", Kubernetes: cni.Kubernetes{
	Kubeconfig:        "/etc/cni/net.d/kuma-cni-kubeconfig",
	ExcludeNamespaces: []string{"kube-system"},
}}

// fixtures are the providers' files in testdata, by name.
func fixtures(t *testing.T) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if !e.IsDir() {
			data, err := os.ReadFile(filepath.Join("testdata", e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files[e.Name()] = data
		}
	}
	if len(files) != 8 {
		t.Fatalf("found %d fixtures in testdata, want the 8 providers' files", len(files))
	}
	return files
}

func TestInsertRemoveProviders(t *testing.T) {
	for name, orig := range fixtures(t) {
		t.Run(name, func(t *testing.T) {
			out, newName, err := Insert(name, orig, testEntry)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", "golden", name+".inserted"), out, *update)
			if want := ConflistName(name); newName != want {
				t.Errorf("new name %q, want %q", newName, want)
			}

			list := loadWithLibcni(t, newName, out)
			last := list.Plugins[len(list.Plugins)-1]
			if last.Network.Type != cni.PluginType {
				t.Errorf("last plugin is %q, want %q", last.Network.Type, cni.PluginType)
			}
			var got cni.NetConf
			if err := json.Unmarshal(last.Bytes, &got); err != nil {
				t.Fatal(err)
			}
			want := testEntry
			want.Type = cni.PluginType
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("kuma-cni's entry (-want +got):\n%s", diff)
			}

			// Everything but our entry is as it was: the whole file for a list, the first
			// plugin, name and version for a converted .conf.
			without := jsonValue(t, out)
			plugins := without["plugins"].([]any)
			without["plugins"] = plugins[:len(plugins)-1]
			if filepath.Ext(name) == ".conflist" {
				if diff := cmp.Diff(jsonValue(t, orig), without); diff != "" {
					t.Errorf("the rest of the list changed (-want +got):\n%s", diff)
				}
			} else {
				conf := jsonValue(t, orig)
				wantList := map[string]any{"cniVersion": conf["cniVersion"], "name": conf["name"], "plugins": []any{conf}}
				if diff := cmp.Diff(wantList, without); diff != "" {
					t.Errorf("the converted list (-want +got):\n%s", diff)
				}
			}

			again, againName, err := Insert(newName, out, testEntry)
			if err != nil || againName != newName || !bytes.Equal(again, out) {
				t.Errorf("inserting again changed the file (err %v, name %q):\n%s", err, againName, again)
			}

			removed, err := Remove(newName, out)
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Ext(name) == ".conflist" && !bytes.Equal(removed, orig) {
				t.Errorf("remove after insert gives\n%s\nwant the original\n%s", removed, orig)
			}
			if HasEntry(removed) {
				t.Errorf("kuma-cni is still in\n%s", removed)
			}
		})
	}
}

// loadWithLibcni loads a list as runtimes do, from a file.
func loadWithLibcni(t *testing.T, name string, data []byte) *libcni.NetworkConfigList {
	t.Helper()
	if _, err := libcni.ConfListFromBytes(data); err != nil {
		t.Fatalf("libcni refuses %s: %v\n%s", name, err, data)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromFile(path)
	if err != nil {
		t.Fatalf("libcni refuses %s: %v\n%s", name, err, data)
	}
	return list
}

func jsonValue(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers compare as written
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return v
}

func TestInsertLayouts(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{
			name: "compact",
			in:   `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"}]}`,
			want: `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},{"type":"kuma-cni","kubernetes":{"kubeconfig":"/k"}}]}`,
		},
		{
			name: "one line with spaces",
			in:   `{ "name": "n", "plugins": [ { "type": "bridge" } ] }`,
			want: `{ "name": "n", "plugins": [ { "type": "bridge" }, {"type":"kuma-cni","kubernetes":{"kubeconfig":"/k"}} ] }`,
		},
		{
			name: "first element on the bracket's line",
			in:   "{\n  \"name\": \"n\",\n  \"plugins\": [{\n    \"type\": \"bridge\"\n  }]\n}\n",
			want: "{\n  \"name\": \"n\",\n  \"plugins\": [{\n    \"type\": \"bridge\"\n  }, {\n    \"type\": \"kuma-cni\",\n    \"kubernetes\": {\n      \"kubeconfig\": \"/k\"\n    }\n  }]\n}\n",
		},
		{
			name: "CRLF line ends",
			in:   "{\r\n  \"name\": \"n\",\r\n  \"plugins\": [\r\n    {\"type\": \"bridge\"}\r\n  ]\r\n}\r\n",
			want: "{\r\n  \"name\": \"n\",\r\n  \"plugins\": [\r\n    {\"type\": \"bridge\"},\r\n    {\n      \"type\": \"kuma-cni\",\n      \"kubernetes\": {\n        \"kubeconfig\": \"/k\"\n      }\n    }\r\n  ]\r\n}\r\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entry := cni.NetConf{Kubernetes: cni.Kubernetes{Kubeconfig: "/k"}}
			out, _, err := Insert("x.conflist", []byte(tc.in), entry)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want {
				t.Errorf("got\n%s\nwant\n%s", out, tc.want)
			}
			if again, _, _ := Insert("x.conflist", out, entry); !bytes.Equal(again, out) {
				t.Errorf("inserting again gives\n%s", again)
			}
			if removed, _ := Remove("x.conflist", out); string(removed) != tc.in {
				t.Errorf("removing gives\n%s\nwant\n%s", removed, tc.in)
			}
		})
	}
}

func TestInsertReplacesOurEntryInPlace(t *testing.T) {
	orig := "{\n  \"name\": \"n\",\n  \"plugins\": [\n    {\"type\": \"bridge\"},\n    {\"type\": \"kuma-cni\", \"cniVersion\": \"9.9.9\", \"log_level\": \"debug\", \"kubernetes\": {}},\n    {\"type\": \"portmap\"},\n    {\"type\": \"kuma-cni\"}\n  ]\n}\n"
	out, _, err := Insert("x.conflist", []byte(orig), testEntry)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, p := range jsonValue(t, out)["plugins"].([]any) {
		types = append(types, p.(map[string]any)["type"].(string))
	}
	if want := []string{"bridge", "kuma-cni", "portmap"}; !reflect.DeepEqual(types, want) {
		t.Errorf("plugins %v, want %v (one kuma-cni, where it was):\n%s", types, want, out)
	}
	if !bytes.Contains(out, []byte(`"log_level":"info"`)) {
		t.Errorf("the old entry was not replaced:\n%s", out)
	}
	removed, err := Remove("x.conflist", out)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"name\": \"n\",\n  \"plugins\": [\n    {\"type\": \"bridge\"},\n    {\"type\": \"portmap\"}\n  ]\n}\n"
	if string(removed) != want {
		t.Errorf("removed:\n%s\nwant\n%s", removed, want)
	}
}

func TestUnknownKeysSurvive(t *testing.T) {
	orig := []byte(`{
  "cniVersion": "1.0.0",
  "cniVersions": ["0.3.1", "1.0.0"],
  "name": "vendor",
  "x-vendor": {"z": 1e3, "a": "\u003c\u0026\u003e", "list": [3, 2, 1]},
  "disableGC": true,
  "plugins": [
    {"type": "bridge", "x-plugin": {"b": 2, "a": 1}}
  ],
  "x-after": null
}
`)
	out, _, err := Insert("99-vendor.conflist", orig, testEntry)
	if err != nil {
		t.Fatal(err)
	}
	for _, kept := range []string{
		`"cniVersions": ["0.3.1", "1.0.0"]`,
		`"x-vendor": {"z": 1e3, "a": "\u003c\u0026\u003e", "list": [3, 2, 1]}`,
		`{"type": "bridge", "x-plugin": {"b": 2, "a": 1}}`,
		`"x-after": null`,
	} {
		if !bytes.Contains(out, []byte(kept)) {
			t.Errorf("%s is not kept as written:\n%s", kept, out)
		}
	}
	list := loadWithLibcni(t, "99-vendor.conflist", out)
	if !list.DisableGC || len(list.Plugins) != 2 {
		t.Errorf("libcni reads disableGC %v and %d plugins", list.DisableGC, len(list.Plugins))
	}
}

func TestInsertRefuses(t *testing.T) {
	for _, tc := range []struct{ name, file, data, problem string }{
		{"not JSON", "10-x.conflist", `{"name": "x" "plugins": []}`, `is not valid JSON: invalid character '"' after object key:value pair (line 1, column 14)`},
		{"cut short", "10-x.conflist", "{\"name\": \"x\", \"plugins\": [\n  {\"type\": \"a\"}\n", "is not valid JSON: unexpected end of JSON input (line 2, column 16)"},
		{"an array", "10-x.conflist", `[{"type": "a"}]`, "is not a JSON object"},
		{"more after the object", "10-x.conflist", `{"name": "x", "plugins": [{"type": "a"}]} {}`, "is not valid JSON: invalid character '{' after top-level value (line 1, column 43)"},
		{"no plugins", "10-x.conflist", `{"name": "x", "type": "bridge"}`, `has no "plugins" array`},
		{"plugins not an array", "10-x.conflist", `{"name": "x", "plugins": {"type": "a"}}`, `has "plugins" {"type": "a"}, which is not an array`},
		{"empty plugins", "10-x.conflist", `{"name": "x", "plugins": []}`, "has no plugins"},
		{"plugin without type", "10-x.conflist", `{"name": "x", "plugins": [{"type": "a"}, {"mtu": 1}]}`, `has plugins[1] with no "type"`},
		{"plugin not an object", "10-x.conflist", `{"name": "x", "plugins": ["a"]}`, `has plugins[0] "a", which is not an object`},
		{"key twice", "10-x.conflist", `{"name": "x", "plugins": [{"type": "a"}], "plugins": []}`, `has the key "plugins" more than once`},
		{"mixed versions", "10-x.conflist", `{"cniVersion": "0.3.1", "name": "x", "plugins": [{"type": "a"}, {"type": "b", "cniVersion": "1.0.0"}]}`,
			`mixes CNI versions: plugins[1] (b) declares cniVersion "1.0.0", the list "0.3.1"`},
		{"mixed versions without the list's", "10-x.conflist", `{"name": "x", "plugins": [{"type": "a", "cniVersion": "0.4.0"}, {"type": "b", "cniVersion": "1.0.0"}]}`,
			`mixes CNI versions: plugins[1] (b) declares cniVersion "1.0.0", plugins[0] (a) "0.4.0"`},
		{"version not a string", "10-x.conflist", `{"cniVersion": 1, "name": "x", "plugins": [{"type": "a"}]}`, "has cniVersion 1, which is not a string"},
		{"a version kuma-cni does not speak", "10-x.conflist", `{"cniVersion": "2.0.0", "name": "x", "plugins": [{"type": "a"}]}`,
			`declares cniVersion "2.0.0", which kuma-cni does not speak; accepted: a cniVersion kuma-cni speaks: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0 or 1.1.0`},
		{"not a version", "10-x.conflist", `{"cniVersion": "latest", "name": "x", "plugins": [{"type": "a"}]}`, `declares cniVersion "latest", which kuma-cni does not speak`},
		{"cniVersions with one kuma-cni does not speak", "10-x.conflist", `{"cniVersion": "1.0.0", "cniVersions": ["1.0.0", "1.2.0"], "name": "x", "plugins": [{"type": "a"}]}`,
			`declares "1.2.0" in cniVersions, of which a runtime may pick the highest it knows, and kuma-cni does not speak it`},
		{"cniVersions not strings", "10-x.conflist", `{"cniVersions": [1], "name": "x", "plugins": [{"type": "a"}]}`, "has cniVersions [1], which is not an array of strings"},
		{"a .conf of a version kuma-cni does not speak", "10-x.conf", `{"cniVersion": "0.5.0", "name": "x", "type": "a"}`, `declares cniVersion "0.5.0", which kuma-cni does not speak`},
		{"a list in a .conf", "10-x.conf", `{"name": "x", "plugins": [{"type": "a"}]}`, "holds a list of plugins"},
		{"a .conf without type", "10-x.conf", `{"name": "x"}`, `has no "type"`},
		{"not a configuration name", "10-x.yaml", `{}`, "is not a CNI network configuration file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := Insert(tc.file, []byte(tc.data), testEntry)
			var fe *Error
			if !errors.As(err, &fe) || fe.File != tc.file || !strings.Contains(err.Error(), tc.problem) {
				t.Fatalf("got %v, want an *Error on %s with %q", err, tc.file, tc.problem)
			}
			if out != nil {
				t.Errorf("refused, yet returned\n%s", out)
			}
		})
	}
}

// TestEveryVersion: a list of each version kuma-cni speaks takes it, as does one that declares
// them all in cniVersions, or none.
func TestEveryVersion(t *testing.T) {
	for _, v := range cni.SupportedVersions {
		if _, _, err := Insert("10-x.conflist", []byte(`{"cniVersion": "`+v+`", "name": "x", "plugins": [{"type": "a"}]}`), testEntry); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
	all, _ := json.Marshal(cni.SupportedVersions)
	for _, data := range []string{`{"cniVersions": ` + string(all) + `, "name": "x", "plugins": [{"type": "a"}]}`, `{"name": "x", "plugins": [{"type": "a"}]}`} {
		if _, _, err := Insert("10-x.conflist", []byte(data), testEntry); err != nil {
			t.Errorf("%s: %v", data, err)
		}
	}
}

// TestConfWithoutVersion: a .conf that declares no cniVersion (Flannel's, as Kuma's tests have it)
// becomes a list of the version its plugin speaks, as VersionOf says; the .conf itself is kept
// whole. Without an answer the file is refused, naming why.
func TestConfWithoutVersion(t *testing.T) {
	conf := []byte(`{"name": "cbr0", "type": "flannel", "delegate": {"hairpinMode": true, "isDefaultGateway": true}}` + "\n")
	asked := ""
	out, name, err := Insert("10-flannel.conf", conf, testEntry, VersionOf(func(pluginType string) (string, error) {
		asked = pluginType
		return "0.3.1", nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if asked != "flannel" {
		t.Errorf("asked the version of %q, want flannel", asked)
	}
	list := loadWithLibcni(t, name, out)
	if list.CNIVersion != "0.3.1" || len(list.Plugins) != 2 || list.Plugins[0].Network.Type != "flannel" {
		t.Errorf("libcni reads version %q and %d plugins:\n%s", list.CNIVersion, len(list.Plugins), out)
	}

	_, _, err = Insert("10-flannel.conf", conf, testEntry, VersionOf(func(string) (string, error) {
		return "", errors.New("flannel could not be asked which CNI versions it speaks: no /host/opt/cni/bin/flannel")
	}))
	want := "10-flannel.conf: declares no cniVersion, and flannel could not be asked which CNI versions it speaks: no /host/opt/cni/bin/flannel; accepted: a cniVersion in the file"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestRemoveLeavesOthersAlone(t *testing.T) {
	for _, name := range []string{"10-x.conf", "10-x.conflist"} {
		data := []byte(`{"name":"x","cniVersion":"0.3.1","type":"bridge","plugins":[{"type":"bridge"}]}`)
		if out, err := Remove(name, data); err != nil || &out[0] != &data[0] {
			t.Errorf("%s: Remove without our entry gave %v, %s", name, err, out)
		}
	}
	if _, err := Remove("10-x.conflist", []byte("{")); err == nil {
		t.Error("Remove accepted broken JSON")
	}
}

// TestEntryWritesEveryField guards entryJSON, which lists kuma-cni's fields by hand.
func TestEntryWritesEveryField(t *testing.T) {
	if n := reflect.TypeFor[cni.NetConf]().NumField(); n != 4 {
		t.Fatalf("cni.NetConf has %d fields now; write the new ones in entryJSON", n)
	}
	if n := reflect.TypeFor[cni.Kubernetes]().NumField(); n != 3 {
		t.Fatalf("cni.Kubernetes has %d fields now; check that entryJSON writes them", n)
	}
}
