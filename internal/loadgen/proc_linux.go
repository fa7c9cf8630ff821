//go:build linux

package loadgen

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (Linux 4.2): a socket
// bound to a source address takes its port at connect time, per
// destination, so each 127.0.0.x source has the whole ephemeral range
// towards each server.
const ipBindAddressNoPort = 24

func setBindNoPort(fd uintptr) {
	_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
}

// RaiseFileLimit raises this process's open-file limit to want (soft and,
// when needed and allowed, hard) and returns the soft limit it has after.
// Go already raises the soft limit to the hard one at start; a root
// process (or one with CAP_SYS_RESOURCE) can raise the hard one up to
// /proc/sys/fs/nr_open.
func RaiseFileLimit(want uint64) (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if l.Cur >= want {
		return l.Cur, nil
	}
	n := l
	n.Cur = want
	if n.Max < want {
		n.Max = want
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &n); err != nil {
		// Not allowed to raise the hard limit: take what it allows.
		n = l
		n.Cur = l.Max
		if err2 := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &n); err2 != nil {
			return l.Cur, fmt.Errorf("setrlimit: %w", err2)
		}
		return l.Max, fmt.Errorf("raising the open-file limit to %d: %w (run as root, or raise the hard limit: ulimit -Hn)", want, err)
	}
	return want, nil
}

// ProcFileLimit returns the soft open-file limit of process pid.
func ProcFileLimit(pid int) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Max open files"); ok {
			fs := strings.Fields(rest)
			if len(fs) > 0 {
				if fs[0] == "unlimited" {
					return 1 << 62, nil
				}
				return strconv.ParseUint(fs[0], 10, 64)
			}
		}
	}
	return 0, errors.New("no 'Max open files' line")
}

// ProcRSS returns the resident set size (VmRSS) of process pid in bytes.
func ProcRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the memory of process %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fs := strings.Fields(rest) // "123456 kB"
			if len(fs) >= 1 {
				kb, err := strconv.ParseInt(fs[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("process %d: no VmRSS in /proc/%d/status", pid, pid)
}

// ListenerPID returns the id of the process listening on the TCP address
// addr (host:port) of this machine, found through /proc/net/tcp{,6} and
// the processes' open sockets.
func ListenerPID(addr string) (int, error) {
	_, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil {
		return 0, fmt.Errorf("port %q: %w", ps, err)
	}
	want := fmt.Sprintf(":%04X", port)
	inodes := map[string]bool{}
	for _, tab := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(tab)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
			if len(f) >= 10 && f[3] == "0A" && strings.HasSuffix(f[1], want) {
				inodes["socket:["+f[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("no process listens on port %d", port)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		fds, _ := os.ReadDir(p + "/fd")
		for _, fd := range fds {
			if l, err := os.Readlink(p + "/fd/" + fd.Name()); err == nil && inodes[l] {
				return strconv.Atoi(filepath.Base(p))
			}
		}
	}
	return 0, fmt.Errorf("the process listening on port %d is not visible (another user's? give its pid)", port)
}

// ProcCPU returns the CPU time (user + system) process pid has used.
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields count from after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // utime, field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // stime, field 15
	const hz = 100                           // USER_HZ on every Linux this runs on
	return time.Duration(ut+st) * time.Second / hz, nil
}
