package lessons

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io/fs"
	"slices"
	"sync"
	"time"
)

// watchInterval is how often, at most, a watching Library looks at the
// files again.
const watchInterval = 500 * time.Millisecond

// Library loads the lessons of its sources and keeps the catalog. With
// watch set (authoring, dev mode) it reloads when a file under a source
// changed: each call to Catalog walks the sources' files and compares
// names, sizes and modification times, at most once per 500ms. A Library
// is safe for concurrent use.
type Library struct {
	sources []Source
	opts    Options
	watch   bool
	now     func() time.Time

	mu      sync.Mutex
	cat     *Catalog  // last good catalog
	err     error     // watching: problems of the files as they are now
	stamp   uint64    // watching: fingerprint of the files last loaded
	checked time.Time // watching: when the files were last looked at
}

// NewLibrary loads the lessons of sources (see LoadAll) and returns a
// Library holding them, or the load's error (a *ErrorList when lessons are
// broken), so that a server with a broken lesson does not start.
func NewLibrary(ctx context.Context, sources []Source, opts Options, watch bool) (*Library, error) {
	return newLibrary(ctx, sources, opts, watch, time.Now)
}

// newLibrary is NewLibrary with a clock.
func newLibrary(ctx context.Context, sources []Source, opts Options, watch bool, now func() time.Time) (*Library, error) {
	l := &Library{sources: slices.Clone(sources), opts: opts, watch: watch, now: now}
	if _, err := l.Catalog(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// Catalog returns the lessons. Without watch it always returns the catalog
// NewLibrary loaded. With watch, when the files changed it loads them
// again; while they are broken it returns the last good catalog together
// with the error (a *ErrorList), until they are fixed, so that a server can
// keep serving and log or show the problems.
func (l *Library) Catalog(ctx context.Context) (*Catalog, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.watch {
		if l.cat != nil {
			return l.cat, nil
		}
		cat, err := LoadAll(ctx, l.sources, l.opts)
		if err != nil {
			return nil, err
		}
		l.cat = cat
		return cat, nil
	}

	now := l.now()
	if l.cat != nil && now.Sub(l.checked) < watchInterval {
		return l.cat, l.err
	}
	stamp, err := fingerprint(ctx, l.sources)
	if err != nil {
		return l.cat, err
	}
	l.checked = now
	if l.cat != nil && stamp == l.stamp {
		return l.cat, l.err
	}
	cat, err := LoadAll(ctx, l.sources, l.opts)
	if err != nil {
		if ctx.Err() == nil {
			l.stamp, l.err = stamp, err // the files are broken: say so until they change
		}
		return l.cat, err
	}
	l.cat, l.err, l.stamp = cat, nil, stamp
	return cat, nil
}

// fingerprint hashes the name, size and modification time of every file
// and folder under the sources.
func fingerprint(ctx context.Context, sources []Source) (uint64, error) {
	h := fnv.New64a()
	var num [8]byte
	for i, src := range sources {
		err := fs.WalkDir(src.FS, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				// A file that vanished mid-walk, an unreadable folder: its
				// name still counts, and the load will report the rest.
				fmt.Fprintf(h, "%d\x00%s\x00error\x00", i, p)
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			fmt.Fprintf(h, "%d\x00%s\x00", i, p)
			info, err := d.Info()
			if err != nil {
				return nil
			}
			binary.LittleEndian.PutUint64(num[:], uint64(info.Size()))
			h.Write(num[:])
			binary.LittleEndian.PutUint64(num[:], uint64(info.ModTime().UnixNano()))
			h.Write(num[:])
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("watch lessons %s: %w", src.Name, err)
		}
	}
	return h.Sum64(), nil
}
