package settings

import (
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/meshinit/meshinit/api"

	"github.com/meshinit/meshinit/test/readme"
)

var update = flag.Bool("update", false, "rewrite the README's generated tables")

// TestREADMEKeysTable proves the README's table of labels and annotations is generated from Keys.
func TestREADMEKeysTable(t *testing.T) {
	var b strings.Builder
	b.WriteString("| key | kind | value | default | meaning |\n| --- | --- | --- | --- | --- |\n")
	for _, k := range Keys() {
		kind := string(k.Kind)
		if k.Written {
			kind += ", written"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", k.Name, kind, readme.Cell(k.Form), readme.Cell(k.Default), readme.Cell(k.Description))
	}
	readme.CheckSection(t, "annotations", b.String(), *update)
}

func TestKeysCheck(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Keys() {
		if seen[k.Name] {
			t.Errorf("%s is listed twice", k.Name)
		}
		seen[k.Name] = true
		if k.Written != (k.check == nil) {
			t.Errorf("%s: keys users set need a check, and only they", k.Name)
		}
		if k.Form == "" || k.Description == "" {
			t.Errorf("%s: form and description are documentation; both are needed", k.Name)
		}
	}
	k, ok := LookupKey(api.AnnotationExcludeInboundPorts)
	if !ok {
		t.Fatal("LookupKey did not find an annotation of the contract")
	}
	want := `traffic.kuma.io/exclude-inbound-ports: "x" in "22,x" is not a port number; accepted: ` + api.FormPortRanges
	if err := k.Check("22,x"); err == nil || err.Error() != want {
		t.Errorf("Check error\n got: %v\nwant: %s", err, want)
	}
	if err := k.Check("22,8000-8100"); err != nil {
		t.Errorf("Check(valid) = %v", err)
	}
	if _, ok := LookupKey("kuma.io/unknown"); ok {
		t.Error("LookupKey found a key that is not in the contract")
	}
}

// FuzzAnnotationValues runs every key's check on any value: each must answer, never panic.
func FuzzAnnotationValues(f *testing.F) {
	f.Fuzz(func(t *testing.T, index uint8, value string) {
		key := Keys()[int(index)%len(Keys())]
		if err := key.Check(value); err != nil {
			fe, ok := err.(api.FieldErrors)
			if !ok || len(fe) != 1 || fe[0].Field != key.Name {
				t.Fatalf("%s: error %#v does not name the key", key.Name, err)
			}
		}
	})
}
