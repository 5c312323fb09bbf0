// Package auth holds kubelab's account primitives: password hashing
// (argon2id), session tokens of which only a hash is stored, CSRF tokens
// derived from the session, and a limiter for login attempts. It knows
// nothing of HTTP routing or of the store; package server wires it.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters. They are written into every
// encoded hash, so raising them later does not break older hashes.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// DefaultParams follow RFC 9106's second recommended option (64 MiB, 3
// passes, 4 lanes).
var DefaultParams = Params{Memory: 64 << 10, Time: 3, Threads: 4, SaltLen: 16, KeyLen: 32}

// ErrBadHash is returned for an encoded hash Verify cannot read.
var ErrBadHash = errors.New("not an argon2id hash")

// HashPassword hashes password with DefaultParams and a random salt into the
// PHC string format: $argon2id$v=19$m=65536,t=3,p=4$<salt>$<key>.
func HashPassword(password string) (string, error) {
	return HashPasswordWith(DefaultParams, password)
}

// HashPasswordWith is HashPassword with explicit parameters.
func HashPasswordWith(p Params, password string) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches the encoded hash, with
// the parameters the hash carries, comparing in constant time.
func VerifyPassword(encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, ErrBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, fmt.Errorf("%w: version %q", ErrBadHash, parts[2])
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false, fmt.Errorf("%w: parameters %q", ErrBadHash, parts[3])
	}
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 || p.Memory > 4<<20 || p.Time > 100 {
		return false, fmt.Errorf("%w: parameters %q out of range", ErrBadHash, parts[3])
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) == 0 {
		return false, fmt.Errorf("%w: salt", ErrBadHash)
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, fmt.Errorf("%w: key", ErrBadHash)
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
