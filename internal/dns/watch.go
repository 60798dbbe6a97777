package dns

import (
	"errors"
	"path/filepath"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Changes tells whether anything changed in a directory of directories
// (the attachment records, <dir>/CONTAINER/NETWORK.json) since it last
// said, through inotify: a zone can keep what it read until then instead
// of reading every record for every query (milliseconds with a hundred
// containers on the host).
//
// Nothing is missed: the kernel queues an event before the system call
// that caused it returns, and Changed reads the queue itself, so a record
// renamed into place before a query was sent is seen by that query. A new
// container's directory is watched as soon as its creation is read; what
// was renamed into it before counts, as the creation does, as a change.
type Changes struct {
	mu      sync.Mutex
	fd      int
	dir     string
	watched map[string]int // directory: watch descriptor
	buf     []byte
	asked   bool // Changed was called
}

const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM |
	unix.IN_CLOSE_WRITE | unix.IN_DELETE_SELF | unix.IN_ONLYDIR

// WatchChanges starts watching dir and its subdirectories.
func WatchChanges(dir string) (*Changes, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	c := &Changes{fd: fd, dir: dir, watched: map[string]int{}, buf: make([]byte, 64<<10)}
	if _, err := unix.InotifyAddWatch(fd, dir, watchMask); err != nil {
		unix.Close(fd)
		return nil, err
	}
	c.watchSubdirs()
	return c, nil
}

// watchSubdirs adds a watch on every subdirectory not watched yet.
func (c *Changes) watchSubdirs() {
	matches, _ := filepath.Glob(filepath.Join(c.dir, "*"))
	for _, d := range matches {
		if _, ok := c.watched[d]; !ok {
			if wd, err := unix.InotifyAddWatch(c.fd, d, watchMask); err == nil {
				c.watched[d] = wd
			}
		}
	}
}

// Changed reports whether anything changed since the last call (or the
// start): true the first time.
func (c *Changes) Changed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := false
	for {
		n, err := unix.Read(c.fd, c.buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if n <= 0 || err != nil {
			break
		}
		changed = true
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&c.buf[off]))
			if ev.Mask&unix.IN_IGNORED != 0 {
				// A watched directory was removed: forget it, so that
				// one made again by the same name (a container attached
				// again) is watched anew.
				for d, wd := range c.watched {
					if wd == int(ev.Wd) {
						delete(c.watched, d)
					}
				}
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
	if changed {
		c.watchSubdirs() // new containers' directories
	}
	first := !c.asked
	c.asked = true
	return changed || first
}

// Close stops watching.
func (c *Changes) Close() error { return unix.Close(c.fd) }
