// See kubefast.go. This runs before the Go runtime starts: plain,
// single-threaded C. On any command line it does not take exactly as the
// Go command tree would, or any error before the exec, it returns and the
// command tree runs `hull kube` as always (cmd/hull/kube.go).
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int hull_spare_child(int sync_w, int id_r); // spare.c
int hull_spare_pipes(int syncp[2], int idp[2]); // spare.c

// global_value reports whether a is one of hull's global flags that take
// a value (main.go firstCommand's list).
static int global_value(const char *a)
{
	return !strcmp(a, "--config") || !strcmp(a, "--root") || !strcmp(a, "--run-root") || !strcmp(a, "--log-level");
}

// is_apply mirrors isKubeApply (kube_apply.go): the first word of kube's
// arguments that is neither a flag nor a flag's value is "apply".
static int is_apply(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (global_value(a) || !strcmp(a, "-n") || !strcmp(a, "--namespace"))
			i++;
		else if (a[0] != '-')
			return !strcmp(a, "apply");
	}
	return 0;
}

// start_monitor starts, in apply's child before it execs hull-cri, the
// pod's spare monitor: `hull GLOBALS monitor - --early-on-spec`, as
// engine NewSpare would once hull-cri has started (its fds 3 and 4 the
// ends engine.StartSpare gives it), so that its start-up runs while
// hull-cri's does, on the processor hull-cri leaves idle. It is that
// child's child, so hull-cri adopts it (engine.AdoptSpare: it reaps it)
// from fds 4 (the start report) and 5 (the container's ID) and
// _HULL_KUBE_SPARE=PID. Nothing is started on any error: hull-cri then
// starts the spare itself.
static void start_monitor(const char *self, int nglobal, char **global)
{
	int syncp[2], idp[2];
	if (hull_spare_pipes(syncp, idp) < 0) // spare.c
		return;
	pid_t pid = fork();
	if (pid == 0) {
		if (hull_spare_child(syncp[1], idp[0]) < 0) // spare.c
			_exit(127);
		char **margv = calloc(nglobal + 5, sizeof(char *));
		if (!margv)
			_exit(127);
		int m = 0;
		margv[m++] = (char *)self;
		for (int j = 0; j < nglobal; j++)
			margv[m++] = global[j];
		margv[m++] = "monitor";
		margv[m++] = "-";
		margv[m++] = "--early-on-spec";
		margv[m] = NULL;
		execv(self, margv);
		_exit(127);
	}
	close(syncp[1]);
	close(idp[0]);
	// Copies above 5 first, so that no dup2 overwrites an end still to
	// be placed; the copies go at the exec (close-on-exec), 4 and 5 stay.
	int s = pid < 0 ? -1 : fcntl(syncp[0], F_DUPFD_CLOEXEC, 10), i = pid < 0 ? -1 : fcntl(idp[1], F_DUPFD_CLOEXEC, 10);
	close(syncp[0]);
	close(idp[1]);
	char v[16];
	if (s < 0 || i < 0 || dup2(s, 4) < 0 || dup2(i, 5) < 0 || snprintf(v, sizeof(v), "%d", (int)pid) >= (int)sizeof(v) ||
	    setenv("_HULL_KUBE_SPARE", v, 1) < 0) {
		// (a spare started reads end-of-file at the exec and ends; so
		// would hull-cri's copies of its ends: fds 4 and 5 are closed
		// at the exec unless _HULL_KUBE_SPARE names them)
		fcntl(4, F_SETFD, FD_CLOEXEC);
		fcntl(5, F_SETFD, FD_CLOEXEC);
	}
}

// wants_wait reports whether apply's arguments ask it to wait (it then
// keeps no pod: no spare monitor for it).
static int wants_wait(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (!strncmp(argv[i], "--wait", 6))
			return 1;
	return 0;
}

// run_apply runs apply as runKubeApply does and exits with the status the
// child reports (or its own, if it ends without one); it returns only if
// the child could not be started.
static void run_apply(const char *bin, char **argv, const char *self, int nglobal, char **global, int nargs, char **args)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		// fd 3: the pipe's write end (dup2 clears close-on-exec); 4 and
		// 5: the spare monitor's, if it started; nothing else this
		// command inherited above them goes on to the supervisor the
		// child becomes.
		int w = fcntl(p[1], F_DUPFD_CLOEXEC, 10);
		if (w < 0)
			_exit(127);
		syscall(SYS_close_range, 4, ~0U, CLOSE_RANGE_CLOEXEC);
		if (!wants_wait(nargs, args))
			start_monitor(self, nglobal, global);
		if (dup2(w, 3) < 0)
			_exit(127);
		syscall(SYS_close_range, 6, ~0U, 0);
		// As for every supervisor (internal/kube supervisorEnv): glibc
		// reads it once, at the start; the child drops it for what it
		// starts.
		if (setenv("_HULL_KUBE_APPLY", "3", 1) < 0 || setenv("MALLOC_ARENA_MAX", "1", 1) < 0)
			_exit(127);
		execv(bin, argv);
		_exit(127);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return;
	}
	char line[32];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(line) - 1 && (r = read(p[0], line + n, sizeof(line) - 1 - n)) > 0)
		n += r;
	line[n] = 0;
	char *end;
	long code = strtol(line, &end, 10);
	if (n > 0 && end != line && *end == '\n')
		_exit((int)code); // the child goes on, detached
	int st;
	while (waitpid(pid, &st, 0) < 0)
		;
	_exit(WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st));
}

void hull_kube_start(int argc, char **argv)
{
	if (argc < 2 || getenv("_HULL_SYNCFD") || getenv("_HULL_SPARE"))
		return;
	// hull's global flags, each followed by its value, then kube.
	int k = 1;
	for (; k < argc && global_value(argv[k]); k += 2) {
		if (k + 1 >= argc || argv[k + 1][0] == 0)
			return; // hull says what is wrong
		if (!strcmp(argv[k], "--log-level") && strcmp(argv[k + 1], "debug") && strcmp(argv[k + 1], "info") &&
		    strcmp(argv[k + 1], "warn") && strcmp(argv[k + 1], "error"))
			return;
	}
	if (k >= argc || strcmp(argv[k], "kube") != 0)
		return;
	static char self[PATH_MAX], bin[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return;
	self[n] = 0;
	const char *cri = getenv("HULL_CRI");
	if (cri && cri[0]) {
		if (snprintf(bin, sizeof(bin), "%s", cri) >= (int)sizeof(bin))
			return;
	} else {
		const char *slash = strrchr(self, '/');
		if (!slash || snprintf(bin, sizeof(bin), "%.*s/hull-cri", (int)(slash - self), self) >= (int)sizeof(bin))
			return;
	}
	if (access(bin, X_OK) != 0)
		return; // hull says how to build it
	// hull-cri kube --hull SELF, hull's global flags, kube's arguments.
	char **args = calloc(argc + 4, sizeof(char *));
	if (!args)
		return;
	int m = 0;
	args[m++] = bin;
	args[m++] = "kube";
	args[m++] = "--hull";
	args[m++] = self;
	for (int j = 1; j < k; j++)
		args[m++] = argv[j];
	for (int j = k + 1; j < argc; j++)
		args[m++] = argv[j];
	args[m] = NULL;
	if (is_apply(argc - k - 1, argv + k + 1))
		run_apply(bin, args, self, k - 1, argv + 1, argc - k - 1, argv + k + 1);
	else
		execv(bin, args);
	free(args);
}
