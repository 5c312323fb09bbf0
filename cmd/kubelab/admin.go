package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"kubelab/server/auth"
	"kubelab/server/store"
)

const adminUsage = `Usage:
  kubelab admin create-user     --data DIR --username U --role learner|instructor|admin [--password-file F]
  kubelab admin revoke-sessions --data DIR --username U

create-user reads the password from --password-file (its first line) or
from standard input (asked for twice, without echo, on a terminal); never
from a flag, which would leave it in the shell history and in ps.
revoke-sessions signs the user out everywhere.
`

// minPassword is the shortest password create-user accepts.
const minPassword = 8

// adminCmd runs `kubelab admin ...` on the store in --data.
func adminCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, adminUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("admin "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, adminUsage) }
	data := fs.String("data", "./data", "directory of the SQLite database (as given to kubelab serve)")
	username := fs.String("username", "", "the account's name")
	var role, passwordFile *string
	switch sub {
	case "create-user":
		role = fs.String("role", store.RoleLearner, "learner, instructor or admin")
		passwordFile = fs.String("password-file", "", "read the password from the first line of this file instead of standard input")
	case "revoke-sessions":
	default:
		fmt.Fprintf(stderr, "kubelab admin: unknown command %q\n\n%s", sub, adminUsage)
		return 2
	}
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "kubelab admin "+sub+":", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kubelab admin %s: unexpected arguments %q (the password is never a flag or argument)\n", sub, fs.Args())
		return 2
	}
	if strings.TrimSpace(*username) == "" {
		fmt.Fprintf(stderr, "kubelab admin %s: --username is required\n", sub)
		return 2
	}

	var err error
	switch sub {
	case "create-user":
		if !store.ValidRole(*role) {
			fmt.Fprintf(stderr, "kubelab admin create-user: --role %q: want learner, instructor or admin\n", *role)
			return 2
		}
		err = createUser(ctx, *data, *username, *role, *passwordFile, stdin, stdout, stderr)
	case "revoke-sessions":
		err = revokeSessions(ctx, *data, *username, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "kubelab admin "+sub+":", err)
		return 1
	}
	return 0
}

func createUser(ctx context.Context, data, username, role, passwordFile string, stdin io.Reader, stdout, stderr io.Writer) error {
	password, err := readPassword(passwordFile, stdin, stderr)
	if err != nil {
		return err
	}
	if len([]rune(password)) < minPassword {
		return fmt.Errorf("the password must have at least %d characters", minPassword)
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, data)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.CreateUser(ctx, username, hash, role)
	if errors.Is(err, store.ErrExists) {
		return fmt.Errorf("user %q already exists", username)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s %s (id %s)\n", u.Role, u.Username, u.ID)
	return nil
}

// readPassword reads the first line of file, or of stdin; on a terminal it
// asks twice without echo.
func readPassword(file string, stdin io.Reader, stderr io.Writer) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read the password: %w", err)
		}
		return firstLine(string(b)), nil
	}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read the password: %w", err)
		}
		fmt.Fprint(stderr, "Again: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read the password: %w", err)
		}
		if string(p1) != string(p2) {
			return "", errors.New("the two passwords differ")
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from standard input: %w", err)
	}
	return firstLine(line), nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSuffix(s, "\r")
}

func revokeSessions(ctx context.Context, data, username string, stdout io.Writer) error {
	st, err := store.Open(ctx, data)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.UserByUsername(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no user %q", username)
	}
	if err != nil {
		return err
	}
	n, err := st.RevokeUserSessions(ctx, u.ID)
	if err != nil {
		return err
	}
	noun := "sessions"
	if n == 1 {
		noun = "session"
	}
	fmt.Fprintf(stdout, "revoked %d %s of %s\n", n, noun, u.Username)
	return nil
}
