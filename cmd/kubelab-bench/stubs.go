package main

import (
	"context"
	"errors"
)

func benchPages(ctx context.Context, c config, r *report) error       { return errors.New("todo") }
func benchSandboxes(ctx context.Context, c config, r *report) error   { return errors.New("todo") }
func benchChecks(ctx context.Context, c config, r *report) error      { return errors.New("todo") }
