package sandbox

import "context"

// ExitWaiter is implemented by a Terminal that can tell how its shell ended.
// It is optional: callers check for it with a type assertion, so a provider
// that cannot know the exit status (or has none) need not implement it.
type ExitWaiter interface {
	// Wait blocks until the terminal's shell has ended and returns its exit
	// code; a shell killed by a signal reports -1.
	Wait(ctx context.Context) (code int, err error)
}
