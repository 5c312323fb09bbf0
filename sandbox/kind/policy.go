package kind

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"embed"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"strings"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// The learner's identity in their cluster. Their kubeconfig holds a client
// certificate for this user and group, signed by the cluster's CA; the
// RBAC and admission policies of policy/ are written for the group.
// kubelab itself and its checkers keep kind's admin credentials
// (system:masters).
const (
	learnerKubeUser  = "kubelab-learner"
	learnerKubeGroup = "kubelab:learners"
	// learnerCertValidity outlasts any sandbox (serve's --max-lifetime is
	// 4 h by default).
	learnerCertValidity = 7 * 24 * time.Hour
	// certBackdate makes the certificate valid a little before it was
	// signed, for nodes whose clock runs behind the host's.
	certBackdate = 5 * time.Minute
)

// policyFiles are the manifests applied as admin to every new cluster,
// before the learner gets credentials: the learner's ClusterRole and the
// ValidatingAdmissionPolicies that keep the learner off the node.
//
//go:embed policy/*.yaml
var policyFiles embed.FS

// policyManifests returns the files of policy/ in name order, as one YAML
// stream.
func policyManifests() ([]byte, error) {
	names, err := fs.Glob(policyFiles, "policy/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("list the cluster policy: %w", err)
	}
	var out bytes.Buffer
	for _, n := range names {
		b, err := policyFiles.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("read the cluster policy: %w", err)
		}
		out.WriteString("---\n# " + n + "\n")
		out.Write(b)
		if !bytes.HasSuffix(b, []byte("\n")) {
			out.WriteByte('\n')
		}
	}
	return out.Bytes(), nil
}

// policyScript runs in the control-plane node as admin. It applies the
// manifests on stdin; removes kubeadm's bootstrap tokens, whose well-known
// value would let anyone on the sandbox network ask for a node's
// credentials (every node has joined by now); then waits up to $1 seconds
// for the API server to enforce the pod policy: a privileged pod, tried as
// the learner with --dry-run=server, must be refused with kubelab's
// message.
const policyScript = `set -e
k() { kubectl --kubeconfig=/etc/kubernetes/admin.conf "$@"; }
k apply -f - >/dev/null
k -n kube-system delete secret --field-selector type=bootstrap.kubernetes.io/token --ignore-not-found >/dev/null
end=$(($(date +%s) + $1))
while :; do
  out=$(k run kubelab-policy-probe --image=kubelab/probe --restart=Never --dry-run=server \
    --overrides='{"spec":{"containers":[{"name":"p","image":"kubelab/probe","securityContext":{"privileged":true}}]}}' \
    --as=kubelab-learner --as-group=kubelab:learners 2>&1) || true
  case "$out" in *"kubelab: privileged containers are refused"*) exit 0 ;; esac
  [ "$(date +%s)" -lt "$end" ] || { echo "the API server did not enforce kubelab's pod policy within $1 s: $out" >&2; exit 1; }
  sleep 0.5
done`

// policyWait bounds the wait for the API server to enforce the policy
// just applied.
const policyWait = 60 * time.Second

// applyPolicy applies the learner's RBAC and admission policies to cluster
// id as admin, and waits until they are enforced.
func (p *Provider) applyPolicy(ctx context.Context, id string) error {
	manifests, err := policyManifests()
	if err != nil {
		return err
	}
	secs := fmt.Sprint(int(policyWait.Seconds()))
	if _, err := p.docker.run(ctx, bytes.NewReader(manifests),
		"exec", "-i", controlPlaneName(id), "sh", "-c", policyScript, "sh", secs); err != nil {
		return fmt.Errorf("apply the learner's RBAC and admission policies to cluster %s: %w", id, err)
	}
	return nil
}

// credentials are a PEM client certificate and its PEM private key.
type credentials struct {
	cert, key []byte
}

// learnerCredentials signs a client certificate for the learner
// (learnerKubeUser in learnerKubeGroup) with the CA of cluster id, read
// from its control-plane node.
func (p *Provider) learnerCredentials(ctx context.Context, id string) (credentials, error) {
	read := func(path string) ([]byte, error) {
		b, err := p.docker.run(ctx, nil, "exec", controlPlaneName(id), "cat", path)
		if err != nil {
			return nil, fmt.Errorf("read %s of cluster %s: %w", path, id, err)
		}
		return b, nil
	}
	caCert, err := read("/etc/kubernetes/pki/ca.crt")
	if err != nil {
		return credentials{}, err
	}
	caKey, err := read("/etc/kubernetes/pki/ca.key")
	if err != nil {
		return credentials{}, err
	}
	cred, err := signLearnerCert(caCert, caKey, time.Now())
	if err != nil {
		return credentials{}, fmt.Errorf("learner credentials for cluster %s: %w", id, err)
	}
	return cred, nil
}

// signLearnerCert makes a new ECDSA P-256 key and a client certificate
// for learnerKubeUser in group learnerKubeGroup, signed by the CA
// (PEM certificate and key), valid from now (less certBackdate) for
// learnerCertValidity.
func signLearnerCert(caCertPEM, caKeyPEM []byte, now time.Time) (credentials, error) {
	cas, err := certutil.ParseCertsPEM(caCertPEM)
	if err != nil {
		return credentials{}, fmt.Errorf("parse the CA certificate: %w", err)
	}
	ca := cas[0]
	parsed, err := keyutil.ParsePrivateKeyPEM(caKeyPEM)
	if err != nil {
		return credentials{}, fmt.Errorf("parse the CA key: %w", err)
	}
	caKey, ok := parsed.(crypto.Signer)
	if !ok {
		return credentials{}, fmt.Errorf("the CA key (%T) cannot sign", parsed)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return credentials{}, fmt.Errorf("generate the learner's key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return credentials{}, fmt.Errorf("generate a serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: learnerKubeUser, Organization: []string{learnerKubeGroup}},
		NotBefore:    now.Add(-certBackdate),
		NotAfter:     now.Add(learnerCertValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return credentials{}, fmt.Errorf("sign the learner's certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return credentials{}, fmt.Errorf("encode the learner's key: %w", err)
	}
	return credentials{
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// checkLearnerCert reports an error unless certPEM is a certificate for
// the learner (user and group), for client authentication only, signed by
// caCertPEM: learnerKubeconfig refuses to hand out anything else.
func checkLearnerCert(certPEM, caCertPEM []byte) error {
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		return fmt.Errorf("parse the learner's certificate: %w", err)
	}
	c := certs[0]
	if c.Subject.CommonName != learnerKubeUser || strings.Join(c.Subject.Organization, ",") != learnerKubeGroup {
		return fmt.Errorf("the learner's certificate is for %q in %q, want %q in %q",
			c.Subject.CommonName, c.Subject.Organization, learnerKubeUser, learnerKubeGroup)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caCertPEM) {
		return errors.New("the cluster's CA certificate does not parse")
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("the learner's certificate: %w", err)
	}
	return nil
}
