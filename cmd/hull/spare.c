// See spare.go. This runs before the Go runtime starts: plain,
// single-threaded C, and it must never fail the command it runs in (on any
// error the command starts its spare monitor later, from Go).
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

int hull_spare_pid = 0;
int hull_spare_sync = -1; // read end: the monitor's start report
int hull_spare_id = -1;   // write end: the container's ID
char hull_spare_early[65];

// first_command mirrors firstCommand in main.go: the first argument that
// is neither a flag nor the value of a global flag.
static const char *first_command(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--config") || !strcmp(a, "--root") || !strcmp(a, "--run-root") || !strcmp(a, "--log-level"))
			i++;
		else if (a[0] != '-')
			return a;
	}
	return "";
}

static int new_id(char out[65])
{
	unsigned char b[32];
	size_t got = 0;
	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
		if (n <= 0)
			return -1;
		got += n;
	}
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[64] = 0;
	return 0;
}

// hull_spare_child readies a freshly forked child to exec a spare
// monitor: its fds 3 and 4 the ends `hull monitor -` expects
// (engine.MonitorReportFD and engine.SpareMonitorFD, as engine.StartSpare
// places them; spareOf checks them), its stdio /dev/null, a session of
// its own in /, and nothing else the command inherited. Copies above the
// ends first, so that no dup2 overwrites an end still to be placed.
int hull_spare_child(int sync_w, int id_r)
{
	int s = fcntl(sync_w, F_DUPFD_CLOEXEC, 10), r = fcntl(id_r, F_DUPFD_CLOEXEC, 10);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (s < 0 || r < 0 || null < 0 || setsid() < 0 || chdir("/") < 0)
		return -1;
	if (dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 || dup2(s, 3) < 0 || dup2(r, 4) < 0)
		return -1;
	syscall(SYS_close_range, 5, ~0U, 0);
	return 0;
}

// hull_spare_pipes makes a spare's two pipes (close-on-exec): syncp its
// start report, idp its container's ID; -1 with neither left open.
int hull_spare_pipes(int syncp[2], int idp[2])
{
	if (pipe2(syncp, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(idp, O_CLOEXEC) < 0) {
		close(syncp[0]);
		close(syncp[1]);
		return -1;
	}
	return 0;
}

void hull_spare_start(int argc, char **argv)
{
	if (argc < 2 || getenv("_HULL_SYNCFD") || getenv("_HULL_SPARE") || getenv("HULL_NO_EARLY_SPARE"))
		return;
	if (strcmp(first_command(argc, argv), "run") != 0)
		return;
	if (new_id(hull_spare_early) < 0)
		return;
	int syncp[2], idp[2];
	if (hull_spare_pipes(syncp, idp) < 0)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		if (hull_spare_child(syncp[1], idp[0]) < 0)
			_exit(127);
		if (setenv("_HULL_SPARE", hull_spare_early, 1) < 0)
			_exit(127);
		// By its path, so that ps shows it as hull (not "exe"); the
		// link itself if the file was replaced since.
		char self[4096];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n > 0) {
			self[n] = 0;
			execv(self, argv);
		}
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(syncp[1]);
	close(idp[0]);
	if (pid < 0) {
		close(syncp[0]);
		close(idp[1]);
		return;
	}
	hull_spare_pid = pid;
	hull_spare_sync = syncp[0];
	hull_spare_id = idp[1];
}
