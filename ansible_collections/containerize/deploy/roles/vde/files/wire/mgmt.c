/*
 * cz-wire's management socket (-M): wirefilter's protocol subset, so link_shaping, status and
 * `containerize shape` talk to cz-wire as to wirefilter. A banner ending in the prompt "VDEwf$ ", then
 * one command a line: showinfo, delay, bandwidth, loss ([LR|RL] VALUE), help, logout, shutdown.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire.h"

#define PROMPT "\nVDEwf$ "

static int mgmt_fd = -1, clients[CLIENTS_MAX] = {-1, -1, -1, -1, -1, -1, -1, -1};
static char client_buf[CLIENTS_MAX][512];
static size_t client_len[CLIENTS_MAX];
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

void mgmt_open(const char *path)
{
	if ((mgmt_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		die("socket: %s", strerror(errno));
	bind_unix(mgmt_fd, path);
	if (listen(mgmt_fd, 8))
		die("%s: cannot listen: %s", path, strerror(errno));
}

/* the listening socket's and the sessions' entries of the main loop's ppoll: MGMT_POLLFDS of them */
int mgmt_pollfds(struct pollfd *pfd)
{
	pfd[0] = (struct pollfd){.fd = mgmt_fd, .events = POLLIN};
	for (int i = 0; i < CLIENTS_MAX; i++)
		pfd[1 + i] = (struct pollfd){.fd = clients[i], .events = POLLIN};
	return MGMT_POLLFDS;
}

/* what ppoll found on PFD (as mgmt_pollfds filled it): a new session, commands, a session closed */
void mgmt_serve(const struct pollfd *pfd)
{
	if (pfd[0].revents & POLLIN)
		mgmt_accept();
	for (int i = 0; i < CLIENTS_MAX; i++)
		if (clients[i] >= 0 && pfd[1 + i].revents & (POLLIN | POLLHUP | POLLERR))
			client_input(i);
}
