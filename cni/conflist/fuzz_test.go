package conflist

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzInsertRemove gives Insert and Remove any file content, as a .conflist or as a .conf: neither
// panics; a refusal is an *Error naming the file, with nothing returned; what Insert accepts is
// valid JSON holding kuma-cni, inserting again changes nothing, and Remove gives back the very
// bytes Insert was given (for a list that did not hold kuma-cni already). Seeds are the providers'
// files and the shapes that once tripped the layout code; run it longer with
// go test ./cni/conflist -run '^$' -fuzz FuzzInsertRemove -fuzztime 5m
func FuzzInsertRemove(f *testing.F) {
	f.Fuzz(func(t *testing.T, conf bool, data []byte) {
		name := "10-x.conflist"
		if conf {
			name = "10-x.conf"
		}
		out, newName, err := Insert(name, data, testEntry)
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) || fe.File != name || fe.Problem == "" {
				t.Fatalf("refusal %#v is not an *Error on %s", err, name)
			}
			if out != nil {
				t.Fatalf("refused with %v, yet returned\n%s", err, out)
			}
			return
		}
		if !json.Valid(out) || !HasEntry(out) {
			t.Fatalf("inserted into\n%s\ngives\n%s\nwhich is not a list holding kuma-cni", data, out)
		}
		again, againName, err := Insert(newName, out, testEntry)
		if err != nil || againName != newName || !bytes.Equal(again, out) {
			t.Fatalf("inserting again into\n%s\ngives %v\n%s", out, err, again)
		}
		removed, err := Remove(newName, out)
		if err != nil {
			t.Fatalf("Remove refuses what Insert wrote: %v\n%s", err, out)
		}
		if HasEntry(removed) {
			t.Fatalf("kuma-cni is still in\n%s", removed)
		}
		if conf {
			return // the original .conf is a file of its own, restored by RemoveFiles
		}
		want := data
		if HasEntry(data) {
			// Insert replaced the entry that was there; removing it takes out every copy.
			if want, err = Remove(name, data); err != nil {
				t.Fatalf("Remove refuses a list Insert accepted: %v\n%s", err, data)
			}
		}
		if !bytes.Equal(removed, want) {
			t.Fatalf("Remove(Insert(x)) is not x:\n%q\nbecame\n%q\nthen\n%q", data, out, removed)
		}
	})
}
