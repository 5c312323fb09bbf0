package images

import (
	"io/fs"
	"slices"
	"strings"
	"testing"
)

// TestEngineRunsAuthzPlugin: the engine image carries the authorization
// plugin, built from its embedded sources (tests and testdata left out),
// and its entrypoint starts dockerd with it.
func TestEngineRunsAuthzPlugin(t *testing.T) {
	t.Parallel()
	c := newCatalog()
	spec, ok := c.binaries["kubelab-authz"]
	if !ok || spec.kind != "go-local" || len(spec.requires) != 0 {
		t.Fatalf("binary kubelab-authz = %+v, want a go-local build with no module requirements", spec)
	}
	files, err := localSources(spec.pkg)
	if err != nil || !slices.Contains(files, "apps/authz/main.go") || !slices.Contains(files, "apps/authz/policy.go") {
		t.Fatalf("sources of %s = %v (%v), want main.go and policy.go", spec.pkg, files, err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			t.Errorf("test file %s would be built into the plugin", f)
		}
	}
	engine, err := c.resolve([]string{"engine"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(c.binaryNames(engine[0]), "kubelab-authz") {
		t.Errorf("the engine image does not carry kubelab-authz: %v", c.binaryNames(engine[0]))
	}
	entry, err := fs.ReadFile(embedded, "files/engine/entrypoint")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"exec dockerd --authorization-plugin=kubelab-authz", "/run/docker/plugins/kubelab-authz.sock", "/usr/local/bin/kubelab-authz"} {
		if !strings.Contains(string(entry), want) {
			t.Errorf("the engine entrypoint lacks %q", want)
		}
	}
}
