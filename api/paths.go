package api

import (
	"reflect"
	"strings"
)

// The document's field paths (redirect.inbound.port) are spelled once, by the JSON tags of
// TransparentProxyConfig; errors, warnings and the settings' declarations find a field's path
// from the field itself.

// fieldKey is a field by where it lies in the document and its type: a struct and its first field
// share an offset.
type fieldKey struct {
	offset uintptr
	typ    reflect.Type
}

// fieldPaths holds the path of every field of the document, by its key; built once.
var fieldPaths = func() map[fieldKey]string {
	paths := map[fieldKey]string{}
	var walk func(t reflect.Type, offset uintptr, prefix string)
	walk = func(t reflect.Type, offset uintptr, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			path := prefix + name
			paths[fieldKey{offset + f.Offset, f.Type}] = path
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, offset+f.Offset, path+".")
			}
		}
	}
	walk(reflect.TypeFor[TransparentProxyConfig](), 0, "")
	return paths
}()

// Path returns the document path of field, a pointer to one of c's fields, such as
// &c.Redirect.Inbound.Port; it panics on a pointer to anything else, which is a programming error.
func (c *TransparentProxyConfig) Path(field any) string {
	v := reflect.ValueOf(field)
	if path, ok := fieldPaths[fieldKey{v.Pointer() - reflect.ValueOf(c).Pointer(), v.Type().Elem()}]; ok {
		return path
	}
	panic("api: Path of something that is not a field of the configuration")
}

// pathProbe is the document whose fields' addresses FieldPath compares; never written, it spares
// every setting's declaration a document of its own at start.
var pathProbe TransparentProxyConfig

// FieldPath returns the document path of the field in selects.
func FieldPath[T any](in func(*TransparentProxyConfig) *T) string {
	return pathProbe.Path(in(&pathProbe))
}

// IsPath reports whether path is a field of the document, such as redirect.inbound.excludePorts.
func IsPath(path string) bool {
	for _, p := range fieldPaths {
		if p == path {
			return true
		}
	}
	return false
}
