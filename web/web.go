// Package web holds the browser side of kubelab: html/template pages, CSS and
// the terminal client (xterm.js), bundled by esbuild into dist/ and embedded
// in the binary. In dev mode the files are read from disk so an edit shows on
// the next reload.
package web

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed all:dist templates
var embedded embed.FS

// Files returns the web files: templates/ and dist/. With dir set (dev mode,
// the path of this web folder on disk) they are read from disk on every use.
func Files(dir string) fs.FS {
	if dir != "" {
		return os.DirFS(dir)
	}
	return embedded
}

// SourceDir guesses the on-disk web folder for dev mode: ./web when it holds
// templates, "" otherwise.
func SourceDir() string {
	if st, err := os.Stat(filepath.Join("web", "templates")); err == nil && st.IsDir() {
		return "web"
	}
	return ""
}
