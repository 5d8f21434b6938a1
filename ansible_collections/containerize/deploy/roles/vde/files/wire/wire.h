/* cz-wire (cz-wire.c: the element; mgmt.c: its management socket): what the two share */
#ifndef CZ_WIRE_H
#define CZ_WIRE_H

#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define VERSION "1"
#define CLIENTS_MAX 8                 /* management sessions at once */
#define MGMT_POLLFDS (1 + CLIENTS_MAX)

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
	int out;                      /* the side it sends to */
};

extern struct direction dirs[2];      /* L->R (from the node), R->L */
extern int64_t lateness;              /* how late a timer wake-up comes (EWMA, ns) */
extern int cpu_latency;               /* the PM QoS request held (us), -1 none */
extern const char *cpu_latency_error; /* why none, when one was asked for */
extern volatile sig_atomic_t stopping;

void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
int set_param(int which, const char *text);  /* 0 delay, 1 bandwidth, 2 loss; -1 on a bad value */
void bind_unix(int fd, const char *path);

void mgmt_open(const char *path);
int mgmt_pollfds(struct pollfd *pfd);
void mgmt_serve(const struct pollfd *pfd);

#endif
