package lessons

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io/fs"
	"sync"
	"time"
)

// watchInterval is how often, at most, a watching Library looks at the
// files again.
const watchInterval = 500 * time.Millisecond

// Library loads the lessons of its sources on first use and keeps the
// catalog. With Watch set (authoring, dev mode) it reloads when a file
// under a source changed: each call to Catalog walks the sources' files
// and compares names, sizes and modification times, at most once per
// 500ms. A Library is set up by its exported fields alone (no
// constructor) and is safe for concurrent use.
type Library struct {
	Sources []Source
	Options Options
	Watch   bool

	mu      sync.Mutex
	loaded  bool             // watching: the files were loaded at least once
	cat     *Catalog         // last good catalog
	err     error            // watching: problems of the files as they are now
	stamp   uint64           // watching: fingerprint of the files last loaded
	checked time.Time        // watching: when the files were last looked at
	now     func() time.Time // tests replace the clock
}

// Catalog returns the lessons. Without Watch it loads once and then always
// returns the same catalog. With Watch, when the files changed it loads
// them again; when they are broken it keeps returning the last good
// catalog together with the error (a *ErrorList) until they are fixed, so
// a server can keep serving and log or show the problems. Before any load
// succeeded the catalog is nil.
func (l *Library) Catalog(ctx context.Context) (*Catalog, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.Watch {
		if l.cat != nil {
			return l.cat, nil
		}
		cat, err := LoadAll(ctx, l.Sources, l.Options)
		if err != nil {
			return nil, err // the next call tries again
		}
		l.cat = cat
		return cat, nil
	}

	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	if l.loaded && now.Sub(l.checked) < watchInterval {
		return l.cat, l.err
	}
	stamp, err := fingerprint(ctx, l.Sources)
	if err != nil {
		return l.cat, err
	}
	l.checked = now
	if l.loaded && stamp == l.stamp {
		return l.cat, l.err
	}
	cat, err := LoadAll(ctx, l.Sources, l.Options)
	if err != nil && ctx.Err() != nil {
		return l.cat, err // not the files' fault: look again next time
	}
	l.loaded, l.stamp = true, stamp
	if err != nil {
		l.err = err
		return l.cat, err
	}
	l.cat, l.err = cat, nil
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
