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
		if k.Form == "" || k.Description == "" {
			t.Errorf("%s: form and description are documentation; both are needed", k.Name)
		}
	}
	if _, ok := LookupKey(api.AnnotationExcludeInboundPorts); !ok {
		t.Fatal("LookupKey did not find an annotation of the contract")
	}
	if _, ok := LookupKey("kuma.io/unknown"); ok {
		t.Error("LookupKey found a key that is not in the contract")
	}
}

// FuzzAnnotationValues runs the parser of every setting's annotation on any value: each must
// answer, never panic, and refuse with an error that says the bad part and the accepted form.
func FuzzAnnotationValues(f *testing.F) {
	var annotated []*Setting
	for _, s := range All {
		if s.checkAnnotation != nil {
			annotated = append(annotated, s)
		}
	}
	f.Fuzz(func(t *testing.T, index uint8, value string) {
		s := annotated[int(index)%len(annotated)]
		if err := s.checkAnnotation(value); err != nil {
			if fe, ok := err.(*api.FieldError); !ok || fe.Accepted == "" {
				t.Fatalf("%s: error %#v does not say the accepted form", s.Annotation, err)
			}
		}
	})
}
