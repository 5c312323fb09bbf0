package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// capabilitySets are the sets of an OCI process's "capabilities" object.
var capabilitySets = []string{"bounding", "effective", "inheritable", "permitted", "ambient"}

// stripConfig removes CAP_SYS_RESOURCE from an OCI bundle's config.json
// (the capabilities are under "process"). Everything else keeps its value;
// only the objects on the way to the capability lists are re-encoded.
func stripConfig(data []byte) ([]byte, bool, error) {
	return editObject(data, func(top map[string]json.RawMessage) (bool, error) {
		raw, ok := top["process"]
		if !ok || isNull(raw) {
			return false, nil
		}
		out, changed, err := stripProcess(raw)
		if err != nil {
			return false, fmt.Errorf("process: %w", err)
		}
		if changed {
			top["process"] = out
		}
		return changed, nil
	})
}

// stripProcess removes CAP_SYS_RESOURCE from an OCI process object (the
// file given to runc exec --process).
func stripProcess(data []byte) ([]byte, bool, error) {
	return editObject(data, func(proc map[string]json.RawMessage) (bool, error) {
		raw, ok := proc["capabilities"]
		if !ok || isNull(raw) {
			return false, nil
		}
		out, changed, err := editObject(raw, func(caps map[string]json.RawMessage) (bool, error) {
			changed := false
			for _, set := range capabilitySets {
				list, ok := caps[set]
				if !ok || isNull(list) {
					continue
				}
				var names []string
				if err := json.Unmarshal(list, &names); err != nil {
					return false, fmt.Errorf("capabilities.%s: %w", set, err)
				}
				kept := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == capSysResource })
				if len(kept) == len(names) {
					continue
				}
				enc, err := marshal(kept)
				if err != nil {
					return false, fmt.Errorf("capabilities.%s: %w", set, err)
				}
				caps[set] = enc
				changed = true
			}
			return changed, nil
		})
		if err != nil {
			return false, err
		}
		if changed {
			proc["capabilities"] = out
		}
		return changed, nil
	})
}

// editObject decodes a JSON object into raw members, lets edit change some
// of them, and encodes it again only if edit reports a change.
func editObject(data []byte, edit func(map[string]json.RawMessage) (bool, error)) ([]byte, bool, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, false, fmt.Errorf("decode JSON object: %w", err)
	}
	changed, err := edit(obj)
	if err != nil || !changed {
		return data, false, err
	}
	out, err := marshal(obj)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// marshal encodes v without HTML escaping (runc does not care, but paths
// and arguments stay readable) and without a trailing newline.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}
