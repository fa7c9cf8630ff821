//go:build !linux

package db

import "errors"

// syncFileSystem is Linux's syncfs(2); elsewhere the caller syncs the WAL
// file alone.
func syncFileSystem(string) error { return errors.ErrUnsupported }
