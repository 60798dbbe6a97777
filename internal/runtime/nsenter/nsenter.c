// See nsenter.go for the protocol. This runs before the Go runtime: it must
// stay single-threaded C and report every failure to the parent.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

static int sync_fd = -1;

static void fail(const char *what, const char *obj)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "E%s %s: %s", what, obj ? obj : "", strerror(errno));
	if (n < 0 || n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	if (write(sync_fd, buf, n) < 0) {
		/* nothing more we can do */
	}
	_exit(1);
}

static int ns_flag(const char *type)
{
	if (!strcmp(type, "user")) return CLONE_NEWUSER;
	if (!strcmp(type, "mnt") || !strcmp(type, "mount")) return CLONE_NEWNS;
	if (!strcmp(type, "pid")) return CLONE_NEWPID;
	if (!strcmp(type, "net") || !strcmp(type, "network")) return CLONE_NEWNET;
	if (!strcmp(type, "ipc")) return CLONE_NEWIPC;
	if (!strcmp(type, "uts")) return CLONE_NEWUTS;
	if (!strcmp(type, "cgroup")) return CLONE_NEWCGROUP;
	if (!strcmp(type, "time")) return CLONE_NEWTIME;
	return -1;
}

struct join { int fd; int flag; char path[256]; };

static void wait_byte(char want, const char *what)
{
	char c;
	ssize_t n;
	do {
		n = read(sync_fd, &c, 1);
	} while (n < 0 && errno == EINTR);
	if (n != 1 || c != want) {
		errno = n < 0 ? errno : EPROTO;
		fail("waiting for parent:", what);
	}
}

static void send_bytes(const void *p, size_t len, const char *what)
{
	if (write(sync_fd, p, len) != (ssize_t)len)
		fail("writing to parent:", what);
}

void hull_nsenter(void)
{
	const char *s = getenv("_HULL_SYNCFD");
	if (!s || !*s)
		return;
	sync_fd = atoi(s);

	/* Die with the parent while we are still part of its setup. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);

	/* Open every namespace first: after joining a mount namespace the
	 * remaining paths may no longer resolve. */
	struct join joins[16];
	int njoin = 0;
	const char *j = getenv("_HULL_NS_JOIN");
	if (j && *j) {
		char *list = strdup(j), *save = NULL;
		for (char *tok = strtok_r(list, "\n", &save); tok && njoin < 16; tok = strtok_r(NULL, "\n", &save)) {
			char *eq = strchr(tok, '=');
			if (!eq) {
				errno = EINVAL;
				fail("bad namespace entry", tok);
			}
			*eq = 0;
			int flag = ns_flag(tok);
			if (flag < 0) {
				errno = EINVAL;
				fail("unknown namespace type", tok);
			}
			int fd = open(eq + 1, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				fail("open namespace", eq + 1);
			joins[njoin].fd = fd;
			joins[njoin].flag = flag;
			snprintf(joins[njoin].path, sizeof(joins[njoin].path), "%s", eq + 1);
			njoin++;
		}
		free(list);
	}
	/* The user namespace first: it owns the others and grants the
	 * capabilities to join them. */
	for (int i = 0; i < njoin; i++) {
		if (joins[i].flag != CLONE_NEWUSER)
			continue;
		if (setns(joins[i].fd, CLONE_NEWUSER) < 0)
			fail("setns", joins[i].path);
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
			/* root may be unmapped; the capabilities stay */
		}
	}
	for (int i = 0; i < njoin; i++) {
		if (joins[i].flag == CLONE_NEWUSER)
			continue;
		if (setns(joins[i].fd, joins[i].flag) < 0)
			fail("setns", joins[i].path);
	}
	for (int i = 0; i < njoin; i++)
		close(joins[i].fd);

	unsigned long flags = 0;
	const char *n = getenv("_HULL_NS_NEW");
	if (n && *n)
		flags = strtoul(n, NULL, 16);
	if (flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			fail("unshare", "user namespace");
		send_bytes("U", 1, "uid map request");
		wait_byte('u', "uid/gid maps");
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
			/* root may be unmapped; the capabilities stay */
		}
		/* Writing the maps made us dumpable-sensitive; stay killable. */
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	}
	flags &= ~(unsigned long)CLONE_NEWUSER;
	if (flags && unshare(flags) < 0)
		fail("unshare", "namespaces");
	if (flags & CLONE_NEWTIME) {
		const char *off = getenv("_HULL_TIMENS_OFFSETS");
		if (off && *off) {
			int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
			if (fd < 0)
				fail("open", "/proc/self/timens_offsets");
			if (write(fd, off, strlen(off)) < 0)
				fail("write", "/proc/self/timens_offsets");
			close(fd);
		}
	}

	/* Fork into the new pid/time namespace as a sibling of ourselves, so
	 * the hull process that started us is the parent and can reap it. */
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0);
	if (pid < 0)
		fail("clone", "container process");
	if (pid > 0) {
		char msg[5];
		int32_t p = pid;
		msg[0] = 'P';
		memcpy(msg + 1, &p, 4);
		send_bytes(msg, sizeof(msg), "pid");
		_exit(0);
	}
	/* The new process continues into the Go runtime, which finds
	 * _HULL_SYNCFD and runs the container setup. */
	prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
}
