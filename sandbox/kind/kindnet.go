package kind

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"sync"
)

// Each sandbox's kind nodes live on the sandbox's own network, not on
// kind's shared "kind" network: nodes of different learners then share no
// network at all (Docker isolates bridges from one another), and the
// workstation reaches its API server directly.
//
// kind takes the network of the nodes it creates from one process-wide
// environment variable, read once at the start of each Create, right
// before it logs a warning about it. So a creation sets the variable under
// a process-wide lock and its kind logger releases the lock as soon as
// that warning shows that kind has read it: creations queue for the
// moment of that read only (a few milliseconds, after kind checked the
// node image), not for the minutes a cluster takes to come up.
const (
	kindNetworkEnv = "KIND_EXPERIMENTAL_DOCKER_NETWORK"
	// kindNetworkRead starts the warning kind logs once it read kindNetworkEnv.
	kindNetworkRead = "WARNING: Overriding docker network"
	// kindNetworkDragons is in the second line of that warning.
	kindNetworkDragons = "Here be dragons"
)

var kindNetworkMu sync.Mutex

// leaseKindNetwork points kind's next Create at network name and returns
// the function that ends the lease, to be called once kind has read the
// variable (or returned); calling it again does nothing.
func leaseKindNetwork(name string) (release func()) {
	kindNetworkMu.Lock()
	prev, had := os.LookupEnv(kindNetworkEnv)
	os.Setenv(kindNetworkEnv, name)
	var once sync.Once
	return func() {
		once.Do(func() {
			if had {
				os.Setenv(kindNetworkEnv, prev)
			} else {
				os.Unsetenv(kindNetworkEnv)
			}
			kindNetworkMu.Unlock()
		})
	}
}

// isKindNetworkRead reports whether a warning of kind says it has read
// kindNetworkEnv.
func isKindNetworkRead(message string) bool {
	return strings.HasPrefix(strings.TrimSpace(message), kindNetworkRead)
}

// bridgePrefix starts the Linux bridge name of every sandbox network, so
// that the host firewall (hostguard.go) can match all of them, and only
// them, with one interface pattern ("klb+").
const bridgePrefix = "klb-"

// bridgeName is the Linux interface of sandbox id's network: bridgePrefix
// and a hash of the ID, 14 characters (Linux allows 15).
func bridgeName(id string) string {
	sum := sha256.Sum256([]byte(id))
	return bridgePrefix + hex.EncodeToString(sum[:5])
}
