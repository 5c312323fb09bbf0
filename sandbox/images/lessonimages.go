package images

import "strings"

// Lesson images beyond the hello app: what the course's exercises run.
const (
	// PythonImage is Debian with python3, numpy, scikit-learn and Flask
	// (all from Debian's packages), curl and bash: the base of the course's
	// model-training and model-serving examples.
	PythonImage = "kubelab/python:v1"
	// RegistryImage is a private Docker registry (Debian's docker-registry,
	// the distribution project) serving plain HTTP on :5000.
	RegistryImage = "kubelab/registry:v1"
	// PyTorchImage is Debian with python3, PyTorch (CPU, with the gloo
	// backend of torch.distributed) and numpy from Debian's packages: the
	// base of the images a PyTorchJob's master and workers run.
	PyTorchImage = "kubelab/pytorch:v1"
)

// The Kubeflow Training Operator, built from its module, with the
// CustomResourceDefinitions the module ships.
const (
	TrainingOperatorModule  = "github.com/kubeflow/training-operator"
	TrainingOperatorVersion = "v1.8.1"
	// TrainingOperatorImage runs the operator as
	// /usr/local/bin/training-operator. It carries the module's CRDs
	// under TrainingOperatorCRDDir and a static busybox (sh, nslookup,
	// seq, sleep), so that it also serves as the image of the init
	// container the operator gives a PyTorchJob's workers (they wait for
	// the master's name to resolve): the cluster needs no other image.
	TrainingOperatorImage = "kubelab/training-operator:" + TrainingOperatorVersion
	// TrainingOperatorCRDDir holds kubeflow.org_<kind>s.yaml, one file
	// per job kind (pytorchjobs, tfjobs, ...).
	TrainingOperatorCRDDir = "/manifests/crds"
)

// trainingOperatorCRDs are the job kinds whose CRDs the image carries.
var trainingOperatorCRDs = []string{"mpijobs", "mxjobs", "paddlejobs", "pytorchjobs", "tfjobs", "xgboostjobs"}

// lessonImages are the catalog entries of PythonImage and RegistryImage.
func lessonImages() []imageDef {
	return []imageDef{
		{
			name: "python", ref: PythonImage, rootfs: "python",
			config: config{Cmd: []string{"python3"}, Env: []string{defaultPath, "LANG=C.UTF-8", "PYTHONUNBUFFERED=1"}},
		},
		{
			name: "registry", ref: RegistryImage, rootfs: "registry",
			overlays: []overlay{{path: "etc/kubelab/registry.yml", mode: 0o644, embed: "files/registry/config.yml"}},
			config: config{
				Entrypoint: []string{"/usr/bin/docker-registry"},
				Cmd:        []string{"serve", "/etc/kubelab/registry.yml"},
				Env:        []string{defaultPath},
				Volumes:    []string{"/var/lib/registry"},
				Ports:      []string{"5000/tcp"},
			},
		},
		{
			name: "pytorch", ref: PyTorchImage, rootfs: "pytorch",
			config: config{Cmd: []string{"python3"}, Env: []string{defaultPath, "LANG=C.UTF-8", "PYTHONUNBUFFERED=1"}},
		},
		trainingOperatorImage(),
	}
}

// trainingOperatorImage is the catalog entry of TrainingOperatorImage.
func trainingOperatorImage() imageDef {
	overlays := append(staticBase(),
		overlay{path: "usr/local/bin/training-operator", mode: 0o755, binary: "training-operator"},
		overlay{path: "bin/busybox", mode: 0o755, from: "pytorch:usr/bin/busybox"},
	)
	for _, applet := range []string{"sh", "nslookup", "seq", "sleep"} {
		overlays = append(overlays, overlay{path: "bin/" + applet, link: "busybox"})
	}
	for _, kind := range trainingOperatorCRDs {
		file := "kubeflow.org_" + kind + ".yaml"
		overlays = append(overlays, overlay{
			path: strings.TrimPrefix(TrainingOperatorCRDDir, "/") + "/" + file, mode: 0o644,
			module: TrainingOperatorModule + "@" + TrainingOperatorVersion + ":manifests/base/crds/" + file,
		})
	}
	return imageDef{
		name: "training-operator", ref: TrainingOperatorImage, overlays: overlays,
		config: config{
			Entrypoint: []string{"/usr/local/bin/training-operator"},
			Env:        []string{"PATH=/usr/local/bin:/bin"},
			User:       "65534",
		},
	}
}
