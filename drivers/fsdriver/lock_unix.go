//go:build unix

package fsdriver

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes a non-blocking flock(2) on f, exclusive or shared. The
// kernel drops it when f is closed or the process dies, so a crash never
// leaves the folder locked. errLocked when another open file holds it in
// a way that excludes this one.
func lockFile(f *os.File, shared bool) error {
	how := syscall.LOCK_EX
	if shared {
		how = syscall.LOCK_SH
	}
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return errLocked
		}
		return err
	}
}
