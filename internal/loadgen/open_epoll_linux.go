//go:build linux

package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

const defaultEngine = EngineEpoll

func engines() []string { return []string{EngineEpoll, EngineGoroutines} }

// sysEpollPwait2 is epoll_pwait2 (Linux 5.11): epoll_wait with a timeout
// in nanoseconds, where epoll_wait rounds up to whole milliseconds.
const sysEpollPwait2 = 441

// econn is one connection of the epoll engine.
type econn struct {
	fd            int // -1: closed, dialed again when next used
	busy          bool
	k             int64 // the request in flight
	due, sent     time.Time
	in            []byte // the answer's bytes so far
	out           []byte // request bytes the socket did not take yet
	writeInterest bool   // registered for EPOLLOUT
}

// epollLoop is the state of runEpoll's one thread.
type epollLoop struct {
	pl      *openPlan
	epfd    int
	sa      syscall.Sockaddr
	family  int
	conns   []*econn
	idle    []int // indexes of connections with no request in flight
	busy    int
	t       *tally
	pwait2  bool
	readBuf []byte
}

// runEpoll is EngineEpoll: one locked OS thread sends each request when it
// is due on a free connection and reads the answers as epoll reports them.
func runEpoll(ctx context.Context, pl *openPlan) ([]*tally, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ta, err := net.ResolveTCPAddr("tcp", pl.addr)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", pl.addr, err)
	}
	l := &epollLoop{pl: pl, pwait2: true, t: pl.newTally(1)}
	if ip4 := ta.IP.To4(); ip4 != nil {
		sa := &syscall.SockaddrInet4{Port: ta.Port}
		copy(sa.Addr[:], ip4)
		l.sa, l.family = sa, syscall.AF_INET
	} else {
		sa := &syscall.SockaddrInet6{Port: ta.Port}
		copy(sa.Addr[:], ta.IP.To16())
		l.sa, l.family = sa, syscall.AF_INET6
	}
	if l.epfd, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	defer syscall.Close(l.epfd)
	l.conns = make([]*econn, pl.cfg.Conns)
	defer func() {
		for _, c := range l.conns {
			if c != nil && c.fd >= 0 {
				syscall.Close(c.fd)
			}
		}
	}()
	for i := range l.conns {
		l.conns[i] = &econn{fd: -1, in: make([]byte, 0, 4<<10)}
		if err := l.dial(i); err != nil {
			return nil, err
		}
		l.idle = append(l.idle, i)
	}
	return []*tally{l.t}, l.run(ctx)
}

func (l *epollLoop) dial(i int) error {
	fd, err := syscall.Socket(l.family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", l.pl.addr, err)
	}
	// A blocking connect: on loopback it completes at once.
	if err := syscall.Connect(fd, l.sa); err != nil {
		syscall.Close(fd)
		return fmt.Errorf("connecting to %s: %w", l.pl.addr, err)
	}
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1) // as Go's own connections
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return fmt.Errorf("connecting to %s: %w", l.pl.addr, err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(i)}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		syscall.Close(fd)
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	c := l.conns[i]
	c.fd, c.writeInterest, c.out, c.in = fd, false, nil, c.in[:0]
	return nil
}

func (l *epollLoop) run(ctx context.Context) error {
	pl := l.pl
	events := make([]syscall.EpollEvent, 128)
	l.readBuf = make([]byte, 16<<10)
	done := ctx.Done()
	var next int64
	pl.begin()
	nextScan := pl.start
	for {
		now := time.Now()
		stopped := false
		select {
		case <-done:
			stopped = true
		default:
		}
		if stopped || now.After(pl.giveUp) {
			for ; next < pl.total; next++ {
				l.t.notSent(pl, next)
			}
		}
		for next < pl.total && len(l.idle) > 0 {
			due := pl.due(next)
			if due.After(now) {
				break
			}
			i := l.idle[len(l.idle)-1]
			l.idle = l.idle[:len(l.idle)-1]
			l.send(i, next, due)
			next++
			now = time.Now()
		}
		if next >= pl.total && l.busy == 0 {
			return nil
		}
		if !now.Before(nextScan) {
			l.expire(now)
			nextScan = now.Add(10 * time.Millisecond)
		}
		wait := nextScan.Sub(now)
		if next < pl.total && len(l.idle) > 0 {
			wait = min(wait, pl.due(next).Sub(now))
		}
		n, err := l.wait(events, wait)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:n] {
			i := int(ev.Fd)
			c := l.conns[i]
			if c.fd < 0 {
				continue
			}
			if ev.Events&syscall.EPOLLOUT != 0 && len(c.out) > 0 {
				if err := l.flush(i); err != nil {
					l.finish(i, time.Now(), fmt.Errorf("sending to %s: %w", pl.addr, err), false)
					continue
				}
			}
			if ev.Events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				l.readable(i)
			}
		}
	}
}

// wait blocks for events for at most d (0: just poll).
func (l *epollLoop) wait(events []syscall.EpollEvent, d time.Duration) (int, error) {
	d = max(d, 0)
	if l.pwait2 {
		ts := syscall.NsecToTimespec(int64(d))
		n, _, e := syscall.Syscall6(sysEpollPwait2, uintptr(l.epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)),
			uintptr(unsafe.Pointer(&ts)), 0, 0)
		if e != syscall.ENOSYS {
			if e != 0 {
				return 0, e
			}
			return int(n), nil
		}
		l.pwait2 = false // an older kernel: whole milliseconds it is
	}
	return syscall.EpollWait(l.epfd, events, int((d+time.Millisecond-1)/time.Millisecond))
}

// send writes request k on idle connection i.
func (l *epollLoop) send(i int, k int64, due time.Time) {
	c := l.conns[i]
	c.busy, c.k, c.due = true, k, due
	l.busy++
	if c.fd < 0 {
		if err := l.dial(i); err != nil {
			now := time.Now()
			c.sent = now
			l.finish(i, now, err, false)
			return
		}
	}
	c.in = c.in[:0]
	c.out = l.pl.request(k)
	c.sent = time.Now()
	if err := l.flush(i); err != nil {
		l.finish(i, time.Now(), fmt.Errorf("sending to %s: %w", l.pl.addr, err), false)
	}
}

// flush writes what the socket takes of c.out and asks epoll for
// writability while some is left.
func (l *epollLoop) flush(i int) error {
	c := l.conns[i]
	for len(c.out) > 0 {
		n, err := syscall.Write(c.fd, c.out)
		if err == syscall.EAGAIN {
			break
		}
		if err != nil {
			return err
		}
		c.out = c.out[n:]
	}
	if want := len(c.out) > 0; want != c.writeInterest {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(i)}
		if want {
			ev.Events |= syscall.EPOLLOUT
		}
		if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
			return err
		}
		c.writeInterest = want
	}
	return nil
}

// readable reads what connection i has and finishes its request once the
// whole answer is in.
func (l *epollLoop) readable(i int) {
	c := l.conns[i]
	eof := false
	for {
		n, err := syscall.Read(c.fd, l.readBuf)
		if err == syscall.EAGAIN {
			break
		}
		if err != nil || n == 0 {
			eof = true
			break
		}
		c.in = append(c.in, l.readBuf[:n]...)
		if n < len(l.readBuf) {
			break // drained; a read more would only say EAGAIN
		}
	}
	if !c.busy {
		if eof || len(c.in) > 0 { // closed by the server, or bytes nobody asked for
			l.closeConn(i)
		}
		return
	}
	used, keep, err := parseResponse(c.in)
	if used > 0 || err != nil {
		// A whole answer (a non-2xx one comes with an error) leaves the
		// connection usable; a malformed one, or bytes beyond it, do not.
		l.finish(i, time.Now(), err, used > 0 && keep && used == len(c.in))
		return
	}
	if eof {
		l.finish(i, time.Now(), fmt.Errorf("reading the answer from %s: connection closed", l.pl.addr), false)
	}
}

// expire fails requests that have waited longer than the timeout.
func (l *epollLoop) expire(now time.Time) {
	for i, c := range l.conns {
		if c.busy && now.Sub(c.sent) > l.pl.cfg.Timeout {
			l.finish(i, now, fmt.Errorf("no answer from %s within %s", l.pl.addr, l.pl.cfg.Timeout), false)
		}
	}
}

// finish records connection i's request and makes the connection idle,
// closing it unless keep.
func (l *epollLoop) finish(i int, done time.Time, err error, keep bool) {
	c := l.conns[i]
	l.t.answered(l.pl, c.k, c.due, c.sent, done, err)
	c.busy = false
	l.busy--
	if !keep {
		l.closeConn(i)
	}
	c.in = c.in[:0]
	l.idle = append(l.idle, i)
}

func (l *epollLoop) closeConn(i int) {
	c := l.conns[i]
	if c.fd >= 0 {
		syscall.Close(c.fd) // also leaves the epoll set
		c.fd = -1
	}
}
