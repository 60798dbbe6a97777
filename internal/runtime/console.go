package runtime

import (
	"fmt"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// setupConsole makes a pty inside the container, hands the master to
// whoever listens on the console socket (SCM_RIGHTS, with the pts path as
// the message, as runc does) and makes the slave this process's stdio and
// controlling terminal.
func setupConsole(consoleFD int, size *specs.Box) error {
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/ptmx in the container: %w", err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("pty number: %w", err)
	}
	slave, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		return fmt.Errorf("open pty peer: %w", errno)
	}
	if size != nil {
		ws := &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)}
		if err := unix.IoctlSetWinsize(int(slave), unix.TIOCSWINSZ, ws); err != nil {
			return fmt.Errorf("set console size: %w", err)
		}
	}
	name := "/dev/pts/" + strconv.Itoa(n)
	if err := unix.Sendmsg(consoleFD, []byte(name), unix.UnixRights(master), nil, 0); err != nil {
		return fmt.Errorf("send pty master over the console socket: %w", err)
	}
	unix.Close(consoleFD)
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(int(slave), i, 0); err != nil {
			return fmt.Errorf("dup pty to fd %d: %w", i, err)
		}
	}
	unix.Close(int(slave))
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	return nil
}

// RecvConsole receives a pty master sent by setupConsole on sock.
func RecvConsole(sock *os.File) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, 0)
	if err != nil {
		return nil, fmt.Errorf("receive pty master: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return nil, fmt.Errorf("receive pty master: no fd in message (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil, fmt.Errorf("receive pty master: %v", err)
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}
