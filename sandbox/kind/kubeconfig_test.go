package kind

import (
	"os"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func TestLearnerKubeconfig(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/internal.kubeconfig")
	if err != nil {
		t.Fatal(err)
	}
	out, err := learnerKubeconfig(raw, "kl-3f2a")
	if err != nil {
		t.Fatalf("learnerKubeconfig: %v", err)
	}
	cfg, err := clientcmd.Load(out)
	if err != nil {
		t.Fatalf("the learner's kubeconfig does not parse: %v\n%s", err, out)
	}
	if cfg.CurrentContext != "kubelab" {
		t.Errorf("current-context = %q, want kubelab", cfg.CurrentContext)
	}
	if len(cfg.Clusters) != 1 || len(cfg.AuthInfos) != 1 || len(cfg.Contexts) != 1 {
		t.Fatalf("want one cluster, user and context; got %d, %d, %d", len(cfg.Clusters), len(cfg.AuthInfos), len(cfg.Contexts))
	}
	ctx := cfg.Contexts["kubelab"]
	if ctx == nil || ctx.Cluster != "kubelab" || ctx.AuthInfo != "kubelab" {
		t.Fatalf("context kubelab = %+v, want cluster and user kubelab", ctx)
	}
	cl := cfg.Clusters["kubelab"]
	if cl.Server != "https://kl-3f2a-control-plane:6443" {
		t.Errorf("server = %q, want https://kl-3f2a-control-plane:6443", cl.Server)
	}
	if string(cl.CertificateAuthorityData) != "CA DATA" {
		t.Errorf("CA data = %q, want it kept", cl.CertificateAuthorityData)
	}
	u := cfg.AuthInfos["kubelab"]
	if string(u.ClientCertificateData) != "CERT DATA" || string(u.ClientKeyData) != "KEY DATA" {
		t.Errorf("credentials = %q, %q; want them kept", u.ClientCertificateData, u.ClientKeyData)
	}
	if strings.Contains(string(out), "kind-kl-3f2a") {
		t.Errorf("kind's names left in the learner's kubeconfig:\n%s", out)
	}
}

func TestLearnerKubeconfigErrors(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/internal.kubeconfig")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		raw  string
		id   string
		want string
	}{
		{"another cluster's", string(raw), "kl-other", "kubeconfig of cluster kl-other: server is https://kl-3f2a-control-plane:6443, want https://kl-other-control-plane:6443"},
		{"external", strings.Replace(string(raw), "https://kl-3f2a-control-plane:6443", "https://127.0.0.1:40123", 1), "kl-3f2a", "kubeconfig of cluster kl-3f2a: server is https://127.0.0.1:40123, want https://kl-3f2a-control-plane:6443"},
		{"no context", strings.Replace(string(raw), "current-context: kind-kl-3f2a", "current-context: nope", 1), "kl-3f2a", `kubeconfig of cluster kl-3f2a: no current context "nope"`},
		{"missing user", strings.Replace(string(raw), "    user: kind-kl-3f2a", "    user: ghost", 1), "kl-3f2a", `kubeconfig of cluster kl-3f2a: context "kind-kl-3f2a" names missing user "ghost"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := learnerKubeconfig([]byte(tt.raw), tt.id)
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
