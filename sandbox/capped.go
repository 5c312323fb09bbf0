package sandbox

import "bytes"

// CappedBuffer keeps the first Max bytes written and discards the rest, so
// a chatty command never blocks on a full pipe nor fills memory. Providers
// use it for ExecResult's output.
type CappedBuffer struct {
	Max int
	buf bytes.Buffer
}

// Write keeps what fits and always reports all of p as written.
func (c *CappedBuffer) Write(p []byte) (int, error) {
	if room := c.Max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// Bytes returns what was kept, or nil when nothing was written.
func (c *CappedBuffer) Bytes() []byte {
	if c.buf.Len() == 0 {
		return nil
	}
	return c.buf.Bytes()
}
