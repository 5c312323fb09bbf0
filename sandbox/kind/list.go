package kind

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"kubelab/sandbox"
)

// object is one Docker container, network or volume as `docker ps`,
// `docker network ls` or `docker volume ls` print it with --format json.
type object struct {
	Name   string
	State  string // containers only: running, exited...
	Labels map[string]string
}

// parseObjects reads the JSON lines of `docker ps --format json` (or
// network ls, volume ls). Containers name themselves in "Names", networks
// and volumes in "Name".
func parseObjects(out []byte) ([]object, error) {
	var objs []object
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var raw struct {
			Name, Names, State, Labels string
		}
		if err := json.Unmarshal(line, &raw); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		objs = append(objs, object{
			Name:   cmp.Or(raw.Names, raw.Name),
			State:  raw.State,
			Labels: parseLabels(raw.Labels),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return objs, nil
}

var labelStart = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*=`)

// parseLabels splits docker's "k1=v1,k2=v2" rendering of labels. A value
// may itself hold commas: a piece that does not begin with a label key and
// "=" continues the value before it.
func parseLabels(s string) map[string]string {
	labels := make(map[string]string)
	if s == "" {
		return labels
	}
	last := ""
	for piece := range strings.SplitSeq(s, ",") {
		if loc := labelStart.FindStringIndex(piece); loc != nil {
			last = piece[:loc[1]-1]
			labels[last] = piece[loc[1]:]
			continue
		}
		if last != "" {
			labels[last] += "," + piece
		}
	}
	return labels
}

// found is what exists of one sandbox.
type found struct {
	id          string
	owner       string
	workstation bool
	engine      bool
	network     bool
	volume      bool
	nodes       []string // kind node containers
}

// kind is what the sandbox provides, from what exists of it.
func (f *found) kind() sandbox.Kind {
	switch {
	case len(f.nodes) > 0:
		return sandbox.KindKubernetes
	case f.engine:
		return sandbox.KindDocker
	default:
		return sandbox.KindShell
	}
}

// empty reports whether nothing of the sandbox exists.
func (f *found) empty() bool {
	return !f.workstation && !f.engine && !f.network && !f.volume && len(f.nodes) == 0
}

// clusterPrefix is how the names of kind clusters that belong to kubelab
// begin (the Manager's sandbox IDs); List reports such a cluster even when
// nothing labelled is left of its sandbox, so that it can be deleted.
const clusterPrefix = "kl-"

// collect groups labelled containers, networks and volumes and kind nodes
// by sandbox. With adoptPrefix set, a kind cluster whose name starts with
// it counts as a sandbox of its own even when nothing labelled is left.
func collect(containers, networks, volumes, nodes []object, adoptPrefix string) []*found {
	byID := make(map[string]*found)
	get := func(id string) *found {
		f, ok := byID[id]
		if !ok {
			f = &found{id: id}
			byID[id] = f
		}
		return f
	}
	for _, o := range containers {
		id := o.Labels[LabelSandbox]
		if id == "" {
			continue
		}
		f := get(id)
		f.owner = cmp.Or(f.owner, o.Labels[LabelOwner])
		switch {
		case o.Labels[LabelRole] == roleWorkstation || o.Name == workstationName(id):
			f.workstation = true
		case o.Labels[LabelRole] == roleEngine || o.Name == engineName(id):
			f.engine = true
		}
	}
	for _, o := range networks {
		if id := o.Labels[LabelSandbox]; id != "" {
			f := get(id)
			f.network = true
			f.owner = cmp.Or(f.owner, o.Labels[LabelOwner])
		}
	}
	for _, o := range volumes {
		if id := o.Labels[LabelSandbox]; id != "" {
			f := get(id)
			f.volume = true
			f.owner = cmp.Or(f.owner, o.Labels[LabelOwner])
		}
	}
	for _, o := range nodes {
		name := o.Labels[KindClusterLabel]
		if name == "" {
			continue
		}
		f, ok := byID[name]
		if !ok {
			if adoptPrefix == "" || !strings.HasPrefix(name, adoptPrefix) {
				continue
			}
			f = get(name)
		}
		f.nodes = append(f.nodes, o.Name)
	}
	out := make([]*found, 0, len(byID))
	for _, f := range byID {
		slices.Sort(f.nodes)
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b *found) int { return strings.Compare(a.id, b.id) })
	return out
}

// scan finds what exists of sandboxes: of the one sandbox id, or of all
// when id is empty (kind clusters named kl-* included).
func (p *Provider) scan(ctx context.Context, id string) ([]*found, error) {
	sel := "label=" + LabelSandbox
	nodeSel := "label=" + KindClusterLabel
	adopt := clusterPrefix
	if id != "" {
		sel += "=" + id
		nodeSel += "=" + id
		adopt = id
	}
	var lists [4][]object
	cmds := [4][]string{
		{"ps", "--all", "--no-trunc", "--filter", sel, "--format", "json"},
		{"network", "ls", "--no-trunc", "--filter", sel, "--format", "json"},
		{"volume", "ls", "--filter", sel, "--format", "json"},
		{"ps", "--all", "--no-trunc", "--filter", nodeSel, "--format", "json"},
	}
	for i, args := range cmds {
		out, err := p.docker.run(ctx, nil, args...)
		if err != nil {
			return nil, err
		}
		objs, err := parseObjects(out)
		if err != nil {
			return nil, fmt.Errorf("parse output of docker %s: %w", shellJoin(args), err)
		}
		lists[i] = objs
	}
	return collect(lists[0], lists[1], lists[2], lists[3], adopt), nil
}

// lookup returns what exists of sandbox id (empty when nothing does).
func (p *Provider) lookup(ctx context.Context, id string) (*found, error) {
	all, err := p.scan(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, f := range all {
		if f.id == id {
			return f, nil
		}
	}
	return &found{id: id}, nil
}
