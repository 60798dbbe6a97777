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
#include <linux/sched.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
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

/* Join the container's cgroups while still in the host's mount namespace
 * and single-threaded. In each v1 hierarchy, writing "0" to tasks moves
 * only the calling thread, which the kernel does without taking its global
 * threadgroup lock for writing; the first such write after a quiet spell
 * (a parent writing our pid to cgroup.procs) waits for an RCU grace
 * period, milliseconds. The cgroup2 directory is opened for clone3's
 * CLONE_INTO_CGROUP, which places the child there at birth, also without
 * that lock. A process bound for a user namespace loses the right to
 * either once there: it joins cgroup2 now, by pid, the slow way. Returns
 * the cgroup2 directory fd for clone3, or -1. */
static int join_cgroups(int userns)
{
	const char *v1 = getenv("_HULL_CGROUP_V1");
	if (v1 && *v1) {
		char *list = strdup(v1), *save = NULL;
		for (char *dir = strtok_r(list, "\n", &save); dir; dir = strtok_r(NULL, "\n", &save)) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/tasks", dir);
			int fd = open(path, O_WRONLY | O_CLOEXEC);
			if (fd < 0)
				fail("join cgroup", path);
			if (write(fd, "0", 1) != 1)
				fail("join cgroup", path);
			close(fd);
		}
		free(list);
	}
	const char *v2 = getenv("_HULL_CGROUP_V2");
	if (!v2 || !*v2)
		return -1;
	if (userns) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/cgroup.procs", v2);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1)
			fail("join cgroup", path);
		close(fd);
		return -1;
	}
	int fd = open(v2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fail("open cgroup", v2);
	return fd;
}

/* Fork the container's process so that the hull process that started us
 * becomes its parent: with CLONE_PARENT, or, when it is born into the
 * cgroup2 directory cgfd (clone3 refuses CLONE_PARENT with an exit signal),
 * as our child that is handed to hull, a child subreaper, when we exit. */
static pid_t fork_sibling(int cgfd)
{
	if (cgfd >= 0) {
		struct clone_args args;
		memset(&args, 0, sizeof(args));
		args.flags = CLONE_INTO_CGROUP;
		args.exit_signal = SIGCHLD;
		args.cgroup = (uint64_t)cgfd;
		pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
		if (pid >= 0)
			return pid;
		/* No clone3 here: join by pid, the slow way, then fork. */
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d/cgroup.procs", cgfd);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1)
			fail("join cgroup", "cgroup2");
		close(fd);
	}
	return (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0);
}

void hull_nsenter(void)
{
	const char *s = getenv("_HULL_SYNCFD");
	if (!s || !*s)
		return;
	sync_fd = atoi(s);

	/* Not dumpable until the user's program replaces us (execve makes
	 * it dumpable again): the container cannot open the /proc/PID files
	 * (fd, environ, mem) of a process of its uid while it sets up, not
	 * even once it has the container's capabilities (as runc since
	 * CVE-2016-9962). Its /proc/self then belongs to the root of the
	 * caller's user namespace, which the setup allows for. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fail("prctl", "PR_SET_DUMPABLE");

	/* Die with the parent while we are still part of its setup. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);

	const char *nsnew = getenv("_HULL_NS_NEW"), *nsjoin = getenv("_HULL_NS_JOIN");
	unsigned long flags = nsnew && *nsnew ? strtoul(nsnew, NULL, 16) : 0;
	int userns = (flags & CLONE_NEWUSER) ||
		     (nsjoin && (!strncmp(nsjoin, "user=", 5) || strstr(nsjoin, "\nuser=")));
	/* The parent makes the cgroups while we start; wait for them. */
	const char *wait_cg = getenv("_HULL_CGROUP_WAIT");
	if (wait_cg && *wait_cg)
		wait_byte('c', "cgroups");
	int cgfd = join_cgroups(userns);

	/* Opened now, while we are root where our /proc/self belongs (not
	 * dumpable, it belongs to the caller's root, whom a new user
	 * namespace does not map); the kernel checks the write against the
	 * opener's credentials. */
	int timens_fd = -1;
	const char *off = getenv("_HULL_TIMENS_OFFSETS");
	if ((flags & CLONE_NEWTIME) && off && *off) {
		timens_fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		if (timens_fd < 0)
			fail("open", "/proc/self/timens_offsets");
	}

	/* Open every namespace first: after joining a mount namespace the
	 * remaining paths may no longer resolve. */
	struct join joins[16];
	int njoin = 0;
	if (nsjoin && *nsjoin) {
		char *list = strdup(nsjoin), *save = NULL;
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

	if (flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			fail("unshare", "user namespace");
		send_bytes("U", 1, "uid map request");
		wait_byte('u', "uid/gid maps");
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
			/* root may be unmapped; the capabilities stay */
		}
	}
	flags &= ~(unsigned long)CLONE_NEWUSER;
	if (flags && unshare(flags) < 0)
		fail("unshare", "namespaces");
	if (timens_fd >= 0) {
		if (write(timens_fd, off, strlen(off)) < 0)
			fail("write", "/proc/self/timens_offsets");
		close(timens_fd);
	}

	/* Fork into the new pid/time namespace as a sibling of ourselves, so
	 * the hull process that started us is the parent and can reap it. */
	pid_t pid = fork_sibling(cgfd);
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
	if (cgfd >= 0)
		close(cgfd);
}
