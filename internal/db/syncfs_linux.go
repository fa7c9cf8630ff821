package db

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFileSystem flushes every file of the file system dir is on
// (syncfs(2)): the database file's pages without a descriptor of that file.
func syncFileSystem(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
