package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"sync"
)

// pages renders the html/template pages. Each page is the layout plus one
// page template; in dev mode they are parsed again on every render.
type pages struct {
	fsys         fs.FS
	dev          bool
	assetVersion string

	mu  sync.Mutex
	set map[string]*template.Template
}

var pageNames = []string{"catalog", "lesson", "error", "login", "watch"}

func newPages(fsys fs.FS, dev bool) (*pages, error) {
	p := &pages{fsys: fsys, dev: dev}
	set, err := p.parse()
	if err != nil {
		return nil, err
	}
	p.set = set
	p.assetVersion = assetVersion(fsys)
	return p, nil
}

func (p *pages) parse() (map[string]*template.Template, error) {
	set := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.ParseFS(p.fsys, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		set[name] = t
	}
	return set, nil
}

// render executes page into a buffer first, so a template error becomes a
// clean 500 instead of half a page.
func (p *pages) render(w http.ResponseWriter, status int, name string, data pageData) error {
	set := p.set
	if p.dev {
		fresh, err := p.parse()
		if err != nil {
			return err
		}
		set = fresh
	}
	data.setAssetVersion(p.assetVersion)
	var buf bytes.Buffer
	if err := set[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// pageData is what every page's layout needs.
type pageData interface {
	setAssetVersion(string)
	setIdentity(csrf, username, role string)
}

// layoutData is embedded by every page's data.
type layoutData struct {
	Title        string
	BodyClass    string
	AssetVersion string
	CSRFToken    string // in a meta tag for app.js, and in the logout form
	Username     string // "" when anonymous or signed out
	Role         string
}

func (l *layoutData) setAssetVersion(v string) { l.AssetVersion = v }

func (l *layoutData) setIdentity(csrf, username, role string) {
	l.CSRFToken, l.Username, l.Role = csrf, username, role
}

// render renders a page for the browser that sent r: its CSRF token and
// who is signed in go into the layout.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data pageData) error {
	id := identityFrom(r.Context())
	if id.user != nil {
		data.setIdentity(id.csrf, id.user.Username, id.user.Role)
	} else {
		data.setIdentity(id.csrf, "", "")
	}
	return s.pages.render(w, status, name, data)
}

// assetVersion hashes the bundled assets so browsers refetch them after an
// upgrade (they are served with a long cache lifetime).
func assetVersion(fsys fs.FS) string {
	h := sha256.New()
	for _, name := range []string{"dist/app.js", "dist/style.css"} {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return "missing"
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// static serves the bundled assets under /static/.
func (s *Server) static() http.Handler {
	dist, err := fs.Sub(s.cfg.Web, "dist")
	if err != nil {
		return http.NotFoundHandler()
	}
	files := http.StripPrefix("/static/", http.FileServerFS(dist))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := path.Clean(r.URL.Path[len("/static/"):])
		if _, err := fs.Stat(dist, name); err != nil {
			http.Error(w, "asset not found: "+name+" (did `make build` run? the web bundle is built by npm)", http.StatusNotFound)
			return
		}
		if r.URL.Query().Get("v") != "" && !s.cfg.DevTemplates {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		}
		files.ServeHTTP(w, r)
	})
}

type errorPage struct {
	layoutData
	Message string
}

// pageError renders the error page with a status and a message.
func (s *Server) pageError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := statusOf(err)
	if status >= 500 {
		s.log.Error("page failed", "path", r.URL.Path, "err", err)
	}
	title := http.StatusText(status)
	data := &errorPage{layoutData: layoutData{Title: title}, Message: msg}
	if rerr := s.render(w, r, status, "error", data); rerr != nil {
		s.log.Error("render error page", "err", rerr)
		http.Error(w, msg, status)
	}
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	err := errorf(http.StatusNotFound, "There is no page at %s.", r.URL.Path)
	if len(r.URL.Path) >= 5 && r.URL.Path[:5] == "/api/" {
		s.writeError(w, r, err)
		return
	}
	s.pageError(w, r, err)
}
