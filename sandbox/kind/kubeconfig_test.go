package kind

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// testCA is a cluster CA as kubeadm makes one: RSA, PKCS #1 key.
type testCA struct {
	cert, key []byte
}

func newTestCA(t *testing.T, name string) testCA {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
	}
}

// internalKubeconfig is testdata/internal.kubeconfig (kind's admin
// kubeconfig, fake credentials) with ca as its cluster's CA.
func internalKubeconfig(t *testing.T, ca testCA) string {
	t.Helper()
	raw, err := os.ReadFile("testdata/internal.kubeconfig")
	if err != nil {
		t.Fatal(err)
	}
	const fake = "certificate-authority-data: Q0EgREFUQQ=="
	if !strings.Contains(string(raw), fake) {
		t.Fatalf("testdata/internal.kubeconfig has no %q", fake)
	}
	return strings.Replace(string(raw), fake, "certificate-authority-data: "+base64.StdEncoding.EncodeToString(ca.cert), 1)
}

func TestLearnerKubeconfig(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "kubernetes")
	cred, err := signLearnerCert(ca.cert, ca.key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out, err := learnerKubeconfig([]byte(internalKubeconfig(t, ca)), "kl-3f2a", cred)
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
	if string(cl.CertificateAuthorityData) != string(ca.cert) {
		t.Errorf("CA data = %q, want the cluster's CA kept", cl.CertificateAuthorityData)
	}
	u := cfg.AuthInfos["kubelab"]
	if string(u.ClientCertificateData) != string(cred.cert) || string(u.ClientKeyData) != string(cred.key) {
		t.Errorf("credentials = %q, %q; want the learner's", u.ClientCertificateData, u.ClientKeyData)
	}
	if u.Token != "" || u.Username != "" || u.Impersonate != "" || u.Exec != nil || u.AuthProvider != nil {
		t.Errorf("the learner's user has more than a client certificate: %+v", u)
	}
	for _, leak := range []string{"kind-kl-3f2a", base64.StdEncoding.EncodeToString([]byte("CERT DATA")), base64.StdEncoding.EncodeToString([]byte("KEY DATA"))} {
		if strings.Contains(string(out), leak) {
			t.Errorf("kind's admin kubeconfig leaked into the learner's (%s):\n%s", leak, out)
		}
	}
}

func TestLearnerKubeconfigErrors(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "kubernetes")
	raw := internalKubeconfig(t, ca)
	good, err := signLearnerCert(ca.cert, ca.key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other := newTestCA(t, "another cluster")
	foreign, err := signLearnerCert(other.cert, other.key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	admin := signClientCert(t, ca, "kubernetes-admin", "system:masters")
	tests := []struct {
		name string
		raw  string
		id   string
		cred credentials
		want string
	}{
		{"another cluster's", raw, "kl-other", good, "kubeconfig of cluster kl-other: server is https://kl-3f2a-control-plane:6443, want https://kl-other-control-plane:6443"},
		{"external", strings.Replace(raw, "https://kl-3f2a-control-plane:6443", "https://127.0.0.1:40123", 1), "kl-3f2a", good, "kubeconfig of cluster kl-3f2a: server is https://127.0.0.1:40123, want https://kl-3f2a-control-plane:6443"},
		{"no context", strings.Replace(raw, "current-context: kind-kl-3f2a", "current-context: nope", 1), "kl-3f2a", good, `kubeconfig of cluster kl-3f2a: no current context "nope"`},
		{"missing user", strings.Replace(raw, "    user: kind-kl-3f2a", "    user: ghost", 1), "kl-3f2a", good, `kubeconfig of cluster kl-3f2a: context "kind-kl-3f2a" names missing user "ghost"`},
		{"admin certificate", raw, "kl-3f2a", admin, `kubeconfig of cluster kl-3f2a: the learner's certificate is for "kubernetes-admin" in ["system:masters"], want "kubelab-learner" in "kubelab:learners"`},
		{"signed by another CA", raw, "kl-3f2a", foreign, "kubeconfig of cluster kl-3f2a: the learner's certificate: x509: certificate signed by unknown authority"},
		{"no certificate", raw, "kl-3f2a", credentials{}, "kubeconfig of cluster kl-3f2a: parse the learner's certificate: data does not contain any valid RSA or ECDSA certificates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := learnerKubeconfig([]byte(tt.raw), tt.id, tt.cred)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// signClientCert signs a client certificate for user in group with ca, as
// kubeadm does for its admin.
func signClientCert(t *testing.T, ca testCA, user, group string) credentials {
	t.Helper()
	block, _ := pem.Decode(ca.cert)
	caCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pem.Decode(ca.key)
	caKey, err := x509.ParsePKCS1PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: user, Organization: []string{group}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return credentials{
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
	}
}
