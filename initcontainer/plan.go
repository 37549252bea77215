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
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Backend is iptables or nftables: the rules as either installs them.
	Backend  api.Backend  `json:"backend"`
	Families []FamilyPlan `json:"families"`
}

// FamilyPlan is one family's chains and rules: iptables' tables and chains, or, with nftables,
// the chains of our table.
type FamilyPlan struct {
	Family string `json:"family"`
	Ruleset
	// NFTables is the family's table of ours when the plan is nftables'.
	NFTables *NFTRuleset `json:"-"`
}

func (fp FamilyPlan) MarshalJSON() ([]byte, error) {
	if fp.NFTables != nil {
		return json.Marshal(struct {
			Family string `json:"family"`
			Table  string `json:"table"`
			*NFTRuleset
		}{fp.Family, nftFamily(fp.NFTables.Family) + " " + nftTable, fp.NFTables})
	}
	return json.Marshal(struct {
		Family string `json:"family"`
		Ruleset
	}{fp.Family, fp.Ruleset})
}

// PlanAPIVersion versions the plan that --dry-run -o json prints.
const PlanAPIVersion = "meshinit.io/v1alpha1"

// NewPlan builds the plan of a valid configuration for a backend, iptables or nftables.
func NewPlan(cfg *api.TransparentProxyConfig, host Host, backend api.Backend) Plan {
	p := Plan{APIVersion: PlanAPIVersion, Kind: "TransparentProxyPlan", Backend: backend}
	for _, f := range Families(cfg) {
		fp := FamilyPlan{Family: f.String(), Ruleset: Build(cfg, host, f)}
		if backend == api.BackendNFTables {
			nft := NFTables(fp.Ruleset)
			fp.NFTables = &nft
		}
		p.Families = append(p.Families, fp)
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

// Scripts renders, family by family, what installs the plan where nothing of ours exists yet:
// iptables-restore --noflush input, or nft -f input. It is what --dry-run prints.
func (p Plan) Scripts() []byte {
	var b bytes.Buffer
	for _, fp := range p.Families {
		f := fp.Ruleset.Family
		if fp.NFTables != nil {
			fmt.Fprintf(&b, "# %s: nft -f -\n%s", f, fp.NFTables.Text())
			continue
		}
		fmt.Fprintf(&b, "# %s: %s --noflush\n", f, f.command("restore"))
		b.Write(Script(newState(), StateOf(fp.Ruleset)))
	}
	return b.Bytes()
}
