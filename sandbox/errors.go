package sandbox

import "errors"

// ErrUnsupported is returned when a provider cannot build what a Spec asks
// for, such as a Docker engine from the shell provider. Callers branch on it
// with errors.Is; the wrapping error says what was asked of which provider.
var ErrUnsupported = errors.New("not supported by this sandbox provider")
