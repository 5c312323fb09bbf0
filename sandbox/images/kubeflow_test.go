package images

import (
	"slices"
	"strings"
	"testing"
)

func TestSplitModuleFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, id, file, err string
	}{
		{"github.com/a/b@v1.2.3:manifests/x.yaml", "github.com/a/b@v1.2.3", "manifests/x.yaml", ""},
		{"github.com/a/b@v1.2.3:./m/../x.yaml", "github.com/a/b@v1.2.3", "x.yaml", ""},
		{"github.com/a/b:x.yaml", "", "", "want module@version:path"},
		{"github.com/a/b@v1:", "", "", "want module@version:path"},
		{"github.com/a/b@v1:../../etc/passwd", "", "", "inside the module"},
		{"github.com/a/b@v1:/etc/passwd", "", "", "inside the module"},
	} {
		id, file, err := splitModuleFile(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("splitModuleFile(%q) error = %v, want it to say %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || id != tc.id || file != tc.file {
			t.Errorf("splitModuleFile(%q) = %q, %q, %v; want %q, %q", tc.in, id, file, err, tc.id, tc.file)
		}
	}
}

// TestTrainingOperatorImage: the operator's image carries every CRD of
// its module under TrainingOperatorCRDDir, and the busybox its workers'
// init container runs; its recipe follows the module's version.
func TestTrainingOperatorImage(t *testing.T) {
	t.Parallel()
	c := newCatalog()
	defs, err := c.resolve([]string{TrainingOperatorImage})
	if err != nil || len(defs) != 1 {
		t.Fatalf("resolve(%s) = %v, %v", TrainingOperatorImage, defs, err)
	}
	d := defs[0]
	var crds, applets []string
	for _, o := range d.overlays {
		switch {
		case o.module != "":
			if !strings.HasPrefix(o.module, TrainingOperatorModule+"@"+TrainingOperatorVersion+":manifests/base/crds/") {
				t.Errorf("overlay %s comes from %s, not the operator's module", o.path, o.module)
			}
			crds = append(crds, "/"+o.path)
		case o.link == "busybox":
			applets = append(applets, o.path)
		}
	}
	if !slices.Contains(crds, TrainingOperatorCRDDir+"/kubeflow.org_pytorchjobs.yaml") || len(crds) != len(trainingOperatorCRDs) {
		t.Errorf("CRDs in the image: %v", crds)
	}
	for _, want := range []string{"bin/sh", "bin/nslookup", "bin/seq", "bin/sleep"} {
		if !slices.Contains(applets, want) {
			t.Errorf("image lacks %s (has %v)", want, applets)
		}
	}
	if !slices.Contains(c.binaryNames(d), "training-operator") || !slices.Contains(c.rootfsNames(d), "pytorch") {
		t.Errorf("image needs binaries %v and root file systems %v", c.binaryNames(d), c.rootfsNames(d))
	}
	before := c.recipe(d)
	for i, o := range d.overlays {
		if o.module != "" {
			d.overlays[i].module = strings.Replace(o.module, TrainingOperatorVersion, "v9.9.9", 1)
		}
	}
	if c.recipe(d) == before {
		t.Error("the recipe does not change with the module the CRDs come from")
	}
}
