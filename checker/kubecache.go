package checker

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"math"
	"sort"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// clientIdle is how long the clients of a cluster no check has used are
// kept.
const clientIdle = 10 * time.Minute

// clusterClients is the cache Evaluate and EvaluateAll use. It is the
// package's one piece of shared state, on purpose: like
// http.DefaultTransport it is a pool of connections (and here of
// discovery), useful only when every caller shares it, and callers need
// not know it is there.
var clusterClients = newKubeCache(newKubeClients, clientIdle)

// kubeCache keeps one set of read-only clients per cluster and identity,
// so that evaluations against a learner's cluster reuse the discovery
// they read and the connections they opened, instead of repeating
// discovery (dozens of requests on a real cluster) for every check.
// Clients no evaluation asked for in idle are dropped by a later call; the
// cache starts no goroutine. It is safe for concurrent use.
type kubeCache struct {
	build func(*rest.Config) (*kubeClients, error)
	idle  time.Duration
	now   func() time.Time

	mu        sync.Mutex
	entries   map[string]*kubeEntry
	nextSweep time.Time
}

// kubeEntry is the clients of one cluster. once builds them; callers that
// arrive while they are being built wait for them instead of building
// their own.
type kubeEntry struct {
	once sync.Once
	kc   *kubeClients
	err  error
	used time.Time // guarded by kubeCache.mu
}

func newKubeCache(build func(*rest.Config) (*kubeClients, error), idle time.Duration) *kubeCache {
	return &kubeCache{build: build, idle: idle, now: time.Now, entries: map[string]*kubeEntry{}}
}

// clients returns the clients for cfg's cluster and identity, built on
// first use. A config the cache cannot tell apart from another (see
// clusterKey) gets new clients every time, as it did before the cache.
func (c *kubeCache) clients(cfg *rest.Config) (*kubeClients, error) {
	key, ok := clusterKey(cfg)
	if !ok {
		return c.build(cfg)
	}
	now := c.now()
	c.mu.Lock()
	c.sweepLocked(now)
	e := c.entries[key]
	if e == nil {
		e = &kubeEntry{}
		c.entries[key] = e
	}
	e.used = now
	c.mu.Unlock()

	e.once.Do(func() { e.kc, e.err = c.build(cfg) })
	if e.err != nil {
		// A config that cannot make clients is not kept: the next
		// evaluation tries again, with whatever the target returns then.
		c.mu.Lock()
		if c.entries[key] == e {
			delete(c.entries, key)
		}
		c.mu.Unlock()
		return nil, e.err
	}
	return e.kc, nil
}

// sweepLocked drops the entries unused for longer than idle. It walks the
// map at most ten times per idle period.
func (c *kubeCache) sweepLocked(now time.Time) {
	if now.Before(c.nextSweep) {
		return
	}
	c.nextSweep = now.Add(c.idle / 10)
	for key, e := range c.entries {
		if now.Sub(e.used) > c.idle {
			delete(c.entries, key)
		}
	}
}

// len is the number of clusters with clients, for tests.
func (c *kubeCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// clusterKey names the cluster cfg reaches and the identity it reaches it
// as: the host, then a hash of everything that authenticates the client or
// shapes its connection (client certificate and key, CA, bearer token,
// basic auth, impersonation, TLS options, the files any of them may come
// from). Two configs for the same host with different credentials never
// share clients, and the key holds no credential in the clear.
//
// ok is false when part of the identity is code the hash cannot see (an
// exec or auth-provider plugin, a custom transport, dialer or proxy, a
// rate limiter or warning handler): such configs are never shared.
func clusterKey(cfg *rest.Config) (key string, ok bool) {
	tls := cfg.TLSClientConfig
	if cfg.ExecProvider != nil || cfg.AuthProvider != nil || cfg.AuthConfigPersister != nil ||
		cfg.Transport != nil || cfg.WrapTransport != nil || cfg.Dial != nil || cfg.Proxy != nil ||
		cfg.RateLimiter != nil || cfg.WarningHandler != nil || cfg.WarningHandlerWithContext != nil {
		return "", false
	}
	h := sha256.New()
	for _, s := range []string{
		cfg.Host, cfg.APIPath,
		cfg.Username, cfg.Password, cfg.BearerToken, cfg.BearerTokenFile,
		cfg.Impersonate.UserName, cfg.Impersonate.UID,
		tls.ServerName, tls.CertFile, tls.KeyFile, tls.CAFile,
		cfg.UserAgent, cfg.ContentType, cfg.AcceptContentTypes,
	} {
		writeField(h, []byte(s))
	}
	for _, b := range [][]byte{tls.CertData, tls.KeyData, tls.CAData} {
		writeField(h, b)
	}
	writeStrings(h, cfg.Impersonate.Groups)
	extra := make([]string, 0, len(cfg.Impersonate.Extra))
	for k := range cfg.Impersonate.Extra {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	for _, k := range extra {
		writeField(h, []byte(k))
		writeStrings(h, cfg.Impersonate.Extra[k])
	}
	writeStrings(h, tls.NextProtos)
	var flags [8]byte
	if tls.Insecure {
		flags[0] = 1
	}
	if cfg.DisableCompression {
		flags[1] = 1
	}
	h.Write(flags[:])
	for _, n := range []uint64{math.Float64bits(float64(cfg.QPS)), uint64(cfg.Burst), uint64(cfg.Timeout)} {
		writeUint(h, n)
	}
	return cfg.Host + " " + hex.EncodeToString(h.Sum(nil)), true
}

// writeField writes b with its length, so that fields cannot run into
// each other ("ab"+"c" and "a"+"bc" hash differently).
func writeField(h hash.Hash, b []byte) {
	writeUint(h, uint64(len(b)))
	h.Write(b)
}

func writeStrings(h hash.Hash, ss []string) {
	writeUint(h, uint64(len(ss)))
	for _, s := range ss {
		writeField(h, []byte(s))
	}
}

func writeUint(h hash.Hash, n uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	h.Write(b[:])
}
