package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"kubelab/lessons"
	"kubelab/sandbox"
	"kubelab/sandbox/images"
	"kubelab/sandbox/kind"
	"kubelab/sandbox/shell"
	"kubelab/server"
	"kubelab/server/auth"
	"kubelab/server/store"
	"kubelab/server/terminal"
	"kubelab/web"
)

type serveConfig struct {
	addr         string
	data         string
	lessonDirs   stringList
	provider     string
	watch        bool
	unsafeShell  bool
	origins      stringList
	grace        time.Duration
	scrollback   int
	idle         time.Duration
	lifetime     time.Duration
	extendBy     time.Duration
	extensions   int
	warnBefore   time.Duration
	creations    int
	maxSandboxes int
	maxCreating  int
	warmPool     int
	logLevel     string
	pprofAddr    string
	auth         string
	sessionTTL   time.Duration
	oidc         auth.OIDCConfig
	// limits of the kind provider's containers; zero fields: defaults
	wsLimits, engineLimits, nodeLimits kind.Limits
}

func serveFlags(stderr io.Writer) (*flag.FlagSet, *serveConfig) {
	c := &serveConfig{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&c.data, "data", "./data", "directory for the SQLite database and sandbox state")
	fs.Var(&c.lessonDirs, "lessons", "a folder of tracks (or one track) on disk that adds to or overrides the built-in course; repeatable")
	fs.StringVar(&c.provider, "sandbox", "", "sandbox provider: shell or kind (default: kind when a Docker engine answers, else shell)")
	fs.BoolVar(&c.watch, "watch", false, "dev mode: reload lessons, templates and assets from disk on the next page load")
	fs.BoolVar(&c.unsafeShell, "unsafe-shell", false, "allow the shell provider (no isolation) on a non-loopback address")
	fs.Var(&c.origins, "allowed-origin", "extra Origin allowed on the terminal websocket (e.g. https://lab.example.com); repeatable")
	fs.DurationVar(&c.grace, "terminal-grace", 5*time.Minute, "how long a shell outlives a dropped connection")
	fs.IntVar(&c.scrollback, "scrollback", 256<<10, "bytes of terminal output replayed on reconnect")
	fs.DurationVar(&c.idle, "idle-timeout", 30*time.Minute, "remove a sandbox after this long with no terminal attached")
	fs.DurationVar(&c.lifetime, "max-lifetime", 4*time.Hour, "remove a sandbox after this long in any case (unless extended)")
	fs.DurationVar(&c.extendBy, "extend-by", sandbox.DefaultExtendBy, "what the page's Extend button adds to a sandbox's life")
	fs.IntVar(&c.extensions, "max-extensions", sandbox.DefaultMaxExtensions, "extensions per sandbox; 0 for none")
	fs.DurationVar(&c.warnBefore, "warn-before", server.DefaultWarnBefore, "the page warns this long before a sandbox ends")
	fs.IntVar(&c.creations, "max-creations-per-learner", sandbox.DefaultMaxCreationsPerOwner, "sandboxes created for one learner per hour; more get 429 and Retry-After")
	fs.IntVar(&c.maxSandboxes, "max-sandboxes", 0, "cap on live sandboxes, warm ones included (0: no cap)")
	fs.IntVar(&c.maxCreating, "max-creating", 2, "sandboxes created at once")
	fs.IntVar(&c.warmPool, "warm-pool", 1, "ready sandboxes (with a cluster) kept for the next learner; kind provider only")
	limitsFlag := func(name string, dst *kind.Limits, def string) {
		fs.Func(name, "kind provider: "+def+"; as memory=SIZE,cpus=N,pids=N (e.g. memory=1Gi,cpus=1; -1: no limit; a key left out keeps its default)", func(v string) (err error) {
			*dst, err = kind.ParseLimits(v)
			return err
		})
	}
	limitsFlag("workstation-limits", &c.wsLimits, "limits of each learner's workstation (default memory=512Mi,cpus=1,pids=512)")
	limitsFlag("engine-limits", &c.engineLimits, "limits of each learner's Docker engine (default: memory an eighth of the host's, 1Gi to 2Gi; cpus=2,pids=2048)")
	limitsFlag("node-limits", &c.nodeLimits, "limits of each kind node (default: memory an eighth of the host's, 1Gi to 2Gi; cpus=2,pids=4096)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.pprofAddr, "pprof-addr", "", "serve Go's profiler (/debug/pprof/) on this separate address, for operators only (e.g. 127.0.0.1:6060); off by default")
	fs.StringVar(&c.auth, "auth", server.AuthNone, "who may use the server: none (anonymous learners, one per browser), local (accounts made with `kubelab admin create-user`) or oidc (accounts from an OpenID Connect provider)")
	fs.DurationVar(&c.sessionTTL, "session-ttl", 7*24*time.Hour, "how long a sign-in lasts with --auth local or oidc")
	fs.StringVar(&c.oidc.Issuer, "oidc-issuer", "", "--auth oidc: the provider's issuer URL")
	fs.StringVar(&c.oidc.ClientID, "oidc-client-id", "", "--auth oidc: this server's client ID at the provider")
	fs.StringVar(&c.oidc.ClientSecret, "oidc-client-secret", "", "--auth oidc: the client secret (better set as KUBELAB_OIDC_CLIENT_SECRET, out of ps)")
	fs.StringVar(&c.oidc.RedirectURL, "oidc-redirect-url", "", "--auth oidc: the callback URL registered at the provider, e.g. https://lab.example.com/auth/callback (default: from each request's Host)")
	fs.StringVar(&c.oidc.RoleClaim, "oidc-role-claim", "", "--auth oidc: an ID token claim holding learner, instructor or admin (default: new users are learners)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: kubelab serve [flags]\n\nEvery flag can also be set with KUBELAB_<FLAG> (e.g. KUBELAB_ADDR); flags win.")
		fs.PrintDefaults()
	}
	return fs, c
}

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, c := serveFlags(stderr)
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "kubelab serve:", err)
		return 2
	}
	switch c.auth {
	case server.AuthNone, server.AuthLocal:
	case server.AuthOIDC:
		if c.oidc.Issuer == "" || c.oidc.ClientID == "" {
			fmt.Fprintln(stderr, "kubelab serve: --auth oidc needs --oidc-issuer and --oidc-client-id")
			return 2
		}
	default:
		fmt.Fprintf(stderr, "kubelab serve: --auth %q: want none, local or oidc\n", c.auth)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		fmt.Fprintln(stderr, "kubelab serve: --log-level:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := serve(ctx, c, log); err != nil {
		log.Error("kubelab serve failed", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, c *serveConfig, log *slog.Logger) error {
	provider, err := chooseProvider(ctx, c, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.addr, err)
	}
	if provider.Name() == "shell" && !isLoopback(ln.Addr()) && !c.unsafeShell {
		ln.Close()
		return fmt.Errorf("refusing to serve the shell sandbox (a host shell, no isolation) on %s: use a loopback address, --sandbox kind, or --unsafe-shell if you mean it", c.addr)
	}

	st, err := store.Open(ctx, c.data)
	if err != nil {
		ln.Close()
		return err
	}
	defer st.Close()
	var accounts server.Accounts
	var idp *auth.OIDC
	switch c.auth {
	case server.AuthLocal:
		accounts = st
		if users, err := st.Users(ctx); err != nil {
			ln.Close()
			return err
		} else if len(users) == 0 {
			log.Warn("--auth local but no accounts yet: nobody can sign in; create the first admin with `kubelab admin create-user --data " + c.data + " --username NAME --role admin`")
		}
	case server.AuthOIDC:
		accounts = st
		if idp, err = auth.NewOIDC(ctx, c.oidc); err != nil {
			ln.Close()
			return err
		}
		log.Info("oidc provider", "issuer", c.oidc.Issuer, "client_id", c.oidc.ClientID, "role_claim", c.oidc.RoleClaim)
	}

	sources, err := lessonSources(c.lessonDirs, true)
	if err != nil {
		ln.Close()
		return err
	}
	lib, err := lessons.NewLibrary(ctx, sources, lessonOptions(), c.watch)
	if err != nil {
		ln.Close()
		return err // file:line of every broken lesson
	}
	cat, _ := lib.Catalog(ctx)
	log.Info("lessons loaded", "tracks", len(cat.Tracks), "watch", c.watch)

	opts := sandbox.ManagerOptions{
		MaxSandboxes: c.maxSandboxes,
		MaxCreating:  c.maxCreating,
		IdleTimeout:  c.idle,
		MaxLifetime:  c.lifetime,
		ExtendBy:     c.extendBy,
		// 0 on the command line means none; the Manager reads 0 as "default".
		MaxExtensions:        cmp.Or(c.extensions, -1),
		MaxCreationsPerOwner: c.creations,
		Logger:               log.With("component", "sandbox"),
		Registry:             server.SandboxRegistry(st, provider.Name()),
	}
	if provider.Name() != "shell" {
		// A shell starts in milliseconds: no pool needed there.
		opts.WarmPool = c.warmPool
		opts.WarmSpec = sandbox.Spec{Kind: sandbox.KindKubernetes, Images: clusterImages(cat)}
		log.Info("warm pool", "size", opts.WarmPool, "images", opts.WarmSpec.Images)
	}
	prefix, err := instancePrefix(c.data)
	if err != nil {
		return err
	}
	opts.IDPrefix = prefix
	mgr := sandbox.NewManager(provider, opts)
	adopted, deleted, err := mgr.Reconcile(ctx)
	if err != nil {
		log.Error("reconcile sandboxes", "err", err)
	}
	log.Info("sandboxes reconciled", "adopted", adopted, "orphans_deleted", deleted)
	mgrCtx, stopMgr := context.WithCancel(context.WithoutCancel(ctx))
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Run(mgrCtx) }()

	hub := terminal.NewHub(terminal.Options{
		Grace:          c.grace,
		Scrollback:     c.scrollback,
		AllowedOrigins: c.origins,
		Logger:         log.With("component", "terminal"),
	})
	webDir := ""
	if c.watch {
		webDir = web.SourceDir()
	}
	srv, err := server.New(server.Config{
		Addr:           c.addr,
		AllowedOrigins: c.origins,
		Web:            web.Files(webDir),
		DevTemplates:   webDir != "",
		Logger:         log,
		Auth:           c.auth,
		Accounts:       accounts,
		OIDC:           idp,
		SessionTTL:     c.sessionTTL,
		WarnBefore:     c.warnBefore,
	}, lib, st, mgr, hub)
	if err != nil {
		ln.Close()
		stopMgr()
		return err
	}
	if c.pprofAddr != "" {
		stopProf, err := servePprof(c.pprofAddr, log)
		if err != nil {
			ln.Close()
			stopMgr()
			return err
		}
		defer stopProf()
	}
	log.Info("kubelab is serving", "url", "http://"+ln.Addr().String(), "sandbox", provider.Name(), "data", c.data, "auth", c.auth)
	serveErr := srv.Serve(ctx, ln, 10*time.Second)

	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := mgr.Shutdown(sctx); err != nil {
		log.Warn("sandbox shutdown", "err", err)
	}
	stopMgr()
	<-mgrDone
	return serveErr
}

// chooseProvider picks the sandbox provider: the one asked for, or kind
// when a Docker engine answers and the sandbox images are on the host, else
// shell. The log says which and why.
func chooseProvider(ctx context.Context, c *serveConfig, log *slog.Logger) (sandbox.Provider, error) {
	homes := filepath.Join(c.data, "shell-homes")
	newShell := func() sandbox.Provider { return shell.New(homes, log.With("component", "shell")) }
	newKind := func() sandbox.Provider {
		return kind.New(kind.Options{Logger: log.With("component", "kind"),
			WorkstationLimits: c.wsLimits, EngineLimits: c.engineLimits, NodeLimits: c.nodeLimits})
	}
	switch c.provider {
	case "shell":
		log.Info("sandbox provider: shell (asked for with --sandbox shell)")
		return newShell(), nil
	case "kind":
		if err := dockerAnswers(ctx); err != nil {
			return nil, fmt.Errorf("--sandbox kind needs a Docker engine: %w", err)
		}
		if missing := missingImages(ctx); len(missing) > 0 {
			return nil, fmt.Errorf("--sandbox kind: images missing on this host: %s; build them with `kubelab images build` (no registry needed)", strings.Join(missing, ", "))
		}
		log.Info("sandbox provider: kind (asked for with --sandbox kind)")
		return newKind(), nil
	case "":
		if err := dockerAnswers(ctx); err != nil {
			log.Info("sandbox provider: shell (no Docker engine answers: " + err.Error() + ")")
			return newShell(), nil
		}
		if missing := missingImages(ctx); len(missing) > 0 {
			log.Warn("sandbox provider: shell (a Docker engine answers, but these sandbox images are missing: " + strings.Join(missing, ", ") + "; run `kubelab images build`, then restart)")
			return newShell(), nil
		}
		log.Info("sandbox provider: kind (a Docker engine answers and the sandbox images are here)")
		return newKind(), nil
	default:
		return nil, fmt.Errorf("--sandbox %q: want shell or kind", c.provider)
	}
}

// missingImages lists the sandbox images the kind provider needs that are
// not on the host.
func missingImages(ctx context.Context) []string {
	statuses, err := images.List(ctx, images.Options{})
	if err != nil {
		return []string{"(could not list images: " + err.Error() + ")"}
	}
	need := map[string]bool{images.NodeImage: true, images.EngineImage: true, images.WorkstationImage: true}
	var missing []string
	for _, s := range statuses {
		if need[s.Image] && !s.Present {
			missing = append(missing, s.Image)
		}
	}
	return missing
}

// dockerAnswers reports whether `docker info` succeeds within a few seconds.
func dockerAnswers(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("docker info: %w", err)
	}
	return nil
}

func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// instancePrefix is the sandbox ID prefix of the server that keeps its data
// in dir: "kl-" and four hex digits chosen on first start and kept in
// dir/instance, so that servers sharing a Docker host (each with its own
// data) never adopt or delete each other's sandboxes.
func instancePrefix(dir string) (string, error) {
	file := filepath.Join(dir, "instance")
	if b, err := os.ReadFile(file); err == nil {
		p := strings.TrimSpace(string(b))
		if !instancePattern.MatchString(p) {
			return "", fmt.Errorf("%s: %q is not a sandbox ID prefix like kl-3f2a- (delete the file to get a new one)", file, p)
		}
		return p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read instance prefix: %w", err)
	}
	b := make([]byte, 2)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("instance prefix: %w", err)
	}
	p := "kl-" + hex.EncodeToString(b) + "-"
	if err := os.WriteFile(file, []byte(p+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write instance prefix: %w", err)
	}
	return p, nil
}

var instancePattern = regexp.MustCompile(`^kl-[0-9a-f]{4}-$`)

// clusterImages lists the images of every lesson with a cluster, so that a
// warm sandbox has them all loaded and a learner's hand-out loads nothing.
// Lessons with addons are left out: their sandbox grows to install the
// addon anyway, and their images (PyTorch: 1.3 GB) would make every warm
// sandbox slow to make and heavy on disk.
func clusterImages(cat *lessons.Catalog) []string {
	var refs []string
	if cat == nil {
		return nil
	}
	for _, t := range cat.Tracks {
		for _, l := range t.Lessons {
			if l.Sandbox != lessons.SandboxKubernetes || len(l.Addons) > 0 {
				continue
			}
			for _, ref := range l.Images {
				if !slices.Contains(refs, ref) {
					refs = append(refs, ref)
				}
			}
		}
	}
	slices.Sort(refs)
	return refs
}
