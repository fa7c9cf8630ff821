//go:build !linux

package loadgen

import (
	"errors"
	"time"
)

var errNotLinux = errors.New("reading processes is Linux only")

func setBindNoPort(uintptr) {}

// RaiseFileLimit is Linux only.
func RaiseFileLimit(uint64) (uint64, error) { return 0, errNotLinux }

// ProcFileLimit is Linux only.
func ProcFileLimit(int) (uint64, error) { return 0, errNotLinux }

// ProcRSS is Linux only.
func ProcRSS(int) (int64, error) { return 0, errNotLinux }

// ListenerPID is Linux only.
func ListenerPID(string) (int, error) { return 0, errNotLinux }

// ProcCPU is Linux only.
func ProcCPU(int) (time.Duration, error) { return 0, errNotLinux }
