package images

// Lesson images beyond the hello app: what the course's exercises run.
const (
	// PythonImage is Debian with python3, numpy, scikit-learn and Flask
	// (all from Debian's packages), curl and bash: the base of the course's
	// model-training and model-serving examples.
	PythonImage = "kubelab/python:v1"
	// RegistryImage is a private Docker registry (Debian's docker-registry,
	// the distribution project) serving plain HTTP on :5000.
	RegistryImage = "kubelab/registry:v1"
)

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
	}
}
