package main

// A small iptables filter-table evaluator for the tests: it applies
// iptables-restore --noflush input (only the forms restore emits) to a
// table, and decides whether FORWARD would let a packet through
// mainChain, walking the chains as the kernel does.

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// packet is what the evaluator looks at of a packet.
type packet struct {
	src, dst    netip.Addr
	proto       string // tcp, udp or sctp
	port        int    // destination port
	established bool   // part of a connection conntrack already knows
}

// evalRule is one parsed rule.
type evalRule struct {
	src, dst    netip.Prefix // zero: any
	proto       string       // "": any
	lo, hi      int          // destination ports; lo 0: any
	established bool         // --ctstate RELATED,ESTABLISHED
	target      string       // RETURN, DROP, ACCEPT or a chain
}

// table is the filter table as the evaluator knows it: the chains the
// tests care about (built-in chains are left out).
type table struct {
	chains map[string][]evalRule
}

// newTable returns an empty table.
func newTable() *table {
	return &table{chains: map[string][]evalRule{}}
}

// restore applies iptables-restore --noflush input to the table, failing
// on anything restore should not emit or iptables-restore would refuse.
func (t *table) restore(input []byte) error {
	lines := strings.Split(strings.TrimSuffix(string(input), "\n"), "\n")
	if len(lines) < 2 || lines[0] != "*filter" || lines[len(lines)-1] != "COMMIT" {
		return fmt.Errorf("input is not one *filter ... COMMIT block")
	}
	for i, line := range lines[1 : len(lines)-1] {
		if err := t.apply(line); err != nil {
			return fmt.Errorf("line %d %q: %w", i+2, line, err)
		}
	}
	return t.checkJumps()
}

// apply applies one line of restore input.
func (t *table) apply(line string) error {
	switch {
	case strings.HasPrefix(line, ":"):
		fields := strings.Fields(line[1:])
		if len(fields) != 3 || fields[1] != "-" || fields[2] != "[0:0]" {
			return fmt.Errorf("bad chain declaration")
		}
		t.chains[fields[0]] = nil // declaring flushes
		return nil
	case strings.HasPrefix(line, "-X "):
		return t.deleteChain(strings.TrimPrefix(line, "-X "))
	case strings.HasPrefix(line, "-A "):
		words, err := tokenize(line)
		if err != nil {
			return err
		}
		if _, ok := t.chains[words[1]]; !ok {
			return fmt.Errorf("append to undeclared chain %s", words[1])
		}
		rule, err := parseRule(words[2:])
		if err != nil {
			return err
		}
		t.chains[words[1]] = append(t.chains[words[1]], rule)
		return nil
	}
	return fmt.Errorf("unexpected line")
}

// deleteChain deletes an empty chain no rule jumps to.
func (t *table) deleteChain(name string) error {
	rules, ok := t.chains[name]
	if !ok {
		return fmt.Errorf("delete of missing chain %s", name)
	}
	if len(rules) > 0 {
		return fmt.Errorf("delete of non-empty chain %s", name)
	}
	for from, rules := range t.chains {
		for _, r := range rules {
			if r.target == name {
				return fmt.Errorf("delete of chain %s still used by %s", name, from)
			}
		}
	}
	delete(t.chains, name)
	return nil
}

// checkJumps fails if a rule jumps to a missing chain.
func (t *table) checkJumps() error {
	for from, rules := range t.chains {
		for _, r := range rules {
			if _, ok := t.chains[r.target]; !ok && !slices.Contains([]string{"RETURN", "DROP", "ACCEPT"}, r.target) {
				return fmt.Errorf("%s jumps to missing chain %s", from, r.target)
			}
		}
	}
	return nil
}

// tokenize splits a rule into words; a double-quoted word may hold spaces.
func tokenize(line string) ([]string, error) {
	var words []string
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimSpace(line) {
		if line[0] == '"' {
			end := strings.IndexByte(line[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote")
			}
			words = append(words, line[1:end+1])
			line = line[end+2:]
			continue
		}
		word, rest, _ := strings.Cut(line, " ")
		words = append(words, word)
		line = rest
	}
	return words, nil
}

// parseRule parses the options of a rule.
func parseRule(words []string) (evalRule, error) {
	var r evalRule
	var modules []string
	for len(words) > 0 {
		if len(words) < 2 {
			return r, fmt.Errorf("option %s without value", words[0])
		}
		opt, val := words[0], words[1]
		words = words[2:]
		var err error
		switch opt {
		case "-s":
			r.src, err = parsePrefix(val)
		case "-d":
			r.dst, err = parsePrefix(val)
		case "-p":
			if !slices.Contains([]string{"tcp", "udp", "sctp"}, val) {
				err = fmt.Errorf("protocol %s", val)
			}
			r.proto = val
		case "-m":
			if !slices.Contains([]string{"conntrack", "comment", "tcp", "udp", "sctp"}, val) {
				err = fmt.Errorf("module %s", val)
			}
			if slices.Contains([]string{"tcp", "udp", "sctp"}, val) && val != r.proto {
				err = fmt.Errorf("module %s with protocol %q", val, r.proto)
			}
			modules = append(modules, val)
		case "--ctstate":
			if val != "RELATED,ESTABLISHED" || !slices.Contains(modules, "conntrack") {
				err = fmt.Errorf("--ctstate %s", val)
			}
			r.established = true
		case "--comment":
			if !slices.Contains(modules, "comment") || len(val) > 255 {
				err = fmt.Errorf("--comment %s", val)
			}
		case "--dport":
			if r.proto == "" || !slices.Contains(modules, r.proto) {
				err = fmt.Errorf("--dport without -p and -m")
			}
			if err == nil {
				r.lo, r.hi, err = parsePorts(val)
			}
		case "-j":
			r.target = val
			if len(words) > 0 {
				err = fmt.Errorf("options after -j")
			}
		default:
			err = fmt.Errorf("unknown option %s", opt)
		}
		if err != nil {
			return r, err
		}
	}
	if r.target == "" {
		return r, fmt.Errorf("rule without -j")
	}
	return r, nil
}

// parsePrefix parses an address prefix as restore writes it.
func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || p != p.Masked() || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("prefix %q", s)
	}
	return p, nil
}

// parsePorts parses "N" or "N:M".
func parsePorts(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, ":")
	if lo, err = strconv.Atoi(a); err != nil || lo < 1 || lo > 65535 {
		return 0, 0, fmt.Errorf("port %q", s)
	}
	if !isRange {
		return lo, lo, nil
	}
	if hi, err = strconv.Atoi(b); err != nil || hi <= lo || hi > 65535 {
		return 0, 0, fmt.Errorf("port range %q", s)
	}
	return lo, hi, nil
}

// matches tells whether the rule matches the packet.
func (r evalRule) matches(p packet) bool {
	switch {
	case r.src.IsValid() && !r.src.Contains(p.src),
		r.dst.IsValid() && !r.dst.Contains(p.dst),
		r.proto != "" && r.proto != p.proto,
		r.lo != 0 && (p.port < r.lo || p.port > r.hi),
		r.established && !p.established:
		return false
	}
	return true
}

// verdict is where a walk through a chain ended.
type verdict int

const (
	fellOff  verdict = iota // end of chain or RETURN: back to the caller
	accepted                // ACCEPT: final
	dropped                 // DROP: final
)

// allows tells whether the packet passes mainChain (falling off it goes
// back to FORWARD, whose policy the tests take as ACCEPT).
func (t *table) allows(p packet) (bool, error) {
	v, err := t.walk(mainChain, p, 0)
	return v != dropped, err
}

// walk runs the packet through one chain.
func (t *table) walk(name string, p packet, depth int) (verdict, error) {
	if depth > 10 {
		return dropped, fmt.Errorf("jump loop at %s", name)
	}
	rules, ok := t.chains[name]
	if !ok {
		return dropped, fmt.Errorf("missing chain %s", name)
	}
	for _, r := range rules {
		if !r.matches(p) {
			continue
		}
		switch r.target {
		case "RETURN":
			return fellOff, nil
		case "DROP":
			return dropped, nil
		case "ACCEPT":
			return accepted, nil
		}
		v, err := t.walk(r.target, p, depth+1)
		if err != nil || v != fellOff {
			return v, err
		}
	}
	return fellOff, nil
}
