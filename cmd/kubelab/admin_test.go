package main

import (
	"bytes"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"kubelab/server/auth"
	"kubelab/server/store"
)

// admin runs `kubelab admin args...` with stdin and returns the exit code
// and what it printed.
func admin(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := adminCmd(t.Context(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestAdminCreateUser(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	code, out, errOut := admin(t, "s3cret-passw0rd\n", "create-user", "--data", data, "--username", "root", "--role", "admin")
	if code != 0 || !regexp.MustCompile(`^created admin root \(id [0-9a-f]{32}\)\n$`).MatchString(out) {
		t.Fatalf("create-user: exit %d, %q %q", code, out, errOut)
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	must(t, os.WriteFile(pwFile, []byte("from-a-file-pw\r\nignored\n"), 0o600))
	if code, out, errOut := admin(t, "", "create-user", "--data", data, "--username", "ines", "--role", "instructor", "--password-file", pwFile); code != 0 {
		t.Fatalf("create-user --password-file: exit %d, %q %q", code, out, errOut)
	}

	st, err := store.Open(t.Context(), data)
	must(t, err)
	defer st.Close()
	for name, pw := range map[string]string{"root": "s3cret-passw0rd", "ines": "from-a-file-pw"} {
		u, err := st.UserByUsername(t.Context(), name)
		must(t, err)
		if strings.Contains(u.PasswordHash, pw) || !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
			t.Errorf("%s's stored hash %q", name, u.PasswordHash)
		}
		if ok, err := auth.VerifyPassword(u.PasswordHash, pw); !ok || err != nil {
			t.Errorf("%s's password does not verify: %v %v", name, ok, err)
		}
	}
}

func TestAdminCreateUserRefuses(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	if code, _, _ := admin(t, "long-enough-pw\n", "create-user", "--data", data, "--username", "taken"); code != 0 {
		t.Fatal("first create-user failed")
	}
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		msg   string
	}{
		{"no username", "long-enough-pw\n", []string{"--data", data}, 2, "--username is required"},
		{"bad role", "long-enough-pw\n", []string{"--data", data, "--username", "x", "--role", "root"}, 2, `--role "root"`},
		{"password as argument", "", []string{"--data", data, "--username", "x", "hunter22"}, 2, "never a flag or argument"},
		{"password flag", "", []string{"--data", data, "--username", "x", "--password", "hunter22"}, 2, "flag provided but not defined: -password"},
		{"short password", "short\n", []string{"--data", data, "--username", "x"}, 1, "at least 8 characters"},
		{"empty stdin", "", []string{"--data", data, "--username", "x"}, 1, "at least 8 characters"},
		{"taken", "long-enough-pw\n", []string{"--data", data, "--username", "taken"}, 1, `user "taken" already exists`},
		{"missing file", "", []string{"--data", data, "--username", "x", "--password-file", filepath.Join(data, "nope")}, 1, "read the password"},
	} {
		code, _, errOut := admin(t, tc.stdin, append([]string{"create-user"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%s: exit %d, %q; want %d with %q", tc.name, code, errOut, tc.code, tc.msg)
		}
	}
	if code, _, errOut := admin(t, "", "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown subcommand: %d %q", code, errOut)
	}
}

// TestServeAuthLocal runs the real binary with --auth local (set through
// KUBELAB_AUTH): sign in as a user made with create-user, then revoke the
// session with revoke-sessions. Not parallel: t.Setenv changes the
// environment the child server inherits.
func TestServeAuthLocal(t *testing.T) {
	data := t.TempDir()
	if code, _, errOut := admin(t, "alice-password\n", "create-user", "--data", data, "--username", "alice"); code != 0 {
		t.Fatalf("create-user: %s", errOut)
	}
	addr := freeAddr(t)
	base := "http://" + addr
	lessonsDir, err := filepath.Abs("../../server/testdata/lessons")
	must(t, err)
	t.Setenv("KUBELAB_AUTH", "local")
	startServer(t, []string{"serve", "--addr", addr, "--data", data, "--sandbox", "shell", "--lessons", lessonsDir})

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	res, err := c.Get(base + "/api/progress")
	must(t, err)
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("signed out: %d, want 401", res.StatusCode)
	}
	res, err = c.Get(base + "/login")
	must(t, err)
	var page bytes.Buffer
	_, _ = page.ReadFrom(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(page.String())
	if m == nil {
		t.Fatalf("no CSRF field in the login page:\n%s", page.String())
	}
	res, err = c.PostForm(base+"/login", url.Values{"username": {"alice"}, "password": {"alice-password"}, "csrf_token": {m[1]}})
	must(t, err)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/" {
		t.Fatalf("login: %d at %s", res.StatusCode, res.Request.URL)
	}
	res, err = c.Get(base + "/api/progress")
	must(t, err)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("signed in: %d", res.StatusCode)
	}

	code, out, errOut := admin(t, "", "revoke-sessions", "--data", data, "--username", "alice")
	if code != 0 || out != "revoked 1 session of alice\n" {
		t.Fatalf("revoke-sessions: exit %d, %q %q", code, out, errOut)
	}
	res, err = c.Get(base + "/api/progress")
	must(t, err)
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("after revoke-sessions: %d, want 401", res.StatusCode)
	}
	if code, _, errOut := admin(t, "", "revoke-sessions", "--data", data, "--username", "nobody"); code != 1 || !strings.Contains(errOut, `no user "nobody"`) {
		t.Errorf("revoke-sessions of nobody: %d %q", code, errOut)
	}
}

func TestServeRefusesUnknownAuth(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"serve", "--auth", "ldap"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `--auth "ldap": want none, local or oidc`) {
		t.Errorf("exit %d, %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run(t.Context(), []string{"serve", "--auth", "oidc", "--oidc-client-id", "x"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "--auth oidc needs --oidc-issuer and --oidc-client-id") {
		t.Errorf("oidc without an issuer: exit %d, %q", code, errOut.String())
	}
}
