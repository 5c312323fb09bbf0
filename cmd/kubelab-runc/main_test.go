package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

func TestTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		wantPath string
		wantKind string
	}{
		{"create with global flags as containerd calls it",
			[]string{"--root", "/run/docker/runtime-runc/moby", "--log", "/run/x/log.json", "--log-format", "json", "--systemd-cgroup",
				"create", "--bundle", "/run/b1", "--pid-file", "/run/b1/init.pid", "abc"},
			"/run/b1/config.json", "config"},
		{"create with --bundle=", []string{"create", "--bundle=/run/b2", "abc"}, "/run/b2/config.json", "config"},
		{"create with -b", []string{"--root=/r", "create", "-b", "/run/b3", "abc"}, "/run/b3/config.json", "config"},
		{"create without bundle uses the working directory", []string{"create", "--pid-file", "p", "abc"}, "config.json", "config"},
		{"run", []string{"run", "--bundle", "/run/b4", "abc"}, "/run/b4/config.json", "config"},
		{"a bundle flag after the container ID is not ours", []string{"create", "abc", "--bundle", "/elsewhere"}, "config.json", "config"},
		{"exec --process", []string{"--root", "/r", "exec", "--process", "/tmp/p.json", "--detach", "--pid-file", "/tmp/x.pid", "abc"}, "/tmp/p.json", "process"},
		{"exec -p= after a value flag", []string{"exec", "--cwd", "/", "-p=/tmp/q.json", "abc"}, "/tmp/q.json", "process"},
		{"exec whose --cwd value looks like a flag name", []string{"exec", "--cwd", "--process", "abc"}, "", ""},
		{"exec without a process file", []string{"exec", "-t", "abc", "sh"}, "", ""},
		{"other commands", []string{"--root", "/r", "start", "abc"}, "", ""},
		{"delete", []string{"delete", "--force", "abc"}, "", ""},
		{"only global flags", []string{"--version"}, "", ""},
		{"nothing", nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path, kind := target(tt.args)
			if path != tt.wantPath || kind != tt.wantKind {
				t.Errorf("target(%q) = %q, %q; want %q, %q", tt.args, path, kind, tt.wantPath, tt.wantKind)
			}
		})
	}
}

func TestBoundingSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status  string
		wantSet bool
		wantOK  bool
	}{
		{"Name:\tx\nCapEff:\t000001ffffffffff\nCapBnd:\t000001fffeffffff\n", false, true},
		{"CapBnd:\t000001ffffffffff\n", true, true},
		{"CapBnd:\tnothex\n", false, false},
		{"Name:\tx\n", false, false},
	}
	for _, tt := range tests {
		mask, ok := boundingSet(tt.status)
		if ok != tt.wantOK || (mask&(1<<capSysResourceBit) != 0) != tt.wantSet {
			t.Errorf("boundingSet(%q) = %x, %v; want CAP_SYS_RESOURCE %v, ok %v", tt.status, mask, ok, tt.wantSet, tt.wantOK)
		}
	}
}

// decode reads a JSON file into generic values for comparison.
func decode(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return v
}

// withoutSysResource returns v with CAP_SYS_RESOURCE removed from the
// capability lists of caps, computed independently of the code under test.
func withoutSysResource(caps map[string]any) {
	for set, list := range caps {
		var kept []any
		for _, c := range list.([]any) {
			if c != "CAP_SYS_RESOURCE" {
				kept = append(kept, c)
			}
		}
		if kept == nil {
			kept = []any{}
		}
		caps[set] = kept
	}
}

func TestEditFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fixture  string
		edit     func([]byte) ([]byte, bool, error)
		caps     func(map[string]any) map[string]any
		wantEdit bool
	}{
		{"config.json", stripConfig, func(v map[string]any) map[string]any {
			return v["process"].(map[string]any)["capabilities"].(map[string]any)
		}, true},
		{"process.json", stripProcess, func(v map[string]any) map[string]any {
			return v["capabilities"].(map[string]any)
		}, true},
		{"config-unprivileged.json", stripConfig, func(v map[string]any) map[string]any {
			return v["process"].(map[string]any)["capabilities"].(map[string]any)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			t.Parallel()
			orig, err := os.ReadFile(filepath.Join("testdata", tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "f.json")
			if err := os.WriteFile(path, orig, 0o640); err != nil {
				t.Fatal(err)
			}
			if err := editFile(path, tt.edit); err != nil {
				t.Fatalf("editFile: %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.wantEdit {
				if string(got) != string(orig) {
					t.Fatalf("file without CAP_SYS_RESOURCE was rewritten")
				}
				return
			}
			want := decode(t, orig)
			withoutSysResource(tt.caps(want))
			if g := decode(t, got); !reflect.DeepEqual(g, want) {
				t.Errorf("edited file differs from the original minus CAP_SYS_RESOURCE:\n got %v\nwant %v", g, want)
			}
			if caps := tt.caps(decode(t, got)); len(caps["bounding"].([]any)) != 17 {
				t.Errorf("bounding set has %d capabilities, want 17", len(caps["bounding"].([]any)))
			}
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != 0o640 {
				t.Errorf("mode = %v, want 0640", info.Mode().Perm())
			}
			if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
				t.Errorf("temporary files left behind: %v", entries)
			}
		})
	}
}

func TestEditKeepsStrings(t *testing.T) {
	t.Parallel()
	in := []byte(`{"process":{"args":["sh","-c","a<b && c>d"],"capabilities":{"bounding":["CAP_SYS_RESOURCE","CAP_KILL"],"ambient":null}},"ociVersion":"1.0.2"}`)
	out, changed, err := stripConfig(in)
	if err != nil || !changed {
		t.Fatalf("stripConfig: changed %v, err %v", changed, err)
	}
	want := `{"ociVersion":"1.0.2","process":{"args":["sh","-c","a<b && c>d"],"capabilities":{"ambient":null,"bounding":["CAP_KILL"]}}}`
	if string(out) != want {
		t.Errorf("stripConfig =\n%s\nwant\n%s", out, want)
	}
}

func TestEditErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"not an object", `[1]`, "decode JSON object: json: cannot unmarshal array into Go value of type map[string]json.RawMessage"},
		{"capabilities not a list", `{"process":{"capabilities":{"bounding":"CAP_KILL"}}}`, "process: capabilities.bounding: json: cannot unmarshal string into Go value of type []string"},
	}
	for _, tt := range tests {
		_, _, err := stripConfig([]byte(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestMissingFileIsLeftToRunc(t *testing.T) {
	t.Parallel()
	if err := editFile(filepath.Join(t.TempDir(), "absent.json"), stripConfig); err != nil {
		t.Errorf("editFile of a missing file: %v", err)
	}
}

func TestFindRunc(t *testing.T) {
	t.Parallel()
	if got, err := findRunc("/opt/runc", "/x"); err != nil || got != "/opt/runc" {
		t.Errorf("findRunc with override = %q, %v", got, err)
	}
	got, err := findRunc("", "/nonexistent/kubelab-runc")
	if err != nil {
		t.Skipf("no runc on this machine: %v", err)
	}
	if !slices.Contains([]string{"/usr/bin/runc", "/usr/sbin/runc"}, got) {
		t.Errorf("findRunc = %q", got)
	}
}
