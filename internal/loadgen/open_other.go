//go:build !linux

package loadgen

import (
	"context"
	"errors"
)

const defaultEngine = EngineGoroutines

func engines() []string { return []string{EngineGoroutines} }

func runEpoll(context.Context, *openPlan) ([]*tally, error) {
	return nil, errors.New("the epoll engine is Linux only")
}
