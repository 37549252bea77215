package api

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode"
)

// EnvPrefix starts the variables that set the document's fields, as kumactl reads them:
// KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_EXCLUDE_PORTS sets redirect.inbound.excludePorts.
const EnvPrefix = "KUMA_TRANSPARENT_PROXY_"

// EnvNames maps each variable to the document field it sets: every field Kuma has, named as
// Kuma's envconfig names them, from the field's path. meshinit's own fields have none. Built on
// first use: kuma-init spells them only when its environment has such a variable.
var EnvNames = sync.OnceValue(func() map[string]string {
	names := map[string]string{}
	for key, path := range fieldPaths {
		if strings.HasPrefix(path, "meshinit") || (key.typ.Kind() == reflect.Struct && !reflect.PointerTo(key.typ).Implements(unmarshalerType)) {
			continue
		}
		names[envName(path)] = path
	}
	return names
})

// envName spells a path as Kuma's variables do: each camel-case word upper-cased and joined by
// '_', an acronym kept whole (kumaDPUser: KUMA_DP_USER) with its plural (excludePortsForIPs:
// EXCLUDE_PORTS_FOR_IPS).
func envName(path string) string {
	var words []string
	for _, segment := range strings.Split(path, ".") {
		runes := []rune(segment)
		start := 0
		for i := 1; i < len(runes); i++ {
			upper, prevUpper := unicode.IsUpper(runes[i]), unicode.IsUpper(runes[i-1])
			nextLower := i+1 < len(runes) && unicode.IsLower(runes[i+1])
			plural := i+2 == len(runes) && runes[i+1] == 's' || i+2 < len(runes) && runes[i+1] == 's' && unicode.IsUpper(runes[i+2])
			switch {
			case upper && !prevUpper, // fooBar
				upper && prevUpper && nextLower && !plural: // DPUser
				words = append(words, string(runes[start:i]))
				start = i
			}
		}
		words = append(words, string(runes[start:]))
	}
	return EnvPrefix + strings.ToUpper(strings.Join(words, "_"))
}

// ApplyEnv sets, on c, the field of every KUMA_TRANSPARENT_PROXY_* variable in environ ("NAME=value"
// entries, as os.Environ returns them), in the forms the document's strings take; errors name the
// variable. It returns the paths set and the variables that look like the document's but name no
// field, most likely typos. It does not validate c: flags may still change it.
func (c *TransparentProxyConfig) ApplyEnv(environ []string) (given, unknown []string, err error) {
	env := map[string]string{}
	for _, kv := range environ {
		if name, value, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, EnvPrefix) {
			env[name] = value
		}
	}
	d := &decoder{}
	v := reflect.ValueOf(c).Elem()
	for _, name := range slices.Sorted(maps.Keys(env)) {
		path, ok := EnvNames()[name]
		if !ok {
			unknown = append(unknown, name)
			continue
		}
		before := len(d.errs)
		d.value(path, env[name], fieldByPath(v, path))
		for _, e := range d.errs[before:] {
			e.Field = name + " (" + path + ")"
		}
	}
	return d.given, unknown, d.errs.Err()
}

// fieldByPath finds a field of the document by its path.
func fieldByPath(v reflect.Value, path string) reflect.Value {
	for _, name := range strings.Split(path, ".") {
		t := v.Type()
		for i := range t.NumField() {
			if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); tag == name {
				v = v.Field(i)
				break
			}
		}
	}
	return v
}
