package cli

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/meshinit/meshinit/initcontainer"
)

// Output formats of --output.
const (
	outputText = "text"
	outputJSON = "json"
)

func checkOutput(format string) error {
	if format != outputText && format != outputJSON {
		return fmt.Errorf("--output: %q is not an output format; accepted: %s or %s", format, outputText, outputJSON)
	}
	return nil
}

// report is what install and uninstall print, as JSON for tools or as lines for people.
type report struct {
	Backend string `json:"backend,omitempty"`
	// Chosen says why auto chose the backend.
	Chosen             string         `json:"chosen,omitempty"`
	Families           []familyReport `json:"families"`
	PassthroughAddress string         `json:"passthroughAddress,omitempty"`
	Firewalld          string         `json:"firewalld,omitempty"`
	Checks             []string       `json:"checks,omitempty"`
	verbose            []familyVerbose
}

type familyReport struct {
	Family  string `json:"family"`
	Backend string `json:"backend,omitempty"`
	Skipped string `json:"skipped,omitempty"`
	Changed bool   `json:"changed"`
	// Chains and Rules count ours after the command; Removed counts rules of ours it removed.
	Chains  int `json:"chains"`
	Rules   int `json:"rules"`
	Removed int `json:"removed"`
}

// familyVerbose is what --verbose adds in text: the scripts applied, spelled only then.
type familyVerbose struct {
	family string
	script func() []byte
}

func newReport(res *initcontainer.Result) *report {
	r := &report{Backend: res.Backend.String(), Chosen: res.Chosen}
	for _, f := range res.Families {
		fr := familyReport{Family: f.Family.String(), Skipped: f.Skipped, Changed: f.Changed}
		if f.Skipped == "" {
			fr.Backend = f.Backend.String()
		}
		after := f.After.Count()
		fr.Chains, fr.Rules = after.Chains, after.Rules
		if f.Changed {
			fr.Removed = f.Before.Count().Rules
			r.verbose = append(r.verbose, familyVerbose{family: fr.Family, script: f.Script})
		}
		r.Families = append(r.Families, fr)
	}
	return r
}

// write prints the report; verb is "installed" or "removed".
func (r *report) write(w io.Writer, format string, verbose bool, uninstall bool) error {
	if format == outputJSON {
		out, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", out)
		return err
	}
	for _, f := range r.Families {
		switch {
		case f.Skipped != "":
			fmt.Fprintf(w, "%s: skipped: %s\n", f.Family, f.Skipped)
		case !f.Changed && uninstall:
			fmt.Fprintf(w, "%s: nothing of ours to remove with %s\n", f.Family, f.Backend)
		case !f.Changed:
			fmt.Fprintf(w, "%s: already installed with %s, nothing changed (%d chains, %d rules)\n", f.Family, f.Backend, f.Chains, f.Rules)
		case uninstall:
			fmt.Fprintf(w, "%s: removed %d rules and our chains with %s\n", f.Family, f.Removed, f.Backend)
		case f.Removed > 0:
			fmt.Fprintf(w, "%s: replaced %d rules of ours with %s: now %d chains, %d rules\n", f.Family, f.Removed, f.Backend, f.Chains, f.Rules)
		default:
			fmt.Fprintf(w, "%s: installed with %s: %d chains, %d rules\n", f.Family, f.Backend, f.Chains, f.Rules)
		}
	}
	if r.PassthroughAddress != "" {
		fmt.Fprintf(w, "ipv6: %s\n", r.PassthroughAddress)
	}
	if r.Firewalld != "" {
		fmt.Fprintf(w, "firewalld: %s\n", r.Firewalld)
	}
	for _, c := range r.Checks {
		fmt.Fprintf(w, "validate: %s\n", c)
	}
	if verbose {
		if r.Chosen != "" {
			fmt.Fprintln(w, r.Chosen)
		}
		for _, v := range r.verbose {
			fmt.Fprintf(w, "# %s: applied\n%s", v.family, v.script())
		}
	}
	return nil
}
