/*
 * cz-wire: the shaping element between two VDE switches (issue 15), in wirefilter's place.
 *
 * Per direction (LR: left to right, RL: right to left) a FIFO of frames, each with a departure
 * time on CLOCK_MONOTONIC in nanoseconds: the arrival plus the delay (ms, fractional), and no
 * earlier than the previous departure plus the frame's length at the bandwidth (bytes/s, 0 =
 * unlimited); a frame is lost with the given probability (percent) on arrival. The wait beyond
 * the delay is bounded (BACKLOG_NS, drop tail, counted). One ppoll with a nanosecond timeout
 * waits for frames, the management socket and the next departure.
 *
 * Command line, the subset of wirefilter's the project uses:
 *   cz-wire [--daemon] [--pidfile FILE] [-M MGMT] -v LEFT:RIGHT [-d [LR|RL]MS] [-b [LR|RL]BYTES]
 *           [-l [LR|RL]PERCENT] [--cpu-latency US]
 * LEFT and RIGHT are switch sockets or vdeplug URLs: LEFT tap://eth1, opened in the node's namespace,
 * makes the element the node's plug (process_nodes does that: one process between a node and its switch).
 * RIGHT peer://SELF,PEER joins it straight to another element (the two hops of a point-to-point link, no
 * switch between them): frames go out to the datagram socket PEER and come in on SELF with the kernel's
 * time of sending, from which the delay counts (a late wake-up here does not add to it).
 * --cpu-latency US holds a PM QoS request (/dev/cpu_dma_latency) while it runs: the CPUs wake within US
 * microseconds (idle ones poll), so a frame waking an element is not late by a deep idle state.
 * The management socket (MGMT) speaks wirefilter's protocol subset: mgmt.c.
 *
 * Built on the pnode by the vde role (wire_element): gcc -O2 -o cz-wire cz-wire.c mgmt.c -l:libvdeplug.so.2
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* libvdeplug.so.2 (vdeplug4): no -dev package here, so the few entry points used are declared */
typedef struct vdeconn VDECONN;
VDECONN *vde_open_real(char *url, char *descr, int interface_version, void *open_args);
ssize_t vde_recv(VDECONN *conn, void *buf, size_t len, int flags);
ssize_t vde_send(VDECONN *conn, const void *buf, size_t len, int flags);
int vde_datafd(VDECONN *conn);
int vde_ctlfd(VDECONN *conn);
int vde_close(VDECONN *conn);

#include "wire.h"

#define FRAME_MAX 65536
#define QUEUE_MAX 16384               /* frames per direction, whatever the rate */
#define BACKLOG_NS 50000000LL         /* 50 ms of serialization backlog, as the end-node tbf */
#define NS 1000000000LL

struct direction dirs[2] = {{.name = "L->R"}, {.name = "R->L"}};
static VDECONN *conn[2];
/* a side joined straight to the peer element's (peer://SELF,PEER): a datagram socket of its own */
static int peer_fd[2] = {-1, -1};
static struct sockaddr_un peer_addr[2];
static const char *peer_self[2];
static int gone[2];  /* the switch of that side went away: its sockets are no longer polled */
static const char *mgmt_path, *pid_path;
volatile sig_atomic_t stopping;
static uint64_t rng[4];
/* how late ppoll's timeout wakes us (EWMA, ns): the next wake-up is asked for that much before the
   departure, so a frame leaves about on time; never before it (a wake-up that comes sooner than expected
   waits out the rest), so a link never delivers faster than its plan */
int64_t lateness;
int cpu_latency = -1;                 /* the PM QoS request held (us), -1 none */
const char *cpu_latency_error = "";
#define LATENESS_MAX 200000LL

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* xoshiro256** (Blackman and Vigna), seeded from getrandom */
static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t next_random(void)
{
	uint64_t result = rotl(rng[1] * 5, 7) * 9, t = rng[1] << 17;
	rng[2] ^= rng[0]; rng[3] ^= rng[1]; rng[1] ^= rng[2]; rng[0] ^= rng[3];
	rng[2] ^= t; rng[3] = rotl(rng[3], 45);
	return result;
}
static double uniform(void) { return (double)(next_random() >> 11) * 0x1.0p-53; }

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("cz-wire: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* "12", "12.5", "1.5e3", with an optional K/M/G (1024-based, as wirefilter) when SUFFIX */
static int parse_number(const char *text, int suffix, double *value)
{
	char *end;
	errno = 0;
	double v = strtod(text, &end);
	if (end == text || errno || v < 0 || v != v)
		return -1;
	if (suffix && *end) {
		if (*end == 'k' || *end == 'K') v *= 1024.0;
		else if (*end == 'm' || *end == 'M') v *= 1048576.0;
		else if (*end == 'g' || *end == 'G') v *= 1073741824.0;
		else return -1;
		end++;
	}
	if (*end)
		return -1;
	*value = v;
	return 0;
}

/* which: 0 delay, 1 bandwidth, 2 loss; TEXT is "[LR|RL]VALUE" (no prefix: both directions) */
int set_param(int which, const char *text)
{
	int mask = 3;
	double value;
	while (*text == ' ') text++;
	if (!strncmp(text, "LR", 2)) { mask = 1; text += 2; }
	else if (!strncmp(text, "RL", 2)) { mask = 2; text += 2; }
	while (*text == ' ') text++;
	if (parse_number(text, which == 1, &value))
		return -1;
	if (which == 2 && value > 100.0)
		return -1;
	for (int d = 0; d < 2; d++) {
		if (!(mask & (1 << d)))
			continue;
		if (which == 0) dirs[d].delay_ms = value;
		else if (which == 1) dirs[d].bandwidth = value;
		else dirs[d].loss_pct = value;
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* the sides: a VDE connection (switch port, tap) or a peer element's socket */

static void side_send(int c, const void *data, size_t len)
{
	if (peer_fd[c] < 0)
		vde_send(conn[c], data, len, 0);
	else  /* the peer not there (yet): the frame is lost, as on a link whose other end is down */
		sendto(peer_fd[c], data, len, MSG_DONTWAIT, (struct sockaddr *)&peer_addr[c], sizeof peer_addr[c]);
}

static int side_datafd(int c) { return peer_fd[c] >= 0 ? peer_fd[c] : vde_datafd(conn[c]); }
static int side_ctlfd(int c) { return peer_fd[c] >= 0 ? -1 : vde_ctlfd(conn[c]); }

/* the address of the unix socket PATH (one line and exit 2 when it does not fit) */
static void unix_address(const char *path, struct sockaddr_un *sun)
{
	*sun = (struct sockaddr_un){.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sun->sun_path)
		die("%s: socket path too long, at most %zu bytes", path, sizeof sun->sun_path - 1);
	strcpy(sun->sun_path, path);
}

/* bind FD to PATH, mode 0600, replacing an old socket file */
void bind_unix(int fd, const char *path)
{
	struct sockaddr_un sun;
	unix_address(path, &sun);
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun))
		die("%s: cannot bind: %s", path, strerror(errno));
	chmod(path, 0600);
}

/* peer://SELF,PEER: frames come in on SELF with the kernel's time of sending (SO_TIMESTAMPNS); the
   buffers hold a burst of large frames (the queue length is the kernel's, net.unix.max_dgram_qlen) */
static void open_peer(int c, const char *url)
{
	char *spec = strdup(url + strlen("peer://")), *comma = strchr(spec, ',');
	if (!comma || comma == spec || !comma[1])
		die("%s: allowed peer://SELF,PEER (two socket paths)", url);
	*comma = 0;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), on = 1, size = 1 << 21;
	if (fd < 0)
		die("socket: %s", strerror(errno));
	bind_unix(fd, spec);
	unix_address(comma + 1, &peer_addr[c]);
	setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
	peer_fd[c] = fd;
	peer_self[c] = spec;
}

/* one frame from side C into BUF; *ARRIVAL its time of arrival (CLOCK_MONOTONIC ns) */
static ssize_t side_recv(int c, unsigned char *buf, size_t size, int64_t *arrival)
{
	*arrival = now_ns();
	if (peer_fd[c] < 0)
		return vde_recv(conn[c], buf, size, 0);
	char control[CMSG_SPACE(sizeof(struct timespec))];
	struct iovec iov = {.iov_base = buf, .iov_len = size};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
	ssize_t len = recvmsg(peer_fd[c], &msg, 0);
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); len > 0 && cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPNS)
			continue;
		struct timespec sent, real;
		memcpy(&sent, CMSG_DATA(cm), sizeof sent);
		clock_gettime(CLOCK_REALTIME, &real);
		int64_t ago = ((int64_t)real.tv_sec - sent.tv_sec) * NS + (real.tv_nsec - sent.tv_nsec);
		if (ago > 0 && ago < NS)  /* a step of the wall clock is not a frame's age */
			*arrival -= ago;
	}
	return len;
}

/* ---------------------------------------------------------------------------------------------- */
/* the queues */

static void arrive(int d, const unsigned char *data, size_t len, int64_t now)
{
	struct direction *dir = &dirs[d];
	if (dir->loss_pct > 0 && uniform() * 100.0 < dir->loss_pct) {
		dir->lost++;
		return;
	}
	/* the delay, and no earlier than the previous frame's departure plus this one's time on the wire:
	   the rate holds and a frame on an idle link waits exactly the delay (the plan's round trip) */
	int64_t depart = now + (int64_t)(dir->delay_ms * 1e6 + 0.5);
	if (dir->bandwidth > 0) {
		int64_t paced = dir->last_depart + (int64_t)((double)len * NS / dir->bandwidth);
		if (paced > depart) {
			if (paced - depart > BACKLOG_NS) {
				dir->dropped++;
				return;
			}
			depart = paced;
		}
	}
	if (depart < dir->last_depart)
		depart = dir->last_depart;  /* FIFO when the delay is lowered live */
	if (dir->count == 0 && depart <= now) {
		side_send(dir->out, data, len);
		dir->sent++;
		dir->last_depart = now;
		return;
	}
	if (dir->count >= QUEUE_MAX) {
		dir->dropped++;
		return;
	}
	unsigned char *copy = malloc(len);
	if (!copy) {
		dir->dropped++;
		return;
	}
	memcpy(copy, data, len);
	struct frame *f = &dir->q[(dir->head + dir->count) % QUEUE_MAX];
	f->depart = depart;
	f->len = len;
	f->data = copy;
	dir->count++;
	dir->last_depart = depart;
}

/* send what is due at NOW; returns the next departure or INT64_MAX */
static int64_t depart_due(int64_t now)
{
	int64_t next = INT64_MAX;
	for (int d = 0; d < 2; d++) {
		struct direction *dir = &dirs[d];
		while (dir->count) {
			struct frame *f = &dir->q[dir->head];
			if (f->depart > now) {
				if (f->depart < next)
					next = f->depart;
				break;
			}
			side_send(dir->out, f->data, f->len);
			free(f->data);
			dir->sent++;
			dir->head = (dir->head + 1) % QUEUE_MAX;
			dir->count--;
		}
	}
	return next;
}


/* ---------------------------------------------------------------------------------------------- */

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void usage(void)
{
	die("usage: cz-wire [--daemon] [--pidfile FILE] [-M MGMT] -v LEFT:RIGHT [-d [LR|RL]MS] "
	    "[-b [LR|RL]BYTES_PER_S] [-l [LR|RL]PERCENT] [--cpu-latency US]");
}

/* PM QoS: held as long as the descriptor is open (the kernel drops it when the last holder exits) */
static void hold_cpu_latency(const char *text)
{
	double us;
	if (parse_number(text, 0, &us) || us > 1e6)
		die("--cpu-latency %s: bad value, allowed microseconds 0..1000000", text);
	int fd = open("/dev/cpu_dma_latency", O_WRONLY | O_CLOEXEC);
	int32_t value = (int32_t)us;
	if (fd < 0 || write(fd, &value, sizeof value) != sizeof value) {
		cpu_latency_error = strerror(errno);  /* not fatal: the links work, only less exactly */
		if (fd >= 0) close(fd);
		return;
	}
	cpu_latency = value;
}

static void write_pidfile(void)
{
	if (!pid_path)
		return;
	FILE *f = fopen(pid_path, "w");
	if (!f)
		die("%s: %s", pid_path, strerror(errno));
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
}

int main(int argc, char **argv)
{
	const char *wire = NULL;
	int daemonize = 0;
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];
		if (!strcmp(opt, "--daemon")) { daemonize = 1; continue; }
		if (!strcmp(opt, "--selftest")) {  /* the build runs: linked, clock and PRNG work */
			if (getrandom(rng, sizeof rng, 0) != sizeof rng || now_ns() <= 0)
				die("selftest failed");
			puts("cz-wire " VERSION " ok");
			return 0;
		}
		if (i + 1 >= argc)
			usage();
		const char *val = argv[++i];
		if (!strcmp(opt, "--pidfile")) pid_path = val;
		else if (!strcmp(opt, "-M") || !strcmp(opt, "--mgmt")) mgmt_path = val;
		else if (!strcmp(opt, "-v")) wire = val;
		else if (!strcmp(opt, "--cpu-latency")) hold_cpu_latency(val);
		else if (!strcmp(opt, "-d") && !set_param(0, val)) continue;
		else if (!strcmp(opt, "-b") && !set_param(1, val)) continue;
		else if (!strcmp(opt, "-l") && !set_param(2, val)) continue;
		else if (!strcmp(opt, "-d") || !strcmp(opt, "-b") || !strcmp(opt, "-l"))
			die("%s %s: bad value, allowed [LR|RL]NUMBER (ms, bytes/s with K/M/G, percent <= 100)", opt, val);
		else
			usage();
	}
	if (!wire || !strchr(wire, ':'))
		usage();
	/* LEFT:RIGHT, where either may be a vdeplug URL (tap://eth1): the first ':' not opening "://" */
	char *left = strdup(wire), *right = left;
	while ((right = strchr(right, ':')) && !strncmp(right, "://", 3))
		right += 3;
	if (!right)
		usage();
	*right++ = 0;
	if (getrandom(rng, sizeof rng, 0) != sizeof rng)
		die("getrandom: %s", strerror(errno));
	for (int d = 0; d < 2; d++)
		if (!(dirs[d].q = calloc(QUEUE_MAX, sizeof(struct frame))))
			die("out of memory");
	char *urls[2] = {left, right};
	for (int c = 0; c < 2; c++) {
		if (!strncmp(urls[c], "peer://", 7))
			open_peer(c, urls[c]);
		else if (!(conn[c] = vde_open_real(urls[c], "cz-wire", 1, NULL)))
			die("%s: cannot connect: %s", urls[c], strerror(errno));
	}
	dirs[0].out = 1;
	dirs[1].out = 0;
	if (mgmt_path)
		mgmt_open(mgmt_path);
	if (daemonize) {
		pid_t pid = fork();
		if (pid < 0) die("fork: %s", strerror(errno));
		if (pid > 0) _exit(0);
		setsid();
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) { dup2(null, 0); dup2(null, 1); dup2(null, 2); if (null > 2) close(null); }
	}
	write_pidfile();
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);  /* wake at the departure, not up to 50 us later */

	static unsigned char frame[FRAME_MAX];
	struct pollfd pfd[4 + MGMT_POLLFDS];
	sigset_t none;
	sigemptyset(&none);
	while (!stopping) {
		int n = 0;
		for (int c = 0; c < 2; c++) {
			pfd[n++] = (struct pollfd){.fd = gone[c] ? -1 : side_datafd(c), .events = POLLIN};
			pfd[n++] = (struct pollfd){.fd = gone[c] ? -1 : side_ctlfd(c), .events = POLLIN};
		}
		n += mgmt_pollfds(pfd + n);
		int64_t now = now_ns(), next = depart_due(now), wake = 0;
		struct timespec ts, *timeout = NULL;
		if (next != INT64_MAX) {
			now = now_ns();
			wake = next - lateness;
			if (wake <= now)
				wake = next;  /* inside the expected lateness already: wait for the departure itself */
			int64_t wait = wake - now;
			if (wait < 0) wait = 0;
			ts.tv_sec = wait / NS;
			ts.tv_nsec = wait % NS;
			timeout = &ts;
		}
		int ready = ppoll(pfd, n, timeout, &none);
		if (ready < 0) {
			if (errno == EINTR) continue;
			die("ppoll: %s", strerror(errno));
		}
		if (ready == 0 && timeout && wake > now) {  /* a timer wake-up: how late was it */
			int64_t late = now_ns() - wake;
			if (late < 0) late = 0;
			if (late > LATENESS_MAX) late = LATENESS_MAX;
			lateness += (late - lateness) / 8;
		}
		for (int c = 0; c < 2; c++) {
			/* a switch that goes away closes its control connection: the link is down until vde_network
			   restarts the element with the switch (as it does a wirefilter); idle meanwhile, never spinning */
			if (pfd[2 * c + 1].revents & (POLLHUP | POLLERR)) gone[c] = 1;
			if (pfd[2 * c + 1].revents & POLLIN) {
				char junk[256];
				if (read(pfd[2 * c + 1].fd, junk, sizeof junk) <= 0) gone[c] = 1;
			}
			/* a side whose data socket fails (a tap deleted under us reads EBADFD forever) is gone too */
			if (pfd[2 * c].revents & (POLLERR | POLLHUP | POLLNVAL)) gone[c] = 1;
			else if (pfd[2 * c].revents & POLLIN) {
				int64_t arrival;
				ssize_t len = side_recv(c, frame, sizeof frame, &arrival);
				if (len > 0)
					arrive(c, frame, (size_t)len, arrival);
				else if (len < 0 && errno != EAGAIN && errno != EINTR && errno != ENOBUFS)
					gone[c] = 1;
			}
		}
		mgmt_serve(pfd + 4);
	}
	for (int c = 0; c < 2; c++) {
		if (conn[c]) vde_close(conn[c]);
		if (peer_self[c]) unlink(peer_self[c]);
	}
	if (mgmt_path) unlink(mgmt_path);
	if (pid_path) unlink(pid_path);
	return 0;
}
