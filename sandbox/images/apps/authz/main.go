// Command kubelab-authz is the Docker Engine authorization plugin in front
// of each learner's Docker engine. The engine runs --privileged, so a
// learner who could start a privileged container in it, bind-mount its
// root file system or join its namespaces would be root on the host;
// this plugin refuses those requests (see decide in policy.go) and lets
// everything else through.
//
// Refused: containers with --privileged; capabilities beyond Docker's
// default set (NET_ADMIN too: no lesson needs it, and it would let a
// container rewrite the network the engine shares with the sandbox);
// devices; the host's pid, network, ipc, uts, user or cgroup namespace;
// bind mounts and volumes the local driver makes from a host path;
// seccomp, AppArmor, SELinux or masked paths turned off, custom seccomp
// profiles; sysctls; runtimes other than runc; a cgroup parent; exec
// --privileged; host settings at container start (API < 1.24); plugins;
// swarm; builds on the host network. A request whose settings dockerd
// does not show the plugin (not application/json, over 1 MiB) is refused
// too.
//
// It serves Docker's plugin protocol (HTTP, JSON) on a unix socket in
// the daemon's plugin discovery directory; dockerd uses it with
// --authorization-plugin=kubelab-authz. If it is down, dockerd refuses
// every request (it fails closed), so the engine's entrypoint restarts it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// defaultSocket is where dockerd discovers a plugin named kubelab-authz.
const defaultSocket = "/run/docker/plugins/kubelab-authz.sock"

// contentType is the media type of Docker plugin protocol replies.
const contentType = "application/vnd.docker.plugins.v1.2+json"

func main() {
	socket := flag.String("socket", defaultSocket, "unix socket to listen on")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, logger, *socket); err != nil {
		logger.Error("kubelab-authz stopped", "err", err)
		os.Exit(1)
	}
}

// serve answers the plugin protocol on socket until ctx ends.
func serve(ctx context.Context, logger *slog.Logger, socket string) error {
	if err := os.MkdirAll(filepath.Dir(socket), 0o755); err != nil {
		return fmt.Errorf("make socket directory: %w", err)
	}
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", socket, err)
	}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", socket, err)
	}
	if err := os.Chmod(socket, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("restrict %s: %w", socket, err)
	}
	srv := &http.Server{Handler: newHandler(logger), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	logger.Info("kubelab-authz listening", "socket", socket)
	select {
	case err := <-done:
		return fmt.Errorf("serve %s: %w", socket, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// request is what dockerd sends to AuthZPlugin.AuthZReq and .AuthZRes
// (the fields this plugin reads). RequestBody is the raw body, base64 in
// the JSON; dockerd sends it only for application/json bodies under 1 MiB.
type request struct {
	User           string            `json:"User"`
	RequestMethod  string            `json:"RequestMethod"`
	RequestURI     string            `json:"RequestUri"`
	RequestBody    []byte            `json:"RequestBody"`
	RequestHeaders map[string]string `json:"RequestHeaders"`
}

// response is the plugin's answer: Allow, or a refusal whose Msg the
// learner's docker client prints; Err reports a failure of the plugin.
type response struct {
	Allow bool   `json:"Allow"`
	Msg   string `json:"Msg,omitempty"`
	Err   string `json:"Err,omitempty"`
}

// newHandler routes the three plugin protocol calls.
func newHandler(logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /Plugin.Activate", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, logger, map[string][]string{"Implements": {"authz"}})
	})
	mux.HandleFunc("POST /AuthZPlugin.AuthZReq", func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<20)).Decode(&req); err != nil {
			logger.Error("unreadable authorization request", "err", err)
			reply(w, logger, response{Err: "kubelab-authz: unreadable authorization request: " + err.Error()})
			return
		}
		if err := decide(req.RequestMethod, req.RequestURI, req.RequestBody); err != nil {
			logger.Info("refused", "method", req.RequestMethod, "uri", req.RequestURI, "reason", err.Error())
			reply(w, logger, response{Msg: err.Error()})
			return
		}
		reply(w, logger, response{Allow: true})
	})
	// Responses are not filtered: what was allowed in may be seen.
	mux.HandleFunc("POST /AuthZPlugin.AuthZRes", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, logger, response{Allow: true})
	})
	return mux
}

// reply writes v as a plugin protocol answer.
func reply(w http.ResponseWriter, logger *slog.Logger, v any) {
	w.Header().Set("Content-Type", contentType)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		logger.Error("write reply", "err", err)
	}
}
