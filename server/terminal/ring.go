package terminal

import "bytes"

// ring keeps the last bytes written to it: a terminal's scrollback. It
// grows as output comes, up to its size, so an idle terminal costs little
// memory; once at its size it wraps.
type ring struct {
	buf  []byte
	size int
	w    int  // next write position, once buf has its full size
	full bool // buf has wrapped at least once
}

func newRing(size int) *ring { return &ring{size: size} }

// Write appends p, overwriting the oldest bytes when full.
func (r *ring) Write(p []byte) {
	if r.size <= 0 || len(p) == 0 {
		return
	}
	if len(r.buf) < r.size {
		if len(r.buf)+len(p) < r.size {
			r.buf = append(r.buf, p...)
			r.w = len(r.buf)
			return
		}
		// Reaching the size: from here on the buffer wraps.
		grown := make([]byte, r.size)
		r.w = copy(grown, r.buf)
		r.buf = grown
	}
	size := len(r.buf)
	if len(p) >= size {
		copy(r.buf, p[len(p)-size:])
		r.w, r.full = 0, true
		return
	}
	n := copy(r.buf[r.w:], p)
	copy(r.buf, p[n:])
	if r.w+len(p) >= size {
		r.full = true
	}
	r.w = (r.w + len(p)) % size
}

// Bytes returns a copy of what is kept, oldest first. Once older output
// has been overwritten, it starts after the first line break, so that a
// replay does not begin in the middle of a line or an escape sequence.
func (r *ring) Bytes() []byte {
	if !r.full {
		return bytes.Clone(r.buf[:r.w])
	}
	out := make([]byte, 0, len(r.buf))
	out = append(out, r.buf[r.w:]...)
	out = append(out, r.buf[:r.w]...)
	if i := bytes.IndexByte(out, '\n'); i >= 0 && i+1 < len(out) {
		out = out[i+1:]
	}
	return out
}
