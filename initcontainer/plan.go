package initcontainer

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/meshinit/meshinit/api"
)

// Plan is the rules of every family of a configuration with their purposes: what --output json
// prints, for tools.
type Plan struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Families   []FamilyPlan `json:"families"`
}

// FamilyPlan is one family's chains and rules.
type FamilyPlan struct {
	Family string `json:"family"`
	Ruleset
}

// PlanAPIVersion versions the plan that --dry-run -o json prints.
const PlanAPIVersion = "meshinit.io/v1alpha1"

// NewPlan builds the plan of a valid configuration.
func NewPlan(cfg *api.TransparentProxyConfig, host Host) Plan {
	p := Plan{APIVersion: PlanAPIVersion, Kind: "TransparentProxyPlan"}
	for _, f := range Families(cfg) {
		p.Families = append(p.Families, FamilyPlan{Family: f.String(), Ruleset: Build(cfg, host, f)})
	}
	return p
}

// JSON renders the plan, indented.
func (p Plan) JSON() []byte {
	out, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		panic(err) // plain strings and slices always marshal
	}
	return append(out, '\n')
}

// Scripts renders, family by family, the iptables-restore --noflush input that installs the plan
// where nothing of ours exists yet: what --dry-run prints.
func (p Plan) Scripts() []byte {
	var b bytes.Buffer
	for _, fp := range p.Families {
		f := fp.Ruleset.Family
		fmt.Fprintf(&b, "# %s: %s --noflush\n", f, f.command("restore"))
		b.Write(Script(newState(), StateOf(fp.Ruleset)))
	}
	return b.Bytes()
}
