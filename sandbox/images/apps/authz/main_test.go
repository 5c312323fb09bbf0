package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPluginProtocol serves the plugin on a unix socket and speaks to it
// the way dockerd does: activate, then authorize a request and a response.
func TestPluginProtocol(t *testing.T) {
	t.Parallel()
	// A short directory: unix socket paths are limited to 108 bytes.
	dir, err := filepath.Abs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "kubelab-authz.sock")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), socket) }()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
	}}
	call := func(method string, in any) map[string]any {
		t.Helper()
		body, _ := json.Marshal(in)
		var resp *http.Response
		for range 100 { // until the socket is up
			resp, err = client.Post("http://plugin/"+method, "application/json", bytes.NewReader(body))
			if err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("%s: decode reply: %v", method, err)
		}
		return out
	}

	if got := call("Plugin.Activate", struct{}{}); !strings.Contains(toJSON(got), `"Implements":["authz"]`) {
		t.Errorf("Plugin.Activate = %s, want Implements [authz]", toJSON(got))
	}
	// dockerd's request: RequestBody is []byte, so base64 in the JSON.
	privileged := map[string]any{
		"User": "", "RequestMethod": "POST", "RequestUri": "/v1.41/containers/create",
		"RequestBody":    []byte(`{"Image":"hello","HostConfig":{"Privileged":true}}`),
		"RequestHeaders": map[string]string{"Content-Type": "application/json"},
	}
	got := call("AuthZPlugin.AuthZReq", privileged)
	if got["Allow"] != false || !strings.Contains(got["Msg"].(string), "--privileged is refused") {
		t.Errorf("AuthZReq(privileged) = %s, want refused with a message", toJSON(got))
	}
	plain := map[string]any{"RequestMethod": "POST", "RequestUri": "/v1.41/containers/create", "RequestBody": []byte(`{"Image":"hello","HostConfig":{}}`)}
	if got := call("AuthZPlugin.AuthZReq", plain); got["Allow"] != true {
		t.Errorf("AuthZReq(plain) = %s, want allowed", toJSON(got))
	}
	if got := call("AuthZPlugin.AuthZRes", privileged); got["Allow"] != true {
		t.Errorf("AuthZRes = %s, want allowed", toJSON(got))
	}
	if got := call("AuthZPlugin.AuthZReq", "not an object"); got["Allow"] != false || got["Err"] == nil {
		t.Errorf("AuthZReq(garbage) = %s, want not allowed with Err", toJSON(got))
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve after cancel: %v", err)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
