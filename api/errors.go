package api

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError reports a value that does not match its accepted form, in words an operator can act
// on: where the value came from, the offending part of it, what is wrong, and what would be right.
type FieldError struct {
	// Field is the annotation, label, environment variable, flag or document path the value came
	// from. Parsers leave it empty; callers set it with In.
	Field string
	// Value is the value as given.
	Value string
	// Token is the offending part of Value, when narrower than the whole.
	Token string
	// Problem says what is wrong, as a predicate of the token ("is not a port").
	Problem string
	// Accepted describes the accepted form.
	Accepted string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	subject := e.Token
	if subject == "" {
		subject = e.Value
	}
	switch {
	case e.Token != "" && e.Token != e.Value:
		fmt.Fprintf(&b, "%q in %q ", e.Token, e.Value)
	case subject != "":
		fmt.Fprintf(&b, "%q ", subject)
	}
	b.WriteString(e.Problem)
	if e.Accepted != "" {
		b.WriteString("; accepted: ")
		b.WriteString(e.Accepted)
	}
	return b.String()
}

// In returns a copy of the error attributed to field.
func (e *FieldError) In(field string) *FieldError {
	c := *e
	c.Field = field
	return &c
}

// FieldErrors is every problem found in one input, reported together so that one round of fixes
// is enough.
type FieldErrors []*FieldError

func (errs FieldErrors) Error() string {
	lines := make([]string, len(errs))
	for i, e := range errs {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Add records err, attributed to field, and reports whether there was one. Field errors inside err
// keep their own field when it is set; errors of another kind become a FieldError whose problem is
// their text.
func (errs *FieldErrors) Add(field string, err error) bool {
	if err == nil {
		return false
	}
	var many FieldErrors
	var one *FieldError
	switch {
	case errors.As(err, &many):
		for _, e := range many {
			errs.Add(field, e)
		}
	case errors.As(err, &one):
		if one.Field == "" {
			one = one.In(field)
		}
		*errs = append(*errs, one)
	default:
		*errs = append(*errs, &FieldError{Field: field, Problem: err.Error()})
	}
	return true
}

// Rename attributes each error to the name spell gives its field: the flag or annotation that set
// a document field, say.
func (errs FieldErrors) Rename(spell func(field string) string) {
	for _, e := range errs {
		e.Field = spell(e.Field)
	}
}

// Err returns nil when nothing was recorded, so that callers can return it directly.
func (errs FieldErrors) Err() error {
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// invalid builds a parser's error for token within value.
func invalid(value, token, problem, accepted string) *FieldError {
	return &FieldError{Value: value, Token: token, Problem: problem, Accepted: accepted}
}
