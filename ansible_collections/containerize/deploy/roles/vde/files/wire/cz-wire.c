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
 * --cpu-latency US holds a PM QoS request (/dev/cpu_dma_latency) while it runs: the CPUs wake within US
 * microseconds (idle ones poll), so a frame waking an element is not late by a deep idle state.
 * Management socket (MGMT), wirefilter's protocol subset: banner ending in the prompt "VDEwf$ ",
 * showinfo, delay, bandwidth, loss ([LR|RL] VALUE), help, logout, shutdown.
 *
 * Built on the pnode by the vde role: gcc -O2 -o cz-wire cz-wire.c -l:libvdeplug.so.2
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

#define VERSION "1"
#define PROMPT "\nVDEwf$ "
#define FRAME_MAX 65536
#define QUEUE_MAX 16384               /* frames per direction, whatever the rate */
#define BACKLOG_NS 50000000LL         /* 50 ms of serialization backlog, as the end-node tbf */
#define CLIENTS_MAX 8
#define NS 1000000000LL

struct frame {
	int64_t depart;
	size_t len;
	unsigned char *data;
};

struct direction {
	const char *name;             /* "L->R" */
	double delay_ms, loss_pct, bandwidth; /* bandwidth bytes/s, 0 unlimited */
	int64_t last_depart;
	struct frame *q;
	unsigned head, count;
	uint64_t sent, lost, dropped;
	VDECONN *out;
};

static struct direction dirs[2] = {{.name = "L->R"}, {.name = "R->L"}};
static VDECONN *conn[2];
static int gone[2];  /* the switch of that side went away: its sockets are no longer polled */
static const char *mgmt_path, *pid_path;
static int mgmt_fd = -1, clients[CLIENTS_MAX];
static char client_buf[CLIENTS_MAX][512];
static size_t client_len[CLIENTS_MAX];
static volatile sig_atomic_t stopping;
static uint64_t rng[4];
/* how late ppoll's timeout wakes us (EWMA, ns): the next wake-up is asked for that much before the
   departure, so a frame leaves about on time; never before it (a wake-up that comes sooner than expected
   waits out the rest), so a link never delivers faster than its plan */
static int64_t lateness;
static int cpu_latency = -1;          /* the PM QoS request held (us), -1 none */
static const char *cpu_latency_error = "";
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

static void die(const char *fmt, ...)
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
static int set_param(int which, const char *text)
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
		vde_send(dir->out, data, len, 0);
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
			vde_send(dir->out, f->data, f->len, 0);
			free(f->data);
			dir->sent++;
			dir->head = (dir->head + 1) % QUEUE_MAX;
			dir->count--;
		}
	}
	return next;
}

/* ---------------------------------------------------------------------------------------------- */
/* management */

static void say(int fd, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof buf - 1)
		n = sizeof buf - 1;
	for (int off = 0; n > 0 && off < n;) {
		ssize_t w = send(fd, buf + off, n - off, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		off += w;
	}
}

/* a number as fmt_num prints it: up to 6 decimals, trailing zeros dropped */
static const char *num(char *buf, double v)
{
	snprintf(buf, 64, "%.6f", v);
	char *p = buf + strlen(buf) - 1;
	while (*p == '0') *p-- = 0;
	if (*p == '.') *p = 0;
	return buf;
}

static void showinfo(int fd)
{
	char a[64], b[64];
	say(fd, "0000 DATA END WITH '.'\nWireFilter: bidirectional (cz-wire " VERSION ")\n");
	say(fd, "Loss   L->R %s+0U   R->L %s+0U\n", num(a, dirs[0].loss_pct), num(b, dirs[1].loss_pct));
	say(fd, "Delay  L->R %s+0U   R->L %s+0U\n", num(a, dirs[0].delay_ms), num(b, dirs[1].delay_ms));
	say(fd, "Bandw  L->R %s+0U   R->L %s+0U\n", num(a, dirs[0].bandwidth), num(b, dirs[1].bandwidth));
	say(fd, "Current Delay Queue size:   L->R %u      R->L %u   \n", dirs[0].count, dirs[1].count);
	say(fd, "Sent   L->R %llu   R->L %llu\n", (unsigned long long)dirs[0].sent,
	    (unsigned long long)dirs[1].sent);
	say(fd, "Lost   L->R %llu   R->L %llu\n", (unsigned long long)dirs[0].lost,
	    (unsigned long long)dirs[1].lost);
	say(fd, "Dropped L->R %llu   R->L %llu\n", (unsigned long long)dirs[0].dropped,
	    (unsigned long long)dirs[1].dropped);
	say(fd, "Wake-up lateness %lld us\n", (long long)(lateness / 1000));
	if (cpu_latency >= 0)
		say(fd, "CPU latency request %d us\n", cpu_latency);
	else if (*cpu_latency_error)
		say(fd, "CPU latency request none: %s\n", cpu_latency_error);
	say(fd, "Fifoness TRUE\nWaiting packets in delay queues %u\n.\n1000 Success\n" PROMPT,
	    dirs[0].count + dirs[1].count);
}

/* one command line; returns 0 to keep the session, -1 to close it */
static int command(int fd, char *line)
{
	static const char *params[] = {"delay", "bandwidth", "loss"};
	while (*line == ' ' || *line == '\t') line++;
	char *end = line + strlen(line);
	while (end > line && (end[-1] == ' ' || end[-1] == '\r' || end[-1] == '\t')) *--end = 0;
	if (!*line) {
		say(fd, PROMPT);
		return 0;
	}
	char *arg = strchr(line, ' ');
	if (arg) *arg++ = 0;
	else arg = line + strlen(line);
	if (!strcmp(line, "showinfo")) {
		showinfo(fd);
		return 0;
	}
	if (!strcmp(line, "help")) {
		say(fd, "0000 DATA END WITH '.'\nCOMMAND      HELP\n------------ ------------\n"
		        "help         print a summary of mgmt commands\nshowinfo     show status and parameter values\n"
		        "loss         set loss percentage\ndelay        set delay ms\n"
		        "bandwidth    set channel bandwidth bytes/sec\nshutdown     shut the channel down\n"
		        "logout       log out from this mgmt session\n.\n1000 Success\n" PROMPT);
		return 0;
	}
	if (!strcmp(line, "logout")) {
		say(fd, "1000 Success\n");
		return -1;
	}
	if (!strcmp(line, "shutdown")) {
		say(fd, "1000 Success\n");
		stopping = 1;
		return -1;
	}
	for (int i = 0; i < 3; i++) {
		if (strcmp(line, params[i]))
			continue;
		if (set_param(i, arg))
			say(fd, "1022 Invalid argument\n" PROMPT);
		else
			say(fd, "1000 Success\n" PROMPT);
		return 0;
	}
	say(fd, "1038 Function not implemented\n" PROMPT);
	return 0;
}

static void client_input(int i)
{
	char *buf = client_buf[i];
	ssize_t n = recv(clients[i], buf + client_len[i], sizeof client_buf[i] - 1 - client_len[i], 0);
	if (n <= 0) {
		close(clients[i]);
		clients[i] = -1;
		return;
	}
	client_len[i] += n;
	buf[client_len[i]] = 0;
	char *nl;
	while ((nl = memchr(buf, '\n', client_len[i]))) {
		*nl = 0;
		int keep = command(clients[i], buf);
		size_t used = nl + 1 - buf;
		memmove(buf, nl + 1, client_len[i] - used);
		client_len[i] -= used;
		buf[client_len[i]] = 0;
		if (keep < 0) {
			close(clients[i]);
			clients[i] = -1;
			return;
		}
	}
	if (client_len[i] >= sizeof client_buf[i] - 1) {  /* a line too long: dropped */
		client_len[i] = 0;
		say(clients[i], "1022 Invalid argument\n" PROMPT);
	}
}

static void mgmt_accept(void)
{
	int fd = accept4(mgmt_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	for (int i = 0; i < CLIENTS_MAX; i++) {
		if (clients[i] < 0) {
			clients[i] = fd;
			client_len[i] = 0;
			say(fd, "\nVDE wirefilter V.2.3.2 compatible: cz-wire " VERSION "\n" PROMPT);
			return;
		}
	}
	say(fd, "1016 Too many sessions\n");
	close(fd);
}

static void mgmt_open(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sun.sun_path)
		die("%s: management socket path too long, at most %zu bytes", path, sizeof sun.sun_path - 1);
	strcpy(sun.sun_path, path);
	mgmt_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unlink(path);
	if (mgmt_fd < 0 || bind(mgmt_fd, (struct sockaddr *)&sun, sizeof sun) || listen(mgmt_fd, 8))
		die("%s: cannot listen: %s", path, strerror(errno));
	chmod(path, 0600);
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
	for (int i = 0; i < CLIENTS_MAX; i++) clients[i] = -1;
	for (int d = 0; d < 2; d++)
		if (!(dirs[d].q = calloc(QUEUE_MAX, sizeof(struct frame))))
			die("out of memory");
	conn[0] = vde_open_real(left, "cz-wire", 1, NULL);
	if (!conn[0])
		die("%s: cannot connect: %s", left, strerror(errno));
	conn[1] = vde_open_real(right, "cz-wire", 1, NULL);
	if (!conn[1])
		die("%s: cannot connect: %s", right, strerror(errno));
	dirs[0].out = conn[1];
	dirs[1].out = conn[0];
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
	struct pollfd pfd[5 + CLIENTS_MAX];
	sigset_t none;
	sigemptyset(&none);
	while (!stopping) {
		int n = 0;
		for (int c = 0; c < 2; c++) {
			pfd[n++] = (struct pollfd){.fd = gone[c] ? -1 : vde_datafd(conn[c]), .events = POLLIN};
			pfd[n++] = (struct pollfd){.fd = gone[c] ? -1 : vde_ctlfd(conn[c]), .events = POLLIN};
		}
		pfd[n++] = (struct pollfd){.fd = mgmt_fd, .events = POLLIN};
		for (int i = 0; i < CLIENTS_MAX; i++)
			pfd[n++] = (struct pollfd){.fd = clients[i], .events = POLLIN};
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
				ssize_t len = vde_recv(conn[c], frame, sizeof frame, 0);
				if (len > 0)
					arrive(c, frame, (size_t)len, now_ns());
				else if (len < 0 && errno != EAGAIN && errno != EINTR && errno != ENOBUFS)
					gone[c] = 1;
			}
		}
		if (pfd[4].revents & POLLIN) mgmt_accept();
		for (int i = 0; i < CLIENTS_MAX; i++)
			if (clients[i] >= 0 && pfd[5 + i].revents & (POLLIN | POLLHUP | POLLERR)) client_input(i);
	}
	vde_close(conn[0]);
	vde_close(conn[1]);
	if (mgmt_path) unlink(mgmt_path);
	if (pid_path) unlink(pid_path);
	return 0;
}
